# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models

LEAD_FIELDS = {
    "partner_id",
    "stage_id",
    "type",
    "active",
    "probability",
    "expected_revenue",
    "company_id",
}


class CrmLead(models.Model):
    _inherit = "crm.lead"

    partner_lifecycle_stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Client Lifecycle Stage",
        related="partner_id.commercial_partner_id.lifecycle_stage_id",
    )
    partner_lifecycle_stage_color = fields.Integer(
        related="partner_lifecycle_stage_id.color"
    )
    partner_loyalty_level_id = fields.Many2one(
        "crm.loyalty.level",
        string="Client Loyalty Level",
        related="partner_id.commercial_partner_id.loyalty_level_id",
    )
    partner_rfm_segment_id = fields.Many2one(
        "crm.rfm.segment",
        string="Client RFM Segment",
        related="partner_id.commercial_partner_id.rfm_segment_id",
    )

    def _lifecycle_enqueue(self):
        for company, leads in self.grouped("company_id").items():
            self.env["crm.lifecycle.queue"].sudo()._enqueue(
                leads.partner_id.ids, company.ids or None
            )

    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        leads._lifecycle_enqueue()
        return leads

    def write(self, vals):
        if LEAD_FIELDS.isdisjoint(vals):
            return super().write(vals)
        self._lifecycle_enqueue()  # the client a lead leaves
        result = super().write(vals)
        self._lifecycle_enqueue()
        return result

    def unlink(self):
        self._lifecycle_enqueue()
        return super().unlink()
