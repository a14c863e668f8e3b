# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models

# Open leads and opportunities: not lost (lost ones are archived), not won.
OPEN_LEAD_DOMAIN = [
    ("active", "=", True),
    "|",
    ("stage_id", "=", False),
    ("stage_id.is_won", "=", False),
]


def attached_to_domain(partner_ids, lead_ids, model_field="res_model"):
    """Records (activities, followers, messages) attached to these partners or
    leads; ``model_field`` names the field that holds the document's model."""
    return [
        "|",
        "&",
        (model_field, "=", "res.partner"),
        ("res_id", "in", partner_ids),
        "&",
        (model_field, "=", "crm.lead"),
        ("res_id", "in", lead_ids),
    ]


class CrmLifecycleHandover(models.Model):
    """One portfolio handover: who moved whose clients to whom, and how much.

    Written by the handover wizard only (as superuser, after checking the
    user's rights); managers read it, nobody edits it.
    """

    _name = "crm.lifecycle.handover"
    _description = "Portfolio Handover"
    _order = "date desc, id desc"

    # Who and when
    user_id = fields.Many2one(
        "res.users",
        string="Handed over by",
        required=True,
        readonly=True,
        default=lambda self: self.env.user,
    )
    date = fields.Datetime(
        required=True, readonly=True, default=fields.Datetime.now, index=True
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        default=lambda self: self.env.company,
    )
    # From whom to whom
    from_user_id = fields.Many2one(
        "res.users",
        string="From",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
    )
    to_user_id = fields.Many2one(
        "res.users", string="To Salesperson", readonly=True, ondelete="restrict"
    )
    to_team_id = fields.Many2one(
        "crm.team", string="To Sales Team", readonly=True, ondelete="restrict"
    )
    # What moved
    client_count = fields.Integer(string="Clients", readonly=True)
    lead_count = fields.Integer(string="Leads and Opportunities", readonly=True)
    activity_count = fields.Integer(string="Activities", readonly=True)
    follower_count = fields.Integer(string="Follower Entries", readonly=True)
    partner_ids = fields.Many2many(
        "res.partner",
        "crm_lifecycle_handover_partner_rel",
        "handover_id",
        "partner_id",
        string="Clients Handed Over",
        readonly=True,
    )
    lead_ids = fields.Many2many(
        "crm.lead",
        "crm_lifecycle_handover_lead_rel",
        "handover_id",
        "lead_id",
        string="Leads Handed Over",
        readonly=True,
    )
    note = fields.Text(readonly=True)

    @api.depends("from_user_id", "to_user_id", "to_team_id")
    def _compute_display_name(self):
        for handover in self:
            target = handover.to_user_id or handover.to_team_id
            handover.display_name = self.env._(
                "%(old_user)s → %(new_user)s",
                old_user=handover.from_user_id.name or "",
                new_user=target.name or "",
            )
