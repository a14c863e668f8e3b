# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL


class CrmLifecycleCohortReport(models.Model):
    """Cohorts of customers by month of their first paid purchase: one row
    per customer and month end from that month on (the snapshots, which
    carry the date of the first paid purchase), with
    whether it bought in the month, its revenue and what it owes. Also the
    new and returning customers of each month, by region and industry."""

    _name = "crm.lifecycle.cohort.report"
    _inherit = "crm.lifecycle.report.mixin"
    _description = "Lifecycle Customer Cohorts"
    _auto = False
    _order = "date desc, partner_id"

    # the current company's, a column: 19.0 sums amounts only in a currency
    # it can group by
    currency_id = fields.Many2one("res.currency", readonly=True)
    cohort_date = fields.Date(
        string="Cohort",
        readonly=True,
        help="Month of the first paid purchase (its invoice date), as the "
        "client's last snapshot knows it.",
    )
    months_since = fields.Integer(
        string="Months since first purchase", readonly=True, aggregator=None
    )
    stage_id = fields.Many2one(
        "crm.lifecycle.stage", string="Lifecycle Stage", readonly=True
    )
    customer_count = fields.Integer(string="Customers", readonly=True)
    cohort_size = fields.Integer(
        string="Cohort size",
        readonly=True,
        aggregator="max",
        help="Customers whose first paid purchase is in the cohort's month, in "
        "the selected companies.",
    )
    buying_count = fields.Integer(
        string="Buying customers",
        readonly=True,
        help="Customers who bought in the month (invoiced revenue).",
    )
    buying_share = fields.Float(
        string="Share still buying (%)",
        readonly=True,
        digits=(16, 2),
        help="Buying customers over the cohort size: summed over a cohort and "
        "a number of months, the share of the cohort still buying.",
    )
    new_count = fields.Integer(
        string="New customers",
        readonly=True,
        help="First paid purchase in the month.",
    )
    returning_count = fields.Integer(
        string="Returning customers",
        readonly=True,
        help="Bought in the month, and had bought before.",
    )
    revenue = fields.Monetary(
        string="Revenue of the month",
        readonly=True,
        help="Untaxed revenue invoiced in the month, net of credit notes.",
    )
    receivable_open = fields.Monetary(
        string="Open Receivable", readonly=True, help="At the month end."
    )

    @property
    def _table_query(self):
        # the cohort of each snapshot and the client's first one in it
        # (what counts it in the cohort's size) are written with the
        # snapshots (crm.lifecycle.snapshot._refresh_cohorts). Month
        # arithmetic on dates without time zone and in floating point, each
        # buying row's share of its cohort a factor of the cohort: cheap on
        # every row. Every cohort of a row has a size (its client's first
        # snapshot in it): a left join, that PostgreSQL leaves out when the
        # size is not read.
        month = SQL("date_trunc('month', s.date::timestamp)::date")
        return SQL(
            """
            SELECT s.id, s.date, s.partner_id, s.company_id, s.user_id,
                   s.team_id, s.industry_id, s.country_id, s.state_id,
                   s.loyalty_level_id, s.stage_id, s.cohort_date,
                   ((date_part('year', s.date) - date_part('year', s.cohort_date))
                    * 12 + date_part('month', s.date)
                    - date_part('month', s.cohort_date))::int AS months_since,
                   1 AS customer_count,
                   cohort.size AS cohort_size,
                   (s.revenue > 0)::int AS buying_count,
                   CASE WHEN s.revenue > 0 THEN cohort.share ELSE 0 END
                       AS buying_share,
                   (s.revenue > 0 AND %(month)s = s.cohort_date)::int AS new_count,
                   (s.revenue > 0 AND %(month)s > s.cohort_date)::int
                       AS returning_count,
                   %(revenue)s AS revenue,
                   %(receivable)s AS receivable_open,
                   %(currency)s AS currency_id
              FROM crm_lifecycle_snapshot s
              JOIN %(currency_table)s
                ON account_currency_table.company_id = s.company_id
              LEFT JOIN (
                  SELECT c.cohort_date, count(*) AS size,
                         100.0 / count(*) AS share
                    FROM crm_lifecycle_snapshot c
                   WHERE c.company_id = ANY(%(companies)s) AND c.is_cohort_start
                   GROUP BY c.cohort_date
              ) cohort ON cohort.cohort_date = s.cohort_date
             WHERE s.company_id = ANY(%(companies)s)
               AND s.cohort_date <= s.date
            """,
            month=month,
            currency=self.env.company.currency_id.id,
            companies=self.env.companies.ids,
            currency_table=self._currency_table(),
            revenue=self._money(SQL("s.revenue")),
            receivable=self._money(SQL("s.receivable_open")),
        )
