# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class CrmLifecyclePlaybookPreview(models.TransientModel):
    _name = "crm.lifecycle.playbook.preview"
    _description = "Client Lifecycle Playbook Preview"

    playbook_id = fields.Many2one("crm.lifecycle.playbook", required=True)
    date = fields.Date(required=True)
    line_ids = fields.One2many("crm.lifecycle.playbook.preview.line", "preview_id")


class CrmLifecyclePlaybookPreviewLine(models.TransientModel):
    _name = "crm.lifecycle.playbook.preview.line"
    _description = "Client Lifecycle Playbook Preview Line"
    _order = "due_date, step_id, partner_id"

    preview_id = fields.Many2one(
        "crm.lifecycle.playbook.preview", required=True, ondelete="cascade"
    )
    step_id = fields.Many2one("crm.lifecycle.playbook.step", required=True)
    partner_id = fields.Many2one("res.partner", string="Client", required=True)
    company_id = fields.Many2one("res.company")
    due_date = fields.Date()
    cycle_key = fields.Char(string="Cycle")
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        help="Empty: nobody active to give the activity to; the client is skipped.",
    )
