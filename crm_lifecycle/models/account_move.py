# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models
from odoo.tools import create_index
from odoo.tools.sql import drop_index


class AccountMove(models.Model):
    _inherit = "account.move"

    def init(self):
        result = super().init()
        # the posted customer invoices and credit notes of a batch of
        # clients, by date (``_documents``, ``_facts``): Odoo has no index on
        # the commercial partner of a move, and without one PostgreSQL
        # combines the indexes on the move type and the invoice date, which
        # read every document. Partial: the other moves (bills, entries,
        # drafts) cost no entry
        create_index(
            self.env.cr,
            "account_move_lifecycle_document_index",
            self._table,
            ["commercial_partner_id", "invoice_date"],
            where="state = 'posted' AND move_type IN ('out_invoice', 'out_refund')",
        )
        # an index of every move by commercial partner and company, created
        # by the development versions of 2.0.0: no query of the module reads
        # it (the one above serves them), and each move written paid for it
        drop_index(
            self.env.cr, "account_move_lifecycle_commercial_partner_index", self._table
        )
        return result

    def _lifecycle_enqueue(self):
        """Queue the clients of these moves: their ids only, resolved to
        clients and companies in the one INSERT of the commit."""
        self.env["crm.lifecycle.queue"].sudo()._enqueue_moves(
            [move_id for move_id in self._ids if isinstance(move_id, int)]
        )

    def _compute_payment_state(self):
        # payments, reconciliations and reversals all end here: only mark the
        # clients, the engine does the work later
        result = super()._compute_payment_state()
        self._lifecycle_enqueue()
        return result

    def write(self, vals):
        if "commercial_partner_id" in vals or "partner_id" in vals:
            # the client the move leaves
            customer_moves = self.filtered(
                lambda move: move.move_type in ("out_invoice", "out_refund")
            )
            for company, moves in customer_moves.grouped("company_id").items():
                self.env["crm.lifecycle.queue"].sudo()._enqueue(
                    moves.commercial_partner_id.ids, company.ids, commercial=True
                )
        result = super().write(vals)
        if "state" in vals or "commercial_partner_id" in vals or "partner_id" in vals:
            self._lifecycle_enqueue()
        return result
