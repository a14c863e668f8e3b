from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, index_exists


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_module_installed(self):
        module = self.env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        self.assertEqual(module.state, "installed")
        self.assertIn("crm", module.dependencies_id.mapped("name"))

    def test_indexes(self):
        """The module's indexes are there, and the index of every move by
        commercial partner of the development versions, which no query of the
        module reads, is dropped by the upgrade (``init``)."""
        cr = self.env.cr
        for name in (
            "account_move_lifecycle_document_index",
            "account_move_line_lifecycle_payment_term_index",
        ):
            self.assertTrue(index_exists(cr, name), name)
        old = "account_move_lifecycle_commercial_partner_index"
        self.assertFalse(index_exists(cr, old))
        cr.execute(
            SQL(
                "CREATE INDEX %s ON account_move (commercial_partner_id, company_id)",
                SQL.identifier(old),
            )
        )
        self.env["account.move"].init()
        self.assertFalse(index_exists(cr, old))
