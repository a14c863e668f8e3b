# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_lifecycle_snapshot import PERIOD_SELECTION


class CrmLifecycleCapitalReport(models.Model):
    """The movement of the customer capital per client, month and 12
    months, from the month-end snapshots: opening + acquired - churned ±
    revaluation = closing."""

    _name = "crm.lifecycle.capital.report"
    _inherit = "crm.lifecycle.report.mixin"
    _description = "Customer Capital Movement"
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
    opening_capital = fields.Monetary(
        string="Opening", readonly=True, help="Customer capital at the start."
    )
    acquired_capital = fields.Monetary(
        string="Acquired",
        readonly=True,
        help="Capital at the end of the clients won in the period: new in the "
        "company, new customers and reactivated customers.",
    )
    churned_capital = fields.Monetary(
        string="Churned",
        readonly=True,
        help="Capital at the start, negative, of the customers who churned in "
        "the period.",
    )
    revaluation_capital = fields.Monetary(
        string="Revaluation",
        readonly=True,
        help="The rest of the change: purchases, payments, pipeline and "
        "value of the clients kept.",
    )
    closing_capital = fields.Monetary(
        string="Closing", readonly=True, help="Customer capital at the end."
    )

    @property
    def _table_query(self):
        # revaluation = closing - opening - acquired - churned, case by case:
        # one subtraction at most per row
        return SQL(
            """
            SELECT pair.id, pair.period, pair.date_start, pair.date,
                   pair.partner_id, pair.company_id, pair.user_id, pair.team_id,
                   pair.industry_id, pair.country_id, pair.state_id,
                   pair.loyalty_level_id, pair.stage_from_id, pair.stage_id,
                   %(opening)s AS opening_capital,
                   CASE WHEN %(acquired)s THEN %(closing)s ELSE 0 END
                       AS acquired_capital,
                   CASE WHEN %(churned)s THEN -%(opening)s ELSE 0 END
                       AS churned_capital,
                   CASE WHEN %(acquired)s THEN -%(opening)s
                        WHEN %(churned)s THEN %(closing)s
                        ELSE %(closing)s - %(opening)s END AS revaluation_capital,
                   %(closing)s AS closing_capital,
                   %(currency)s AS currency_id
              FROM (%(pairs)s) pair
              JOIN %(currency_table)s
                ON account_currency_table.company_id = pair.company_id
            """,
            pairs=self._pairs(),
            currency=self.env.company.currency_id.id,
            currency_table=self._currency_table(),
            acquired=SQL(
                "(NOT pair.start_exists OR (pair.at_end AND NOT pair.at_start))"
            ),
            churned=SQL("(pair.at_start AND NOT pair.at_end)"),
            opening=self._money(SQL("pair.start_capital")),
            closing=self._money(SQL("pair.end_capital")),
        )
