# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Smoke tests of the web client: every view of the module opens as admin in
headless Chromium without a client error and shows what it is about."""

import json
from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

# Runs in the page: helpers, then the steps of one check; any failure is
# reported with console.error, which fails browser_js.
CHECK_TEMPLATE = """
(async () => {
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const waitFor = async (selector, timeout = 20000) => {
        const start = Date.now();
        while (Date.now() - start < timeout) {
            const element = document.querySelector(selector);
            if (element) {
                return element;
            }
            await sleep(100);
        }
        throw new Error(`"${selector}" not found`);
    };
    const expectText = async (selector, text, timeout = 20000) => {
        const wanted = text.toLowerCase();
        const start = Date.now();
        while (Date.now() - start < timeout) {
            const shown = [...document.querySelectorAll(selector)].some(
                (element) => element.innerText.toLowerCase().includes(wanted)
            );
            if (shown) {
                return;
            }
            await sleep(100);
        }
        throw new Error(`"${text}" not shown in "${selector}"`);
    };
    const click = async (selector) => (await waitFor(selector)).click();
    try {
        %s
        console.log("test successful");
    } catch (error) {
        console.error(`crm_lifecycle UI check failed: ${error.message}`);
    }
})();
"""

# What is in the page once a view is rendered.
KANBAN_READY = ".o_kanban_renderer .o_kanban_group"
LIST_READY = ".o_list_renderer .o_list_table"
FORM_READY = ".o_form_view .o_form_sheet"
PIVOT_READY = ".o_pivot table"
GRAPH_READY = ".o_graph_renderer canvas"


def js_text(value):
    """A Python string as a JavaScript string literal."""
    return json.dumps(value)


@tagged("post_install", "-at_install")
class TestLifecycleUi(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client = cls.env.ref(
            "crm_lifecycle.partner_loyal_demo", raise_if_not_found=False
        )
        cls.lead = cls.env.ref(
            "crm_lifecycle.lead_loyal_demo", raise_if_not_found=False
        )
        if not cls.client or not cls.lead:
            cls.client, cls.lead = cls._create_client_with_paid_invoice()
        # the views show the stored results of the engine
        cls.env["crm.lifecycle.engine"]._recompute(cls.client)
        cls.stage = cls.client.lifecycle_stage_id
        # a level admin sees in the browser: of the company it works in
        cls.level = cls.env["crm.loyalty.level"].search(
            [("company_id", "in", [False, cls.env.company.id])], limit=1
        )
        # the shipped playbook is archived until a user turns it on
        cls.playbook = (
            cls.env["crm.lifecycle.playbook"]
            .with_context(active_test=False)
            .search([], limit=1)
        )

    @classmethod
    def _create_client_with_paid_invoice(cls):
        """Without demo data: a client with an invoice posted and paid the way
        a user does it, and an opportunity."""
        client = cls.env["res.partner"].create(
            {
                "name": "UI Test Client",
                "is_company": True,
                "user_id": cls.env.ref("base.user_admin").id,
                "property_payment_term_id": cls.env.ref(
                    "account.account_payment_term_immediate"
                ).id,
            }
        )
        invoice_date = fields.Date.today() - timedelta(days=30)
        invoice = cls.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": client.id,
                "invoice_date": invoice_date,
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Vehicles and services",
                            "quantity": 1,
                            "price_unit": 1500.0,
                            "tax_ids": [],
                        }
                    )
                ],
            }
        )
        invoice.action_post()
        cls.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({"payment_date": invoice_date})._create_payments()
        lead = cls.env["crm.lead"].create(
            {
                "name": "UI Test Deal",
                "type": "opportunity",
                "partner_id": client.id,
                "expected_revenue": 5000.0,
                "user_id": cls.env.ref("base.user_admin").id,
            }
        )
        return client, lead

    def check(self, url, ready, steps):
        """Open ``url`` as admin, wait until the ``ready`` selector is in the
        page, then run the JS ``steps``."""
        self.browser_js(
            url,
            CHECK_TEMPLATE % steps,
            ready=f"!!document.querySelector({js_text(ready)})",
            login="admin",
        )

    def check_report(self, url, pivot_steps, title, list_column):
        """The pivot view of a report runs ``pivot_steps``, its graph view shows
        ``title`` and its list view the column ``list_column``."""
        self.check(url, PIVOT_READY, pivot_steps)
        self.check(
            f"{url}?view_type=graph",
            GRAPH_READY,
            f"await expectText('.o_control_panel', {js_text(title)});",
        )
        self.check(
            f"{url}?view_type=list",
            LIST_READY,
            f"await expectText('.o_list_table thead', {js_text(list_column)});",
        )

    # ------------------------------------------------------------------
    # Clients
    # ------------------------------------------------------------------
    def test_clients_kanban_and_list(self):
        self.assertTrue(self.stage, "the client has a lifecycle stage")
        url = "/odoo/action-crm_lifecycle.res_partner_action_lifecycle"
        stage = js_text(self.stage.name)
        self.check(
            url,
            KANBAN_READY,
            f"""
            await expectText('.o_kanban_group .o_column_title', {stage});
            await waitFor('.o_kanban_record');
            """,
        )
        self.check(
            f"{url}?view_type=list",
            LIST_READY,
            f"""
            await expectText('.o_list_table thead', 'Lifecycle Stage');
            await expectText('.o_list_table thead', 'Loyalty Level');
            await expectText('.o_list_table', {stage});
            """,
        )

    def test_client_form_relationship(self):
        self.assertTrue(self.client.loyalty_level_id or self.client.purchase_count)
        url = (
            f"/odoo/action-crm_lifecycle.res_partner_action_lifecycle/{self.client.id}"
        )
        self.check(
            url,
            FORM_READY,
            f"""
            await expectText('.o_breadcrumb', {js_text(self.client.name)});
            await expectText('.o_statusbar_status', {js_text(self.stage.name)});
            await click('.o_notebook_headers a[name=crm_lifecycle]');
            await waitFor('.o_notebook .tab-pane.active div[name=loyalty_level_id]');
            for (const label of ['Loyalty Level', 'RFM Segment', 'Paid Revenue',
                                 'Stage history']) {{
                await expectText('.o_notebook .tab-pane.active', label);
            }}
            """,
        )

    # ------------------------------------------------------------------
    # Configuration: levels, segments, stages, playbooks
    # ------------------------------------------------------------------
    def test_loyalty_levels_and_segments(self):
        url = "/odoo/action-crm_lifecycle.crm_loyalty_level_action"
        self.check(
            url,
            LIST_READY,
            f"""
            await expectText('.o_list_table tbody', {js_text(self.level.name)});
            await expectText('.o_list_table thead', 'Clients');
            """,
        )
        self.check(
            f"{url}/{self.level.id}",
            FORM_READY,
            f"""
            await expectText('.o_breadcrumb', {js_text(self.level.name)});
            await expectText('.o_form_sheet', 'A client reaches this level with');
            await expectText('.o_form_sheet', 'Benefits');
            """,
        )
        self.check(
            "/odoo/action-crm_lifecycle.crm_rfm_segment_action",
            LIST_READY,
            """
            await expectText('.o_list_table tbody', 'Champions');
            await expectText('.o_list_table thead', 'Recency');
            """,
        )

    def test_stages_and_history(self):
        self.check(
            "/odoo/action-crm_lifecycle.crm_lifecycle_stage_action",
            LIST_READY,
            """
            await expectText('.o_list_table tbody', 'New Customer');
            await expectText('.o_list_table tbody', 'Dormant');
            """,
        )
        self.check(
            f"/odoo/action-crm_lifecycle.crm_lifecycle_stage_action/{self.stage.id}",
            FORM_READY,
            f"""
            await expectText('.o_breadcrumb', {js_text(self.stage.name)});
            await expectText('.o_form_sheet', 'Rule');
            """,
        )
        self.check(
            "/odoo/action-crm_lifecycle.crm_lifecycle_history_action",
            LIST_READY,
            f"""
            await expectText('.o_list_table thead', 'Reason');
            await expectText('.o_list_table tbody', {js_text(self.client.name)});
            """,
        )

    def test_playbooks(self):
        self.assertTrue(self.playbook, "a playbook is shipped with the module")
        url = "/odoo/action-crm_lifecycle.crm_lifecycle_playbook_action"
        self.check(
            url,
            LIST_READY,
            f"""
            await expectText('.o_list_table tbody', {js_text(self.playbook.name)});
            """,
        )
        self.check(
            f"{url}/{self.playbook.id}",
            FORM_READY,
            f"""
            await expectText('.o_breadcrumb', {js_text(self.playbook.name)});
            await expectText('.o_notebook_headers', 'Steps');
            await waitFor('.o_field_widget[name=step_ids] .o_data_row');
            """,
        )
        self.check(
            "/odoo/action-crm_lifecycle.crm_lifecycle_playbook_run_action",
            LIST_READY,
            """
            await expectText('.o_list_table thead', 'Playbook');
            """,
        )

    def test_handover(self):
        self.check(
            "/odoo/action-crm_lifecycle.crm_lifecycle_handover_wizard_action",
            ".modal .o_form_view",
            """
            await expectText('.modal', 'What to hand over');
            await waitFor('.modal button[name=action_dry_run]');
            """,
        )
        self.check(
            "/odoo/action-crm_lifecycle.crm_lifecycle_handover_action",
            ".o_list_renderer, .o_view_nocontent",
            """
            await expectText('.o_control_panel', 'Portfolio Handovers');
            """,
        )

    # ------------------------------------------------------------------
    # Reports
    # ------------------------------------------------------------------
    def test_report_rfm_grid(self):
        self.check_report(
            "/odoo/action-crm_lifecycle.crm_lifecycle_report_action_rfm",
            pivot_steps="""
            await expectText('.o_pivot table', 'Clients');
            await expectText('.o_control_panel', 'RFM Grid');
            """,
            title="RFM Grid",
            list_column="Customer Capital",
        )

    def test_report_customer_capital(self):
        self.check_report(
            "/odoo/action-crm_lifecycle.crm_lifecycle_report_action_capital",
            pivot_steps="""
            await expectText('.o_pivot table', 'Customer Capital');
            await expectText('.o_pivot table', 'Value of active customers');
            """,
            title="Customer Capital",
            list_column="Lifecycle Stage",
        )

    # ------------------------------------------------------------------
    # Settings and CRM
    # ------------------------------------------------------------------
    def test_settings(self):
        crm = ".app_settings_block[data-key=crm]"
        self.check(
            "/odoo/settings#crm",
            crm,
            f"""
            await expectText('{crm}', 'Client Lifecycle');
            await expectText('{crm}', 'Purchase rhythm');
            await waitFor('{crm} button[name=action_lifecycle_recompute_all]');
            """,
        )

    def test_crm_pipeline_and_lead(self):
        url = "/odoo/action-crm.crm_lead_action_pipeline"
        self.check(
            url,
            KANBAN_READY,
            f"""
            await expectText('.o_kanban_record', {js_text(self.lead.name)});
            """,
        )
        self.check(
            f"{url}/{self.lead.id}",
            FORM_READY,
            f"""
            await expectText('.o_breadcrumb', {js_text(self.lead.name)});
            await expectText('.o_field_widget[name=partner_lifecycle_stage_id]',
                             {js_text(self.stage.name)});
            """,
        )
