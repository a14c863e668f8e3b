from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_module_installed(self):
        module = self.env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        self.assertEqual(module.state, "installed")
        self.assertIn("crm", module.dependencies_id.mapped("name"))
