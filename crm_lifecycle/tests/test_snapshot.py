# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from ..hooks import post_init_hook
from .common import LifecycleCase

SNAPSHOT_FIELDS = (
    "stage_id",
    "loyalty_level_id",
    "rfm_segment_id",
    "user_id",
    "team_id",
    "industry_id",
    "country_id",
    "state_id",
    "purchase_count",
    "first_purchase_date",
    "paid_revenue",
    "revenue",
    "receivable_open",
    "clv",
    "customer_capital",
)


def month_end(first):
    return first + relativedelta(months=1) - timedelta(days=1)


@tagged("post_install", "-at_install")
class TestSnapshot(LifecycleCase):
    """Month-end snapshots taken live, then rebuilt from accounting as of
    each month end: the same rows."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Snapshot = cls.env["crm.lifecycle.snapshot"]
        # months after the real date: records are created (create_date, set
        # by PostgreSQL, not frozen) before the month ends the test walks
        first = (date.today() + relativedelta(months=2)).replace(day=1)
        cls.months = [first + relativedelta(months=index) for index in range(5)]
        cls.ends = [month_end(month) for month in cls.months]

    def at(self, month, day):
        """A frozen moment in the middle of the day ``day`` of month
        ``month`` (index)."""
        return freeze_time(
            datetime.combine(self.months[month] + timedelta(days=day - 1), time(12))
        )

    def snapshot_rows(self, partners):
        rows = {}
        for snapshot in self.Snapshot.search(
            [("partner_id", "in", partners.ids), ("company_id", "=", self.company.id)]
        ):
            rows[snapshot.date, snapshot.partner_id.id] = {
                name: snapshot[name].id
                if hasattr(snapshot[name], "ids")
                else snapshot[name]
                for name in SNAPSHOT_FIELDS
            }
        return rows

    def test_live_snapshots_equal_rebuilt(self):
        # a stage with a rule of its own: evaluated on the as-of figures too
        self.Stage.create(
            {
                "name": "VIP",
                "code": "vip",
                "sequence": 75,
                "priority": 75,
                "is_customer_stage": True,
                "rule_domain": "[('paid_revenue', '>=', 1400)]",
            }
        )
        with self.at(0, 1):
            a = self.create_client("Snap A")
            b = self.create_client("Snap B")
            c = self.create_client("Snap C")
            d = self.create_client("Snap D")
            e = self.create_client("Snap E")
            clients = a | b | c | d | e
            # expected revenue 0: Odoo keeps no history of the probability
            lead = self.lead(b, lead_type="opportunity", expected_revenue=0.0)
        with self.at(0, 5):
            invoice_a = self.invoice(a, 1000.0, self.months[0] + timedelta(days=4))
            invoice_c = self.invoice(c, 800.0, self.months[0] + timedelta(days=4))
        with self.at(0, 20):
            self.pay(invoice_a, date=self.months[0] + timedelta(days=19))
            self.pay(invoice_c, date=self.months[0] + timedelta(days=19))
        live_stages = {}

        def month_end_run(index):
            with freeze_time(datetime.combine(self.ends[index], time(12))):
                self.engine._enqueue_all_clients()
                self.engine._process_queue()
                self.Snapshot._take_month_end(self.company, self.ends[index])
                live_stages[index] = {
                    partner: self.stage_of(partner) for partner in clients
                }

        month_end_run(0)
        # month 2: a lead won and invoiced (unpaid), a second invoice paid
        # next month, a stage set by hand, an invoice later cancelled
        with self.at(1, 10):
            lead.action_set_won()
            invoice_b = self.invoice(b, 2000.0, self.months[1] + timedelta(days=9))
            second_a = self.invoice(a, 500.0, self.months[1] + timedelta(days=9))
            invoice_e = self.invoice(e, 400.0, self.months[1] + timedelta(days=9))
            d.with_user(self.sales_manager)._lifecycle_set_stage(
                self.stage["loyal"], "Known for years"
            )
        month_end_run(1)
        # month 3: payments of last month's invoices, a partial credit note,
        # a full reversal
        with self.at(2, 5):
            self.pay(second_a, date=self.months[2] + timedelta(days=4))
            self.pay(invoice_b, amount=1000.0, date=self.months[2] + timedelta(days=4))
            refund = self.reverse(invoice_c, self.months[2] + timedelta(days=4))
            refund.invoice_line_ids.price_unit = 300.0
            refund.action_post()
            self.reverse(invoice_e, self.months[2] + timedelta(days=4), cancel=True)
        month_end_run(2)
        # month 4: the client set by hand buys: the lock ends
        with self.at(3, 15):
            self.paid_invoice(d, 300.0, self.months[3] + timedelta(days=14))
            self.pay(invoice_b, date=self.months[3] + timedelta(days=14))
        month_end_run(3)
        month_end_run(4)

        self.assertEqual(
            [live_stages[index][a] for index in range(5)],
            ["new_customer", "new_customer", "vip", "vip", "vip"],
        )
        self.assertEqual(
            [live_stages[index][d] for index in range(5)],
            ["target", "loyal", "loyal", "new_customer", "new_customer"],
        )
        self.assertEqual(live_stages[0][b], "opportunity")
        # won, invoiced, not paid yet: still an opportunity (not a customer)
        self.assertEqual(live_stages[1][b], "opportunity")
        self.assertEqual(live_stages[2][b], "new_customer")
        self.assertEqual(live_stages[1][e], "target")
        live = self.snapshot_rows(clients)
        self.assertEqual(len(live), 25)
        # spot checks of the live rows
        self.assertEqual(live[self.ends[1], a.id]["receivable_open"], 500.0)
        self.assertEqual(live[self.ends[1], a.id]["revenue"], 500.0)
        self.assertEqual(live[self.ends[1], a.id]["paid_revenue"], 1000.0)
        self.assertEqual(live[self.ends[2], a.id]["paid_revenue"], 1500.0)
        self.assertEqual(live[self.ends[1], e.id]["receivable_open"], 400.0)
        self.assertEqual(live[self.ends[2], e.id]["revenue"], 0.0)
        self.assertEqual(live[self.ends[2], c.id]["revenue"], -300.0)
        self.assertEqual(live[self.ends[2], b.id]["paid_revenue"], 1000.0)
        self.assertEqual(live[self.ends[2], b.id]["purchase_count"], 1)
        self.assertEqual(
            live[self.ends[1], a.id]["first_purchase_date"],
            self.months[0] + timedelta(days=4),
        )
        self.assertFalse(live[self.ends[1], b.id]["first_purchase_date"])

        self.Snapshot.sudo().search([]).unlink()
        with freeze_time(datetime.combine(self.ends[4] + timedelta(days=3), time(9))):
            self.company.lifecycle_snapshot_months = 5
            history = self.env["crm.lifecycle.history"].search_count([])
            clients_before = self.env["crm.lifecycle.client"].search_read(
                [("partner_id", "in", clients.ids)], ["stage_id", "write_date"]
            )
            # a few clients: "Rebuild history" rebuilds them at once
            settings = self.env["res.config.settings"].sudo().create({})
            action = settings.with_user(
                self.sales_manager
            ).action_lifecycle_rebuild_snapshots()
            self.assertEqual(action["tag"], "display_notification")
            self.assertFalse(self.company.lifecycle_snapshot_rebuild)
            # nothing but snapshots written
            self.assertEqual(
                self.env["crm.lifecycle.history"].search_count([]), history
            )
            self.assertEqual(
                self.env["crm.lifecycle.client"].search_read(
                    [("partner_id", "in", clients.ids)], ["stage_id", "write_date"]
                ),
                clients_before,
            )
            rebuilt = self.snapshot_rows(clients)
            self.assertEqual(set(rebuilt), set(live))
            for key, row in live.items():
                self.assertEqual(rebuilt[key], row, key)
            # idempotent
            self.Snapshot._rebuild(self.company)
            self.assertEqual(self.snapshot_rows(clients), rebuilt)

    def test_rebuild_rights(self):
        portal = new_test_user(
            self.env, login="snap_portal", groups="base.group_portal"
        )
        settings = self.env["res.config.settings"].sudo().create({})
        for user in (portal, self.salesman):
            with self.assertRaises(AccessError):
                settings.with_user(user).action_lifecycle_rebuild_snapshots()
        self.assertFalse(self.company.lifecycle_snapshot_rebuild)
        # a manager rebuilds only the companies they work in
        other_company = self.env["res.company"].create({"name": "Not Mine"})
        foreign = (
            self.env["res.config.settings"]
            .sudo()
            .create({"company_id": other_company.id})
        )
        with self.assertRaises(AccessError):
            foreign.with_user(self.sales_manager).action_lifecycle_rebuild_snapshots()
        self.assertFalse(other_company.lifecycle_snapshot_rebuild)
        mine = self.create_client("Mine")
        other = self.create_client("Other", user_id=self.sales_manager.id)
        end = month_end(date.today().replace(day=1))
        self.Snapshot._take_month_end(self.company, end)
        snapshots = self.Snapshot.with_user(self.salesman).search(
            [("partner_id", "in", (mine | other).ids)]
        )
        # a salesperson sees the snapshots of their own clients only
        self.assertEqual(snapshots.partner_id, mine)
        with self.assertRaises(AccessError):
            snapshots.write({"paid_revenue": 1.0})
        with self.assertRaises(AccessError):
            self.Snapshot.with_user(self.salesman).create(
                {"date": end, "partner_id": mine.id, "company_id": self.company.id}
            )
        with self.assertRaises(AccessError):
            self.Snapshot.with_user(portal).search([])
        managed = self.Snapshot.with_user(self.sales_manager).search(
            [("partner_id", "in", (mine | other).ids)]
        )
        self.assertEqual(managed.partner_id, mine | other)

    def test_engine_as_of_past_dates(self):
        """A payment's date decides when an invoice became paid, whenever it
        was registered; leads and stages set by hand as they were."""
        jan, feb, mar = self.months[0], self.months[1], self.months[2]
        with self.at(0, 1):
            client = self.create_client("As Of")
            lead = self.lead(client, lead_type="opportunity", expected_revenue=0.0)
        with self.at(0, 10):
            invoice = self.invoice(client, 1000.0, jan + timedelta(days=9))
        with self.at(1, 10):
            lead.action_set_won()
        with self.at(1, 20):
            client.with_user(self.sales_manager)._lifecycle_set_stage(
                self.stage["advocate"], "Recommends us"
            )
        # registered in March, dated in February
        with self.at(2, 5):
            self.pay(invoice, date=feb + timedelta(days=14))
        with self.at(2, 20):
            clients_before = self.env["crm.lifecycle.client"].search_count([])
            history_before = self.env["crm.lifecycle.history"].search_count([])

            def as_of(day):
                return self.engine._compute_as_of(client, self.company, day)[client.id]

            first = as_of(month_end(jan))
            self.assertEqual(first["purchase_count"], 0)
            self.assertEqual(first["paid_revenue"], 0.0)
            self.assertEqual(first["receivable_open"], 1000.0)
            self.assertEqual(first["receivable_overdue"], 1000.0)
            self.assertEqual(first["open_opportunity_count"], 1)
            self.assertEqual(first["won_opportunity_count"], 0)
            self.assertEqual(first["stage_id"], self.stage["opportunity"].id)
            self.assertFalse(first["stage_locked"])
            second = as_of(feb + timedelta(days=13))
            self.assertEqual(second["purchase_count"], 0)
            self.assertEqual(second["won_opportunity_count"], 1)
            self.assertEqual(second["open_opportunity_count"], 0)
            # won, not paid yet: an opportunity until the invoice is paid
            self.assertEqual(second["stage_id"], self.stage["opportunity"].id)
            third = as_of(month_end(feb))
            self.assertEqual(third["purchase_count"], 1)
            self.assertEqual(third["paid_revenue"], 1000.0)
            self.assertEqual(third["receivable_open"], 0.0)
            self.assertEqual(
                third["avg_days_to_pay"],
                (feb + timedelta(days=14) - (jan + timedelta(days=9))).days,
            )
            # the stage set by hand on February 20 applies from then
            self.assertEqual(third["stage_id"], self.stage["advocate"].id)
            self.assertTrue(third["stage_locked"])
            # nothing written
            self.assertEqual(
                self.env["crm.lifecycle.client"].search_count([]), clients_before
            )
            self.assertEqual(
                self.env["crm.lifecycle.history"].search_count([]), history_before
            )
            # today: the same queries give today's figures
            self.recompute(client)
            today = as_of(mar + timedelta(days=19))
            for name in ("purchase_count", "paid_revenue", "receivable_open"):
                self.assertEqual(today[name], client.with_company(self.company)[name])

    def test_month_end_cron(self):
        with self.at(0, 1):
            client = self.create_client("Cron")
        with self.at(0, 5):
            self.paid_invoice(client, 700.0, self.months[0] + timedelta(days=4))
        # the day after a month end without snapshot: computed as of then
        with self.at(1, 2):
            self.Snapshot._take_month_ends(self.company)
        [snapshot] = self.Snapshot.search([("partner_id", "=", client.id)])
        self.assertEqual(snapshot.date, self.ends[0])
        self.assertEqual(snapshot.stage_id, self.stage["new_customer"])
        self.assertEqual(snapshot.revenue, 700.0)
        # on a month end: the snapshot of that day
        with freeze_time(datetime.combine(self.ends[1], time(12))):
            self.engine._process_queue()
            self.Snapshot._take_month_ends(self.company)
        snapshots = self.Snapshot.search([("partner_id", "=", client.id)])
        self.assertEqual(snapshots.mapped("date"), [self.ends[1], self.ends[0]])
        self.assertEqual(snapshots[0].paid_revenue, 700.0)
        self.assertEqual(snapshots[0].revenue, 0.0)

    def test_install_rebuilds_history(self):
        """A company sees its past the day it installs: the install asks the
        scheduled action for the history of every company."""
        cron = self.env.ref("crm_lifecycle.ir_cron_lifecycle_rebuild_snapshots")
        Trigger = self.env["ir.cron.trigger"].sudo()
        before = Trigger.search_count([("cron_id", "=", cron.id)])
        post_init_hook(self.env)
        companies = self.env["res.company"].search([])
        self.assertTrue(all(companies.mapped("lifecycle_snapshot_rebuild")))
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), before + 1)

    def test_rebuild_in_background(self):
        """A company with many clients is rebuilt by the scheduled action."""
        self.patch(type(self.Snapshot), "_inline_rebuild_limit", lambda self: 0)
        today = date.today()
        client = self.create_client("Background")
        self.paid_invoice(client, 100.0, today - relativedelta(months=3))
        self.company.lifecycle_snapshot_months = 2
        cron = self.env.ref("crm_lifecycle.ir_cron_lifecycle_rebuild_snapshots")
        Trigger = self.env["ir.cron.trigger"].sudo()
        before = Trigger.search_count([("cron_id", "=", cron.id)])
        settings = self.env["res.config.settings"].sudo().create({})
        settings.with_user(self.sales_manager).action_lifecycle_rebuild_snapshots()
        self.assertTrue(self.company.lifecycle_snapshot_rebuild)
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), before + 1)
        self.assertFalse(self.Snapshot.search([("partner_id", "=", client.id)]))
        # what the scheduled action does, without its commits
        self.Snapshot._rebuild()
        self.assertFalse(self.company.lifecycle_snapshot_rebuild)
        snapshots = self.Snapshot.search([("partner_id", "=", client.id)])
        first = today.replace(day=1)
        self.assertEqual(
            snapshots.mapped("date"),
            [
                first - timedelta(days=1),
                first - relativedelta(months=1) - timedelta(days=1),
            ],
        )
        self.assertEqual(snapshots.stage_id, self.stage["new_customer"])

    def test_rebuild_plans_on_the_month_ends_written(self):
        """Each month end of a rebuild reads the snapshots of the month ends
        written before it: the table's statistics count them when it starts
        (planned on those of an empty table, a lookup of a client's
        snapshots scans the company's)."""
        today = date.today()
        for index in range(3):
            client = self.create_client(f"Statistics {index}")
            self.paid_invoice(client, 100.0, today - relativedelta(months=4))
        dates = self.Snapshot._month_ends(self.company, 3)
        self.Snapshot._rebuild_dates(self.company, dates)
        self.env.cr.execute(
            SQL(
                "SELECT count(*) FROM crm_lifecycle_snapshot WHERE date < %s",
                dates[-1],
            )
        )
        [written_before] = self.env.cr.fetchone()
        self.assertGreaterEqual(written_before, 6)
        self.env.cr.execute(
            SQL(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                "crm_lifecycle_snapshot",
            )
        )
        self.assertGreaterEqual(self.env.cr.fetchone()[0], written_before)
