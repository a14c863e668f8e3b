# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import date, timedelta

from freezegun import freeze_time

from odoo.tests import tagged

from .common import LifecycleCase

TODAY = date(2026, 6, 1)


@tagged("post_install", "-at_install")
class TestRfm(LifecycleCase):
    @freeze_time("2026-06-01")
    def test_quintiles_on_ten_clients(self):
        """Client i (1..10) last bought 30 × i days ago and paid 100 × i in
        all; clients 7 and 8 bought twice, 9 and 10 three times.

        Boundaries (percentile_disc at 20/40/60/80 %): recency 60, 120, 180,
        240 days; frequency 1, 1, 1, 2; monetary 200, 400, 600, 800."""
        expected = {
            1: ("511", "new"),
            2: ("511", "new"),
            3: ("412", "promising"),
            4: ("412", "promising"),
            5: ("313", "about_to_sleep"),
            6: ("313", "about_to_sleep"),
            7: ("244", "at_risk"),
            8: ("244", "at_risk"),
            9: ("155", "cannot_lose"),
            10: ("155", "cannot_lose"),
        }
        clients = {}
        for index in expected:
            client = self.create_client(f"RFM {index}")
            purchases = 3 if index >= 9 else 2 if index >= 7 else 1
            last = TODAY - timedelta(days=30 * index)
            share = 100 * index // purchases
            amounts = [share] * (purchases - 1) + [
                100 * index - share * (purchases - 1)
            ]
            for number, amount in enumerate(amounts):
                invoice_date = last - timedelta(days=30 * number)
                self.paid_invoice(client, float(amount), invoice_date)
            clients[index] = client
        # an old customer, out of the period of 24 months: not scored
        old = self.create_client("Before the period")
        self.paid_invoice(old, 5000.0, "2024-01-10")
        everyone = old.browse([c.id for c in clients.values()]) + old
        self.recompute(everyone)
        for index, (score, segment) in expected.items():
            client = clients[index]
            with self.subTest(client=index):
                self.assertEqual(client.rfm_score, score)
                self.assertEqual(client.rfm_segment, segment)
                self.assertEqual(
                    (client.rfm_recency, client.rfm_frequency, client.rfm_monetary),
                    tuple(int(digit) for digit in score),
                )
        self.assertFalse(old.rfm_score)
        self.assertFalse(old.rfm_segment_id)
        # the grid: count and revenue per recency × frequency cell
        Report = self.env["crm.lifecycle.report"]
        self.env.flush_all()
        cells = Report._read_group(
            [("company_id", "=", self.company.id), ("rfm_recency", "!=", False)],
            ["rfm_recency", "rfm_frequency"],
            ["client_count:sum", "rfm_revenue:sum"],
        )
        # every cell of the grid, the empty ones at zero
        self.assertEqual(len(cells), 25)
        self.assertEqual(
            [cell for cell in cells if cell[2]],
            [("1", "5", 2, 1900.0), ("2", "4", 2, 1500.0), ("3", "1", 2, 1100.0),
             ("4", "1", 2, 700.0), ("5", "1", 2, 300.0)],
        )  # fmt: skip


@tagged("post_install", "-at_install")
class TestClientValue(LifecycleCase):
    def test_clv_and_customer_capital(self):
        """By hand, on 2026-06-01 (and 2 for the conversion rates) with a
        horizon of 3 years:

        - retention: of A and B (bought between 2024-06-01 and 2025-06-01),
          A bought again in the last year: 1/2; years = 1 + 0.5 + 0.25 = 1.75;
        - A: 2 purchases of 1000, one a year (default interval 365 days):
          CLV = 1000 × 1 × 1.75 = 1750; B: lost, 0; C: 600 × 1.75 = 1050;
        - first-year value: A 1000, B 500 (whose first year is over): 750;
        - no snapshot yet: conversion rates from the history. Prospects C, D
          and F entered the stage, C became a customer: 1/3; E entered
          opportunity and did not buy yet: 0/1. A later stage converting less,
          the two are pooled: 1/4 for both, so D and F are worth
          750 / 4 = 187.5 each;
        - E is worth its pipeline only, 1000 × 40 % = 400: its opportunity is
          not counted twice (no potential value);
        - capital = 1750 + 1050 + 400 + 187.5 + 187.5 = 3575."""
        self.company.write(
            {
                "lifecycle_default_interval_days": 365,
                "lifecycle_clv_horizon_years": 3,
                "lifecycle_conversion_min_clients": 1,
            }
        )
        clients = {code: self.create_client(f"Client {code}") for code in "ABCDEF"}
        everyone = self.env["res.partner"].browse([c.id for c in clients.values()])
        with freeze_time("2025-01-15"):
            self.paid_invoice(clients["A"], 1000.0, "2025-01-15")
            self.paid_invoice(clients["B"], 500.0, "2025-01-15")
        with freeze_time("2026-01-15"):
            self.paid_invoice(clients["A"], 1000.0, "2026-01-15")
        with freeze_time("2026-05-01"):
            for code in "CDF":
                self.lead(clients[code])
            self.lead(
                clients["E"],
                lead_type="opportunity",
                expected_revenue=1000.0,
                probability=40.0,
            )
            self.recompute(everyone)
        with freeze_time("2026-05-10"):
            self.paid_invoice(clients["C"], 600.0, "2026-05-10")
        with freeze_time("2026-06-01"):
            self.recompute(everyone)
        with freeze_time("2026-06-02"):
            # the company's figures are those of the day, computed by its
            # first run: the run that converts C counts it from the next day
            self.recompute(everyone)
        stages = {code: self.stage_of(client) for code, client in clients.items()}
        self.assertEqual(
            stages,
            {
                "A": "repeat_customer",
                "B": "lost",
                "C": "new_customer",
                "D": "prospect",
                "E": "opportunity",
                "F": "prospect",
            },
        )
        clv = {code: client.clv for code, client in clients.items()}
        self.assertEqual(
            clv, {"A": 1750.0, "B": 0.0, "C": 1050.0, "D": 0.0, "E": 0.0, "F": 0.0}
        )
        potential = {
            code: client.lifecycle_potential_value for code, client in clients.items()
        }
        self.assertEqual(
            potential,
            {"A": 0.0, "B": 0.0, "C": 0.0, "D": 187.5, "E": 0.0, "F": 187.5},
        )
        self.env.flush_all()
        [(active, pipeline, prospects, capital)] = self.env[
            "crm.lifecycle.report"
        ]._read_group(
            [("company_id", "=", self.company.id)],
            [],
            [
                "active_clv:sum",
                "pipeline_expected_revenue:sum",
                "potential_value:sum",
                "customer_capital:sum",
            ],
        )
        self.assertEqual(
            (active, pipeline, prospects, capital), (2800.0, 400.0, 375.0, 3575.0)
        )
        # drill-down per salesperson: everything is the salesman's
        by_user = self.env["crm.lifecycle.report"]._read_group(
            [("company_id", "=", self.company.id)],
            ["user_id"],
            ["customer_capital:sum"],
        )
        self.assertEqual(by_user, [(self.salesman, 3575.0)])
