# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL


class CrmLifecycleConversionReport(models.Model):
    """Time in each stage and time to become a customer: one row per stage
    change of the lifecycle history. The first time a client reaches a
    customer stage (its conversion) carries the days since it first became
    a prospect and an opportunity (when it entered the stage it left: the
    date of the change minus its days in that stage), and the median of
    those days over the conversions of the month (a pivot cannot compute
    medians)."""

    _name = "crm.lifecycle.conversion.report"
    _inherit = "crm.lifecycle.report.mixin"
    _description = "Lifecycle Conversion Times"
    _auto = False
    _order = "date desc, partner_id"

    date = fields.Date(string="Date of change")
    stage_from_id = fields.Many2one(
        "crm.lifecycle.stage", string="Stage left", readonly=True
    )
    stage_to_id = fields.Many2one(
        "crm.lifecycle.stage", string="Stage reached", readonly=True
    )
    reason = fields.Selection(
        [
            ("rule", "Rule"),
            ("manual", "Set by hand"),
            ("event", "Event"),
            ("reactivation", "Reactivation"),
        ],
        readonly=True,
    )
    change_count = fields.Integer(string="Stage changes", readonly=True)
    days_in_stage = fields.Float(
        string="Days in stage left",
        readonly=True,
        digits=(16, 1),
        aggregator="avg",
        help="Days the client spent in the stage it left (average).",
    )
    conversion_count = fields.Integer(
        string="Conversions",
        readonly=True,
        help="The client reached a customer stage for the first time.",
    )
    days_from_prospect = fields.Float(
        string="Days from prospect to customer",
        readonly=True,
        digits=(16, 1),
        aggregator="avg",
        help="On a conversion: days since the client first became a prospect "
        "(average; empty when it never was one).",
    )
    days_from_opportunity = fields.Float(
        string="Days from opportunity to customer",
        readonly=True,
        digits=(16, 1),
        aggregator="avg",
        help="On a conversion: days since the client first became an "
        "opportunity (average; empty when it never was one).",
    )
    median_days_from_prospect = fields.Float(
        string="Median days from prospect (month)",
        readonly=True,
        digits=(16, 1),
        aggregator="avg",
        help="Median of the days from prospect to customer of the "
        "conversions of the month in the selected companies: group by month "
        "of the change to read it.",
    )
    median_days_from_opportunity = fields.Float(
        string="Median days from opportunity (month)",
        readonly=True,
        digits=(16, 1),
        aggregator="avg",
        help="Median of the days from opportunity to customer of the "
        "conversions of the month in the selected companies: group by month "
        "of the change to read it.",
    )

    @property
    def _table_query(self):
        return SQL(
            """
            WITH change AS (
                SELECT h.id, h.date, h.partner_id, h.company_id,
                       h.stage_from_id, h.stage_to_id, h.reason,
                       h.days_in_previous_stage, st.is_customer_stage,
                       left_stage.code AS left_code,
                       -- when the client entered the stage it left
                       h.date - h.days_in_previous_stage * INTERVAL '1 day'
                           AS entered
                  FROM crm_lifecycle_history h
                  LEFT JOIN crm_lifecycle_stage st ON st.id = h.stage_to_id
                  LEFT JOIN crm_lifecycle_stage left_stage
                    ON left_stage.id = h.stage_from_id
                 WHERE h.company_id = ANY(%(companies)s)
                   AND h.reason != 'loyalty'
            ),
            conversion AS (
                SELECT DISTINCT ON (c.partner_id, c.company_id)
                       c.id, c.date, c.partner_id, c.company_id
                  FROM change c
                 WHERE c.is_customer_stage
                 ORDER BY c.partner_id, c.company_id, c.date, c.id
            ),
            -- when the client entered a prospect or opportunity stage it
            -- later left: one hash join on the client, not a scan of the
            -- changes per conversion
            timing AS (
                SELECT conversion.id, conversion.date,
                       extract(epoch FROM conversion.date - min(c.entered)
                           FILTER (WHERE c.left_code = 'prospect')) / 86400
                           AS days_from_prospect,
                       extract(epoch FROM conversion.date - min(c.entered)
                           FILTER (WHERE c.left_code = 'opportunity')) / 86400
                           AS days_from_opportunity
                  FROM conversion
                  LEFT JOIN change c
                    ON c.partner_id = conversion.partner_id
                   AND c.company_id = conversion.company_id
                   AND c.left_code IN ('prospect', 'opportunity')
                   AND c.date <= conversion.date
                 GROUP BY conversion.id, conversion.date
            ),
            median AS (
                SELECT date_trunc('month', timing.date) AS month,
                       percentile_cont(0.5) WITHIN GROUP (
                           ORDER BY timing.days_from_prospect) AS prospect,
                       percentile_cont(0.5) WITHIN GROUP (
                           ORDER BY timing.days_from_opportunity) AS opportunity
                  FROM timing
                 GROUP BY 1
            )
            SELECT c.id, c.date::date AS date, c.partner_id, c.company_id,
                   p.user_id, u.sale_team_id AS team_id, p.industry_id,
                   p.country_id, p.state_id, cl.loyalty_level_id,
                   c.stage_from_id, c.stage_to_id, c.reason,
                   1 AS change_count,
                   CASE WHEN c.stage_from_id IS NOT NULL
                        THEN c.days_in_previous_stage END AS days_in_stage,
                   CASE WHEN timing.id IS NOT NULL THEN 1 ELSE 0 END
                       AS conversion_count,
                   timing.days_from_prospect,
                   timing.days_from_opportunity,
                   CASE WHEN timing.id IS NOT NULL THEN median.prospect END
                       AS median_days_from_prospect,
                   CASE WHEN timing.id IS NOT NULL THEN median.opportunity END
                       AS median_days_from_opportunity
              FROM change c
              JOIN res_partner p ON p.id = c.partner_id
              LEFT JOIN res_users u ON u.id = p.user_id
              LEFT JOIN crm_lifecycle_client cl
                ON cl.partner_id = c.partner_id AND cl.company_id = c.company_id
              LEFT JOIN timing ON timing.id = c.id
              LEFT JOIN median ON median.month = date_trunc('month', c.date)
            """,
            companies=self.env.companies.ids,
        )
