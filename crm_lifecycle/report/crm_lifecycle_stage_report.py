# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL


class CrmLifecycleStageReport(models.Model):
    """Stages over time: the stage of every client at each month end (the
    snapshots) and now (the client rows), with each client's share of the
    clients of that date."""

    _name = "crm.lifecycle.stage.report"
    _inherit = "crm.lifecycle.report.mixin"
    _description = "Lifecycle Stages Over Time"
    _auto = False
    _order = "date desc, partner_id"

    is_current = fields.Boolean(
        string="Now",
        readonly=True,
        help="Today's stage, not a month end's: the bar of the current month.",
    )
    stage_id = fields.Many2one(
        "crm.lifecycle.stage", string="Lifecycle Stage", readonly=True
    )
    client_count = fields.Integer(string="Clients", readonly=True)
    client_share = fields.Float(
        string="Share of clients (%)",
        readonly=True,
        digits=(16, 2),
        help="The client's share of all the clients of the selected companies "
        "at that date: summed over a stage and a month end, the percentage of "
        "the clients in that stage.",
    )

    @property
    def _table_query(self):
        today = fields.Date.context_today(self)
        # ids: the snapshot's times two, the client row's times two plus one
        rows = SQL(
            """
            SELECT s.id * 2 AS id, s.date, FALSE AS is_current, s.partner_id,
                   s.company_id, s.user_id, s.team_id, s.industry_id,
                   s.country_id, s.state_id, s.loyalty_level_id, s.stage_id,
                   1 AS client_count
              FROM crm_lifecycle_snapshot s
             WHERE s.company_id = ANY(%(companies)s)
             UNION ALL
            SELECT c.id * 2 + 1, %(today)s::date, TRUE, c.partner_id,
                   c.company_id, p.user_id, u.sale_team_id, p.industry_id,
                   p.country_id, p.state_id, c.loyalty_level_id, c.stage_id, 1
              FROM crm_lifecycle_client c
              JOIN res_partner p ON p.id = c.partner_id
              LEFT JOIN res_users u ON u.id = p.user_id
             WHERE c.company_id = ANY(%(companies)s)
               AND p.active
               -- on a month end once its snapshot is taken, the snapshot
               AND NOT EXISTS (
                   SELECT 1 FROM crm_lifecycle_snapshot t
                    WHERE t.company_id = c.company_id AND t.date = %(today)s)
            """,
            companies=self.env.companies.ids,
            today=today,
        )
        # the clients of each date: a count grouped by date (the snapshots'
        # index on company and date), not a window over every row
        return SQL(
            """
            SELECT rows.*, 100.0 / total.clients AS client_share
              FROM (%(rows)s) rows
              LEFT JOIN (
                  SELECT t.date, count(*) AS clients
                    FROM (%(rows)s) t
                   GROUP BY t.date
              ) total ON total.date = rows.date
            """,
            rows=rows,
        )
