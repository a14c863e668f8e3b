# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo.tests import new_test_user, tagged

from ..models.crm_lifecycle_engine_value import rising_rates
from .common import LifecycleCase


def month_end(first):
    return first + relativedelta(months=1) - timedelta(days=1)


@tagged("post_install", "-at_install")
class TestCustomerCapital(LifecycleCase):
    """The worked example of readme/USAGE.md, built as it happens: clients,
    leads, paid invoices and a snapshot at each month end."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Snapshot = cls.env["crm.lifecycle.snapshot"]
        cls.Report = cls.env["crm.lifecycle.report"]
        cls.company.write(
            {
                "lifecycle_default_interval_days": 365,
                "lifecycle_clv_horizon_years": 3,
                "lifecycle_lost_days": 730,
                # a few clients make the example's rates
                "lifecycle_conversion_min_clients": 1,
            }
        )
        # months after the real date: records are created (create_date, set
        # by PostgreSQL, not frozen) before the month ends the test walks
        first = (date.today() + relativedelta(months=2)).replace(day=1)
        cls.months = [first + relativedelta(months=index) for index in range(15)]
        cls.ends = [month_end(month) for month in cls.months[:14]]
        # the example's clients are the company's only ones
        elsewhere = cls.env["res.company"].create({"name": "Elsewhere"})
        cls.env["res.partner"].with_context(active_test=False).search(
            [
                *cls.engine._client_domain(),
                ("company_id", "in", [False, cls.company.id]),
            ]
        ).write({"company_id": elsewhere.id})

    def at(self, month, day):
        return freeze_time(
            datetime.combine(self.months[month] + timedelta(days=day - 1), time(12))
        )

    def month_end_run(self, index):
        with freeze_time(datetime.combine(self.ends[index], time(12))):
            self.engine._enqueue_all_clients()
            self.engine._process_queue()
            self.Snapshot._take_month_end(self.company, self.ends[index])

    def test_worked_example(self):
        with self.at(0, 1):
            clients = {
                name: self.create_client(name)
                for name in ("Carl", "Paula", "Olga", "Tom", "Vera", "Nina", "Ugo")
            }
            self.lead(clients["Carl"])
            self.lead(clients["Paula"])
            # Odoo keeps no history of an expected revenue: 0 until it is won
            deal = self.lead(
                clients["Olga"], lead_type="opportunity", expected_revenue=0.0
            )
        self.month_end_run(0)
        self.month_end_run(1)
        with self.at(2, 5):
            self.paid_invoice(clients["Carl"], 1000.0, self.months[2] + timedelta(4))
        self.month_end_run(2)
        with self.at(3, 5):
            deal.action_set_won()
            self.paid_invoice(clients["Olga"], 1500.0, self.months[3] + timedelta(4))
        for index in range(3, 5):
            self.month_end_run(index)
        with self.at(5, 5):
            self.paid_invoice(clients["Ugo"], 500.0, self.months[5] + timedelta(4))
        for index in range(5, 12):
            self.month_end_run(index)
        with self.at(12, 5):
            self.lead(
                clients["Nina"],
                lead_type="opportunity",
                expected_revenue=2000.0,
                probability=30.0,
            )
        for index in range(12, 14):
            self.month_end_run(index)

        snapshot_stages = {
            (snapshot.partner_id.name, snapshot.date): snapshot.stage_id.code
            for snapshot in self.Snapshot.search([("company_id", "=", self.company.id)])
        }
        self.assertEqual(
            {
                name: [snapshot_stages[name, self.ends[index]] for index in (0, 1)]
                for name in clients
            },
            {
                "Carl": ["prospect", "prospect"],
                "Paula": ["prospect", "prospect"],
                "Olga": ["opportunity", "opportunity"],
                "Tom": ["target", "target"],
                "Vera": ["target", "target"],
                "Nina": ["target", "target"],
                "Ugo": ["target", "target"],
            },
        )
        stages = self.env["crm.lifecycle.stage"].search(
            [("company_id", "in", [False, self.company.id])]
        )
        today = self.months[13] + relativedelta(months=1)
        rates = self.engine._conversion_rates(self.company, today, stages)
        self.assertEqual(
            {code: rates[self.stage[code].id] for code in ("target", "prospect")},
            {"target": 0.25, "prospect": 0.5},
        )
        self.assertEqual(rates[self.stage["opportunity"].id], 1.0)
        # a stage seen on fewer clients than the minimum of Settings takes the
        # rate of the stage before it: 2 prospects and 1 opportunity, under 3
        self.company.lifecycle_conversion_min_clients = 3
        self.assertEqual(
            set(self.engine._conversion_rates(self.company, today, stages).values()),
            {0.25},
        )
        self.company.lifecycle_conversion_min_clients = 5
        self.assertEqual(
            set(self.engine._conversion_rates(self.company, today, stages).values()),
            {0.0},
        )
        self.company.lifecycle_conversion_min_clients = 1
        # as of a past date, only the snapshots before it: as of the second
        # month end, the first one, in which nobody had bought yet
        past = self.engine._conversion_rates(self.company, self.ends[1], stages)
        self.assertEqual(set(past.values()), {0.0})

        with freeze_time(datetime.combine(today, time(12))):
            self.engine._enqueue_all_clients()
            self.engine._process_queue()
        partners = self.env["res.partner"].browse(
            [client.id for client in clients.values()]
        )
        self.assertEqual(
            {partner.name: self.stage_of(partner) for partner in partners},
            {
                "Carl": "new_customer",
                "Paula": "prospect",
                "Olga": "new_customer",
                "Tom": "target",
                "Vera": "target",
                "Nina": "opportunity",
                "Ugo": "new_customer",
            },
        )
        self.assertEqual(
            {
                partner.name: (
                    partner.clv,
                    partner.pipeline_expected_revenue,
                    partner.lifecycle_potential_value,
                )
                for partner in partners
            },
            {
                "Carl": (1000.0, 0.0, 0.0),
                "Paula": (0.0, 0.0, 500.0),
                "Olga": (1500.0, 0.0, 0.0),
                "Tom": (0.0, 0.0, 250.0),
                "Vera": (0.0, 0.0, 250.0),
                # its opportunity counts once: as pipeline
                "Nina": (0.0, 600.0, 0.0),
                "Ugo": (500.0, 0.0, 0.0),
            },
        )
        self.env.flush_all()
        [capital] = self.Report._read_group(
            [("company_id", "=", self.company.id)],
            [],
            [
                "active_clv:sum",
                "pipeline_expected_revenue:sum",
                "potential_value:sum",
                "customer_capital:sum",
            ],
        )
        self.assertEqual(capital, (3000.0, 600.0, 1000.0, 4600.0))

        # a stage set by hand has its value at once: Tom as an opportunity
        with freeze_time(datetime.combine(today, time(15))):
            clients["Tom"].with_user(self.sales_manager)._lifecycle_set_stage(
                self.stage["opportunity"], "Asked for a quote"
            )
        self.assertEqual(self.stage_of(clients["Tom"]), "opportunity")
        self.assertEqual(clients["Tom"].lifecycle_potential_value, 1000.0)
        self.assertTrue(clients["Tom"].lifecycle_stage_locked)

    def test_rising_rates(self):
        """A later stage never converts less: pooled with the one before."""
        self.assertEqual(
            rising_rates([("target", 10, 5), ("prospect", 10, 2), ("deal", 0, 0)]),
            {"target": 0.35, "prospect": 0.35, "deal": 0.35},
        )
        self.assertEqual(
            rising_rates([("target", 0, 0), ("prospect", 4, 2), ("deal", 2, 0)]),
            {"target": 0.0, "prospect": 1 / 3, "deal": 1 / 3},
        )
        self.assertEqual(
            rising_rates([("target", 8, 2), ("prospect", 4, 2), ("deal", 2, 2)]),
            {"target": 0.25, "prospect": 0.5, "deal": 1.0},
        )

    def test_users_are_not_clients(self):
        """Internal and portal users' partners, archived ones too, are not
        clients: no stage, no value, nothing in the capital. A company whose
        contact has portal access stays a client."""
        buyer = self.create_client("Buyer with portal access", is_company=False)
        self.paid_invoice(buyer, 800.0, date.today())
        customer = self.create_client("Customer Ltd")
        contact = self.env["res.partner"].create(
            {"name": "Customer's buyer", "parent_id": customer.id}
        )
        self.paid_invoice(customer, 400.0, date.today())
        former = new_test_user(
            self.env, login="capital_former", groups="base.group_user"
        )
        former.action_archive()
        self.recompute(buyer | customer | former.partner_id)
        self.assertEqual(self.stage_of(buyer), "new_customer")
        self.assertTrue(buyer.is_lifecycle_client)
        # portal access given: no longer a client, its row is forgotten
        for partner, login in ((buyer, "capital_buyer"), (contact, "capital_contact")):
            new_test_user(
                self.env,
                login=login,
                groups="base.group_portal",
                partner_id=partner.id,
            )
        self.engine._process_queue()
        self.env.flush_all()
        Partner = self.env["res.partner"].with_context(active_test=False)
        self.assertFalse(buyer.is_lifecycle_client)
        self.assertFalse(former.partner_id.is_lifecycle_client)
        self.assertTrue(customer.is_lifecycle_client)
        self.assertFalse(self.stage_of(buyer))
        self.assertFalse(self.stage_of(former.partner_id))
        self.assertEqual(self.stage_of(customer), "new_customer")
        clients = Partner.search([("is_lifecycle_client", "=", True)])
        self.assertIn(customer, clients)
        self.assertNotIn(buyer, clients)
        self.assertNotIn(former.partner_id, clients)
        self.assertNotIn(self.env.ref("base.public_partner"), clients)
        self.assertEqual(
            set(self.Snapshot._clients(self.company))
            & {buyer.id, former.partner_id.id},
            set(),
        )
        reported = self.env["crm.lifecycle.report"].search(
            [("company_id", "=", self.company.id)]
        )
        self.assertIn(customer, reported.partner_id)
        self.assertNotIn(buyer, reported.partner_id)


@tagged("post_install", "-at_install")
class TestRfmGrid(LifecycleCase):
    def test_grid_axes_labelled_and_complete(self):
        """Five rows and five columns, each saying what its score means, even
        without any client: what the pivot reads (all groupings at once)."""
        Report = self.env["crm.lifecycle.report"]
        empty = [("company_id", "=", self.company.id), ("rfm_recency", "!=", False)]
        self.assertFalse(Report.search_count(empty))
        # _read_group: what read_group (18.0) and formatted_read_group
        # (19.0) of the pivot read
        grid = ["rfm_recency", "rfm_frequency"]
        cells = Report._read_group(
            empty, grid, ["client_count:sum", "rfm_revenue:sum", "__count"]
        )
        self.assertEqual(
            [(recency, frequency) for recency, frequency, *_values in cells],
            [(str(r), str(f)) for r in range(1, 6) for f in range(1, 6)],
        )
        self.assertEqual({cell[2] for cell in cells}, {0})
        self.assertEqual({cell[4] for cell in cells}, {0})
        rows = Report._read_group(empty, ["rfm_recency"], ["client_count:sum"])
        self.assertEqual([recency for recency, _count in rows], list("12345"))
        columns = Report._read_group(empty, ["rfm_frequency"], ["client_count:sum"])
        self.assertEqual([frequency for frequency, _count in columns], list("12345"))
        labels = Report.fields_get(["rfm_recency", "rfm_frequency"], ["selection"])
        recency = dict(labels["rfm_recency"]["selection"])
        frequency = dict(labels["rfm_frequency"]["selection"])
        self.assertEqual(recency["5"], "5 — bought most recently")
        self.assertEqual(recency["1"], "1 — bought longest ago")
        self.assertEqual(frequency["5"], "5 — most purchases")
        self.assertEqual(frequency["1"], "1 — fewest purchases")
        # a client in a cell: the other cells stay, empty
        client = self.create_client("Scored")
        self.paid_invoice(client, 100.0, date.today())
        self.recompute(client)
        self.env.flush_all()
        cells = Report._read_group(empty, grid, ["client_count:sum", "__count"])
        self.assertEqual(len(cells), 25)
        self.assertEqual(
            [
                (recency, frequency, clients)
                for recency, frequency, clients, count in cells
                if count
            ],
            [("5", "1", 1)],
        )
