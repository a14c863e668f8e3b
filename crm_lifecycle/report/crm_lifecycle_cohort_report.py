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
        return SQL(
            """
            WITH snap AS (
                SELECT s.*,
                       date_trunc('month', first_value(s.first_purchase_date) OVER (
                           PARTITION BY s.company_id, s.partner_id
                           ORDER BY s.date DESC))::date AS cohort
                  FROM crm_lifecycle_snapshot s
                 WHERE s.company_id = ANY(%(companies)s)
            ),
            customer AS (
                SELECT * FROM snap WHERE snap.cohort <= snap.date
            ),
            cohort AS (
                SELECT cohort, count(DISTINCT (company_id, partner_id)) AS size
                  FROM customer
                 GROUP BY cohort
            )
            SELECT cohort_row.*,
                   CASE WHEN cohort_row.buying_count = 1
                        THEN 100.0 / cohort.size ELSE 0 END AS buying_share,
                   cohort.size AS cohort_size
              FROM (
            SELECT s.id, s.date, s.partner_id, s.company_id, s.user_id,
                   s.team_id, s.industry_id, s.country_id, s.state_id,
                   s.loyalty_level_id, s.stage_id,
                   s.cohort AS cohort_date,
                   ((extract(year FROM s.date) - extract(year FROM s.cohort)) * 12
                    + extract(month FROM s.date) - extract(month FROM s.cohort)
                   )::int AS months_since,
                   1 AS customer_count,
                   (s.revenue > 0)::int AS buying_count,
                   (s.revenue > 0
                    AND date_trunc('month', s.date) = s.cohort)::int AS new_count,
                   (s.revenue > 0
                    AND date_trunc('month', s.date) > s.cohort)::int
                       AS returning_count,
                   %(revenue)s AS revenue,
                   %(receivable)s AS receivable_open
              FROM customer s
              JOIN %(currency_table)s
                ON account_currency_table.company_id = s.company_id
              ) cohort_row
              JOIN cohort ON cohort.cohort = cohort_row.cohort_date
            """,
            companies=self.env.companies.ids,
            currency_table=self._currency_table(),
            revenue=self._money(SQL("s.revenue")),
            receivable=self._money(SQL("s.receivable_open")),
        )
