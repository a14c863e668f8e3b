# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import datetime

from freezegun import freeze_time
from lxml import etree

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from .common import LifecycleCase
from .test_ui import CHECK_TEMPLATE, FORM_READY, KANBAN_READY, js_text


@tagged("post_install", "-at_install")
class TestStageIntegrity(LifecycleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Stage = cls.Stage.with_user(cls.sales_manager)
        cls.vip = cls.Stage.create({"name": "VIP", "code": "vip", "priority": 5})

    def arch(self, xmlid):
        view = self.env.ref(xmlid)
        views = self.env["res.partner"].get_views([(view.id, "kanban")])
        return etree.fromstring(views["views"]["kanban"]["arch"])

    # ------------------------------------------------------------------
    # Deleting and archiving stages
    # ------------------------------------------------------------------
    def test_builtin_stage_cannot_be_deleted(self):
        for code in ("loyal", "target"):
            with self.assertRaisesRegex(UserError, "archive it instead"):
                self.stage[code].with_user(self.sales_manager).unlink()
        # the playbook that uses Loyal is named, not a database error
        with self.assertRaisesRegex(UserError, "B2B retention"):
            self.stage["loyal"].with_user(self.sales_manager).active = False
        unused = self.Stage.create({"name": "Unused", "code": "unused"})
        unused.unlink()
        self.assertFalse(unused.exists())

    def test_used_stage_is_kept_with_its_history(self):
        client = self.create_client("Very important")
        self.recompute(client)
        client.with_user(self.sales_manager)._lifecycle_set_stage(self.vip, "Big")
        with self.assertRaisesRegex(UserError, "1 clients are in it"):
            self.vip.unlink()
        with self.assertRaisesRegex(UserError, "cannot be archived: 1 clients"):
            self.vip.active = False
        # the client leaves it: the history still records it
        client.with_user(self.sales_manager)._lifecycle_set_stage(
            self.stage["loyal"], "Back"
        )
        with self.assertRaisesRegex(UserError, "2 history rows record it"):
            self.vip.unlink()
        self.vip.active = False
        history = client.lifecycle_history_ids.filtered(
            lambda row: row.reason == "manual"
        )
        self.assertEqual(
            history.mapped(lambda row: (row.stage_from_id.name, row.stage_to_id.name)),
            [("VIP", "Loyal"), ("Target", "VIP")],
        )

    def test_stage_used_by_a_playbook(self):
        call = self.env.ref("mail.mail_activity_data_call")
        self.env["crm.lifecycle.playbook"].create(
            {
                "name": "VIP care",
                "step_ids": [
                    fields.Command.create(
                        {
                            "name": "Welcome",
                            "trigger": "stage_entered",
                            "stage_id": self.vip.id,
                            "activity_type_id": call.id,
                        }
                    )
                ],
            }
        )
        with self.assertRaisesRegex(UserError, "the playbooks VIP care use it"):
            self.vip.unlink()
        with self.assertRaisesRegex(UserError, "VIP care"):
            self.vip.active = False

    # ------------------------------------------------------------------
    # Rules
    # ------------------------------------------------------------------
    def test_rule_is_run_on_a_sample_when_saved(self):
        for rule in (
            "[('stage_days', '>', 'abc')]",
            "[('partner_id.lifecycle_history_count', '>', 3)]",
        ):
            with self.assertRaisesRegex(ValidationError, "not a valid domain"):
                self.vip.rule_domain = rule
        self.vip.rule_domain = "[('stage_days', '>', 3)]"

    @freeze_time("2026-03-01")
    def test_rule_failing_at_run_time_skips_the_stage(self):
        """A rule that got past the check (written in SQL here) skips its
        stage, with the error on the stage: every client is still computed
        and leaves the queue."""
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lifecycle_stage SET rule_domain = %s WHERE id IN %s",
                "[('stage_days', '>', 'abc')]",
                (self.vip.id, self.stage["new_customer"].id),
            )
        )
        self.Stage.invalidate_model()
        buyer = self.create_client("Buyer")
        target = self.create_client("Target")
        self.paid_invoice(buyer, 100.0, "2026-02-01")
        Queue = self.env["crm.lifecycle.queue"].sudo()
        self.env.cr.precommit.run()
        Queue.search([]).unlink()
        Queue._enqueue((buyer | target).ids, self.company.ids)
        with self.assertNoLogs("odoo.addons.crm_lifecycle", "WARNING"):
            self.engine._process_queue()
        self.assertEqual(self.stage_of(target), "target")
        # new customer is skipped: the next stage whose condition holds
        self.assertEqual(self.stage_of(buyer), "target")
        self.assertEqual(buyer.purchase_count, 1)
        self.assertFalse(Queue.search([("partner_id", "in", (buyer | target).ids)]))
        self.assertIn("NotImplementedError", self.stage["new_customer"].rule_error)
        self.assertTrue(self.vip.rule_error)
        # corrected: the error goes away, the stage applies again
        self.stage["new_customer"].with_user(self.sales_manager).rule_domain = "[]"
        self.assertFalse(self.stage["new_customer"].rule_error)
        self.recompute(buyer | target)
        self.assertEqual(self.stage_of(buyer), "new_customer")
        # a rule that evaluates again clears its error
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lifecycle_stage SET rule_domain = %s WHERE id = %s",
                "[('paid_revenue', '>', 1000000)]",
                self.vip.id,
            )
        )
        self.Stage.invalidate_model()
        self.recompute(buyer)
        self.assertFalse(self.vip.rule_error)

    # ------------------------------------------------------------------
    # Lifecycle board
    # ------------------------------------------------------------------
    def test_board_has_no_archive_all_and_shows_locks_and_colours(self):
        arch = self.arch("crm_lifecycle.res_partner_view_kanban_lifecycle")
        self.assertEqual(arch.get("archivable"), "false")
        self.assertEqual(arch.get("highlight_color"), "lifecycle_stage_color")
        lock = arch.xpath("//i[contains(@class, 'fa-lock')]")
        self.assertEqual(lock[0].get("title"), "Stage set by hand")
        self.assertIn("lifecycle_stage_locked", lock[0].get("t-if"))
        badge = arch.xpath("//span[field[@name='lifecycle_stage_id']]")
        self.assertIn("o_tag_color_", badge[0].get("t-attf-class"))
        action = self.env.ref("crm_lifecycle.res_partner_action_lifecycle")
        self.assertEqual(
            action.view_ids.filtered(lambda v: v.view_mode == "kanban").view_id,
            self.env.ref("crm_lifecycle.res_partner_view_kanban_lifecycle"),
        )
        client = self.create_client("Coloured")
        self.recompute(client)
        self.assertEqual(client.lifecycle_stage_color, self.stage["target"].color)

    def test_quick_create_in_a_column_is_set_by_hand(self):
        # what the board's quick create does in the Loyal column
        client = (
            self.env["res.partner"]
            .with_user(self.sales_manager)
            .with_context(default_lifecycle_stage_id=self.stage["loyal"].id)
            .create({"name": "Quick", "is_company": True})
        )
        self.assertEqual(self.stage_of(client), "loyal")
        self.assertTrue(client.lifecycle_stage_locked)
        history = client.lifecycle_history_ids
        self.assertEqual(len(history), 1)
        self.assertEqual(
            (history.reason, history.stage_to_id, history.user_id),
            ("manual", self.stage["loyal"], self.sales_manager),
        )
        # the end of the transaction computes it: the stage stays
        self.env.cr.precommit.run()
        self.assertEqual(self.stage_of(client), "loyal")
        self.assertEqual(len(client.lifecycle_history_ids), 1)

    def test_dragged_card_shows_the_lock(self):
        client = self.create_client("Dragged")
        self.recompute(client)
        client.with_user(self.sales_manager).lifecycle_stage_id = self.stage["loyal"]
        read = client.with_user(self.sales_manager).web_read(
            {"lifecycle_stage_locked": {}, "lifecycle_stage_id": {}}
        )
        self.assertTrue(read[0]["lifecycle_stage_locked"])

    @freeze_time("2026-03-01")
    def test_new_client_gets_its_stage_when_created(self):
        Client = self.env["crm.lifecycle.client"].sudo()
        client = (
            self.env["res.partner"]
            .with_user(self.salesman)
            .create({"name": "Brand new", "is_company": True})
        )
        user = new_test_user(self.env, login="lifecycle_new_user")
        self.env.cr.precommit.run()  # what the commit runs
        self.assertEqual(self.stage_of(client), "target")
        self.assertEqual(client.lifecycle_history_ids.stage_to_id, self.stage["target"])
        # a user's partner is not a client: no row
        self.assertFalse(Client.search([("partner_id", "=", user.partner_id.id)]))
        # still queued for the other companies
        self.assertTrue(
            self.env["crm.lifecycle.queue"]
            .sudo()
            .search([("partner_id", "=", client.id)])
        )

    # ------------------------------------------------------------------
    # Stages from the facts
    # ------------------------------------------------------------------
    @freeze_time("2026-03-01")
    def test_won_opportunity_not_paid_is_opportunity(self):
        client = self.create_client("Won")
        lead = self.lead(client, lead_type="opportunity", expected_revenue=1000)
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "opportunity")
        lead.action_set_won()
        # winning queues the client
        self.env.cr.precommit.run()
        self.engine._process_queue()
        self.assertEqual(client.won_opportunity_count, 1)
        self.assertEqual(client.open_opportunity_count, 0)
        self.assertEqual(self.stage_of(client), "opportunity")
        # paid: a customer
        self.paid_invoice(client, 1000.0, "2026-02-28")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "new_customer")

    def test_first_stage_dates_from_the_facts(self):
        buyer = self.create_client("Buyer")
        churned = self.create_client("Churned")
        with freeze_time("2026-03-01"):
            self.paid_invoice(buyer, 100.0, "2026-01-10")
            self.paid_invoice(churned, 100.0, "2025-01-01")
            self.recompute(buyer | churned)
            self.assertEqual(buyer.lifecycle_stage_date, datetime(2026, 1, 10))
            self.assertEqual(buyer.lifecycle_stage_days, 50)
            # lost after 365 days without a purchase: since 2026-01-02
            self.assertEqual(self.stage_of(churned), "lost")
            self.assertEqual(churned.lifecycle_stage_date, datetime(2026, 1, 2))
        with freeze_time("2026-03-05 10:00:00"):
            # a later change is dated when it happens
            self.paid_invoice(buyer, 100.0, "2026-03-05")
            self.recompute(buyer)
            self.assertEqual(self.stage_of(buyer), "repeat_customer")
            self.assertEqual(buyer.lifecycle_stage_date, datetime(2026, 3, 5, 10))

    # ------------------------------------------------------------------
    # Wording and widgets
    # ------------------------------------------------------------------
    def test_wording_and_client_domain_widget(self):
        field = self.env["res.config.settings"]._fields[
            "lifecycle_salesperson_override"
        ]
        self.assertEqual(field.string, "Salespeople may set their clients' stage")
        wizard = self.env.ref("crm_lifecycle.crm_lifecycle_stage_wizard_view_form")
        self.assertIn("will be locked", wizard.arch)
        self.assertNotIn("The stage is locked", wizard.arch)
        playbook = self.env.ref("crm_lifecycle.crm_lifecycle_playbook_view_form")
        node = etree.fromstring(playbook.arch).xpath("//field[@name='filter_domain']")
        self.assertEqual(node[0].get("widget"), "crm_lifecycle_client_domain")


@tagged("post_install", "-at_install")
class TestStageBoardUi(HttpCase):
    """The lifecycle board and the playbook form in headless Chromium."""

    def check(self, url, ready, steps):
        self.browser_js(
            url,
            CHECK_TEMPLATE % steps,
            ready=f"!!document.querySelector({js_text(ready)})",
            login="admin",
        )

    def test_board_quick_create_and_column_menu(self):
        loyal = self.env.ref("crm_lifecycle.stage_loyal")
        self.check(
            "/odoo/action-crm_lifecycle.res_partner_action_lifecycle",
            KANBAN_READY,
            f"""
            // the column is found again after each step: the board may render
            // its groups again meanwhile (counters, progress bars)
            const column = () => [...document.querySelectorAll('.o_kanban_group')].find(
                (group) => group.querySelector('.o_column_title')
                    ?.innerText.startsWith({js_text(loyal.name)})
            );
            // the column menu: .o_kanban_config on 18.0, .o_group_config on 19.0
            const menuSelector =
                '.o-dropdown--kanban-config-menu, .o-dropdown--group-config-menu';
            column().querySelector('.o_kanban_config button, .o_group_config button')
                .click();
            const menu = await waitFor(menuSelector);
            await expectText(menuSelector, 'Fold');
            if (menu.innerText.includes('Archive')) {{
                throw new Error(`the column menu offers: ${{menu.innerText}}`);
            }}
            // close the menu before using the column
            document.body.dispatchEvent(
                new KeyboardEvent('keydown', {{key: 'Escape', bubbles: true}})
            );
            const closed = Date.now();
            while (document.querySelector(menuSelector)) {{
                if (Date.now() - closed > 20000) {{
                    throw new Error('the column menu stays open');
                }}
                await sleep(50);
            }}
            column().querySelector('.o_kanban_quick_add').click();
            const input = await waitFor(
                '.o_kanban_quick_create .o_field_widget[name=display_name] input'
            );
            input.value = 'Quick Board Client';
            input.dispatchEvent(new Event('input', {{bubbles: true}}));
            input.dispatchEvent(new Event('change', {{bubbles: true}}));
            await click('.o_kanban_quick_create .o_kanban_add');
            await expectText('.o_kanban_record', 'Quick Board Client');
            const start = Date.now();
            while (![...document.querySelectorAll('.o_kanban_record')].some(
                (card) => card.innerText.includes('Quick Board Client')
                    && card.querySelector('.fa-lock'))) {{
                if (Date.now() - start > 20000) {{
                    throw new Error('the new card shows no lock');
                }}
                await sleep(100);
            }}
            // the board opens a new quick create after each one: discard it, a
            // form left in edition fails the browser check
            const discard = Date.now();
            while (document.querySelector('.o_kanban_quick_create')) {{
                document.querySelector('.o_kanban_quick_create .o_kanban_cancel')
                    ?.click();
                if (Date.now() - discard > 20000) {{
                    throw new Error('the quick create stays open');
                }}
                await sleep(100);
            }}
            """,
        )
        client = self.env["res.partner"].search([("name", "=", "Quick Board Client")])
        self.assertEqual(client.lifecycle_stage_id, loyal)
        self.assertTrue(client.lifecycle_stage_locked)
        self.assertEqual(client.lifecycle_history_ids.reason, "manual")

    def test_playbook_filter_counts_clients(self):
        playbook = self.env.ref("crm_lifecycle.playbook_b2b_retention")
        domain = playbook._get_filter_domain()
        Partner = self.env["res.partner"]
        Partner.create([{"name": "Playbook client", "is_company": True}])
        clients = Partner.search_count([*domain, ("is_lifecycle_client", "=", True)])
        self.assertTrue(0 < clients < Partner.search_count(domain))
        self.check(
            f"/odoo/action-crm_lifecycle.crm_lifecycle_playbook_action/{playbook.id}",
            FORM_READY,
            f"""
            await expectText(
                '.o_field_widget[name=filter_domain]', {js_text(f"{clients} record(s)")}
            );
            """,
        )
