# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL, create_index

from .crm_lifecycle_snapshot import PERIOD_SELECTION


class CrmLifecycleSnapshotTotal(models.Model):
    """The customers at the start of each period of a company's month end,
    per stage at the start: what the churn report's rows are shares of,
    without a second scan of every snapshot. Written in SQL with the
    snapshots they count (``crm.lifecycle.snapshot._refresh_totals``); per
    stage, so that a stage that starts or stops counting as churn changes
    the totals at once."""

    _name = "crm.lifecycle.snapshot.total"
    _description = "Client Lifecycle Snapshot Totals"
    _order = "date desc, company_id, period"
    _rec_name = "date"
    _log_access = False

    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, ondelete="cascade"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    date = fields.Date(string="Month End", required=True, readonly=True)
    period = fields.Selection(PERIOD_SELECTION, required=True, readonly=True)
    stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Stage at start",
        readonly=True,
        ondelete="set null",
    )
    customer_count = fields.Integer(
        string="Customers at start",
        readonly=True,
        help="Snapshots of the month end whose client had paid purchases at "
        "the start of the period, in this stage then.",
    )
    start_revenue = fields.Monetary(
        string="Revenue before",
        readonly=True,
        help="Their revenue of the period before the start.",
    )

    def init(self):
        create_index(
            self.env.cr,
            "crm_lifecycle_snapshot_total_company_date_index",
            self._table,
            ["company_id", "date"],
        )
        # snapshots written before the totals existed: counted once
        self.env.cr.execute(
            SQL(
                """
                SELECT company.id FROM res_company company
                 WHERE EXISTS (SELECT 1 FROM crm_lifecycle_snapshot s
                                WHERE s.company_id = company.id)
                   AND NOT EXISTS (SELECT 1 FROM crm_lifecycle_snapshot_total t
                                    WHERE t.company_id = company.id)
                """
            )
        )
        Snapshot = self.env["crm.lifecycle.snapshot"]
        for (company_id,) in self.env.cr.fetchall():
            Snapshot._refresh_totals(self.env["res.company"].browse(company_id))
