# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.tools import SQL


class CrmLifecycleQueue(models.Model):
    """Clients waiting to be recomputed, per company.

    Business events only insert rows here (``INSERT ... ON CONFLICT DO
    NOTHING``): the user's transaction never locks the partner row and never
    computes anything; the cron drains the queue in batches.
    """

    _name = "crm.lifecycle.queue"
    _description = "Clients to Recompute"
    _log_access = False

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade")

    _sql_constraints = [  # noqa: RUF012
        ("partner_company_uniq", "unique(partner_id, company_id)", "Already queued."),
    ]

    @api.model
    def _enqueue(self, partner_ids, company_ids=None, commercial=False):
        """Queue the commercial entities of ``partner_ids`` for ``company_ids``
        (every company when not given). With ``commercial``, the ids already
        are commercial entities (no need to flush partners, e.g. in a compute)."""
        partner_ids = [pid for pid in set(partner_ids) if pid]
        if not partner_ids:
            return
        if not commercial:
            self.env["res.partner"].flush_model(["commercial_partner_id"])
        if company_ids is None:
            companies = SQL("SELECT id FROM res_company")
        else:
            companies = SQL("SELECT unnest(%s::int[])", sorted(set(company_ids)))
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO crm_lifecycle_queue (partner_id, company_id)
                SELECT DISTINCT %s, c.id
                  FROM res_partner p, (%s) AS c(id)
                 WHERE p.id = ANY(%s) AND p.commercial_partner_id IS NOT NULL
                ON CONFLICT DO NOTHING
                """,
                SQL("p.id") if commercial else SQL("p.commercial_partner_id"),
                companies,
                partner_ids,
            )
        )
