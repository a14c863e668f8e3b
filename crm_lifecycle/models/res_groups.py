# Copyright 2026 crm_lifecycle contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, models

from .. import series


class ResGroups(models.Model):
    _inherit = "res.groups"

    # Called by the module's data files (<function>), for the running series.
    @api.model
    def _lifecycle_set_category(self, category_id, group_ids):
        series.set_group_category(
            self.env,
            self.env["ir.module.category"].browse(category_id),
            self.browse(group_ids),
        )

    @api.model
    def _lifecycle_add_users(self, group_ids, user_ids):
        series.add_group_users(
            self.browse(group_ids), self.env["res.users"].browse(user_ids)
        )

    @api.model
    def _lifecycle_set_action_groups(self, action_ids, group_ids):
        series.set_action_groups(
            self.env["ir.actions.act_window"].browse(action_ids), self.browse(group_ids)
        )
