# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_lifecycle_snapshot import PERIOD_SELECTION


class CrmLifecycleTransitionReport(models.Model):
    """Conversion between stages: one row per client and period (a month or
    12 months) with its stage at the start and at the end of the period,
    from the month-end snapshots. Rows by stage at start and columns by
    stage at end make the stage-to-stage matrix."""

    _name = "crm.lifecycle.transition.report"
    _inherit = "crm.lifecycle.report.mixin"
    _description = "Lifecycle Stage Conversion"
    _auto = False
    _order = "date desc, partner_id"

    period = fields.Selection(PERIOD_SELECTION, readonly=True)
    date_start = fields.Date(
        string="Start", readonly=True, help="The month end the period starts at."
    )
    date = fields.Date(string="End", help="The month end the period ends at.")
    stage_from_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Stage at start",
        readonly=True,
        help="Empty when the client did not exist yet at the start.",
    )
    stage_to_id = fields.Many2one(
        "crm.lifecycle.stage", string="Stage at end", readonly=True
    )
    client_count = fields.Integer(string="Clients", readonly=True)
    moved_count = fields.Integer(
        string="Changed stage",
        readonly=True,
        help="Clients whose stage at the end differs from their stage at the start.",
    )
    converted_count = fields.Integer(
        string="Became customers",
        readonly=True,
        help="Clients without a paid purchase at the start and with one at the end.",
    )

    @property
    def _table_query(self):
        return SQL(
            """
            SELECT pair.id, pair.period, pair.date_start, pair.date,
                   pair.partner_id, pair.company_id, pair.user_id, pair.team_id,
                   pair.industry_id, pair.country_id, pair.state_id,
                   pair.loyalty_level_id, pair.stage_from_id,
                   pair.stage_id AS stage_to_id,
                   1 AS client_count,
                   CASE WHEN pair.stage_from_id IS DISTINCT FROM pair.stage_id
                        THEN 1 ELSE 0 END AS moved_count,
                   CASE WHEN pair.start_purchases = 0 AND pair.end_purchases > 0
                        THEN 1 ELSE 0 END AS converted_count
              FROM (%(pairs)s) pair
            """,
            pairs=self._pairs(),
        )
