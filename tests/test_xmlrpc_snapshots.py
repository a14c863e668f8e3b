"""The lifecycle over time seen by an external integration over XML-RPC.

A plain client creates invoices dated and paid 26, 14 and 2 months ago with
Odoo's payment wizard, presses "Rebuild history" in Settings, runs the
scheduled action and reads, in ``crm.lifecycle.snapshot``, the stage the
client had at each month end.
"""

import datetime
import statistics

import pytest
from dateutil.relativedelta import relativedelta


@pytest.fixture
def api(xmlrpc_admin):
    return xmlrpc_admin


def xmlid(api, name):
    [data] = api.call(
        "ir.model.data",
        "search_read",
        [("module", "=", "crm_lifecycle"), ("name", "=", name)],
        fields=["res_id"],
    )
    return data["res_id"]


def paid_invoice(api, partner_id, day):
    invoice_id = api.call(
        "account.move",
        "create",
        {
            "move_type": "out_invoice",
            "partner_id": partner_id,
            "invoice_date": day.isoformat(),
            "invoice_line_ids": [
                (0, 0, {"name": "Service", "quantity": 1, "price_unit": 1000.0})
            ],
        },
    )
    api.call("account.move", "action_post", [invoice_id])
    context = {"active_model": "account.move", "active_ids": [invoice_id]}
    register_id = api.call(
        "account.payment.register",
        "create",
        {"payment_date": day.isoformat()},
        context=context,
    )
    api.call(
        "account.payment.register",
        "action_create_payments",
        [register_id],
        context=context,
    )
    [invoice] = api.call("account.move", "read", [invoice_id], ["payment_state"])
    assert invoice["payment_state"] in ("paid", "in_payment")


def expected_stage(purchases, month_end, settings):
    """The built-in stage of a client whose paid purchases are ``purchases``
    (dates), as of ``month_end``."""
    done = sorted(day for day in purchases if day <= month_end)
    if not done:
        return "target"
    interval = settings["lifecycle_default_interval_days"]
    if len(done) >= 3:
        interval = statistics.median(
            (later - earlier).days
            for earlier, later in zip(done, done[1:], strict=False)
        )
    days = (month_end - done[-1]).days
    if days > settings["lifecycle_lost_days"]:
        return "lost"
    if days > settings["lifecycle_dormant_factor"] * interval:
        return "dormant"
    if days > settings["lifecycle_at_risk_factor"] * interval:
        return "at_risk"
    return "repeat_customer" if len(done) >= 2 else "new_customer"


def test_rebuild_history(api):
    today = datetime.date.today()
    partner_id = api.call(
        "res.partner", "create", {"name": "XML-RPC History", "is_company": True}
    )
    purchases = [today - relativedelta(months=back) for back in (26, 14, 2)]
    for day in purchases:
        paid_invoice(api, partner_id, day)

    settings_id = api.call("res.config.settings", "create", {})
    [settings] = api.call(
        "res.config.settings",
        "read",
        [settings_id],
        [
            "lifecycle_snapshot_months",
            "lifecycle_default_interval_days",
            "lifecycle_at_risk_factor",
            "lifecycle_dormant_factor",
            "lifecycle_lost_days",
        ],
    )
    months = settings["lifecycle_snapshot_months"]
    action = api.call(
        "res.config.settings", "action_lifecycle_rebuild_snapshots", [settings_id]
    )
    assert action["tag"] == "display_notification"
    api.call(
        "ir.cron",
        "method_direct_trigger",
        [xmlid(api, "ir_cron_lifecycle_rebuild_snapshots")],
    )

    snapshots = api.call(
        "crm.lifecycle.snapshot",
        "search_read",
        [("partner_id", "=", partner_id)],
        fields=["date", "stage_id", "purchase_count", "paid_revenue"],
        order="date",
    )
    stage_ids = {row["stage_id"][0] for row in snapshots if row["stage_id"]}
    codes = {
        stage["id"]: stage["code"]
        for stage in api.call("crm.lifecycle.stage", "read", list(stage_ids), ["code"])
    }
    first = today.replace(day=1)
    month_ends = [
        first - relativedelta(months=back) - datetime.timedelta(days=1)
        for back in range(months - 1, -1, -1)
    ]
    assert [row["date"] for row in snapshots] == [day.isoformat() for day in month_ends]
    for row, month_end in zip(snapshots, month_ends, strict=True):
        paid = [day for day in purchases if day <= month_end]
        assert codes[row["stage_id"][0]] == expected_stage(
            purchases, month_end, settings
        ), month_end
        assert row["purchase_count"] == len(paid)
        assert row["paid_revenue"] == pytest.approx(1000.0 * len(paid))
    # the stages over time of this client: a customer, dormant, won back
    seen = [codes[row["stage_id"][0]] for row in snapshots]
    assert "dormant" in seen
    assert seen[-1] == "repeat_customer"
