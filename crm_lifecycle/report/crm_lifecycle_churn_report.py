# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_lifecycle_snapshot import PERIOD_SELECTION, PERIODS


class CrmLifecycleChurnReport(models.Model):
    """Churn and retention per client, month and 12 months, from the
    month-end snapshots. The customer base is the clients who have bought
    and are not in a stage that counts as churn (dormant and lost by
    default): per period, customers at start + new + reactivated - churned
    = customers at end."""

    _name = "crm.lifecycle.churn.report"
    _inherit = "crm.lifecycle.report.mixin"
    _description = "Lifecycle Churn and Retention"
    _auto = False
    _order = "date desc, partner_id"

    # the current company's, a column: 19.0 sums amounts only in a currency
    # it can group by
    currency_id = fields.Many2one("res.currency", readonly=True)
    period = fields.Selection(PERIOD_SELECTION, readonly=True)
    date_start = fields.Date(
        string="Start", readonly=True, help="The month end the period starts at."
    )
    date = fields.Date(string="End", help="The month end the period ends at.")
    stage_from_id = fields.Many2one(
        "crm.lifecycle.stage", string="Stage at start", readonly=True
    )
    stage_id = fields.Many2one(
        "crm.lifecycle.stage", string="Stage at end", readonly=True
    )
    customers_start = fields.Integer(
        string="Customers at start",
        readonly=True,
        help="In the customer base at the start: has bought, not in a stage "
        "that counts as churn.",
    )
    new_count = fields.Integer(
        string="New customers",
        readonly=True,
        help="In the base at the end, without any paid purchase at the start.",
    )
    reactivated_count = fields.Integer(
        string="Reactivated",
        readonly=True,
        help="In the base at the end, out of it at the start though it had bought.",
    )
    churned_count = fields.Integer(
        string="Churned",
        readonly=True,
        help="In the base at the start, out of it at the end: it entered a "
        "stage that counts as churn.",
    )
    customers_end = fields.Integer(string="Customers at end", readonly=True)
    churn_rate = fields.Float(
        string="Churn rate (%)",
        readonly=True,
        digits=(16, 2),
        help="Churned customers over the customers at start of the selected "
        "companies in the same period: summed over a period, the churn rate; "
        "over a team or a salesperson, their part of it.",
    )
    start_revenue = fields.Monetary(
        string="Revenue before",
        readonly=True,
        help="Customers at start: their revenue of the period before the start "
        "(the month, or the 12 months).",
    )
    retained_revenue = fields.Monetary(
        string="Revenue retained",
        readonly=True,
        help="Customers at start: their revenue of the period.",
    )
    revenue_retention = fields.Float(
        string="Revenue retention (%)",
        readonly=True,
        digits=(16, 2),
        help="Revenue retained over the revenue before, of the selected "
        "companies in the same period: summed over a period, the revenue "
        "retention; over a team or a salesperson, their part of it.",
    )
    revenue = fields.Monetary(
        string="Revenue of the period",
        readonly=True,
        help="Untaxed revenue invoiced in the period, net of credit notes.",
    )
    receivable_open = fields.Monetary(
        string="Open Receivable", readonly=True, help="At the end of the period."
    )

    def _churn_rows(self, period_ends=None, churn_stages=None):
        """The rows of the report: also the base of the churn rate report
        (``_pairs``)."""
        return SQL(
            """
            SELECT pair.id, pair.period, pair.date_start, pair.date,
                   pair.partner_id, pair.company_id, pair.user_id, pair.team_id,
                   pair.industry_id, pair.country_id, pair.state_id,
                   pair.loyalty_level_id, pair.stage_from_id, pair.stage_id,
                   pair.at_start::int AS customers_start,
                   (pair.at_end AND NOT pair.at_start
                        AND pair.start_purchases = 0)::int AS new_count,
                   (pair.at_end AND NOT pair.at_start
                        AND pair.start_purchases > 0)::int AS reactivated_count,
                   (pair.at_start AND NOT pair.at_end)::int AS churned_count,
                   pair.at_end::int AS customers_end,
                   CASE WHEN pair.at_start THEN %(start_revenue)s ELSE 0 END
                       AS start_revenue,
                   CASE WHEN pair.at_start THEN %(end_revenue)s ELSE 0 END
                       AS retained_revenue,
                   %(end_revenue)s AS revenue,
                   %(receivable)s AS receivable_open
              FROM (%(pairs)s) pair
              JOIN %(currency_table)s
                ON account_currency_table.company_id = pair.company_id
            """,
            pairs=self._pairs(period_ends, churn_stages),
            currency_table=self._currency_table(),
            start_revenue=self._money(SQL("pair.start_revenue")),
            end_revenue=self._money(SQL("pair.end_revenue")),
            receivable=self._money(SQL("pair.receivable_open")),
        )

    def _churn_totals(self, period_ends, churn_stages):
        """Per period and month end, the customers at start of the selected
        companies and their revenue before: the totals that each row's
        ``churn_rate`` and ``revenue_retention`` are shares of (none when
        there are no customers at start). Read from the totals per stage at
        the start written with the snapshots (crm.lifecycle.snapshot.total,
        a few rows per month end), not from a second scan of every
        snapshot."""
        return SQL(
            """
            SELECT t.period, t.date, sum(t.customer_count) AS customers_start,
                   sum(%(start_revenue)s) AS start_revenue
              FROM crm_lifecycle_snapshot_total t
              JOIN %(currency_table)s
                ON account_currency_table.company_id = t.company_id
             WHERE (%(period_end)s)
               AND NOT coalesce(t.stage_id = ANY(%(churn_stages)s), FALSE)
             GROUP BY t.period, t.date
            """,
            start_revenue=self._money(SQL("t.start_revenue")),
            currency_table=self._currency_table(),
            period_end=SQL(" OR ").join(
                SQL(
                    "(t.period = %s AND (%s))",
                    code,
                    self._at_period_end(period_ends[code], "t"),
                )
                for code, _months, _offset in PERIODS
            ),
            churn_stages=churn_stages,
        )

    @property
    def _table_query(self):
        # each row's share of the totals of its period and month end: a
        # division only on the rows that churned or kept revenue (zero on
        # the others, none when the total is zero)
        period_ends = self._period_ends()
        churn_stages = self._churn_stage_ids()
        return SQL(
            """
            SELECT churn.*, %(currency)s AS currency_id,
                   CASE WHEN churn.churned_count = 1
                        THEN 100.0 / nullif(total.customers_start, 0)
                        WHEN total.customers_start <> 0 THEN 0
                   END AS churn_rate,
                   CASE WHEN churn.retained_revenue <> 0
                        THEN 100.0 * churn.retained_revenue
                             / nullif(total.start_revenue, 0)
                        WHEN total.start_revenue <> 0 THEN 0
                   END AS revenue_retention
              FROM (%(rows)s) churn
              LEFT JOIN (%(totals)s) total
                ON total.period = churn.period AND total.date = churn.date
            """,
            rows=self._churn_rows(period_ends, churn_stages),
            currency=self.env.company.currency_id.id,
            totals=self._churn_totals(period_ends, churn_stages),
        )
