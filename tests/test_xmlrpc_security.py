"""Issue 12 seen from outside: an XML-RPC client logged in as a salesperson
("own documents only") or as a portal user is refused on the engine's fields,
on the context key, on the engine, queue, playbook and settings methods, and
reads the money of its own clients only.

The users and clients are made by the admin over XML-RPC, as an integrator
would; logins are unique per run (the database is kept between runs).
"""

import datetime
import uuid
import xmlrpc.client

import pytest
from conftest import USER_GROUPS


def group_id(admin, xmlid):
    module, name = xmlid.split(".")
    [data] = admin.call(
        "ir.model.data",
        "search_read",
        [("module", "=", module), ("name", "=", name)],
        fields=["res_id"],
    )
    return data["res_id"]


def paid_client(admin, name, user_id, amount):
    """A client of ``user_id`` with a paid invoice of ``amount``, computed."""
    partner_id = admin.call(
        "res.partner",
        "create",
        {"name": name, "is_company": True, "user_id": user_id},
    )
    today = datetime.date.today().isoformat()
    invoice_id = admin.call(
        "account.move",
        "create",
        {
            "move_type": "out_invoice",
            "partner_id": partner_id,
            "invoice_date": today,
            "invoice_line_ids": [
                (0, 0, {"name": "Service", "quantity": 1, "price_unit": amount})
            ],
        },
    )
    admin.call("account.move", "action_post", [invoice_id])
    context = {"active_model": "account.move", "active_ids": [invoice_id]}
    register_id = admin.call(
        "account.payment.register", "create", {"payment_date": today}, context=context
    )
    admin.call(
        "account.payment.register",
        "action_create_payments",
        [register_id],
        context=context,
    )
    admin.call("res.partner", "action_lifecycle_recompute", [partner_id])
    return partner_id


@pytest.fixture(scope="module")
def world(xmlrpc_admin, xmlrpc_login):
    admin = xmlrpc_admin
    suffix = uuid.uuid4().hex[:8]
    salesman = group_id(admin, "sales_team.group_sale_salesman")
    portal = group_id(admin, "base.group_portal")
    users = {}
    for role, group in [
        ("salesperson", salesman),
        ("colleague", salesman),
        ("portal", portal),
    ]:
        login = f"security_{role}_{suffix}"
        users[role] = admin.call(
            "res.users",
            "create",
            {
                "name": f"{role.title()} {suffix}",
                "login": login,
                "password": login,
                USER_GROUPS: [(6, 0, [group])],
            },
        )
        users[f"{role}_login"] = login
    own = paid_client(admin, f"Own {suffix}", users["salesperson"], 1000.0)
    other = paid_client(admin, f"Colleague's {suffix}", users["colleague"], 3000.0)
    settings = admin.call("res.config.settings", "create", {})
    playbook = admin.call("crm.lifecycle.playbook", "create", {"name": suffix})

    def client(role):
        login = users[f"{role}_login"]
        return xmlrpc_login(login, login)

    return {
        "admin": admin,
        "salesperson": client("salesperson"),
        "portal": client("portal"),
        "own": own,
        "other": other,
        "settings": settings,
        "playbook": playbook,
    }


def refused(api, model, method, *args, **kwargs):
    with pytest.raises(xmlrpc.client.Fault) as fault:
        api.call(model, method, *args, **kwargs)
    return fault.value.faultString


def stage_of(world, partner_id):
    [partner] = world["admin"].call(
        "res.partner", "read", [partner_id], ["lifecycle_stage_id", "paid_revenue"]
    )
    return partner


@pytest.mark.parametrize("role", ["salesperson", "portal"])
def test_engine_queue_playbook_methods_refused(world, role):
    api = world[role]
    for model, method, args in [
        ("crm.lifecycle.engine", "_recompute", [[world["own"]]]),
        ("crm.lifecycle.engine", "_enqueue_all_clients", []),
        ("crm.lifecycle.engine", "_cron_enqueue_all_clients", []),
        ("crm.lifecycle.engine", "_process_queue", []),
        ("crm.lifecycle.playbook", "_run_playbooks", []),
    ]:
        assert "Private methods" in refused(api, model, method, *args)
    refused(
        api,
        "res.config.settings",
        "action_lifecycle_recompute_all",
        [world["settings"]],
    )
    refused(api, "crm.lifecycle.playbook", "action_preview", [world["playbook"]])
    refused(api, "crm.lifecycle.queue", "action_retry_now", [])
    refused(api, "crm.lifecycle.client", "create", {"partner_id": world["own"]})


@pytest.mark.parametrize("role", ["salesperson", "portal"])
def test_engine_fields_refused(world, role):
    api = world[role]
    before = stage_of(world, world["own"])
    for values in (
        {"paid_revenue": 999999},
        {"purchase_count": 42},
        {"loyalty_level_id": False},
        {"rfm_segment_id": False},
        {"lifecycle_stage_locked": True},
    ):
        refused(api, "res.partner", "write", [world["own"]], values)
        refused(
            api,
            "res.partner",
            "write",
            [world["own"]],
            values,
            context={"lifecycle_engine": True},
        )
    assert stage_of(world, world["own"]) == before


def test_context_key_moves_no_colleague_client(world):
    api = world["salesperson"]
    before = stage_of(world, world["other"])
    lost = world["admin"].call(
        "crm.lifecycle.stage", "search", [("code", "=", "lost")], limit=1
    )
    refused(
        api,
        "res.partner",
        "write",
        [world["other"]],
        {"lifecycle_stage_id": lost[0]},
        context={"lifecycle_engine": True},
    )
    assert stage_of(world, world["other"]) == before
    history = world["admin"].call(
        "crm.lifecycle.history",
        "search_count",
        [("partner_id", "=", world["other"]), ("reason", "=", "manual")],
    )
    assert history == 0


def test_recompute_now(world):
    # portal: nothing of the module
    refused(
        world["portal"], "res.partner", "action_lifecycle_recompute", [world["own"]]
    )
    action = world["salesperson"].call(
        "res.partner", "action_lifecycle_recompute", [world["own"]]
    )
    assert action["tag"] == "display_notification"
    assert "recomputed" in action["params"]["message"]


def test_money_of_own_clients_only(world):
    api = world["salesperson"]
    own, other = api.call(
        "res.partner",
        "read",
        [world["own"], world["other"]],
        ["paid_revenue", "clv", "lifecycle_stage_id"],
    )
    assert own["paid_revenue"] == pytest.approx(1000.0)
    assert (other["paid_revenue"], other["clv"]) == (0.0, 0.0)
    assert other["lifecycle_stage_id"], "the stage stays visible"
    assert stage_of(world, world["other"])["paid_revenue"] == pytest.approx(3000.0)
    # the colleague's client is not found by its money either
    found = api.call(
        "res.partner",
        "search",
        [("id", "in", [world["own"], world["other"]]), ("paid_revenue", ">", 2000)],
    )
    assert found == []
    # Customer Capital and the client rows: own clients only
    rows = api.call(
        "crm.lifecycle.report",
        "search_read",
        [("partner_id", "in", [world["own"], world["other"]])],
        fields=["partner_id", "paid_revenue"],
    )
    assert [row["partner_id"][0] for row in rows] == [world["own"]]
    clients = api.call(
        "crm.lifecycle.client",
        "search_read",
        [("partner_id", "in", [world["own"], world["other"]])],
        fields=["partner_id", "paid_revenue"],
    )
    assert [row["partner_id"][0] for row in clients] == [world["own"]]
    # portal: no money at all
    refused(world["portal"], "res.partner", "read", [world["own"]], ["paid_revenue"])
