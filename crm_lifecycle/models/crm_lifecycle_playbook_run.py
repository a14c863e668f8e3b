# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models

from .. import series


@series.sql_constraints(
    (
        "step_partner_company_cycle_uniq",
        "unique(step_id, partner_id, company_id, cycle_key)",
        "A playbook step acts once per client, company and cycle.",
    ),
)
class CrmLifecyclePlaybookRun(models.Model):
    """What a playbook step did for a client in one cycle.

    The unique (step, client, company, cycle) key is what makes a step act at
    most once per cycle, however often the cron runs."""

    _name = "crm.lifecycle.playbook.run"
    _description = "Client Lifecycle Playbook Run"
    _order = "date desc, id desc"
    _rec_name = "step_id"

    step_id = fields.Many2one(
        "crm.lifecycle.playbook.step", required=True, index=True, ondelete="cascade"
    )
    playbook_id = fields.Many2one(related="step_id.playbook_id", store=True, index=True)
    partner_id = fields.Many2one(
        "res.partner", string="Client", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade")
    cycle_key = fields.Char(
        required=True,
        help="The cycle the step acted in: purchase:<date of the last paid "
        "purchase> for stage and level entries and purchase events, invoice:<id> for "
        "invoices with a product of a category, period:<month, quarter or "
        "year> for repeated steps.",
    )
    cycle_start = fields.Date(
        help="A paid purchase after this date stops a step with that condition."
    )
    due_date = fields.Date()
    date = fields.Datetime(required=True, default=fields.Datetime.now)
    user_id = fields.Many2one("res.users", string="Responsible")
    activity_id = fields.Many2one("mail.activity", ondelete="set null")
    lead_id = fields.Many2one("crm.lead", string="Opportunity", ondelete="set null")
    state = fields.Selection(
        [("done", "Done"), ("cancelled", "Cancelled")],
        required=True,
        default="done",
    )
    note = fields.Text()
