"""Upgrade from the previous release (18.0.1.0.0, company-dependent columns on
res_partner) to 18.0.2.0.x (crm.lifecycle.client): on a fresh database, the
previous release is installed from git, clients get stages, locks, figures
and notes, then the current code upgrades the module and finds them."""

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from test_upgrade_uninstall import BAD_LINE, _odoo, _python

import odoo

REPO_ROOT = Path(__file__).resolve().parent.parent
# the last commit of 18.0.1.0.0 on main
PREVIOUS_RELEASE = "2999593"

SNAPSHOT = """
def snapshot(partner):
    return {
        "id": partner.id,
        "stage": partner.lifecycle_stage_id.code,
        "locked": partner.lifecycle_stage_locked,
        "purchase_count": partner.purchase_count,
        "paid_revenue": partner.paid_revenue,
        "lead_count": partner.lead_count,
        "history": len(partner.commercial_partner_id.lifecycle_history_ids),
        "notes": partner.relationship_notes or "",
    }
"""

CREATE_CLIENTS = SNAPSHOT + textwrap.dedent(
    """
    import json, sys
    import odoo
    from odoo import Command, fields
    from odoo.modules.registry import Registry

    rc, db, addons = sys.argv[1:4]
    odoo.tools.config.parse_config(
        ["--config", rc, "-d", db, "--addons-path", addons]
    )
    with Registry(db).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        Partner = env["res.partner"]
        buyer = Partner.create({"name": "Migrated buyer", "is_company": True})
        contact = Partner.create({"name": "Buyer contact", "parent_id": buyer.id})
        prospect = Partner.create({"name": "Migrated prospect", "is_company": True})
        held = Partner.create({"name": "Migrated lock", "is_company": True})
        move = env["account.move"].create({
            "move_type": "out_invoice",
            "partner_id": contact.id,
            "invoice_date": fields.Date.today(),
            "invoice_line_ids": [
                Command.create({"name": "Van", "price_unit": 1200.0, "tax_ids": []})
            ],
        })
        move.action_post()
        env["account.payment.register"].with_context(
            active_model="account.move", active_ids=move.ids
        ).create({})._create_payments()
        env["crm.lead"].create({"name": "Deal", "partner_id": prospect.id})
        # the previous release's entry point (private since)
        env["crm.lifecycle.engine"].recompute(buyer | prospect | held)
        loyal = env["crm.lifecycle.stage"].search([("code", "=", "loyal")])
        held._lifecycle_set_stage(loyal, "Known for years")
        held.relationship_notes = "<p>Call on Mondays</p>"
        # a rule over res.partner: metrics and a partner field
        advocate = env["crm.lifecycle.stage"].search([("code", "=", "advocate")])
        advocate.rule_domain = (
            "[('paid_revenue', '>=', 5000), ('country_id', '!=', False)]"
        )
        env.flush_all()
        result = {
            partner.name: snapshot(partner)
            for partner in (buyer, contact, prospect, held)
        }
        print("RESULT " + json.dumps(result))
    """
)

CHECK_CLIENTS = SNAPSHOT + textwrap.dedent(
    """
    import json, sys
    import odoo
    from odoo.modules.registry import Registry

    rc, db, before = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    odoo.tools.config.parse_config(["--config", rc, "-d", db])
    with Registry(db).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        result = {
            name: snapshot(env["res.partner"].browse(values["id"]))
            for name, values in before.items()
        }
        rows = env["crm.lifecycle.client"].search_count([])
        advocate = env["crm.lifecycle.stage"].search([("code", "=", "advocate")])
        cr.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'res_partner' AND column_name IN"
            " ('lifecycle_stage_id', 'purchase_count', 'paid_revenue', 'clv')"
        )
        columns = cr.fetchone()[0]
        # the code of the module's scheduled actions (``noupdate`` data) and
        # whether the method each calls exists
        crons = {}
        for cron in env["ir.cron"].with_context(active_test=False).search(
            [("model_id.model", "like", "crm.lifecycle")]
        ):
            method = cron.code.strip().removeprefix("model.").removesuffix("()")
            crons[cron.code.strip()] = hasattr(env[cron.model_id.model], method)
        print("RESULT " + json.dumps(
            {
                "clients": result,
                "rows": rows,
                "old_columns": columns,
                "rule": advocate.rule_domain,
                "crons": crons,
            }
        ))
    """
)


def _run(script, *args):
    output = _python(script, *args)
    [line] = [line for line in output.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture
def previous_release(tmp_path):
    """The addon of the previous release, from git, in its own folder."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", PREVIOUS_RELEASE, "crm_lifecycle"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    return tmp_path


def test_upgrade_from_previous_release(scratch_database, previous_release):
    repo = str(REPO_ROOT)
    addons = ",".join(
        str(previous_release) if path.rstrip("/") == repo else path
        for path in odoo.tools.config["addons_path"].split(",")
    )
    assert str(previous_release) in addons
    output = _odoo(
        scratch_database,
        "--addons-path",
        addons,
        "--init",
        "crm_lifecycle",
        "--without-demo",
        "all",
    )
    assert not BAD_LINE.findall(output), output[-3000:]
    before = _run(CREATE_CLIENTS, scratch_database, addons)
    assert before["Migrated lock"]["locked"]
    assert before["Migrated buyer"]["purchase_count"] == 1

    output = _odoo(scratch_database, "--update", "crm_lifecycle")
    assert not BAD_LINE.findall(output), output[-3000:]
    after = _run(CHECK_CLIENTS, scratch_database, json.dumps(before))
    assert after["clients"] == before
    # one row per commercial partner: the contact has none of its own
    assert after["rows"] == 3
    assert after["old_columns"] == 0
    # every scheduled action calls a method that exists; the daily one
    # (``enqueue_all`` in the previous release) the one that commits
    assert after["crons"]["model._cron_enqueue_all_clients()"]
    assert all(after["crons"].values()), after["crons"]
    # the rule is now a domain over the client rows
    assert after["rule"] == (
        "[('paid_revenue', '>=', 5000), ('partner_id.country_id', '!=', False)]"
    )
