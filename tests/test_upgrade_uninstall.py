"""On fresh databases, without and with demo data: install, upgrade, uninstall
and reinstall crm_lifecycle (and its dashboard) with Odoo's own command line
and methods; the logs stay clean, the uninstall leaves no table, column, index
or scheduled action behind and the core data intact."""

import json
import os
import re
import subprocess
import sys
import textwrap

from conftest import _free_port, demo_options

BAD_LINE = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ", re.MULTILINE)

# what CHECK_UNINSTALL prints when nothing of the module is left
UNINSTALLED = "STATE uninstalled TABLES 0 COLUMNS 0 INDEXES 0 CRONS 0"

CHECK_UNINSTALL = textwrap.dedent(
    """
    import sys
    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(["--config", sys.argv[1], "-d", sys.argv[2]])
    with Registry(sys.argv[2]).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        module.button_immediate_uninstall()
    with Registry(sys.argv[2]).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        cr.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_name LIKE ANY(ARRAY['crm_lifecycle%', 'crm_loyalty%',"
            " 'crm_rfm%'])"
        )
        tables = cr.fetchone()[0]
        cr.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'res_partner' AND column_name LIKE ANY("
            "ARRAY['lifecycle%', 'loyalty%', 'rfm%', 'clv'])"
        )
        columns = cr.fetchone()[0]
        cr.execute(
            "SELECT count(*) FROM pg_indexes"
            " WHERE tablename LIKE 'account_move%' AND indexname LIKE '%lifecycle%'"
        )
        indexes = cr.fetchone()[0]
        crons = env["ir.cron"].with_context(active_test=False).search_count(
            [("model_id.model", "like", "crm.lifecycle")]
        )
        print(
            f"STATE {module.state} TABLES {tables} COLUMNS {columns}"
            f" INDEXES {indexes} CRONS {crons}"
        )
    """
)


def _odoo(database, *args):
    command = [
        os.environ["PYTHON"],
        os.environ["ODOO_BIN"],
        "--config",
        os.environ["ODOO_RC"],
        "--database",
        database,
        "--stop-after-init",
        "--http-port",
        str(_free_port()),
        "--max-cron-threads",
        "0",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def _python(script, *args):
    """Run ``script`` with Odoo's configuration file and ``args``; its
    output, once it exited 0 with clean logs."""
    result = subprocess.run(
        [sys.executable, "-c", script, os.environ["ODOO_RC"], *args],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert not BAD_LINE.findall(output), output[-3000:]
    return output


def test_install_upgrade_uninstall(scratch_database):
    output = _odoo(scratch_database, "--init", "crm_lifecycle", *demo_options(False))
    assert not BAD_LINE.findall(output), output[-3000:]
    output = _odoo(scratch_database, "--update", "crm_lifecycle")
    assert not BAD_LINE.findall(output), output[-3000:]
    output = _python(CHECK_UNINSTALL, scratch_database)
    assert UNINSTALLED in output, output[-3000:]


CORE_STATE = textwrap.dedent(
    """
    import json
    import sys
    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(["--config", sys.argv[1], "-d", sys.argv[2]])
    with Registry(sys.argv[2]).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        company = env.ref("base.main_company")
        module = env["ir.module.module"].search([("name", "=", "crm_lifecycle")])
        core = {
            "company": company.name,
            "journals": sorted(
                env["account.journal"].search([("company_id", "=", company.id)])
                .mapped("code")
            ),
            "base_partners": sorted(
                env["ir.model.data"].search(
                    [("module", "=", "base"), ("model", "=", "res.partner")]
                ).mapped("name")
            ),
            "account_demo_moves": sorted(
                env["ir.model.data"].search(
                    [("module", "=", "account"), ("model", "=", "account.move")]
                ).mapped("name")
            ),
        }
        stages = {}
        if module.state == "installed":
            for data in env["ir.model.data"].search(
                [("module", "=", "crm_lifecycle"), ("model", "=", "res.partner")]
            ):
                partner = env["res.partner"].browse(data.res_id)
                stages[data.name] = partner.lifecycle_stage_id.code
        print("STATE " + json.dumps({"module": module.state, "core": core,
                                     "stages": stages}))
    """
)


def _state(database):
    output = _python(CORE_STATE, database)
    line = next(line for line in output.splitlines() if line.startswith("STATE "))
    return json.loads(line[len("STATE ") :])


def test_uninstall_reinstall_with_demo(scratch_database):
    """The demo data posts and pays invoices: the uninstall removes them (and
    the payments) without touching the core data, and a second install with
    demo data works."""
    output = _odoo(scratch_database, "--init", "crm_lifecycle", *demo_options(True))
    assert not BAD_LINE.findall(output), output[-3000:]
    installed = _state(scratch_database)
    assert installed["stages"], installed
    assert all(installed["stages"].values()), installed["stages"]
    assert installed["core"]["journals"], installed
    output = _python(CHECK_UNINSTALL, scratch_database)
    assert UNINSTALLED in output, output[-3000:]
    uninstalled = _state(scratch_database)
    assert uninstalled["core"] == installed["core"], uninstalled
    output = _odoo(scratch_database, "--init", "crm_lifecycle", *demo_options(True))
    assert not BAD_LINE.findall(output), output[-3000:]
    reinstalled = _state(scratch_database)
    assert reinstalled["module"] == "installed"
    assert reinstalled["core"] == installed["core"], reinstalled
    assert reinstalled["stages"].keys() == installed["stages"].keys()
    assert all(reinstalled["stages"].values()), reinstalled["stages"]


CHECK_DASHBOARD = textwrap.dedent(
    """
    import sys
    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(["--config", sys.argv[1], "-d", sys.argv[2]])
    with Registry(sys.argv[2]).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        dashboard = env["ir.module.module"].search(
            [("name", "=", "crm_lifecycle_dashboard")]
        )
        if sys.argv[3] == "uninstall":
            dashboard.button_immediate_uninstall()
    with Registry(sys.argv[2]).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        states = {
            module.name: module.state
            for module in env["ir.module.module"].search(
                [("name", "in", ["crm_lifecycle", "crm_lifecycle_dashboard"])]
            )
        }
        dashboards = env["spreadsheet.dashboard"].search_count(
            [("name", "=", "Client Lifecycle")]
        )
        print(f"DASHBOARD {states['crm_lifecycle_dashboard']} {dashboards}"
              f" LIFECYCLE {states['crm_lifecycle']}")
    """
)


def test_dashboard_auto_install_uninstall(scratch_database):
    """The dashboard comes with crm_lifecycle and Odoo's Dashboards app (auto
    install, demo data), goes without touching crm_lifecycle, and comes back."""
    output = _odoo(
        scratch_database,
        "--init",
        "crm_lifecycle,spreadsheet_dashboard",
        *demo_options(True),
    )
    assert not BAD_LINE.findall(output), output[-3000:]
    output = _python(CHECK_DASHBOARD, scratch_database, "check")
    assert "DASHBOARD installed 1 LIFECYCLE installed" in output, output[-3000:]
    output = _python(CHECK_DASHBOARD, scratch_database, "uninstall")
    assert "DASHBOARD uninstalled 0 LIFECYCLE installed" in output, output[-3000:]
    output = _odoo(scratch_database, "--init", "crm_lifecycle_dashboard")
    assert not BAD_LINE.findall(output), output[-3000:]
    output = _python(CHECK_DASHBOARD, scratch_database, "check")
    assert "DASHBOARD installed 1 LIFECYCLE installed" in output, output[-3000:]
