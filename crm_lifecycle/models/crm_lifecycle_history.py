# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class CrmLifecycleHistory(models.Model):
    _name = "crm.lifecycle.history"
    _description = "Client Lifecycle History"
    _order = "date desc, id desc"
    _rec_name = "stage_to_id"

    partner_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, ondelete="cascade"
    )
    stage_from_id = fields.Many2one("crm.lifecycle.stage", ondelete="set null")
    stage_to_id = fields.Many2one("crm.lifecycle.stage", ondelete="set null")
    loyalty_from_id = fields.Many2one(
        "crm.loyalty.level", string="Level from", ondelete="set null"
    )
    loyalty_to_id = fields.Many2one(
        "crm.loyalty.level", string="Level to", ondelete="set null"
    )
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    reason = fields.Selection(
        [
            ("rule", "Rule"),
            ("manual", "Set by hand"),
            ("event", "Event"),
            ("reactivation", "Reactivation"),
            ("loyalty", "Loyalty level"),
        ],
        required=True,
        default="rule",
    )
    note = fields.Text()
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user)
    days_in_previous_stage = fields.Float(
        digits=(16, 1),
        aggregator="avg",
        help="Days the client spent in the stage it left.",
    )
