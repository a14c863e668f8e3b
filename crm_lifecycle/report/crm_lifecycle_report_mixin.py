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

    def _company_dates(self):
        """SQL of ``company_dates``: the month ends of each current company
        (``dates``, an array), read from the snapshots' index on (company,
        date) one month end at a time."""
        return SQL(
            """
            SELECT company.id AS company_id, ARRAY(
                WITH RECURSIVE month_end(date) AS (
                    SELECT min(s.date) FROM crm_lifecycle_snapshot s
                     WHERE s.company_id = company.id
                     UNION ALL
                    SELECT (SELECT min(s.date) FROM crm_lifecycle_snapshot s
                             WHERE s.company_id = company.id
                               AND s.date > month_end.date)
                      FROM month_end WHERE month_end.date IS NOT NULL
                )
                SELECT date FROM month_end WHERE date IS NOT NULL) AS dates
              FROM res_company company
             WHERE company.id = ANY(%s)
            """,
            self.env.companies.ids,
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

        The snapshot at the start is repeated on the snapshot at the end
        (its ``month_start_*`` and ``year_start_*`` columns, written with
        it): a plain scan of the snapshots. Row ids are the end snapshot's,
        times two, plus 1 for 12 months: stable as long as the snapshots
        are."""
        branches = []
        for code, months, offset in PERIODS:
            date_start = SQL(
                "(date_trunc('month', s.date) - make_interval(months => %s)"
                " - INTERVAL '1 day')::date",
                months - 1,
            )

            def start(column, code=code):
                return SQL("s.%s", SQL.identifier(f"{code}_start_{column}"))

            branches.append(
                SQL(
                    """
                    SELECT s.id * 2 + %(offset)s AS id, %(code)s::varchar AS period,
                           %(date_start)s AS date_start, s.date, s.partner_id,
                           s.company_id, s.user_id, s.team_id, s.industry_id,
                           s.country_id, s.state_id, s.loyalty_level_id,
                           %(stage_from)s AS stage_from_id, s.stage_id,
                           %(start_purchases)s IS NOT NULL AS start_exists,
                           coalesce(%(start_purchases)s, 0) AS start_purchases,
                           s.purchase_count AS end_purchases,
                           coalesce(%(start_purchases)s, 0) > 0
                               AND NOT coalesce(stage_from.counts_as_churn, FALSE)
                               AS at_start,
                           s.purchase_count > 0
                               AND NOT coalesce(stage.counts_as_churn, FALSE)
                               AS at_end,
                           coalesce(%(start_revenue)s, 0) AS start_revenue,
                           s.%(revenue)s AS end_revenue,
                           s.receivable_open,
                           coalesce(%(start_capital)s, 0) AS start_capital,
                           s.customer_capital AS end_capital
                      FROM crm_lifecycle_snapshot s
                      JOIN company_dates d ON d.company_id = s.company_id
                      LEFT JOIN crm_lifecycle_stage stage ON stage.id = s.stage_id
                      LEFT JOIN crm_lifecycle_stage stage_from
                        ON stage_from.id = %(stage_from)s
                     WHERE s.company_id = ANY(%(companies)s)
                       AND %(date_start)s = ANY(d.dates)
                    """,
                    offset=offset,
                    code=code,
                    date_start=date_start,
                    stage_from=start("stage_id"),
                    start_purchases=start("purchases"),
                    start_revenue=start("revenue"),
                    revenue=SQL.identifier("revenue" if months == 1 else "revenue_12m"),
                    start_capital=start("capital"),
                    companies=self.env.companies.ids,
                )
            )
        return SQL(
            """
            WITH company_dates AS (%(company_dates)s)
            %(branches)s
            """,
            company_dates=self._company_dates(),
            branches=SQL(" UNION ALL ").join(branches),
        )
