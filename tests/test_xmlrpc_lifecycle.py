"""The lifecycle seen by an external integration over XML-RPC (and, on 19.0,
over the JSON-2 API that replaces it).

A plain client creates a partner, a lead, an invoice, posts it, pays it with
Odoo's payment wizard and reads ``lifecycle_stage_id.code`` back after
"Recompute now" or after the scheduled action; a second paid invoice makes a
repeat customer.
"""

import datetime

import pytest
from conftest import MAJOR

# JSON-2 (/json/2/<model>/<method>, an API key) exists from 19.0 on
TRANSPORTS = ["xmlrpc", "json2"] if MAJOR >= 19 else ["xmlrpc"]


@pytest.fixture(params=TRANSPORTS)
def api(request):
    return request.getfixturevalue(f"{request.param}_admin")


def stage_code(api, partner_id):
    [partner] = api.records(
        "res.partner",
        "web_read",
        [partner_id],
        specification={"lifecycle_stage_id": {"fields": {"code": {}}}},
    )
    return (partner["lifecycle_stage_id"] or {}).get("code")


def recompute_now(api, partner_id):
    api.records("res.partner", "action_lifecycle_recompute", [partner_id])
    return stage_code(api, partner_id)


def run_cron(api):
    [cron] = api.call(
        "ir.model.data",
        "search_read",
        domain=[
            ("module", "=", "crm_lifecycle"),
            ("name", "=", "ir_cron_lifecycle_queue"),
        ],
        fields=["res_id"],
    )
    api.records("ir.cron", "method_direct_trigger", [cron["res_id"]])


def post_invoice(api, partner_id, date, amount):
    invoice_id = api.create(
        "account.move",
        {
            "move_type": "out_invoice",
            "partner_id": partner_id,
            "invoice_date": date,
            "invoice_line_ids": [
                (0, 0, {"name": "Van", "quantity": 3, "price_unit": amount / 3})
            ],
        },
    )
    api.records("account.move", "action_post", [invoice_id])
    return invoice_id


def pay(api, invoice_id, date):
    context = {"active_model": "account.move", "active_ids": [invoice_id]}
    register_id = api.create(
        "account.payment.register", {"payment_date": date}, context=context
    )
    api.records(
        "account.payment.register",
        "action_create_payments",
        [register_id],
        context=context,
    )


def purchases(api, partner_id):
    """The client's paid purchases: how many, and the revenue."""
    [partner] = api.records(
        "res.partner", "read", [partner_id], fields=["purchase_count", "paid_revenue"]
    )
    return partner["purchase_count"], partner["paid_revenue"]


def test_prospect_to_repeat_customer(api):
    partner_id = api.create(
        "res.partner", {"name": "External Motors", "is_company": True}
    )
    # a new client has its stage once its transaction is committed
    assert stage_code(api, partner_id) == "target"
    assert recompute_now(api, partner_id) == "target"

    lead_id = api.create(
        "crm.lead", {"name": "Three vans", "type": "lead", "partner_id": partner_id}
    )
    assert recompute_now(api, partner_id) == "prospect"

    # convert the lead with the CRM's own wizard, as a salesperson does
    context = {
        "active_model": "crm.lead",
        "active_id": lead_id,
        "active_ids": [lead_id],
    }
    wizard_id = api.create(
        "crm.lead2opportunity.partner",
        {"name": "convert", "action": "exist", "partner_id": partner_id},
        context=context,
    )
    api.records(
        "crm.lead2opportunity.partner", "action_apply", [wizard_id], context=context
    )
    assert recompute_now(api, partner_id) == "opportunity"

    earlier = (datetime.date.today() - datetime.timedelta(days=40)).isoformat()
    invoice_id = post_invoice(api, partner_id, earlier, 63000.0)
    [invoice] = api.records(
        "account.move", "read", [invoice_id], fields=["state", "payment_state"]
    )
    assert (invoice["state"], invoice["payment_state"]) == ("posted", "not_paid")
    # posted but not paid: not a customer yet
    assert recompute_now(api, partner_id) == "opportunity"

    pay(api, invoice_id, earlier)
    # the payment only marked the client; the scheduled action computes it
    assert stage_code(api, partner_id) == "opportunity"
    run_cron(api)
    assert stage_code(api, partner_id) == "new_customer"
    assert purchases(api, partner_id) == (1, pytest.approx(63000.0))

    # a second purchase, paid: a repeat customer
    today = datetime.date.today().isoformat()
    pay(api, post_invoice(api, partner_id, today, 21000.0), today)
    run_cron(api)
    assert stage_code(api, partner_id) == "repeat_customer"
    assert purchases(api, partner_id) == (2, pytest.approx(84000.0))
