# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _lifecycle_enqueue(self):
        customer_moves = self.filtered(
            lambda move: move.move_type in ("out_invoice", "out_refund")
        )
        for company, moves in customer_moves.grouped("company_id").items():
            self.env["crm.lifecycle.queue"].sudo()._enqueue(
                moves.commercial_partner_id.ids, company.ids, commercial=True
            )

    def _compute_payment_state(self):
        # payments, reconciliations and reversals all end here: only mark the
        # clients, the engine does the work later
        result = super()._compute_payment_state()
        self.filtered(
            lambda move: move.id and move.state == "posted"
        )._lifecycle_enqueue()
        return result

    def write(self, vals):
        if "state" in vals or "commercial_partner_id" in vals or "partner_id" in vals:
            self._lifecycle_enqueue()  # the client it leaves
            result = super().write(vals)
            self._lifecycle_enqueue()
            return result
        return super().write(vals)
