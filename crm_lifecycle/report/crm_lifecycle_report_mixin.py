# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.tools import SQL

from ..models.crm_lifecycle_snapshot import PERIODS, period_start


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
        company's currency at today's rate: as it is when the current
        companies have one currency (no multiplication by 1 on every row)."""
        if self.env["res.currency"]._check_currency_table_monocurrency(
            self.env.companies
        ):
            return SQL("coalesce(%s, 0)", expression)
        return SQL(
            "coalesce(%s, 0) * coalesce(account_currency_table.rate, 1)", expression
        )

    def _period_ends(self):
        """{period code: {company id: [month ends]}}: the month ends of each
        current company that have the month end at the start of the period
        in the same company, read from the snapshots' index on (company,
        date) one at a time (``_at_period_end``)."""
        self.env["crm.lifecycle.snapshot"].flush_model(["company_id", "date"])
        self.env.cr.execute(
            SQL(
                """
                WITH RECURSIVE month_end(company_id, date) AS (
                    SELECT company.id, (
                           SELECT min(s.date) FROM crm_lifecycle_snapshot s
                            WHERE s.company_id = company.id)
                      FROM res_company company
                     WHERE company.id = ANY(%s)
                     UNION ALL
                    SELECT month_end.company_id, (
                           SELECT min(s.date) FROM crm_lifecycle_snapshot s
                            WHERE s.company_id = month_end.company_id
                              AND s.date > month_end.date)
                      FROM month_end
                     WHERE month_end.date IS NOT NULL
                )
                SELECT company_id, date FROM month_end WHERE date IS NOT NULL
                """,
                self.env.companies.ids,
            )
        )
        month_ends = set(self.env.cr.fetchall())
        period_ends = {}
        for code, months, _offset in PERIODS:
            ends = period_ends[code] = {}
            for company_id, day in sorted(month_ends):
                if (company_id, period_start(day, months)) in month_ends:
                    ends.setdefault(company_id, []).append(day)
        return period_ends

    def _at_period_end(self, ends, alias):
        """SQL: the row ``alias`` (with ``company_id`` and ``date``) is at one
        of ``ends`` ({company id: month ends}, of ``_period_ends``): the
        month ends are constants, the planner estimates the rows from the
        statistics and tests a row with a hash of the dates."""
        if not ends:
            return SQL("FALSE")
        return SQL(" OR ").join(
            SQL(
                "(%s = %s AND %s = ANY(%s))",
                SQL.identifier(alias, "company_id"),
                company_id,
                SQL.identifier(alias, "date"),
                days,
            )
            for company_id, days in ends.items()
        )

    def _period_start(self, months, date):
        """SQL of the month end ``months`` months before the month end
        ``date`` (an SQL expression)."""
        return SQL(
            "(date_trunc('month', %s::timestamp) - make_interval(months => %s)"
            " - INTERVAL '1 day')::date",
            date,
            months - 1,
        )

    def _churn_stage_ids(self):
        """Ids of the stages that count as churn, of every company: a few
        constants instead of a join to the stages per row and month end."""
        return (
            self.env["crm.lifecycle.stage"]
            .sudo()
            .with_context(active_test=False)
            .search([("counts_as_churn", "=", True)])
            .ids
        )

    def _in_base(self, purchases, stage, churn_stages):
        """SQL: in the customer base with ``purchases`` paid purchases and
        the stage ``stage`` (SQL expressions): has bought and is not in a
        stage that counts as churn (``churn_stages``, ids)."""
        return SQL(
            "(coalesce(%s, 0) > 0 AND NOT coalesce(%s = ANY(%s), FALSE))",
            purchases,
            stage,
            churn_stages,
        )

    def _period_columns(self, code):
        """{name: SQL}: the columns of the snapshot ``s`` that the period
        ``code`` compares: the snapshot at the start (``stage_from``,
        ``start_purchases``, ``start_revenue``, ``start_capital``, repeated
        on the snapshot at the end) and the revenue of the period at the end
        (``end_revenue``)."""
        return {
            "stage_from": SQL("s.%s", SQL.identifier(f"{code}_start_stage_id")),
            "start_purchases": SQL("s.%s", SQL.identifier(f"{code}_start_purchases")),
            "start_revenue": SQL("s.%s", SQL.identifier(f"{code}_start_revenue")),
            "start_capital": SQL("s.%s", SQL.identifier(f"{code}_start_capital")),
            "end_revenue": SQL(
                "s.%s", SQL.identifier("revenue" if code == "month" else "revenue_12m")
            ),
        }

    def _pairs(self, period_ends=None, churn_stages=None):
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
        it): a plain scan of the snapshots per period, joined to nothing
        (``_period_ends``, ``_churn_stage_ids``); PostgreSQL computes only
        the columns a report reads. Row ids are the end snapshot's, times
        two, plus 1 for 12 months: stable as long as the snapshots are.
        ``period_ends`` and ``churn_stages``: ``_period_ends()`` and
        ``_churn_stage_ids()`` when the caller has them already."""
        if period_ends is None:
            period_ends = self._period_ends()
        if churn_stages is None:
            churn_stages = self._churn_stage_ids()
        branches = []
        for code, months, offset in PERIODS:
            column = self._period_columns(code)
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
                           %(at_start)s AS at_start,
                           %(at_end)s AS at_end,
                           coalesce(%(start_revenue)s, 0) AS start_revenue,
                           %(end_revenue)s AS end_revenue,
                           s.receivable_open,
                           coalesce(%(start_capital)s, 0) AS start_capital,
                           s.customer_capital AS end_capital
                      FROM crm_lifecycle_snapshot s
                     WHERE %(period_end)s
                    """,
                    offset=offset,
                    code=code,
                    date_start=self._period_start(months, SQL("s.date")),
                    at_start=self._in_base(
                        column["start_purchases"], column["stage_from"], churn_stages
                    ),
                    at_end=self._in_base(
                        SQL("s.purchase_count"), SQL("s.stage_id"), churn_stages
                    ),
                    period_end=self._at_period_end(period_ends[code], "s"),
                    **column,
                )
            )
        return SQL(" UNION ALL ").join(branches)
