# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, models


class MailActivityType(models.Model):
    _inherit = "mail.activity.type"

    @api.ondelete(at_uninstall=False)
    def _unlink_deactivate_playbook_steps(self):
        # the step keeps its playbook consistent instead of failing in the cron
        steps = (
            self.env["crm.lifecycle.playbook.step"]
            .sudo()
            .search([("activity_type_id", "in", self.ids)])
        )
        steps._deactivate(self.env._("its activity type was deleted."))
