# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import timedelta

from lxml import etree

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged
from odoo.tools import format_amount
from odoo.tools.safe_eval import safe_eval

from .common import LifecycleCase


@tagged("post_install", "-at_install")
class TestHandover(LifecycleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Wizard = cls.env["crm.lifecycle.handover.wizard"]

        def salesperson(login):
            return new_test_user(
                cls.env,
                login=login,
                name=login.replace("_", " ").title(),
                groups="sales_team.group_sale_salesman",
                company_id=cls.company.id,
            )

        cls.user_a = salesperson("handover_alice")
        cls.user_b = salesperson("handover_bob")
        cls.user_c = salesperson("handover_carol")
        cls.user_d = salesperson("handover_dave")
        cls.todo = cls.env.ref("mail.mail_activity_data_todo")
        cls.won_stage = cls.env["crm.stage"].search([("is_won", "=", True)], limit=1)

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def wizard(self, user=None, **values):
        return self.Wizard.with_user(user or self.sales_manager).create(
            {"from_user_id": self.user_a.id, **values}
        )

    def activity(self, record, user, summary):
        return record.activity_schedule(
            act_type_xmlid="mail.mail_activity_data_todo",
            user_id=user.id,
            summary=summary,
        )

    def followers(self, record):
        return self.env["mail.followers"].search(
            [("res_model", "=", record._name), ("res_id", "=", record.id)]
        )

    def counts(self, record):
        return {
            name: record[name]
            for name in (
                "client_count",
                "lead_count",
                "activity_count",
                "follower_count",
            )
        }

    def amount(self, value):
        """An amount as the chatter stores it (HTML, no-break spaces)."""
        text = format_amount(self.env, value, self.company.currency_id)
        return text.replace("\N{NO-BREAK SPACE}", "&nbsp;")

    def portfolio(self):
        """Alice's portfolio, with Carol's clients and a won and a lost deal
        that must stay where they are."""
        overdue_date = fields.Date.today() - timedelta(days=60)
        big = self.create_client("Big Client", user_id=self.user_a.id)
        contact = self.env["res.partner"].create(
            {"name": "Big Contact", "parent_id": big.id, "user_id": self.user_a.id}
        )
        small = self.create_client("Small Client", user_id=self.user_a.id)
        carol_client = self.create_client("Carol Client", user_id=self.user_c.id)
        self.invoice(big, 1234.0, overdue_date)
        self.paid_invoice(big, 2000.0, overdue_date)
        notes = "<p>Prefers calls on Monday</p>"
        big.with_company(self.company).relationship_notes = notes
        opportunity = self.lead(
            big,
            "opportunity",
            user_id=self.user_a.id,
            expected_revenue=5600.0,
            probability=40,
        )
        orphan_lead = self.env["crm.lead"].create(
            {"name": "Orphan lead", "type": "lead", "user_id": self.user_a.id}
        )
        won = self.lead(small, "opportunity", user_id=self.user_a.id)
        won.action_set_won()
        lost = self.lead(small, "opportunity", user_id=self.user_a.id)
        lost.action_set_lost()
        carol_lead = self.lead(carol_client, "opportunity", user_id=self.user_c.id)
        big.message_post(
            body="Called about the renewal",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        activities = (
            self.activity(big, self.user_a, "Send the catalogue")
            | self.activity(opportunity, self.user_a, "Prepare the quote")
            | self.activity(orphan_lead, self.user_a, "Qualify")
        )
        untouched_activities = (
            self.activity(carol_client, self.user_c, "Carol's call")
            # Alice's task on Carol's client is not in Alice's portfolio
            | self.activity(carol_client, self.user_a, "Help Carol")
            | self.activity(carol_lead, self.user_c, "Carol's quote")
        )
        (big | small | contact | carol_client).message_subscribe(
            partner_ids=self.user_a.partner_id.ids
        )
        opportunity.message_subscribe(partner_ids=self.user_a.partner_id.ids)
        # Bob already follows Small Client (notes only): his entry is kept
        # with Alice's subtypes added, hers is removed
        small.message_subscribe(
            partner_ids=self.user_b.partner_id.ids,
            subtype_ids=self.env.ref("mail.mt_note").ids,
        )
        self.recompute(big | small | carol_client)
        return {
            "big": big,
            "contact": contact,
            "small": small,
            "carol_client": carol_client,
            "opportunity": opportunity,
            "orphan_lead": orphan_lead,
            "won": won,
            "lost": lost,
            "carol_lead": carol_lead,
            "activities": activities,
            "untouched_activities": untouched_activities,
        }

    def snapshot(self, data):
        """Who owns and follows everything in ``data``."""
        records = [r for r in data.values() if not isinstance(r, dict)]
        return [
            (
                record._name,
                tuple(record.ids),
                tuple(record.mapped("user_id").ids),
                tuple(
                    sorted(
                        (f.res_id, f.partner_id.id, tuple(f.subtype_ids.ids))
                        for rec in record
                        if "message_follower_ids" in rec._fields
                        for f in self.followers(rec)
                    )
                ),
            )
            for record in records
        ]

    # ------------------------------------------------------------------
    # Tests
    # ------------------------------------------------------------------
    def test_hand_over_to_salesperson(self):
        data = self.portfolio()
        wizard = self.wizard(to_user_id=self.user_b.id, note="Alice left in May")
        # Alice follows what she was given tasks on too (orphan lead)
        expected = {
            "client_count": 2,
            "lead_count": 2,
            "activity_count": 3,
            "follower_count": 5,
        }
        self.assertEqual(self.counts(wizard), expected)

        action = wizard.action_hand_over()
        handover = self.env["crm.lifecycle.handover"].browse(action["res_id"])

        # everything of Alice's portfolio is Bob's now
        for key in ("big", "contact", "small", "opportunity", "orphan_lead"):
            self.assertEqual(data[key].user_id, self.user_b, key)
        self.assertEqual(data["activities"].user_id, self.user_b)
        bob, alice = self.user_b.partner_id, self.user_a.partner_id
        for key in ("big", "contact", "small", "opportunity"):
            partners = self.followers(data[key]).partner_id
            self.assertIn(bob, partners, key)
            self.assertNotIn(alice, partners, key)
        small_bob = self.followers(data["small"]).filtered(
            lambda f: f.partner_id == bob
        )
        self.assertEqual(len(small_bob), 1)
        self.assertIn(self.env.ref("mail.mt_comment"), small_bob.subtype_ids)
        self.assertIn(self.env.ref("mail.mt_note"), small_bob.subtype_ids)
        # nothing else moved: Carol's things, closed deals, Alice elsewhere
        self.assertEqual(data["won"].user_id, self.user_a)
        self.assertEqual(
            data["lost"].with_context(active_test=False).user_id, self.user_a
        )
        self.assertEqual(data["carol_client"].user_id, self.user_c)
        self.assertEqual(data["carol_lead"].user_id, self.user_c)
        self.assertEqual(
            data["untouched_activities"].mapped("user_id"),
            self.user_c | self.user_a,
        )
        self.assertEqual(
            data["untouched_activities"]
            .filtered(lambda a: a.summary == "Help Carol")
            .user_id,
            self.user_a,
        )
        self.assertIn(alice, self.followers(data["carol_client"]).partner_id)

        # the dossier on each client, as HTML
        for client in data["big"] | data["small"]:
            dossier = client.message_ids.filtered(
                lambda m: "Portfolio handover" in (m.body or "")
            )
            self.assertEqual(len(dossier), 1, client.name)
            self.assertIn("<li><strong>Lifecycle stage</strong>", dossier.body)
            self.assertIn("Alice left in May", dossier.body)
            self.assertEqual(dossier.author_id, self.sales_manager.partner_id)
        body = (
            data["big"]
            .message_ids.filtered(lambda m: "Portfolio handover" in (m.body or ""))
            .body
        )
        stage = data["big"].with_company(self.company).lifecycle_stage_id
        self.assertTrue(stage)
        self.assertIn(stage.name, body)
        self.assertIn("<strong>Loyalty level</strong>: Bronze", body)
        self.assertIn(self.amount(5600.0), body)
        self.assertIn("<strong>Open receivable</strong>: " + self.amount(1234.0), body)
        self.assertIn(
            "<strong>Overdue receivable</strong>: " + self.amount(1234.0), body
        )
        self.assertIn("Called about the renewal", body)
        self.assertIn("Prepare the quote", body)
        self.assertIn("<p>Prefers calls on Monday</p>", body)
        self.assertNotIn("&lt;", body)

        # the audit record
        self.assertEqual(self.counts(handover), expected)
        self.assertEqual(
            (handover.user_id, handover.from_user_id, handover.to_user_id),
            (self.sales_manager, self.user_a, self.user_b),
        )
        self.assertEqual(handover.partner_ids, data["big"] | data["small"])
        self.assertEqual(handover.company_id, self.company)
        self.assertEqual(handover.note, "Alice left in May")
        # a second run finds nothing left
        with self.assertRaisesRegex(UserError, "nothing to hand over"):
            self.wizard(to_user_id=self.user_b.id).action_hand_over()

    def test_dry_run_changes_nothing(self):
        data = self.portfolio()
        before = self.snapshot(data)
        messages = self.env["mail.message"].search_count([])
        wizard = self.wizard(to_user_id=self.user_b.id)
        action = wizard.action_dry_run()
        self.assertEqual(
            (action["res_model"], action["res_id"]), (wizard._name, wizard.id)
        )
        dry_counts = self.counts(wizard)
        self.assertEqual(self.snapshot(data), before)
        self.assertEqual(self.env["mail.message"].search_count([]), messages)
        self.assertFalse(self.env["crm.lifecycle.handover"].search([]))

        # the scope checkboxes change the counts live (Form = onchange)
        form = Form(self.Wizard.with_user(self.sales_manager))
        form.from_user_id = self.user_a
        form.to_user_id = self.user_b
        self.assertEqual(form.client_count, dry_counts["client_count"])
        form.include_followers = False
        self.assertEqual(form.follower_count, 0)
        self.assertEqual(form.lead_count, dry_counts["lead_count"])

        handover_action = wizard.action_hand_over()
        handover = self.env["crm.lifecycle.handover"].browse(handover_action["res_id"])
        self.assertEqual(self.counts(handover), dry_counts)
        self.assertEqual(
            dry_counts,
            {
                "client_count": 2,
                "lead_count": 2,
                "activity_count": 3,
                "follower_count": 5,
            },
        )

    def test_open_from_user_form(self):
        action = self.env.ref("crm_lifecycle.crm_lifecycle_handover_wizard_action")
        self.assertEqual(action.binding_model_id.model, "res.users")
        self.user_a.action_archive()
        wizard = self.Wizard.with_user(self.sales_manager).with_context(
            active_model="res.users", active_id=self.user_a.id
        )
        form = Form(wizard)
        self.assertEqual(form.from_user_id, self.user_a)
        form.to_user_id = self.user_b
        self.assertEqual(form.save().from_user_id, self.user_a)

    def test_scope_checkboxes(self):
        data = self.portfolio()
        wizard = self.wizard(
            to_user_id=self.user_b.id,
            include_clients=False,
            include_activities=False,
            include_followers=False,
        )
        handover = self.env["crm.lifecycle.handover"].browse(
            wizard.action_hand_over()["res_id"]
        )
        self.assertEqual(
            self.counts(handover),
            {
                "client_count": 0,
                "lead_count": 2,
                "activity_count": 0,
                "follower_count": 0,
            },
        )
        self.assertEqual(data["opportunity"].user_id, self.user_b)
        self.assertEqual(data["big"].user_id, self.user_a)
        self.assertEqual(data["activities"].user_id, self.user_a)
        self.assertIn(self.user_a.partner_id, self.followers(data["big"]).partner_id)
        self.assertFalse(
            data["big"].message_ids.filtered(
                lambda m: "Portfolio handover" in (m.body or "")
            )
        )

    def test_salesperson_cannot_hand_over(self):
        data = self.portfolio()
        before = self.snapshot(data)
        with self.assertRaises(AccessError):
            self.wizard(user=self.salesman, to_user_id=self.user_b.id)
        with self.assertRaises(AccessError):
            self.wizard(user=self.user_a, to_user_id=self.user_b.id)
        wizard = self.wizard(to_user_id=self.user_b.id)
        with self.assertRaises(AccessError):
            wizard.with_user(self.salesman).action_hand_over()
        with self.assertRaises(AccessError):
            self.env["crm.lifecycle.handover"].with_user(self.salesman).search([])
        self.assertEqual(self.snapshot(data), before)
        # a lifecycle manager without sales manager rights may
        lifecycle_manager = new_test_user(
            self.env,
            login="handover_lifecycle_manager",
            groups="sales_team.group_sale_salesman,crm_lifecycle.group_lifecycle_manager",
            company_id=self.company.id,
        )
        self.wizard(
            user=lifecycle_manager, to_user_id=self.user_b.id
        ).action_hand_over()
        self.assertEqual(data["opportunity"].user_id, self.user_b)
        self.assertEqual(
            self.env["crm.lifecycle.handover"]
            .with_user(lifecycle_manager)
            .search([])
            .user_id,
            lifecycle_manager,
        )

    def test_round_robin_across_team(self):
        clients = self.env["res.partner"]
        leads = self.env["crm.lead"]
        for index in range(4):
            client = self.create_client(f"Team Client {index}", user_id=self.user_a.id)
            clients |= client
            leads |= self.lead(client, "opportunity", user_id=self.user_a.id)
        orphans = self.env["crm.lead"].create(
            [
                {"name": f"Orphan {index}", "user_id": self.user_a.id}
                for index in range(2)
            ]
        )
        archived = new_test_user(
            self.env,
            login="handover_archived",
            groups="sales_team.group_sale_salesman",
            company_id=self.company.id,
        )
        team = self.env["crm.team"].create(
            {
                "name": "Handover Team",
                "member_ids": [
                    Command.set(
                        (self.user_b | self.user_d | self.user_a | archived).ids
                    )
                ],
            }
        )
        archived.active = False
        wizard = self.wizard(to_team_id=team.id)
        self.assertIn("Handover Bob: 2 clients, 3 leads", wizard.distribution)
        self.assertIn("Handover Dave: 2 clients, 3 leads", wizard.distribution)
        wizard.action_hand_over()

        self.assertEqual(len(clients.filtered(lambda c: c.user_id == self.user_b)), 2)
        self.assertEqual(len(clients.filtered(lambda c: c.user_id == self.user_d)), 2)
        for lead in leads:
            self.assertEqual(lead.user_id, lead.partner_id.user_id)
        self.assertEqual(orphans.user_id, self.user_b | self.user_d)
        self.assertEqual((leads | orphans).team_id, team)
        handover = self.env["crm.lifecycle.handover"].search(
            [("to_team_id", "=", team.id)]
        )
        self.assertEqual((handover.client_count, handover.lead_count), (4, 6))
        self.assertIn("Handover Bob: 2 clients, 3 leads", handover.note)

    def test_bad_input(self):
        self.portfolio()
        inactive = new_test_user(
            self.env,
            login="handover_gone",
            groups="sales_team.group_sale_salesman",
            company_id=self.company.id,
        )
        inactive.active = False
        lonely_team = self.env["crm.team"].create(
            {"name": "Only Alice", "member_ids": [Command.set(self.user_a.ids)]}
        )
        cases = {
            "themselves": ({"to_user_id": self.user_a.id}, "to themselves"),
            "receives the": ({}, "who receives"),
            "not both": (
                {"to_user_id": self.user_b.id, "to_team_id": lonely_team.id},
                "not both",
            ),
            "is archived": ({"to_user_id": inactive.id}, "is archived"),
            "no active member": ({"to_team_id": lonely_team.id}, "no active member"),
            "choose what": (
                {
                    "to_user_id": self.user_b.id,
                    "include_clients": False,
                    "include_leads": False,
                    "include_activities": False,
                    "include_followers": False,
                },
                "Choose what",
            ),
        }
        for case, (values, message) in cases.items():
            with self.subTest(case=case):
                wizard = self.wizard(**values)
                with self.assertRaisesRegex(UserError, message):
                    wizard.action_dry_run()
                with self.assertRaisesRegex(UserError, message):
                    wizard.action_hand_over()
        self.assertFalse(self.env["crm.lifecycle.handover"].search([]))
        # a salesperson without clients has nothing to hand over
        with self.assertRaisesRegex(UserError, "nothing to hand over"):
            self.wizard(
                from_user_id=self.user_d.id, to_user_id=self.user_b.id
            ).action_hand_over()

    def test_clients_of_archived_salespeople(self):
        data = self.portfolio()
        unassigned = self.create_client("Nobody's", user_id=False)
        Partner = self.env["res.partner"]
        clients = data["big"] | data["small"] | data["carol_client"] | unassigned
        in_scope = [("id", "in", clients.ids)]
        self.assertFalse(
            Partner.search([*in_scope, ("lifecycle_salesperson_archived", "=", True)])
        )
        self.user_a.action_archive()
        self.assertTrue(data["big"].lifecycle_salesperson_archived)
        self.assertFalse(unassigned.lifecycle_salesperson_archived)
        self.assertEqual(
            Partner.search([*in_scope, ("lifecycle_salesperson_archived", "=", True)]),
            data["big"] | data["small"],
        )
        self.assertEqual(
            Partner.search([*in_scope, ("lifecycle_salesperson_archived", "!=", True)]),
            data["carol_client"] | unassigned,
        )
        # the filter of the partner search view, as a sales manager sees it
        as_manager = Partner.with_user(self.sales_manager)
        arch = as_manager.get_view(view_type="search")["arch"]
        node = etree.fromstring(arch).xpath(
            "//filter[@name='lifecycle_salesperson_archived']"
        )[0]
        domain = safe_eval(node.get("domain"))
        self.assertEqual(
            as_manager.search([*in_scope, *domain]),
            data["big"] | data["small"],
        )
        # an archived salesperson's portfolio is handed over like any other
        self.wizard(to_user_id=self.user_b.id).action_hand_over()
        self.assertFalse(
            Partner.search([*in_scope, ("lifecycle_salesperson_archived", "=", True)])
        )

    def test_handover_log_per_company(self):
        other_company = self.env["res.company"].create({"name": "Other Handover Co"})
        Handover = self.env["crm.lifecycle.handover"].sudo()
        here = Handover.create(
            {"from_user_id": self.user_a.id, "to_user_id": self.user_b.id}
        )
        Handover.create(
            {
                "from_user_id": self.user_a.id,
                "to_user_id": self.user_b.id,
                "company_id": other_company.id,
            }
        )
        self.assertEqual(
            self.env["crm.lifecycle.handover"].with_user(self.sales_manager).search([]),
            here,
        )
        self.assertEqual(here.display_name, "Handover Alice → Handover Bob")

    def test_handover_stays_within_the_managers_companies(self):
        """The wizard works as superuser: a manager of this company only may
        not hand over the clients of another company."""
        other = self.setup_other_company()["company"]
        self.user_a.company_ids |= other
        self.user_b.company_ids |= other
        foreign = self.create_client(
            "Foreign Client", user_id=self.user_a.id, company_id=other.id
        )
        wizard = self.wizard(to_user_id=self.user_b.id, company_id=other.id)
        # the dry run shows nothing of that company
        self.assertEqual(wizard.client_count, 0)
        self.assertFalse(wizard.preview)
        for action in ("action_dry_run", "action_hand_over"):
            with self.assertRaisesRegex(UserError, "company_2"):
                getattr(wizard, action)()
        self.assertEqual(foreign.user_id, self.user_a)
        # a contact of the other company under a client of this company
        shared = self.create_client("Shared Client", user_id=self.user_a.id)
        contact = self.env["res.partner"].create(
            {
                "name": "Foreign Contact",
                "parent_id": shared.id,
                "company_id": other.id,
                "user_id": self.user_a.id,
            }
        )
        with self.assertRaisesRegex(UserError, "Foreign Contact"):
            self.wizard(to_user_id=self.user_b.id).action_hand_over()
        self.assertEqual((shared | contact).user_id, self.user_a)
        # a manager who works in both companies may (the shared client is a
        # client of the other company too)
        self.sales_manager.company_ids |= other
        self.wizard(to_user_id=self.user_b.id, company_id=other.id).action_hand_over()
        self.assertEqual((foreign | shared | contact).user_id, self.user_b)

    def test_dry_run_lists_what_would_move(self):
        data = self.portfolio()
        # Alice's own contact says she is its salesperson: it is no client
        self.user_a.partner_id.user_id = self.user_a
        wizard = self.wizard(to_user_id=self.user_b.id)
        wizard.action_dry_run()
        self.assertEqual(wizard.client_count, 2)
        preview = str(wizard.preview)
        for name in (
            "Big Client",
            "Small Client",
            data["opportunity"].name,
            "Orphan lead",
            "Send the catalogue on Big Client",
            "Qualify on Orphan lead",
        ):
            self.assertIn(name, preview)
        for name in (self.user_a.name, "Carol Client", "Help Carol"):
            self.assertNotIn(name, preview)
        self.wizard(to_user_id=self.user_b.id).action_hand_over()
        self.assertEqual(self.user_a.partner_id.user_id, self.user_a)
