# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import statistics
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from .common import LifecycleCase


def month_end(first):
    return first + relativedelta(months=1) - timedelta(days=1)


@tagged("post_install", "-at_install")
class TestReports(LifecycleCase):
    """The lifecycle reports over the month-end snapshots, on clients
    invoiced and paid over four months, the snapshots rebuilt from
    accounting with "Rebuild history"."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # months after the real date: records are created (create_date, set
        # by PostgreSQL, not frozen) before the month ends the test walks
        first = (date.today() + relativedelta(months=2)).replace(day=1)
        cls.months = [first + relativedelta(months=index) for index in range(4)]
        cls.ends = [month_end(month) for month in cls.months]
        cls.all_docs = new_test_user(
            cls.env,
            login="reports_all_docs",
            groups="sales_team.group_sale_salesman_all_leads",
            company_id=cls.company.id,
        )
        m0, m1, m2 = cls.months[:3]
        with cls.at(0, 1):
            # prospects who become customers in the second month
            cls.a = cls.create_client("Report A")
            cls.new_lead(cls.a, 0, 1)
            cls.engine._recompute(cls.a, cls.company)
            # a customer for months, at risk at the first month end and
            # dormant at the second: churned
            cls.b = cls.create_client("Report B")
            cls.paid_invoice(cls.b, 600.0, cls.ends[0] - timedelta(days=260))
            # first purchases in the first month; C buys again in the third,
            # D is a colleague's client, E is set lost by hand in the third
            cls.c = cls.create_client("Report C")
            cls.d = cls.create_client("Report D", user_id=cls.sales_manager.id)
            cls.e = cls.create_client("Report E")
            cls.f = cls.create_client("Report F")
            cls.g = cls.create_client("Report G")
        with cls.at(0, 5):
            cls.paid_invoice(cls.c, 1000.0, m0 + timedelta(days=4))
            cls.paid_invoice(cls.d, 2000.0, m0 + timedelta(days=4))
            cls.paid_invoice(cls.e, 800.0, m0 + timedelta(days=4))
        with cls.at(1, 1):
            cls.new_lead(cls.f, 1, 1)
            cls.engine._recompute(cls.f, cls.company)
        with cls.at(1, 10):
            cls.new_lead(cls.g, 1, 10)
            cls.engine._recompute(cls.g, cls.company)
        with cls.at(1, 15):
            for client, amount in ((cls.a, 500.0), (cls.f, 300.0), (cls.g, 200.0)):
                cls.paid_invoice(client, amount, m1 + timedelta(days=14))
            cls.engine._recompute(cls.a | cls.f | cls.g, cls.company)
        with cls.at(2, 10):
            cls.paid_invoice(cls.c, 400.0, m2 + timedelta(days=9))
            cls.e.with_user(cls.sales_manager)._lifecycle_set_stage(
                cls.stage["lost"], "Moved to a competitor"
            )
        cls.clients = cls.a | cls.b | cls.c | cls.d | cls.e | cls.f | cls.g
        cls.today = cls.ends[3] + timedelta(days=3)
        with freeze_time(datetime.combine(cls.today, time(9))):
            cls.company.lifecycle_snapshot_months = 4
            settings = cls.env["res.config.settings"].sudo().create({})
            settings.with_user(cls.sales_manager).action_lifecycle_rebuild_snapshots()
            cls.engine._recompute(cls.clients, cls.company)
        cls.env.flush_all()

    @classmethod
    def new_lead(cls, partner, month, day):
        """A lead of ``partner`` created on day ``day`` of month ``month``:
        PostgreSQL, not the frozen clock, sets the creation date."""
        lead = cls.lead(partner)
        lead.flush_recordset()
        cls.env.cr.execute(
            SQL(
                "UPDATE crm_lead SET create_date = %s WHERE id = %s",
                datetime.combine(cls.months[month] + timedelta(days=day - 1), time(12)),
                lead.id,
            )
        )
        lead.invalidate_recordset()
        return lead

    @classmethod
    def at(cls, month, day):
        return freeze_time(
            datetime.combine(cls.months[month] + timedelta(days=day - 1), time(12))
        )

    def report(self, model, user=None):
        return self.env[model].with_user(user or self.sales_manager)

    def test_stages_over_time(self):
        Report = self.report("crm.lifecycle.stage.report")
        counts = {
            (day, stage.code): count
            for day, stage, count in Report._read_group(
                [("partner_id", "in", self.clients.ids), ("is_current", "=", False)],
                ["date:day", "stage_id"],
                ["client_count:sum"],
            )
        }
        self.assertEqual(
            counts,
            {
                (self.ends[0], "prospect"): 1,
                (self.ends[0], "target"): 2,
                (self.ends[0], "at_risk"): 1,
                (self.ends[0], "new_customer"): 3,
                (self.ends[1], "new_customer"): 6,
                (self.ends[1], "dormant"): 1,
                (self.ends[2], "new_customer"): 4,
                (self.ends[2], "repeat_customer"): 1,
                (self.ends[2], "dormant"): 1,
                (self.ends[2], "lost"): 1,
                (self.ends[3], "new_customer"): 4,
                (self.ends[3], "repeat_customer"): 1,
                (self.ends[3], "dormant"): 1,
                (self.ends[3], "lost"): 1,
            },
        )
        # the filter by tag: the client's tags
        tag = self.env["res.partner.category"].create({"name": "Key account"})
        self.a.category_id = tag
        self.assertEqual(
            Report.search([("category_ids", "in", tag.ids)]).partner_id, self.a
        )
        # the share of a month end's clients: 100 % over all of them
        for end in self.ends:
            rows = Report.search([("date", "=", end)])
            self.assertAlmostEqual(sum(rows.mapped("client_share")), 100.0)
            mine = rows.filtered(lambda row: row.partner_id in self.clients)
            self.assertAlmostEqual(
                sum(mine.mapped("client_share")), 100.0 * len(mine) / len(rows)
            )
        # and now: the current stage of each client
        with freeze_time(datetime.combine(self.today, time(9))):
            # rows read above are dated by the real day
            Report.invalidate_model()
            current = Report.search(
                [("partner_id", "in", self.clients.ids), ("is_current", "=", True)]
            )
            self.assertEqual(set(current.mapped("date")), {self.today})
            self.assertEqual(
                {row.partner_id: row.stage_id for row in current},
                {
                    client: client.with_company(self.company).lifecycle_stage_id
                    for client in self.clients
                },
            )

    def test_transition_matrix(self):
        Report = self.report("crm.lifecycle.transition.report")
        domain = [
            ("partner_id", "in", self.clients.ids),
            ("period", "=", "month"),
            ("date", "=", self.ends[1]),
        ]
        matrix = {
            (start.code, end.code): (count, converted)
            for start, end, count, converted in Report._read_group(
                domain,
                ["stage_from_id", "stage_to_id"],
                ["client_count:sum", "converted_count:sum"],
            )
        }
        self.assertEqual(
            matrix,
            {
                ("prospect", "new_customer"): (1, 1),
                ("target", "new_customer"): (2, 2),
                ("at_risk", "dormant"): (1, 0),
                ("new_customer", "new_customer"): (3, 0),
            },
        )
        # no year: four month ends only
        self.assertFalse(Report.search([("period", "=", "year")]))
        # the first month end has no start
        self.assertFalse(Report.search([("date", "=", self.ends[0])]))

    def test_earlier_month_end_rewritten(self):
        """The reports read the client's previous snapshots from columns of
        the later ones: rewriting an earlier month end refreshes them."""
        Transition = self.report("crm.lifecycle.transition.report")
        Churn = self.report("crm.lifecycle.churn.report")
        Cohort = self.report("crm.lifecycle.cohort.report")
        domain = [("partner_id", "in", self.clients.ids)]
        fields_ = ["period", "date:day", "stage_from_id", "stage_to_id"]

        def figures():
            self.env.invalidate_all()
            return (
                Transition._read_group(
                    domain, fields_, ["client_count:sum", "converted_count:sum"]
                ),
                Churn._read_group(
                    domain,
                    ["period", "date:day"],
                    ["churned_count:sum", "start_revenue:sum", "churn_rate:sum"],
                ),
                Cohort._read_group(
                    domain, ["cohort_date:day", "date:day"], ["cohort_size:max"]
                ),
            )

        before = figures()
        self.assertTrue(before[0] and before[1] and before[2])
        # the first month end lost, what the later ones repeat of it wrong
        self.env.cr.execute(
            SQL(
                """
                DELETE FROM crm_lifecycle_snapshot
                 WHERE company_id = %(company)s AND date = %(first)s;
                UPDATE crm_lifecycle_snapshot
                   SET month_start_stage_id = NULL, month_start_purchases = NULL,
                       month_start_revenue = NULL, revenue_12m = 0,
                       cohort_date = NULL, is_cohort_start = FALSE
                 WHERE company_id = %(company)s
                """,
                company=self.company.id,
                first=self.ends[0],
            )
        )
        self.assertNotEqual(figures(), before)
        with freeze_time(datetime.combine(self.today, time(9))):
            self.env["crm.lifecycle.snapshot"]._rebuild_dates(
                self.company, [self.ends[0]]
            )
        self.assertEqual(figures(), before)

    def test_conversion_times(self):
        Report = self.report("crm.lifecycle.conversion.report")
        # the others were customers the first time they were computed
        conversions = Report.search(
            [
                ("partner_id", "in", (self.a | self.f | self.g).ids),
                ("conversion_count", "=", 1),
            ]
        )
        converted = self.months[1] + timedelta(days=14)
        expected = {
            self.a: (converted - self.months[0]).days,
            self.f: (converted - self.months[1]).days,
            self.g: (converted - (self.months[1] + timedelta(days=9))).days,
        }
        self.assertEqual(
            {row.partner_id: row.days_from_prospect for row in conversions}, expected
        )
        median = statistics.median(expected.values())
        self.assertNotEqual(median, statistics.mean(expected.values()))
        for row in conversions:
            self.assertEqual(row.stage_from_id, self.stage["prospect"])
            self.assertEqual(row.stage_to_id, self.stage["new_customer"])
            self.assertEqual(row.median_days_from_prospect, median)
            self.assertFalse(row.days_from_opportunity)
        # grouped by month of the conversion: the median of the month
        [(month, value)] = Report._read_group(
            [("id", "in", conversions.ids)],
            ["date:month"],
            ["median_days_from_prospect:avg"],
        )
        self.assertEqual((month, value), (self.months[1], median))
        # time in the stage left
        [(days,)] = Report._read_group(
            [
                ("partner_id", "in", self.clients.ids),
                ("stage_from_id", "=", self.stage["prospect"].id),
            ],
            [],
            ["days_in_stage:avg"],
        )
        self.assertAlmostEqual(days, statistics.mean(expected.values()))

    def test_churn_and_target(self):
        Report = self.report("crm.lifecycle.churn.report")
        rows = Report.search(
            [
                ("partner_id", "in", self.clients.ids),
                ("period", "=", "month"),
                ("date", "=", self.ends[1]),
            ]
        )
        by_client = {
            row.partner_id: (
                row.customers_start,
                row.new_count,
                row.reactivated_count,
                row.churned_count,
                row.customers_end,
            )
            for row in rows
        }
        self.assertEqual(by_client[self.b], (1, 0, 0, 1, 0))
        self.assertEqual(by_client[self.a], (0, 1, 0, 0, 1))
        self.assertEqual(by_client[self.c], (1, 0, 0, 0, 1))
        for end in self.ends[1:]:
            [(start, new, reactivated, churned, at_end)] = Report._read_group(
                [("period", "=", "month"), ("date", "=", end)],
                [],
                [
                    "customers_start:sum",
                    "new_count:sum",
                    "reactivated_count:sum",
                    "churned_count:sum",
                    "customers_end:sum",
                ],
            )
            self.assertEqual(start + new + reactivated - churned, at_end, end)
        # the churn rate of the second month: B of B, C, D, E; of the third:
        # E of A, C, D, E, F, G
        for end, expected in ((self.ends[1], 100.0 / 4), (self.ends[2], 100.0 / 6)):
            [(rate,)] = Report._read_group(
                [("period", "=", "month"), ("date", "=", end)],
                [],
                ["churn_rate:sum"],
            )
            self.assertAlmostEqual(rate, expected)
        # revenue retention: C and D bought in the first month, nobody in
        # the second among the customers at start
        row_c = rows.filtered(lambda row: row.partner_id == self.c)
        self.assertEqual(row_c.start_revenue, 1000.0)
        self.assertEqual(row_c.retained_revenue, 0.0)
        # against the target band of Settings (15 to 20 % a year)
        Rate = self.report("crm.lifecycle.churn.rate.report")
        [month] = Rate.search(
            [
                ("company_id", "=", self.company.id),
                ("period", "=", "month"),
                ("date", "=", self.ends[1]),
            ]
        )
        self.assertEqual((month.customers_start, month.churned_count), (4, 1))
        self.assertAlmostEqual(month.churn_rate, 100.0 / 4)
        self.assertAlmostEqual(month.yearly_churn_rate, 100 * (1 - (3 / 4) ** 12))
        self.assertEqual((month.churn_target_min, month.churn_target_max), (15.0, 20.0))
        self.assertEqual(month.target_status, "above")
        [quiet] = Rate.search(
            [
                ("company_id", "=", self.company.id),
                ("period", "=", "month"),
                ("date", "=", self.ends[3]),
            ]
        )
        self.assertEqual((quiet.churned_count, quiet.target_status), (0, "below"))
        # the band follows Settings
        self.company.write(
            {"lifecycle_churn_target_min": 0.0, "lifecycle_churn_target_max": 0.0}
        )
        self.env.flush_all()
        Rate.invalidate_model()
        self.assertEqual(Rate.browse(quiet.id).target_status, "within")
        with self.assertRaises(ValidationError):
            self.company.lifecycle_churn_target_min = 30.0

    def test_stage_counts_as_churn(self):
        # a customer who turns dormant is no longer churned when dormant
        # does not count as churn: it stays in the base
        self.stage["dormant"].counts_as_churn = False
        self.env.flush_all()
        Report = self.report("crm.lifecycle.churn.report")
        [row] = Report.search(
            [
                ("partner_id", "=", self.b.id),
                ("period", "=", "month"),
                ("date", "=", self.ends[1]),
            ]
        )
        self.assertEqual((row.churned_count, row.customers_end), (0, 1))
        # and it counts among the customers at start of the next month: E
        # of A, B, C, D, E, F, G
        self.assertEqual(self.month_churn(self.ends[2]), (7, 1, 100.0 / 7))

    def month_churn(self, end):
        """(customers at start, churned, churn rate) of the month ending
        ``end``, the rate summed over the rows."""
        [(starts, churned, rate)] = self.report(
            "crm.lifecycle.churn.report"
        )._read_group(
            [("period", "=", "month"), ("date", "=", end)],
            [],
            ["customers_start:sum", "churned_count:sum", "churn_rate:sum"],
        )
        return starts, churned, rate

    def test_churn_totals_follow_merges_and_deletions(self):
        """The customers at start that the rows' churn rates are shares of
        are written with the snapshots: a merge or a deleted client counts
        them again."""
        self.assertEqual(self.month_churn(self.ends[2]), (6, 1, 100.0 / 6))
        # G merged into F: Odoo deletes G's snapshots, F has its own
        wizard = self.env["base.partner.merge.automatic.wizard"].create(
            {
                "partner_ids": [Command.set((self.f | self.g).ids)],
                "dst_partner_id": self.f.id,
            }
        )
        wizard.action_merge()
        self.assertFalse(self.g.exists())
        self.assertEqual(self.month_churn(self.ends[2]), (5, 1, 100.0 / 5))
        # a client with a snapshot that counts it at start, deleted
        client = self.create_client("Report Deleted")
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO crm_lifecycle_snapshot
                       (partner_id, company_id, date, stage_id, purchase_count,
                        month_start_stage_id, month_start_purchases,
                        month_start_revenue)
                SELECT %(client)s, company_id, date, stage_id, purchase_count,
                       month_start_stage_id, month_start_purchases,
                       month_start_revenue
                  FROM crm_lifecycle_snapshot
                 WHERE partner_id = %(c)s AND date = %(end)s
                """,
                client=client.id,
                c=self.c.id,
                end=self.ends[2],
            )
        )
        Snapshot = self.env["crm.lifecycle.snapshot"]
        Snapshot._refresh_totals(self.company, [self.ends[2]])
        self.assertEqual(self.month_churn(self.ends[2]), (6, 1, 100.0 / 6))
        client.unlink()
        self.assertEqual(self.month_churn(self.ends[2]), (5, 1, 100.0 / 5))
        # totals missing (snapshots of a previous version): counted at update
        Total = self.env["crm.lifecycle.snapshot.total"]
        self.env.cr.execute(
            SQL(
                "DELETE FROM crm_lifecycle_snapshot_total WHERE company_id = %s",
                self.company.id,
            )
        )
        self.assertEqual(self.month_churn(self.ends[2]), (5, 1, False))
        Total.init()
        self.assertEqual(self.month_churn(self.ends[2]), (5, 1, 100.0 / 5))

    def test_cohorts(self):
        Report = self.report("crm.lifecycle.cohort.report")
        cohort = [("cohort_date", "=", self.months[0])]
        shares = dict(
            Report._read_group(cohort, ["months_since"], ["buying_share:sum"])
        )
        self.assertEqual(shares, {0: 100.0, 1: 0.0, 2: 100.0 / 3, 3: 0.0})
        sizes = Report.search(cohort).mapped("cohort_size")
        self.assertEqual(set(sizes), {3})
        [(revenue,)] = Report._read_group(
            [*cohort, ("months_since", "=", 2)], [], ["revenue:sum"]
        )
        self.assertEqual(revenue, 400.0)
        # new and returning customers of a month, with what they owe
        [(new, returning)] = Report._read_group(
            [("date", "=", self.ends[1])], [], ["new_count:sum", "returning_count:sum"]
        )
        self.assertEqual((new, returning), (3, 0))
        [(new, returning)] = Report._read_group(
            [("date", "=", self.ends[2])], [], ["new_count:sum", "returning_count:sum"]
        )
        self.assertEqual((new, returning), (0, 1))

    def test_capital_movement(self):
        Report = self.report("crm.lifecycle.capital.report")
        Snapshot = self.env["crm.lifecycle.snapshot"]

        def capital(client, day):
            return Snapshot.search(
                [("partner_id", "=", client.id), ("date", "=", day)]
            ).customer_capital

        rows = Report.search([("period", "=", "month")])
        self.assertTrue(rows)
        for row in rows:
            self.assertAlmostEqual(
                row.opening_capital
                + row.acquired_capital
                + row.churned_capital
                + row.revaluation_capital,
                row.closing_capital,
            )
        for end in self.ends[1:]:
            [(opening, acquired, churned, revaluation, closing)] = Report._read_group(
                [("period", "=", "month"), ("date", "=", end)],
                [],
                [
                    "opening_capital:sum",
                    "acquired_capital:sum",
                    "churned_capital:sum",
                    "revaluation_capital:sum",
                    "closing_capital:sum",
                ],
            )
            self.assertAlmostEqual(
                opening + acquired + churned + revaluation, closing, places=2
            )
        # the closing of a month is the opening of the next
        for client in self.clients:
            for previous, end in zip(self.ends, self.ends[1:], strict=False):
                [row] = rows.filtered(
                    lambda r, c=client, e=end: r.partner_id == c and r.date == e
                )
                self.assertAlmostEqual(row.opening_capital, capital(client, previous))
                self.assertAlmostEqual(row.closing_capital, capital(client, end))
        # E set lost by hand in the third month: its capital churned
        e = rows.filtered(
            lambda row: row.partner_id == self.e and row.date == self.ends[2]
        )
        self.assertTrue(e.opening_capital)
        self.assertEqual(e.churned_capital, -e.opening_capital)
        self.assertEqual(e.acquired_capital, 0.0)
        second = rows.filtered(lambda row: row.date == self.ends[1])
        a = second.filtered(lambda row: row.partner_id == self.a)
        self.assertTrue(a.closing_capital)
        self.assertEqual(a.acquired_capital, a.closing_capital)
        self.assertEqual(a.churned_capital, 0.0)

    def test_own_clients_only(self):
        own = self.clients - self.d
        for model in (
            "crm.lifecycle.stage.report",
            "crm.lifecycle.transition.report",
            "crm.lifecycle.conversion.report",
            "crm.lifecycle.churn.report",
            "crm.lifecycle.cohort.report",
            "crm.lifecycle.capital.report",
        ):
            with self.subTest(model=model):
                domain = [("partner_id", "in", self.clients.ids)]
                seen = self.report(model, self.salesman).search(domain).partner_id
                self.assertTrue(seen)
                self.assertFalse(seen - own)
                for user in (self.all_docs, self.sales_manager):
                    everyone = self.report(model, user).search(domain).partner_id
                    self.assertEqual(everyone & self.d, self.d)
        # company-wide figures: not for "own documents only" salespeople
        with self.assertRaises(AccessError):
            self.report("crm.lifecycle.churn.rate.report", self.salesman).search([])
        self.assertTrue(
            self.report("crm.lifecycle.churn.rate.report", self.all_docs).search([])
        )
        [(revenue,)] = self.report(
            "crm.lifecycle.cohort.report", self.salesman
        )._read_group([("date", "=", self.ends[0])], [], ["revenue:sum"])
        self.assertEqual(revenue, 1800.0)

    def test_companies_with_their_month_ends_and_currencies(self):
        """Two companies: each compares its own month ends (the second has
        snapshots from the second month end on), amounts are in the current
        company's currency at today's rate, and the churn shares are of the
        customers of both."""
        currency = self.setup_other_currency("EUR", rates=[("1900-01-01", 4.0)])
        other = self.setup_other_company(currency_id=currency.id)["company"]
        client = self.create_client("Report Other")
        move = self.init_invoice(
            "out_invoice",
            partner=client,
            invoice_date=self.months[0] + timedelta(days=4),
            post=True,
            amounts=[1000.0],
            taxes=[],
            company=other,
        )
        self.env["account.payment.register"].with_company(other).with_context(
            active_model="account.move", active_ids=move.ids
        ).create({"payment_date": move.invoice_date})._create_payments()
        Snapshot = self.env["crm.lifecycle.snapshot"]
        with freeze_time(datetime.combine(self.today, time(9))):
            Snapshot._rebuild_dates(other, self.ends[1:])
        self.env.flush_all()
        snapshots = Snapshot.search(
            [("company_id", "=", other.id), ("partner_id", "=", client.id)],
            order="date",
        )
        self.assertEqual(snapshots.mapped("date"), self.ends[1:])
        self.assertTrue(all(snapshots.mapped("customer_capital")))
        both = {"allowed_company_ids": [self.company.id, other.id]}

        def report(model):
            return self.env[model].with_context(**both)

        # the other company from its second month end on, in the current
        # company's currency
        capital = report("crm.lifecycle.capital.report").search(
            [("company_id", "=", other.id)]
        )
        self.assertEqual(
            set(capital.mapped(lambda row: (row.period, row.date))),
            {("month", self.ends[2]), ("month", self.ends[3])},
        )
        row = capital.filtered(
            lambda row: row.partner_id == client and row.date == self.ends[3]
        )
        self.assertEqual(row.date_start, self.ends[2])
        for amount, snapshot in (
            (row.opening_capital, snapshots[1]),
            (row.closing_capital, snapshots[2]),
        ):
            self.assertAlmostEqual(
                amount,
                currency._convert(
                    snapshot.customer_capital,
                    self.company.currency_id,
                    self.company,
                    date.today(),
                ),
                places=2,
            )
        self.assertNotAlmostEqual(row.closing_capital, snapshots[2].customer_capital)
        self.assertFalse(
            report("crm.lifecycle.transition.report").search(
                [("company_id", "=", other.id), ("period", "=", "year")]
            )
        )
        # the churn rate of the third month: E of A, C, D, E, F, G and the
        # other company's client
        Churn = report("crm.lifecycle.churn.report")
        domain = [("period", "=", "month"), ("date", "=", self.ends[2])]
        [(companies, starts, churned, rate, before, retained, retention)] = (
            Churn._read_group(
                domain,
                [],
                [
                    "company_id:count_distinct",
                    "customers_start:sum",
                    "churned_count:sum",
                    "churn_rate:sum",
                    "start_revenue:sum",
                    "retained_revenue:sum",
                    "revenue_retention:sum",
                ],
            )
        )
        self.assertEqual((companies, starts, churned), (2, 7, 1))
        self.assertAlmostEqual(rate, 100.0 / 7)
        self.assertTrue(before)
        self.assertAlmostEqual(retention, 100.0 * retained / before)
        # each company's part of it
        shares = dict(Churn._read_group(domain, ["company_id"], ["churn_rate:sum"]))
        self.assertAlmostEqual(shares[self.company], 100.0 / 7)
        self.assertEqual(shares[other], 0.0)
        [rate_row] = report("crm.lifecycle.churn.rate.report").search(
            [
                ("company_id", "=", other.id),
                ("period", "=", "month"),
                ("date", "=", self.ends[2]),
            ]
        )
        self.assertEqual(
            (rate_row.customers_start, rate_row.churned_count, rate_row.date_start),
            (1, 0, self.ends[1]),
        )
