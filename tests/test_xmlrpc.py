"""An external client talks to a real server over XML-RPC."""


def test_login_and_read_modules(xmlrpc_admin):
    assert xmlrpc_admin.uid, "admin could not log in"
    modules = xmlrpc_admin.call(
        "ir.module.module",
        "search_read",
        [("name", "in", ["crm_lifecycle", "crm", "account"])],
        fields=["name", "state"],
    )
    assert {module["name"]: module["state"] for module in modules} == {
        "crm_lifecycle": "installed",
        "crm": "installed",
        "account": "installed",
    }
