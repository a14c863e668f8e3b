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
    lifecycle_snapshot_months = fields.Integer(
        related="company_id.lifecycle_snapshot_months", readonly=False
    )
    lifecycle_churn_target_min = fields.Float(
        related="company_id.lifecycle_churn_target_min", readonly=False
    )
    lifecycle_churn_target_max = fields.Float(
        related="company_id.lifecycle_churn_target_max", readonly=False
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

    def action_lifecycle_rebuild_snapshots(self):
        """Rebuild the company's monthly snapshots over its months of history,
        from accounting (lifecycle managers): at once for a company with few
        clients, else by the scheduled action, in batches."""
        if not self.env.user.has_group("crm_lifecycle.group_lifecycle_manager"):
            raise AccessError(
                self.env._("Only lifecycle managers can rebuild the history.")
            )
        self.ensure_one()
        if self.company_id not in self.env.user.company_ids:
            raise AccessError(
                self.env._(
                    "You do not work in %(company)s: its history cannot be rebuilt.",
                    company=self.company_id.display_name,
                )
            )
        company = self.company_id.sudo()
        Snapshot = self.env["crm.lifecycle.snapshot"].sudo()
        if len(Snapshot._clients(company)) <= Snapshot._inline_rebuild_limit():
            Snapshot._rebuild(company)
            message = self.env._(
                "The history of the last %(months)s months of %(company)s is rebuilt.",
                months=company.lifecycle_snapshot_months,
                company=company.name,
            )
        else:
            company.lifecycle_snapshot_rebuild = True
            self.env.ref(
                "crm_lifecycle.ir_cron_lifecycle_rebuild_snapshots"
            ).sudo()._trigger()
            message = self.env._(
                "The history of the last %(months)s months of %(company)s "
                "will be rebuilt in the background.",
                months=company.lifecycle_snapshot_months,
                company=company.name,
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"type": "info", "message": message},
        }
