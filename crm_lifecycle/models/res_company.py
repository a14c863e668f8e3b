# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    # Thresholds of the default lifecycle stages (see crm.lifecycle.stage help)
    lifecycle_default_interval_days = fields.Integer(
        string="Default purchase interval (days)",
        default=90,
        help="Expected days between two purchases of a client with fewer than "
        "3 purchases; clients with 3 or more use the median of their own intervals.",
    )
    lifecycle_at_risk_factor = fields.Float(
        string="At risk after (× interval)",
        default=1.5,
        help="A customer is at risk when the days since its last purchase "
        "exceed this factor times its purchase interval.",
    )
    lifecycle_dormant_factor = fields.Float(
        string="Dormant after (× interval)",
        default=3.0,
    )
    lifecycle_lost_days = fields.Integer(
        string="Lost after (days without purchase)",
        default=365,
    )
    lifecycle_loyal_min_purchases = fields.Integer(
        string="Loyal: minimum paid purchases",
        default=4,
    )
    lifecycle_loyal_min_months = fields.Integer(
        string="Loyal: minimum months as customer",
        default=12,
    )
    lifecycle_loyal_max_overdue_days = fields.Integer(
        string="Loyal: nothing overdue for more than (days)",
        default=30,
    )
    # Who may override the computed stage, and when the override ends
    lifecycle_salesperson_override = fields.Boolean(
        string="Salespeople may set their clients' stage",
        help="Salespeople may set the stage of their own clients by hand (on "
        "the form, by the set-stage dialog or by moving the card on the "
        "lifecycle board); lifecycle managers always may.",
    )
    lifecycle_unlock_on = fields.Selection(
        [("never", "Only when unlocked by hand"), ("purchase", "A new purchase")],
        string="A stage set by hand ends on",
        default="purchase",
        required=True,
    )

    # Loyalty, RFM and customer value
    lifecycle_loyalty_pricelist = fields.Boolean(
        string="Loyalty levels set the client's pricelist",
        help="When a client changes level, it gets the level's pricelist, unless "
        "a person gave it another one.",
    )
    lifecycle_rfm_months = fields.Integer(
        string="RFM period (months)",
        default=24,
        help="Recency, frequency and monetary scores look at paid purchases of "
        "this many months.",
    )
    lifecycle_clv_horizon_years = fields.Integer(
        string="Client value horizon (years)",
        default=5,
        help="How many years ahead the client lifetime value counts.",
    )
    lifecycle_conversion_min_clients = fields.Integer(
        string="Clients for a conversion rate",
        default=10,
        help="A pre-customer stage has a conversion rate of its own once the "
        "month-end snapshots show at least this many different clients at it; "
        "before, it takes the rate of the stage before it (none for target), "
        "and its clients have no potential value of their own.",
    )
    # The company figures of the day (quintile boundaries, retention,
    # conversion rates, first-year value), kept by the engine for the day
    lifecycle_figures = fields.Json(
        string="Lifecycle figures of the day", copy=False, groups="base.group_system"
    )

    # History
    lifecycle_snapshot_months = fields.Integer(
        string="Months of history",
        default=24,
        help='How many past month ends "Rebuild history" computes from accounting.',
    )
    lifecycle_snapshot_rebuild = fields.Boolean(
        string="History rebuild requested",
        copy=False,
        help='Set by "Rebuild history", cleared by the scheduled action '
        "once the snapshots are rebuilt.",
    )

    # Reports
    lifecycle_churn_target_min = fields.Float(
        string="Churn target from (% a year)",
        default=15.0,
        help="The yearly churn rate the company expects at best: the churn "
        "reports show the rate against this band.",
    )
    lifecycle_churn_target_max = fields.Float(
        string="Churn target up to (% a year)",
        default=20.0,
        help="The yearly churn rate the company accepts at worst.",
    )

    @api.constrains("lifecycle_churn_target_min", "lifecycle_churn_target_max")
    def _check_lifecycle_churn_target(self):
        for company in self:
            if not (
                0
                <= company.lifecycle_churn_target_min
                <= company.lifecycle_churn_target_max
                <= 100
            ):
                raise ValidationError(
                    self.env._(
                        "The churn target is a band of yearly rates between 0 "
                        "and 100 %, its lower bound first."
                    )
                )

    @api.constrains("lifecycle_snapshot_months")
    def _check_lifecycle_snapshot_months(self):
        for company in self:
            if not 1 <= company.lifecycle_snapshot_months <= 240:
                raise ValidationError(
                    self.env._("The months of history are between 1 and 240.")
                )

    @api.constrains("lifecycle_rfm_months", "lifecycle_clv_horizon_years")
    def _check_lifecycle_value_settings(self):
        for company in self:
            if (
                company.lifecycle_rfm_months < 1
                or company.lifecycle_clv_horizon_years < 1
            ):
                raise ValidationError(
                    self.env._(
                        "The RFM period and the client value horizon are at least 1."
                    )
                )

    @api.constrains(
        "lifecycle_default_interval_days",
        "lifecycle_at_risk_factor",
        "lifecycle_dormant_factor",
        "lifecycle_lost_days",
        "lifecycle_loyal_min_purchases",
        "lifecycle_loyal_min_months",
        "lifecycle_loyal_max_overdue_days",
    )
    def _check_lifecycle_thresholds(self):
        for company in self:
            if company.lifecycle_default_interval_days <= 0:
                raise ValidationError(
                    self.env._("The default purchase interval must be positive.")
                )
            if company.lifecycle_at_risk_factor <= 0:
                raise ValidationError(
                    self.env._("The 'at risk' factor must be positive.")
                )
            if company.lifecycle_dormant_factor <= company.lifecycle_at_risk_factor:
                raise ValidationError(
                    self.env._(
                        "The 'dormant' factor must be greater than the 'at risk' one."
                    )
                )
            if (
                min(
                    company.lifecycle_lost_days,
                    company.lifecycle_loyal_min_purchases,
                    company.lifecycle_loyal_min_months,
                    company.lifecycle_loyal_max_overdue_days,
                )
                < 0
            ):
                raise ValidationError(
                    self.env._("Lifecycle thresholds cannot be negative.")
                )

    @api.model_create_multi
    def create(self, vals_list):
        companies = super().create(vals_list)
        # a new company starts with the default loyalty levels
        self.env["crm.loyalty.level"]._create_company_defaults(companies)
        return companies
