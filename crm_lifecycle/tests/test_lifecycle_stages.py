# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from freezegun import freeze_time

from odoo.tests import tagged

from .common import LifecycleCase


@tagged("post_install", "-at_install")
class TestLifecycleStages(LifecycleCase):
    @freeze_time("2026-03-01")
    def test_pre_customer_stages(self):
        client = self.create_client("Pre-customer")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "target")

        lead = self.lead(client)
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "prospect")

        lead.convert_opportunity(client)
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "opportunity")
        self.assertEqual(client.open_opportunity_count, 1)

    @freeze_time("2026-03-01")
    def test_posted_is_not_paid(self):
        client = self.create_client("Posted only")
        self.lead(
            client, lead_type="opportunity", expected_revenue=5000, probability=40
        )
        invoice = self.invoice(client, 1000.0, "2026-02-20")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "opportunity")
        self.assertEqual(client.purchase_count, 0)
        self.assertEqual(client.receivable_open, 1000.0)
        self.assertAlmostEqual(client.pipeline_expected_revenue, 2000.0)

        self.pay(invoice, date="2026-02-25")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "new_customer")
        self.assertEqual(client.purchase_count, 1)
        self.assertEqual(client.paid_revenue, 1000.0)
        self.assertEqual(client.receivable_open, 0.0)
        self.assertEqual(client.avg_days_to_pay, 5.0)
        history = client.lifecycle_history_ids.filtered("stage_to_id")
        self.assertEqual(
            history.mapped("stage_to_id.code"), ["new_customer", "opportunity"]
        )
        self.assertEqual(set(history.mapped("reason")), {"rule"})
        self.assertIn("New Customer", client.message_ids[0].body)

    @freeze_time("2026-03-01")
    def test_partial_payment_counts_by_amount(self):
        client = self.create_client("Partial")
        invoice = self.invoice(client, 1000.0, "2026-02-01")
        self.pay(invoice, amount=400.0, date="2026-02-10")
        self.recompute(client)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertEqual(self.stage_of(client), "new_customer")
        self.assertAlmostEqual(client.paid_revenue, 400.0)
        self.assertAlmostEqual(client.invoiced_revenue, 1000.0)
        self.assertAlmostEqual(client.receivable_open, 600.0)

    @freeze_time("2026-03-01")
    def test_refunds(self):
        client = self.create_client("Refunds")
        # fully reversed before any payment: never a purchase
        unpaid = self.invoice(client, 800.0, "2026-01-10")
        self.reverse(unpaid, "2026-01-12", cancel=True)
        self.recompute(client)
        self.assertEqual(unpaid.payment_state, "reversed")
        self.assertEqual(self.stage_of(client), "target")
        self.assertEqual(client.paid_revenue, 0.0)
        self.assertEqual(client.invoiced_revenue, 0.0)
        # paid, then partly refunded and the money given back
        paid = self.paid_invoice(client, 1000.0, "2026-02-01")
        refund = self.reverse(paid, "2026-02-15")
        refund.invoice_line_ids.price_unit = 300.0
        refund.action_post()
        self.pay(refund, date="2026-02-16")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "new_customer")
        self.assertAlmostEqual(client.paid_revenue, 700.0)
        self.assertAlmostEqual(client.invoiced_revenue, 700.0)

    def test_repeat_loyal_and_overdue(self):
        client = self.create_client("Loyal")
        dates = ["2025-01-10", "2025-04-10", "2025-07-10", "2025-10-10"]
        with freeze_time("2025-05-01"):
            for date in dates[:2]:
                self.paid_invoice(client, 500.0, date)
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "repeat_customer")
        with freeze_time("2025-11-01"):
            for date in dates[2:]:
                self.paid_invoice(client, 500.0, date)
            self.recompute(client)
            # 4 purchases but only 9 months of tenure
            self.assertEqual(self.stage_of(client), "repeat_customer")
            self.assertEqual(client.purchase_interval_days, 91.0)
        with freeze_time("2026-01-15"):
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "loyal")
            # an invoice overdue for more than 30 days ends the loyalty
            self.invoice(client, 200.0, "2025-12-01")
            self.recompute(client)
            self.assertEqual(client.max_days_overdue, 45)
            self.assertEqual(client.receivable_overdue, 200.0)
            self.assertEqual(self.stage_of(client), "repeat_customer")

    def test_churn_and_reactivation(self):
        client = self.create_client("Churn")
        with freeze_time("2025-01-01"):
            self.paid_invoice(client, 1000.0, "2025-01-01")
        # default interval 90 days: at risk after 135, dormant after 270
        for day, code in (
            ("2025-05-10", "new_customer"),
            ("2025-05-20", "at_risk"),
            ("2025-10-01", "dormant"),
            ("2026-01-05", "lost"),
        ):
            with freeze_time(day):
                self.recompute(client)
                self.assertEqual(self.stage_of(client), code, day)
        with freeze_time("2026-02-01"):
            self.paid_invoice(client, 1000.0, "2026-02-01")
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "repeat_customer")
            last = self.last_history(client)
            self.assertEqual(last.reason, "reactivation")
            self.assertEqual(last.stage_from_id.code, "lost")
            self.assertEqual(
                client.expected_next_purchase_date.isoformat(), "2026-05-02"
            )

    def test_own_interval_after_three_purchases(self):
        client = self.create_client("Monthly")
        with freeze_time("2026-03-10"):
            for date in ("2026-01-01", "2026-01-31", "2026-03-02"):
                self.paid_invoice(client, 100.0, date)
            self.recompute(client)
            self.assertEqual(client.purchase_interval_days, 30.0)
        with freeze_time("2026-04-20"):  # 49 days > 1.5 x 30
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "at_risk")

    @freeze_time("2026-03-01")
    def test_only_lost_opportunities(self):
        client = self.create_client("Never bought")
        lead = self.lead(client, lead_type="opportunity")
        lead.action_set_lost()
        self.recompute(client)
        self.assertEqual(client.lost_opportunity_count, 1)
        self.assertEqual(self.stage_of(client), "lost")

    @freeze_time("2026-03-01")
    def test_contacts_show_company_stage(self):
        client = self.create_client("Parent")
        contact = self.env["res.partner"].create(
            {"name": "Buyer", "parent_id": client.id}
        )
        self.paid_invoice(contact, 100.0, "2026-02-01")
        self.recompute(contact)
        self.assertEqual(self.stage_of(client), "new_customer")
        self.assertEqual(self.stage_of(contact), "new_customer")
        self.assertEqual(contact.paid_revenue, 100.0)
        found = self.env["res.partner"].search(
            [
                ("lifecycle_stage_id.code", "=", "new_customer"),
                ("id", "in", [client.id, contact.id]),
            ]
        )
        self.assertEqual(found, client | contact)
        groups = self.env["res.partner"]._read_group(
            [("id", "in", [client.id, contact.id])], ["lifecycle_stage_id"], ["__count"]
        )
        self.assertEqual(groups, [(self.stage["new_customer"], 2)])

    @freeze_time("2026-03-01")
    def test_multi_company_isolation(self):
        other = self.setup_other_company()["company"]
        self.env.user.company_ids |= other
        client = self.create_client("Shared")
        self.paid_invoice(client, 1000.0, "2026-02-01")
        self.recompute(client, self.company)
        self.recompute(client, other)
        self.assertEqual(self.stage_of(client, self.company), "new_customer")
        self.assertEqual(self.stage_of(client, other), "target")
        self.assertEqual(client.with_company(self.company).paid_revenue, 1000.0)
        self.assertEqual(client.with_company(other).paid_revenue, 0.0)
        history = self.env["crm.lifecycle.history"].search(
            [("partner_id", "=", client.id)]
        )
        self.assertEqual(
            set(history.mapped("company_id").ids), {self.company.id, other.id}
        )
