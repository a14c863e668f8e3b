# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.tools import SQL

# Periods of the reports that compare two month ends: (code, months between
# the start and the end, offset of the row id).
PERIODS = (("month", 1, 0), ("year", 12, 1))
PERIOD_SELECTION = [("month", "Month"), ("year", "Year (12 months)")]


class CrmLifecycleReportMixin(models.AbstractModel):
    """What the lifecycle reports over the month-end snapshots share: the
    client and its attributes at the month end (the filters of every report),
    amounts converted to the current company's currency, and the pairs of
    month ends (start and end of a month or of 12 months) per client."""

    _name = "crm.lifecycle.report.mixin"
    _description = "Client Lifecycle Report Base"
    _rec_name = "partner_id"

    date = fields.Date(string="Month End", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Client", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", compute="_compute_currency_id")
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    industry_id = fields.Many2one("res.partner.industry", readonly=True)
    country_id = fields.Many2one("res.country", readonly=True)
    state_id = fields.Many2one("res.country.state", string="Region", readonly=True)
    loyalty_level_id = fields.Many2one(
        "crm.loyalty.level", string="Loyalty Level", readonly=True
    )
    category_ids = fields.Many2many(
        "res.partner.category", string="Tags", related="partner_id.category_id"
    )

    @api.depends_context("company")
    def _compute_currency_id(self):
        self.currency_id = self.env.company.currency_id

    def _currency_table(self):
        """The rates of the current companies (join it ``ON
        account_currency_table.company_id = <company column>``), as
        crm.lifecycle.report and sale.report convert their amounts."""
        return self.env["res.currency"]._get_simple_currency_table(self.env.companies)

    def _money(self, expression):
        """``expression`` (an amount in its company's currency) in the current
        company's currency at today's rate."""
        return SQL(
            "coalesce(%s, 0) * coalesce(account_currency_table.rate, 1)", expression
        )

    def _snapshots(self):
        """The snapshots of the current companies with the revenue of the
        last 12 months and whether the client is in the customer base: it has
        bought and is not in a stage that counts as churn."""
        return SQL(
            """
            SELECT s.id, s.date, s.partner_id, s.company_id, s.user_id,
                   s.team_id, s.industry_id, s.country_id, s.state_id,
                   s.loyalty_level_id, s.stage_id, s.purchase_count,
                   s.revenue, s.receivable_open, s.customer_capital,
                   sum(s.revenue) OVER (
                       PARTITION BY s.company_id, s.partner_id ORDER BY s.date
                       RANGE BETWEEN INTERVAL '11 months' PRECEDING
                                 AND CURRENT ROW) AS revenue_12m,
                   s.purchase_count > 0 AND NOT coalesce(st.counts_as_churn, FALSE)
                       AS in_base
              FROM crm_lifecycle_snapshot s
              LEFT JOIN crm_lifecycle_stage st ON st.id = s.stage_id
             WHERE s.company_id = ANY(%(companies)s)
            """,
            companies=self.env.companies.ids,
        )

    def _pairs(self):
        """One row per client, period (month or 12 months) and month end
        whose company has snapshots at the start of the period: the client's
        snapshot at the end (``s``) and at the start (``p``, none when the
        client did not exist yet), with

        - ``at_start``/``at_end``: in the customer base then;
        - ``start_revenue``/``end_revenue``: revenue of the period before the
          start and of the period itself (month or 12 months);
        - ``start_capital``/``end_capital``: customer capital then.

        Row ids are the end snapshot's, times two, plus 1 for 12 months:
        stable as long as the snapshots are."""
        periods = SQL(", ").join(
            SQL("(%s, %s, %s)", code, months, offset)
            for code, months, offset in PERIODS
        )
        return SQL(
            """
            WITH snap AS (%(snapshots)s),
            dates AS (SELECT DISTINCT company_id, date FROM snap),
            periods AS (
                SELECT d.company_id, d.date, kind.period, kind.row_offset,
                       start.date AS date_start
                  FROM dates d
                 CROSS JOIN (VALUES %(periods)s) AS kind(period, months, row_offset)
                  JOIN dates start
                    ON start.company_id = d.company_id
                   AND start.date = (date_trunc('month', d.date)
                        - make_interval(months => kind.months - 1)
                        - INTERVAL '1 day')::date
            )
            SELECT s.id * 2 + pr.row_offset AS id, pr.period, pr.date_start,
                   s.date, s.partner_id, s.company_id, s.user_id, s.team_id,
                   s.industry_id, s.country_id, s.state_id, s.loyalty_level_id,
                   p.stage_id AS stage_from_id, s.stage_id,
                   p.id IS NOT NULL AS start_exists,
                   coalesce(p.purchase_count, 0) AS start_purchases,
                   s.purchase_count AS end_purchases,
                   coalesce(p.in_base, FALSE) AS at_start,
                   s.in_base AS at_end,
                   CASE WHEN pr.period = 'month' THEN coalesce(p.revenue, 0)
                        ELSE coalesce(p.revenue_12m, 0) END AS start_revenue,
                   CASE WHEN pr.period = 'month' THEN s.revenue
                        ELSE s.revenue_12m END AS end_revenue,
                   s.receivable_open,
                   coalesce(p.customer_capital, 0) AS start_capital,
                   s.customer_capital AS end_capital
              FROM periods pr
              JOIN snap s ON s.company_id = pr.company_id AND s.date = pr.date
              LEFT JOIN snap p
                ON p.company_id = s.company_id
               AND p.partner_id = s.partner_id
               AND p.date = pr.date_start
            """,
            snapshots=self._snapshots(),
            periods=periods,
        )
