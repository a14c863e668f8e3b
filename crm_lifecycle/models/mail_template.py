# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, models


class MailTemplate(models.Model):
    _inherit = "mail.template"

    @api.ondelete(at_uninstall=False)
    def _unlink_deactivate_playbook_steps(self):
        # a step that sent this e-mail stops rather than going on without it
        steps = (
            self.env["crm.lifecycle.playbook.step"]
            .sudo()
            .search([("template_id", "in", self.ids)])
        )
        steps._deactivate(self.env._("its e-mail template was deleted."))
