# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models
from odoo.tools import create_index


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    def init(self):
        result = super().init()
        # what is paid of a document is the sum of the reconciliations of
        # its payment term lines (``_documents``): the engine looks them up
        # by document, for a batch, and reads them all for the company's
        # figures. Odoo's index on the move finds every line of a document
        # and reads each from the table; this one holds only payment term
        # lines (one in three or four) and their ids, read from the index
        # alone
        create_index(
            self.env.cr,
            "account_move_line_lifecycle_payment_term_index",
            self._table,
            ["move_id", "id"],
            where="display_type = 'payment_term'",
        )
        return result
