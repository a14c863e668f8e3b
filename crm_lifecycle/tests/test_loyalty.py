# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .. import series
from .common import LifecycleCase


@tagged("post_install", "-at_install")
class TestLoyalty(LifecycleCase):
    def level_history(self, partner):
        return self.env["crm.lifecycle.history"].search(
            [
                ("partner_id", "=", partner.id),
                ("company_id", "=", self.company.id),
                ("reason", "=", "loyalty"),
            ],
            order="id",
        )

    @freeze_time("2026-03-01")
    def test_bronze_to_gold_on_payment_not_on_posting(self):
        client = self.create_client("Rising")
        contact = self.env["res.partner"].create(
            {"name": "Buyer", "parent_id": client.id}
        )
        self.paid_invoice(client, 2000.0, "2025-12-01")
        self.recompute(client)
        self.assertEqual(client.loyalty_level_id, self.level["bronze"])
        self.assertEqual(str(client.loyalty_level_since), "2026-03-01")
        # posted, not paid: the level does not move
        invoices = self.invoice(client, 2000.0, "2026-01-10") + self.invoice(
            client, 2000.0, "2026-02-10"
        )
        self.recompute(client)
        self.assertEqual(client.loyalty_level_id, self.level["bronze"])
        for invoice in invoices:
            self.pay(invoice, date="2026-02-20")
        self.recompute(client)
        # 6000 paid in 12 months, 3 purchases, nothing overdue: Gold at once
        self.assertEqual(client.loyalty_level_id, self.level["gold"])
        self.assertEqual(contact.loyalty_level_id, self.level["gold"])
        history = self.level_history(client)
        self.assertEqual(
            [(h.loyalty_from_id, h.loyalty_to_id) for h in history],
            [
                (self.level["bronze"].browse(), self.level["bronze"]),
                (self.level["bronze"], self.level["gold"]),
            ],
        )
        self.assertIn("Bronze → Gold", client.message_ids[0].body)
        # leads show the client's level
        lead = self.lead(contact)
        self.assertEqual(lead.partner_loyalty_level_id, self.level["gold"])

    def test_overdue_ratio_holds_the_level_back(self):
        with freeze_time("2026-03-01"):
            client = self.create_client("Late payer")
            for date in ("2025-11-01", "2025-12-01", "2026-01-02"):
                self.paid_invoice(client, 2000.0, date)
            # 2000 overdue for 6000 paid: ratio 0.33, above Gold's 0.2 and
            # below Silver's 0.5
            self.invoice(client, 2000.0, "2026-02-01")
            self.recompute(client)
        self.assertEqual(client.loyalty_level_id, self.level["silver"])

    def test_downgrade_waits_for_the_grace_period(self):
        client = self.create_client("Fading")
        with freeze_time("2025-04-01"):
            for date in ("2025-01-10", "2025-02-10", "2025-03-10"):
                self.paid_invoice(client, 2000.0, date)
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["gold"])
        with freeze_time("2026-02-01"):
            # 2000 left in the window of 12 months: meets only Silver
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["gold"])
            self.assertEqual(str(client.loyalty_below_since), "2026-02-01")
        with freeze_time("2026-07-31"):
            # Gold's grace is 6 months: not over yet
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["gold"])
        with freeze_time("2026-08-01"):
            self.recompute(client)
            # nothing paid in 12 months any more: falls to Bronze
            self.assertEqual(client.loyalty_level_id, self.level["bronze"])
            self.assertFalse(client.loyalty_below_since)
            self.assertEqual(str(client.loyalty_level_since), "2026-08-01")
        self.assertEqual(
            self.level_history(client)[-1].loyalty_from_id, self.level["gold"]
        )

    def test_requalifying_cancels_the_grace_period(self):
        client = self.create_client("Back on track")
        with freeze_time("2025-04-01"):
            for date in ("2025-01-10", "2025-02-10", "2025-03-10"):
                self.paid_invoice(client, 2000.0, date)
            self.recompute(client)
        with freeze_time("2026-02-01"):
            self.recompute(client)
            self.assertTrue(client.loyalty_below_since)
            self.paid_invoice(client, 5000.0, "2026-01-25")
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["gold"])
            self.assertFalse(client.loyalty_below_since)
        with freeze_time("2026-08-15"):
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["gold"])

    def test_invalid_thresholds_are_rejected(self):
        Level = self.env["crm.loyalty.level"]
        base = {"company_id": self.company.id, "window_months": 12}
        cases = {
            "negative": {"sequence": 40, "min_paid_revenue": -1.0},
            "window": {"sequence": 40, "min_paid_revenue": 9000.0, "window_months": 0},
            "falling revenue": {
                "sequence": 40,
                "min_paid_revenue": 3000.0,
                "min_purchase_count": 5,
            },
            "same sequence": {"sequence": 30, "min_paid_revenue": 9000.0},
            "overlap": {
                "sequence": 40,
                "min_paid_revenue": 5000.0,
                "min_purchase_count": 3,
                "max_overdue_ratio": 0.1,
                "grace_months": 6,
            },
            "looser discipline": {
                "sequence": 40,
                "min_paid_revenue": 9000.0,
                "min_purchase_count": 4,
                "max_overdue_ratio": 0.5,
            },
        }
        for case, values in cases.items():
            with self.subTest(case=case), self.assertRaises(ValidationError):
                Level.create({**base, "name": case, **values})
        # editing an existing level is checked too, and nothing is lost
        with self.assertRaises(ValidationError):
            self.level["silver"].min_paid_revenue = 6000.0
        self.assertEqual(self.level["silver"].min_paid_revenue, 1000.0)
        platinum = Level.create(
            {
                **base,
                "name": "Platinum",
                "sequence": 40,
                "min_paid_revenue": 9000.0,
                "min_purchase_count": 4,
                "max_overdue_ratio": 0.1,
            }
        )
        self.assertEqual(platinum.currency_id, self.company.currency_id)

    def test_level_form(self):
        form = Form(self.env["crm.loyalty.level"])
        form.name = "Diamond"
        form.sequence = 50
        form.min_paid_revenue = 20000.0
        form.min_purchase_count = 5
        form.max_overdue_ratio = 0.1
        level = form.save()
        self.assertEqual(level.company_id, self.company)
        self.assertEqual(level.window_months, 12)

    @freeze_time("2026-03-01")
    def test_pricelist_follows_the_level_when_enabled(self):
        Pricelist = self.env["product.pricelist"]
        gold_list = Pricelist.create({"name": "Gold prices"})
        chosen = Pricelist.create({"name": "Negotiated"})
        # 19.0: no pricelist on any client without the Pricelists feature,
        # which a level's pricelist switches on
        Groups = self.env["res.groups"]
        if series.MAJOR >= 19:
            self.env.ref("base.group_user")._remove_group(
                self.env.ref(series.PRICELIST_FEATURE)
            )
            self.assertFalse(Groups._is_feature_enabled(series.PRICELIST_FEATURE))
        self.level["gold"].pricelist_id = gold_list
        if series.MAJOR >= 19:
            self.assertTrue(Groups._is_feature_enabled(series.PRICELIST_FEATURE))
        default = self.create_client("Default").property_product_pricelist

        def gold_client(name, **values):
            client = self.create_client(name, **values)
            for date in ("2025-12-01", "2026-01-05", "2026-02-05"):
                self.paid_invoice(client, 2000.0, date)
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["gold"])
            return client

        # disabled (the default): untouched
        self.assertFalse(self.company.lifecycle_loyalty_pricelist)
        untouched = gold_client("Untouched")
        self.assertEqual(untouched.property_product_pricelist, default)
        self.company.lifecycle_loyalty_pricelist = True
        applied = gold_client("Applied")
        self.assertEqual(applied.property_product_pricelist, gold_list)
        # a pricelist chosen by a person is kept, and the chatter says so
        kept = gold_client("Kept", property_product_pricelist=chosen.id)
        self.assertEqual(kept.property_product_pricelist, chosen)
        self.assertIn("Negotiated", kept.message_ids[0].body)

    def test_multi_company_levels(self):
        other = self.setup_other_company()["company"]
        other_levels = self.create_levels(other)
        with freeze_time("2026-03-01"):
            client = self.create_client("Shared")
            for date in ("2025-12-01", "2026-01-05", "2026-02-05"):
                self.paid_invoice(client, 2000.0, date)
            self.engine._recompute(client, self.company + other)
        self.assertEqual(client.loyalty_level_id, self.level["gold"])
        self.assertFalse(client.with_company(other).loyalty_level_id)
        self.assertFalse(client.with_company(other).rfm_score)
        # a level of another company is not visible here
        visible = (
            self.env["crm.loyalty.level"]
            .with_user(self.salesman)
            .search([("id", "in", other_levels["gold"].ids)])
        )
        self.assertFalse(visible)

    def test_level_and_segment_on_client_and_lead_views(self):
        Partner = self.env["res.partner"].with_user(self.salesman)
        list_view = self.env.ref("crm_lifecycle.res_partner_view_list_lifecycle")
        views = Partner.get_views(
            [(False, "form"), (False, "kanban"), (list_view.id, "list")]
        )["views"]
        for view_type in ("form", "kanban", "list"):
            with self.subTest(view=view_type):
                arch = views[view_type]["arch"]
                self.assertIn('name="loyalty_level_id"', arch)
                self.assertIn('name="rfm_segment_id"', arch)
        lead_views = (
            self.env["crm.lead"]
            .with_user(self.salesman)
            .get_views([(False, "form"), (False, "kanban")])["views"]
        )
        self.assertIn('name="partner_loyalty_level_id"', lead_views["form"]["arch"])
        self.assertIn('name="partner_rfm_segment_id"', lead_views["form"]["arch"])
        self.assertIn('name="partner_loyalty_level_id"', lead_views["kanban"]["arch"])

    def test_errors_in_the_users_language(self):
        self.env["res.lang"]._activate_lang("ru_RU")
        self.env["res.lang"]._activate_lang("es_ES")
        self.env["ir.module.module"].search(
            [("name", "=", "crm_lifecycle")]
        )._load_module_terms(["crm_lifecycle"], ["ru_RU", "es_ES"], overwrite=True)
        expected = {
            "ru_RU": "пороговые значения не могут быть отрицательными",
            "es_ES": "Nivel Bad: los umbrales no pueden ser negativos",
        }
        for lang, text in expected.items():
            with self.subTest(lang=lang), self.assertRaises(ValidationError) as error:
                self.env["crm.loyalty.level"].with_context(lang=lang).create(
                    {"name": "Bad", "sequence": 40, "min_paid_revenue": -1.0}
                )
            self.assertIn(text, str(error.exception))
        # the default stages and levels read in the user's language
        gold = self.env.ref("crm_lifecycle.loyalty_level_gold").sudo()
        self.assertEqual(gold.with_context(lang="es_ES").name, "Oro")
        self.assertEqual(
            self.stage["new_customer"].with_context(lang="ru_RU").name,
            "Новый клиент",
        )

    def test_new_company_gets_the_default_levels(self):
        euro = self.env.ref("base.EUR")
        euro.active = True
        self.env["res.currency.rate"].create(
            {"currency_id": euro.id, "rate": 0.5, "company_id": False}
        )
        company = self.env["res.company"].create(
            {"name": "New branch", "currency_id": euro.id}
        )
        levels = (
            self.env["crm.loyalty.level"]
            .sudo()
            .search([("company_id", "=", company.id)])
        )
        defaults = [
            self.env.ref(f"crm_lifecycle.loyalty_level_{name}").sudo()
            for name in ("bronze", "silver", "gold", "platinum")
        ]
        self.assertEqual(levels.mapped("name"), [d.name for d in defaults])
        self.assertEqual(levels.currency_id, euro)
        self.assertFalse(levels.pricelist_id)
        # amounts in the new company's currency
        gold = levels.filtered(lambda level: level.sequence == defaults[2].sequence)
        self.assertAlmostEqual(
            gold.min_paid_revenue,
            defaults[2].currency_id._convert(
                defaults[2].min_paid_revenue, euro, company, fields.Date.today()
            ),
        )
        self.assertNotEqual(gold.min_paid_revenue, defaults[2].min_paid_revenue)
