# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged

from .common import LifecycleCase


@tagged("post_install", "-at_install")
class TestLifecycleOverride(LifecycleCase):
    def set_stage(self, partner, stage, reason="Recommended us twice", user=None):
        wizard_model = self.env["crm.lifecycle.stage.wizard"].with_user(
            user or self.sales_manager
        )
        form = Form(wizard_model.with_context(default_partner_ids=partner.ids))
        form.stage_id = stage
        form.reason = reason
        form.save().action_apply()

    @freeze_time("2026-03-01")
    def test_manual_stage_is_kept_until_new_purchase(self):
        client = self.create_client("Advocate")
        self.paid_invoice(client, 1000.0, "2026-01-01")
        self.recompute(client)
        self.set_stage(client, self.stage["advocate"])
        self.assertEqual(self.stage_of(client), "advocate")
        self.assertTrue(client.lifecycle_stage_locked)
        manual = self.last_history(client)
        self.assertEqual(
            (manual.reason, manual.note, manual.user_id),
            ("manual", "Recommended us twice", self.sales_manager),
        )
        # the rules say new_customer, the person said advocate
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "advocate")
        self.assertEqual(len(client.lifecycle_history_ids.filtered("stage_to_id")), 2)
        # a new purchase is the event that ends the override (Settings)
        self.paid_invoice(client, 500.0, "2026-02-28")
        self.recompute(client)
        self.assertFalse(client.lifecycle_stage_locked)
        self.assertEqual(self.stage_of(client), "repeat_customer")
        self.assertEqual(self.last_history(client).reason, "event")

    @freeze_time("2026-03-01")
    def test_manual_stage_only_unlocked_by_hand(self):
        self.company.lifecycle_unlock_on = "never"
        client = self.create_client("Kept")
        self.set_stage(client, self.stage["advocate"])
        self.paid_invoice(client, 500.0, "2026-02-28")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "advocate")
        client.with_user(self.sales_manager).action_lifecycle_unlock()
        self.assertFalse(client.lifecycle_stage_locked)
        self.assertEqual(self.stage_of(client), "new_customer")

    def test_board_move_goes_through_override(self):
        client = self.create_client("Dragged")
        self.recompute(client)
        client.with_user(self.sales_manager).write(
            {"lifecycle_stage_id": self.stage["loyal"].id}
        )
        self.assertEqual(self.stage_of(client), "loyal")
        self.assertTrue(client.lifecycle_stage_locked)
        self.assertEqual(self.last_history(client).reason, "manual")

    def test_salesperson_rights(self):
        client = self.create_client("Mine")
        self.recompute(client)
        # reading works for the lowest sales group
        as_salesman = client.with_user(self.salesman)
        self.assertEqual(as_salesman.lifecycle_stage_id.code, "target")
        self.assertEqual(as_salesman.purchase_count, 0)
        with self.assertRaises(AccessError):
            self.set_stage(client, self.stage["advocate"], user=self.salesman)
        with self.assertRaises(AccessError):
            self.env["crm.lifecycle.stage"].with_user(self.salesman).create(
                {"name": "Mine", "code": "mine"}
            )
        with self.assertRaises(AccessError):
            self.stage["loyal"].with_user(self.salesman).rule_domain = "[]"
        # Settings may let salespeople set the stage of their own clients
        self.company.lifecycle_salesperson_override = True
        self.set_stage(client, self.stage["advocate"], user=self.salesman)
        self.assertEqual(self.stage_of(client), "advocate")
        other = self.create_client("Not mine", user_id=self.sales_manager.id)
        with self.assertRaises(AccessError):
            self.set_stage(other, self.stage["advocate"], user=self.salesman)

    def test_reason_is_required(self):
        client = self.create_client("No reason")
        wizard = self.env["crm.lifecycle.stage.wizard"].create(
            {
                "partner_ids": client.ids,
                "stage_id": self.stage["advocate"].id,
                "reason": "   ",
            }
        )
        with self.assertRaises(UserError):
            wizard.action_apply()
        self.assertFalse(client.lifecycle_stage_locked)

    def test_invalid_rule_rejected(self):
        with self.assertRaises(ValidationError):
            self.stage["advocate"].rule_domain = "[('no_such_field', '=', 1)]"
        with self.assertRaises(ValidationError):
            self.stage["advocate"].rule_domain = "not a domain"
        self.stage["advocate"].rule_domain = "[('paid_revenue', '>', 5000)]"

    @freeze_time("2026-03-01")
    def test_custom_rule_domain(self):
        self.stage["advocate"].rule_domain = "[('paid_revenue', '>=', 5000)]"
        big = self.create_client("Big")
        small = self.create_client("Small")
        self.paid_invoice(big, 6000.0, "2026-02-01")
        self.paid_invoice(small, 100.0, "2026-02-01")
        self.recompute(big | small)
        self.assertEqual(self.stage_of(big), "advocate")
        self.assertEqual(self.stage_of(small), "new_customer")

    @freeze_time("2026-03-01")
    def test_rule_domain_on_the_client_itself(self):
        """Rules are domains over the client rows: the client's own fields
        are reached through partner_id."""
        industry = self.env["res.partner.industry"].create({"name": "Fleets"})
        self.stage["advocate"].rule_domain = repr(
            [("purchase_count", ">=", 1), ("partner_id.industry_id", "=", industry.id)]
        )
        fleet = self.create_client("Fleet", industry_id=industry.id)
        shop = self.create_client("Shop")
        self.paid_invoice(fleet, 100.0, "2026-02-01")
        self.paid_invoice(shop, 100.0, "2026-02-01")
        self.recompute(fleet | shop)
        self.assertEqual(self.stage_of(fleet), "advocate")
        self.assertEqual(self.stage_of(shop), "new_customer")
        with self.assertRaises(ValidationError):
            self.stage["advocate"].rule_domain = "[('industry_id', '=', 1)]"

    def test_invalid_thresholds_rejected(self):
        with self.assertRaises(ValidationError):
            self.company.lifecycle_dormant_factor = 1.0
        with self.assertRaises(ValidationError):
            self.company.lifecycle_default_interval_days = 0
