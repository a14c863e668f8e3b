"""The lifecycle seen by an external integration over XML-RPC.

A plain client creates a partner, a lead, an invoice, posts it, pays it with
Odoo's payment wizard and reads ``lifecycle_stage_id.code`` back after
"Recompute now" or after the scheduled action.
"""

import datetime

import pytest


@pytest.fixture
def api(xmlrpc_admin):
    return xmlrpc_admin


def stage_code(api, partner_id):
    [partner] = api.call(
        "res.partner",
        "web_read",
        [partner_id],
        specification={"lifecycle_stage_id": {"fields": {"code": {}}}},
    )
    return (partner["lifecycle_stage_id"] or {}).get("code")


def recompute_now(api, partner_id):
    api.call("res.partner", "action_lifecycle_recompute", [partner_id])
    return stage_code(api, partner_id)


def run_cron(api):
    [cron] = api.call(
        "ir.model.data",
        "search_read",
        [("module", "=", "crm_lifecycle"), ("name", "=", "ir_cron_lifecycle_queue")],
        fields=["res_id"],
    )
    api.call("ir.cron", "method_direct_trigger", [cron["res_id"]])


def test_prospect_to_new_customer(api):
    partner_id = api.call(
        "res.partner", "create", {"name": "XML-RPC Motors", "is_company": True}
    )
    # a new client has its stage once its transaction is committed
    assert stage_code(api, partner_id) == "target"
    assert recompute_now(api, partner_id) == "target"

    lead_id = api.call(
        "crm.lead",
        "create",
        {"name": "Three vans", "type": "lead", "partner_id": partner_id},
    )
    assert recompute_now(api, partner_id) == "prospect"

    # convert the lead with the CRM's own wizard, as a salesperson does
    context = {
        "active_model": "crm.lead",
        "active_id": lead_id,
        "active_ids": [lead_id],
    }
    wizard_id = api.call(
        "crm.lead2opportunity.partner",
        "create",
        {"name": "convert", "action": "exist", "partner_id": partner_id},
        context=context,
    )
    api.call(
        "crm.lead2opportunity.partner", "action_apply", [wizard_id], context=context
    )
    assert recompute_now(api, partner_id) == "opportunity"

    today = datetime.date.today().isoformat()
    invoice_id = api.call(
        "account.move",
        "create",
        {
            "move_type": "out_invoice",
            "partner_id": partner_id,
            "invoice_date": today,
            "invoice_line_ids": [
                (0, 0, {"name": "Van", "quantity": 3, "price_unit": 21000.0})
            ],
        },
    )
    api.call("account.move", "action_post", [invoice_id])
    [invoice] = api.call(
        "account.move", "read", [invoice_id], ["state", "payment_state"]
    )
    assert (invoice["state"], invoice["payment_state"]) == ("posted", "not_paid")
    # posted but not paid: not a customer yet
    assert recompute_now(api, partner_id) == "opportunity"

    register_context = {"active_model": "account.move", "active_ids": [invoice_id]}
    register_id = api.call(
        "account.payment.register",
        "create",
        {"payment_date": today},
        context=register_context,
    )
    api.call(
        "account.payment.register",
        "action_create_payments",
        [register_id],
        context=register_context,
    )
    # the payment only marked the client; the scheduled action computes it
    assert stage_code(api, partner_id) == "opportunity"
    run_cron(api)
    assert stage_code(api, partner_id) == "new_customer"
    [partner] = api.call(
        "res.partner", "read", [partner_id], ["purchase_count", "paid_revenue"]
    )
    assert partner["purchase_count"] == 1
    assert partner["paid_revenue"] == pytest.approx(63000.0)
