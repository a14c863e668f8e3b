"""The module is installed in the database prepared by ``make test``."""

import odoo
from odoo.modules.registry import Registry


def test_registry_has_crm_lifecycle_installed(database):
    registry = Registry(database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        assert module.state == "installed"
        assert module.latest_version == "18.0.1.0.0"
