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


def test_dashboard_installed_with_demo_history(database):
    """``make test`` installs the dashboard too; with the demo data the
    monthly history is rebuilt at once, so its 12 months show on the first
    visit."""
    registry = Registry(database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = env["ir.module.module"].search(
            [("name", "=", "crm_lifecycle_dashboard")]
        )
        assert module.state == "installed"
        assert module.latest_version == get_manifest(module.name)["version"]
        assert env.ref("crm_lifecycle_dashboard.spreadsheet_dashboard_lifecycle")
        company = env.ref("base.main_company")
        dates = env["crm.lifecycle.snapshot"]._read_group(
            [("company_id", "=", company.id)], ["date:month"]
        )
        assert len(dates) >= 12, dates
