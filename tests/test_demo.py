"""The demo data of ``make run`` shows a living picture: clients in every
stage, reached through posted and paid invoices, leads and one override."""

import odoo
from odoo.modules.registry import Registry

STAGES = (
    "target",
    "prospect",
    "opportunity",
    "new_customer",
    "repeat_customer",
    "loyal",
    "advocate",
    "at_risk",
    "dormant",
    "lost",
)


def test_demo_clients_in_every_stage(database):
    with Registry(database).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        for code in STAGES:
            partner = env.ref(f"crm_lifecycle.partner_{code}_demo")
            assert partner.lifecycle_stage_id.code == code, partner.name
        # a lost client that bought again is logged as a reactivation
        reactivated = env.ref("crm_lifecycle.partner_reactivated_demo")
        reasons = reactivated.lifecycle_history_ids.mapped("reason")
        assert "reactivation" in reasons
        # the advocate was set by hand and stays locked
        advocate = env.ref("crm_lifecycle.partner_advocate_demo")
        assert advocate.lifecycle_stage_locked
        # a posted, unpaid invoice does not make a customer
        posted = env.ref("crm_lifecycle.partner_posted_demo")
        assert posted.lifecycle_stage_id.code == "opportunity"
        assert posted.receivable_open > 0
