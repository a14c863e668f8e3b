# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import UserError


class CrmLifecycleStageWizard(models.TransientModel):
    _name = "crm.lifecycle.stage.wizard"
    _description = "Set a Client's Lifecycle Stage by Hand"

    partner_ids = fields.Many2many("res.partner", string="Clients", required=True)
    stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="New Stage",
        required=True,
        domain="[('company_id', 'in', [False, current_company_id])]",
    )
    reason = fields.Text(
        required=True,
        help="Why the computed stage is overridden; kept in the history.",
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if "partner_ids" in fields_list and not values.get("partner_ids"):
            if self.env.context.get("active_model") == "res.partner":
                partners = self.env["res.partner"].browse(
                    self.env.context.get("active_ids", [])
                )
                values["partner_ids"] = [
                    fields.Command.set(partners.commercial_partner_id.ids)
                ]
        return values

    def action_apply(self):
        self.ensure_one()
        if not (self.reason or "").strip():
            raise UserError(self.env._("Give the reason for the new stage."))
        self.partner_ids.commercial_partner_id._lifecycle_set_stage(
            self.stage_id, self.reason.strip()
        )
        return {"type": "ir.actions.act_window_close"}
