# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.tools import SQL

# Periods of the reports that compare two month ends: (code, months between
# the start and the end, offset of the row id).
PERIODS = (("month", 1, 0), ("year", 12, 1))
PERIOD_SELECTION = [("month", "Month"), ("year", "Year (12 months)")]
# Columns of the snapshot at the start of a period the reports compare.
START_COLUMNS = ("id", "stage_id", "purchase_count", "in_base", "customer_capital")


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

    def _pairs(self):
        """One row per client, period (month or 12 months) and month end
        whose company has snapshots at the start of the period: the client's
        snapshot at the end and the one at the start (none when the client
        did not exist yet), with

        - ``at_start``/``at_end``: in the customer base then (it has bought
          and is not in a stage that counts as churn);
        - ``start_revenue``/``end_revenue``: revenue of the period before the
          start and of the period itself (month or 12 months);
        - ``start_capital``/``end_capital``: customer capital then.

        The snapshot at the start is found with window functions over the
        client's snapshots (one sort, no self-join whose size the planner
        could misjudge), the company's month ends in one array per company.
        Row ids are the end snapshot's, times two, plus 1 for 12 months:
        stable as long as the snapshots are."""
        lags = []
        branches = []
        for code, months, offset in PERIODS:
            revenue = "revenue" if months == 1 else "revenue_12m"
            date_start = SQL(
                "(date_trunc('month', base.date) - make_interval(months => %s)"
                " - INTERVAL '1 day')::date",
                months - 1,
            )
            same = SQL("lag(base.date, %s) OVER client = %s", months, date_start)
            lags.append(SQL("%s AS %s", date_start, SQL.identifier(f"start_{code}")))
            for column in (*START_COLUMNS, revenue):
                lags.append(
                    SQL(
                        "CASE WHEN %s THEN lag(base.%s, %s) OVER client END AS %s",
                        same,
                        SQL.identifier(column),
                        months,
                        SQL.identifier(f"{column}_{code}"),
                    )
                )

            def start(column, code=code):
                return SQL("s.%s", SQL.identifier(f"{column}_{code}"))

            branches.append(
                SQL(
                    """
                    SELECT s.id * 2 + %(offset)s AS id, %(code)s::varchar AS period,
                           %(date_start)s AS date_start, s.date, s.partner_id,
                           s.company_id, s.user_id, s.team_id, s.industry_id,
                           s.country_id, s.state_id, s.loyalty_level_id,
                           %(stage_from)s AS stage_from_id, s.stage_id,
                           %(start_id)s IS NOT NULL AS start_exists,
                           coalesce(%(start_purchases)s, 0) AS start_purchases,
                           s.purchase_count AS end_purchases,
                           coalesce(%(start_in_base)s, FALSE) AS at_start,
                           s.in_base AS at_end,
                           coalesce(%(start_revenue)s, 0) AS start_revenue,
                           s.%(revenue)s AS end_revenue,
                           s.receivable_open,
                           coalesce(%(start_capital)s, 0) AS start_capital,
                           s.customer_capital AS end_capital
                      FROM snap s
                      JOIN company_dates d ON d.company_id = s.company_id
                     WHERE %(date_start)s = ANY(d.dates)
                    """,
                    offset=offset,
                    code=code,
                    date_start=start("start"),
                    stage_from=start("stage_id"),
                    start_id=start("id"),
                    start_purchases=start("purchase_count"),
                    start_in_base=start("in_base"),
                    start_revenue=start(revenue),
                    revenue=SQL.identifier(revenue),
                    start_capital=start("customer_capital"),
                )
            )
        return SQL(
            """
            WITH base AS (
                SELECT s.id, s.date, s.partner_id, s.company_id, s.user_id,
                       s.team_id, s.industry_id, s.country_id, s.state_id,
                       s.loyalty_level_id, s.stage_id, s.purchase_count,
                       s.revenue, s.receivable_open, s.customer_capital,
                       sum(s.revenue) OVER (
                           PARTITION BY s.company_id, s.partner_id ORDER BY s.date
                           RANGE BETWEEN INTERVAL '11 months' PRECEDING
                                     AND CURRENT ROW) AS revenue_12m,
                       s.purchase_count > 0
                           AND NOT coalesce(st.counts_as_churn, FALSE) AS in_base
                  FROM crm_lifecycle_snapshot s
                  LEFT JOIN crm_lifecycle_stage st ON st.id = s.stage_id
                 WHERE s.company_id = ANY(%(companies)s)
            ),
            snap AS (
                SELECT base.*, %(lags)s
                  FROM base
                WINDOW client AS (PARTITION BY base.company_id, base.partner_id
                                  ORDER BY base.date)
            ),
            -- the month ends of each company: a period starts at one of them
            company_dates AS (
                SELECT company_id, array_agg(DISTINCT date) AS dates
                  FROM crm_lifecycle_snapshot
                 WHERE company_id = ANY(%(companies)s)
                 GROUP BY company_id
            )
            %(branches)s
            """,
            companies=self.env.companies.ids,
            lags=SQL(", ").join(lags),
            branches=SQL(" UNION ALL ").join(branches),
        )
