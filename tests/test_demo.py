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


def test_demo_levels_segments_and_capital(database):
    with Registry(database).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        loyal = env.ref("crm_lifecycle.partner_loyal_demo")
        new = env.ref("crm_lifecycle.partner_new_customer_demo")
        prospect = env.ref("crm_lifecycle.partner_prospect_demo")
        # levels come from paid revenue and behaviour: the loyal client is
        # above the new customer, who is above a prospect without purchases
        assert loyal.loyalty_level_id.sequence > new.loyalty_level_id.sequence
        assert new.loyalty_level_id and not prospect.loyalty_level_id
        # contacts show their company's level
        contact = env.ref("crm_lifecycle.partner_loyal_contact_demo")
        assert contact.loyalty_level_id == loyal.loyalty_level_id
        # customers who bought in the RFM period are scored and segmented
        for client in (loyal, new):
            assert len(client.rfm_score) == 3 and client.rfm_segment_id, client.name
        assert loyal.rfm_frequency > new.rfm_frequency
        assert loyal.clv > 0 and not prospect.clv
        # the customer capital adds up its parts
        [(active, pipeline, potential, capital)] = env[
            "crm.lifecycle.report"
        ]._read_group(
            [("company_id", "=", env.ref("base.main_company").id)],
            [],
            [
                "active_clv:sum",
                "pipeline_expected_revenue:sum",
                "potential_value:sum",
                "customer_capital:sum",
            ],
        )
        assert active > 0 and pipeline > 0
        # the demo's month-end history holds fewer clients at each stage
        # before the customer stages than a conversion rate needs (Settings,
        # "Clients for a conversion rate"): no stage is worth anything yet,
        # rather than 100 % from a couple of clients
        company = env.ref("base.main_company")
        assert company.lifecycle_conversion_min_clients == 10
        assert potential == 0
        assert not prospect.lifecycle_potential_value
        assert round(active + pipeline + potential, 2) == round(capital, 2)
