# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_lifecycle_snapshot import PERIOD_SELECTION, PERIODS


class CrmLifecycleChurnRateReport(models.Model):
    """The churn rate of each company per month and per 12 months against
    the target band of its Settings: the totals of the churn report, one row
    per company, period and month end. Company-wide figures: for lifecycle
    managers and salespeople who see all documents."""

    _name = "crm.lifecycle.churn.rate.report"
    _description = "Lifecycle Churn Rate against Target"
    _auto = False
    _order = "date desc, company_id, period"
    _rec_name = "date"

    company_id = fields.Many2one("res.company", readonly=True)
    # the current company's, a column: 19.0 sums amounts only in a currency
    # it can group by
    currency_id = fields.Many2one("res.currency", readonly=True)
    period = fields.Selection(PERIOD_SELECTION, readonly=True)
    date_start = fields.Date(
        string="Start", readonly=True, help="The month end the period starts at."
    )
    date = fields.Date(
        string="End", readonly=True, help="The month end the period ends at."
    )
    customers_start = fields.Integer(string="Customers at start", readonly=True)
    new_count = fields.Integer(string="New customers", readonly=True)
    reactivated_count = fields.Integer(string="Reactivated", readonly=True)
    churned_count = fields.Integer(string="Churned", readonly=True)
    customers_end = fields.Integer(string="Customers at end", readonly=True)
    churn_rate = fields.Float(
        string="Churn rate (%)",
        readonly=True,
        digits=(16, 2),
        aggregator="avg",
        help="Churned customers over the customers at start of the period.",
    )
    yearly_churn_rate = fields.Float(
        string="Yearly churn rate (%)",
        readonly=True,
        digits=(16, 2),
        aggregator="avg",
        help="The churn rate over 12 months; for a month, its rate compounded "
        "over 12 months, to compare with the yearly target.",
    )
    churn_target_min = fields.Float(
        string="Target from (%)", readonly=True, digits=(16, 2), aggregator="avg"
    )
    churn_target_max = fields.Float(
        string="Target up to (%)", readonly=True, digits=(16, 2), aggregator="avg"
    )
    target_status = fields.Selection(
        [
            ("below", "Below the target"),
            ("within", "Within the target"),
            ("above", "Above the target"),
        ],
        string="Against target",
        readonly=True,
        help="The yearly churn rate against the band set in Settings.",
    )
    start_revenue = fields.Monetary(string="Revenue before", readonly=True)
    retained_revenue = fields.Monetary(string="Revenue retained", readonly=True)
    revenue_retention = fields.Float(
        string="Revenue retention (%)",
        readonly=True,
        digits=(16, 2),
        aggregator="avg",
        help="Revenue of the period of the customers at start over their "
        "revenue of the period before.",
    )

    @property
    def _table_query(self):
        # ids: the smallest of the churn rows of the company, period and
        # month end (stable with the snapshots); the rows grouped first, the
        # start of the period and the targets of the company added to the
        # groups
        Churn = self.env["crm.lifecycle.churn.report"]
        date_start = SQL(
            "CASE churn.period %s END",
            SQL(" ").join(
                SQL(
                    "WHEN %s THEN %s",
                    code,
                    Churn._period_start(months, SQL("churn.date")),
                )
                for code, months, _offset in PERIODS
            ),
        )
        return SQL(
            """
            SELECT total.*, %(currency)s AS currency_id,
                   CASE WHEN total.yearly_churn_rate IS NULL THEN NULL
                        WHEN total.yearly_churn_rate < total.churn_target_min
                        THEN 'below'
                        WHEN total.yearly_churn_rate > total.churn_target_max
                        THEN 'above'
                        ELSE 'within' END AS target_status
              FROM (
            SELECT rate.*,
                   CASE WHEN rate.period = 'month'
                        THEN 100 * (1 - power(1 - rate.churn_rate / 100, 12))
                        ELSE rate.churn_rate END AS yearly_churn_rate
              FROM (
            SELECT churn.id, churn.company_id, churn.period,
                   %(date_start)s AS date_start, churn.date,
                   churn.customers_start, churn.new_count,
                   churn.reactivated_count, churn.churned_count,
                   churn.customers_end,
                   100.0 * churn.churned_count
                       / nullif(churn.customers_start, 0) AS churn_rate,
                   company.lifecycle_churn_target_min AS churn_target_min,
                   company.lifecycle_churn_target_max AS churn_target_max,
                   churn.start_revenue, churn.retained_revenue,
                   100.0 * churn.retained_revenue
                       / nullif(churn.start_revenue, 0) AS revenue_retention
              FROM (
            SELECT min(churn_row.id) AS id, churn_row.company_id,
                   churn_row.period, churn_row.date,
                   sum(churn_row.customers_start) AS customers_start,
                   sum(churn_row.new_count) AS new_count,
                   sum(churn_row.reactivated_count) AS reactivated_count,
                   sum(churn_row.churned_count) AS churned_count,
                   sum(churn_row.customers_end) AS customers_end,
                   sum(churn_row.start_revenue) AS start_revenue,
                   sum(churn_row.retained_revenue) AS retained_revenue
              FROM (%(rows)s) churn_row
             GROUP BY churn_row.company_id, churn_row.period, churn_row.date
              ) churn
              JOIN res_company company ON company.id = churn.company_id
              ) rate
              ) total
            """,
            date_start=date_start,
            currency=self.env.company.currency_id.id,
            rows=Churn._churn_rows(),
        )
