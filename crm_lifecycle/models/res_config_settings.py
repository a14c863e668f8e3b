# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.exceptions import AccessError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    lifecycle_default_interval_days = fields.Integer(
        related="company_id.lifecycle_default_interval_days", readonly=False
    )
    lifecycle_at_risk_factor = fields.Float(
        related="company_id.lifecycle_at_risk_factor", readonly=False
    )
    lifecycle_dormant_factor = fields.Float(
        related="company_id.lifecycle_dormant_factor", readonly=False
    )
    lifecycle_lost_days = fields.Integer(
        related="company_id.lifecycle_lost_days", readonly=False
    )
    lifecycle_loyal_min_purchases = fields.Integer(
        related="company_id.lifecycle_loyal_min_purchases", readonly=False
    )
    lifecycle_loyal_min_months = fields.Integer(
        related="company_id.lifecycle_loyal_min_months", readonly=False
    )
    lifecycle_loyal_max_overdue_days = fields.Integer(
        related="company_id.lifecycle_loyal_max_overdue_days", readonly=False
    )
    lifecycle_salesperson_override = fields.Boolean(
        related="company_id.lifecycle_salesperson_override", readonly=False
    )
    lifecycle_unlock_on = fields.Selection(
        related="company_id.lifecycle_unlock_on", readonly=False
    )
    lifecycle_loyalty_pricelist = fields.Boolean(
        related="company_id.lifecycle_loyalty_pricelist", readonly=False
    )
    lifecycle_rfm_months = fields.Integer(
        related="company_id.lifecycle_rfm_months", readonly=False
    )
    lifecycle_clv_horizon_years = fields.Integer(
        related="company_id.lifecycle_clv_horizon_years", readonly=False
    )
    lifecycle_batch_size = fields.Integer(
        string="Clients per batch",
        config_parameter="crm_lifecycle.batch_size",
        default=200,
        help="How many clients the scheduled recomputation handles per transaction.",
    )

    def action_lifecycle_recompute_all(self):
        if not self.env.user.has_group("crm_lifecycle.group_lifecycle_manager"):
            raise AccessError(
                self.env._("Only lifecycle managers can recompute every client.")
            )
        self.ensure_one()
        count = self.env["crm.lifecycle.engine"]._enqueue_all_clients()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "message": self.env._(
                    "%(count)s clients will be recomputed in the background.",
                    count=count,
                ),
            },
        }
