# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, models


class ResUsers(models.Model):
    _inherit = "res.users"

    @api.model_create_multi
    def create(self, vals_list):
        users = super().create(vals_list)
        # a client given a user is no longer a client: the queue forgets it
        self.env["crm.lifecycle.queue"].sudo()._enqueue(users.partner_id.ids)
        return users

    def write(self, vals):
        if "partner_id" in vals:
            # the former partner may be a client again
            self.env["crm.lifecycle.queue"].sudo()._enqueue(self.partner_id.ids)
        result = super().write(vals)
        if "partner_id" in vals:
            self.env["crm.lifecycle.queue"].sudo()._enqueue(self.partner_id.ids)
        return result
