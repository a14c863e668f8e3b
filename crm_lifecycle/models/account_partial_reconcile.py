# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models
from odoo.tools import create_index


class AccountPartialReconcile(models.Model):
    _inherit = "account.partial.reconcile"

    def init(self):
        result = super().init()
        # the reconciliations dated after today of a batch's clients (a
        # payment recorded ahead of its date, ``_facts``): read for each
        # batch, from the few dated later, not by a scan of every
        # reconciliation. Odoo has no index on the date
        create_index(
            self.env.cr,
            "account_partial_reconcile_lifecycle_max_date_index",
            self._table,
            ["max_date"],
        )
        return result
