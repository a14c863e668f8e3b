"""The module is installed in the database prepared by ``make test``."""

import odoo
from odoo.modules.module import get_manifest
from odoo.modules.registry import Registry


def test_registry_has_crm_lifecycle_installed(database):
    registry = Registry(database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        assert module.state == "installed"
        # the version of the manifest (Odoo prefixes a bare one with the series)
        manifest = get_manifest("crm_lifecycle")
        assert module.latest_version == manifest["version"]
