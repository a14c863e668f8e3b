# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import date, datetime

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo import fields
from odoo.tests import Form, tagged
from odoo.tools import SQL

from ..models.crm_lifecycle_client import json_columns
from .common import LifecycleCase

# A run over clients whose facts did not change (its clients, in one query;
# the company's context, the receivable accounts included, then the facts)
SKIPPED_RUN_QUERIES = 15


@tagged("post_install", "-at_install")
class TestLifecycleClient(LifecycleCase):
    """The client state lives in crm.lifecycle.client: one row per commercial
    partner and company, written only where something changed."""

    def test_rows_travel_as_json_columns(self):
        """The engine sends the values of the rows it writes as one JSON
        array per column (``json_columns``): what PostgreSQL reads from
        them is what was sent, empty values included, in columns of each
        kind with and without one: dates, datetimes, amounts rounded to
        their places, integers, booleans, text."""
        values = {
            "first_purchase_date": [date(2026, 1, 31), None, date(2025, 12, 1)],
            "last_purchase_date": [
                date(2026, 2, 1),
                date(2024, 2, 29),
                date(2026, 3, 1),
            ],
            "stage_date": [datetime(2026, 2, 1, 13, 5, 7), None, datetime(2026, 2, 2)],
            "paid_revenue": [1234.5, None, 0.1],
            "receivable_open": [10.0, 20.25, -3.5],
            "purchase_count": [1, 0, 12],
            "stage_locked": [True, False, False],
            "facts_key": ['a"b\\c', None, "é"],
        }
        self.env.cr.execute(
            SQL(
                "SELECT %s FROM %s",
                SQL(", ").join(SQL.identifier("v", name) for name in values),
                json_columns(
                    self.env["crm.lifecycle.client"],
                    values,
                    digits={"paid_revenue": 2, "receivable_open": 2},
                ),
            )
        )
        self.assertEqual(
            dict(
                zip(
                    values,
                    map(list, zip(*self.env.cr.fetchall(), strict=False)),
                    strict=True,
                )
            ),
            values,
        )

    def client_rows(self, partners, company=None):
        return (
            self.env["crm.lifecycle.client"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", partners.ids),
                    ("company_id", "=", (company or self.company).id),
                ]
            )
        )

    def table_state(self, table, ids):
        """(id, write_date) of rows of ``table``, read in SQL."""
        self.env.flush_all()
        self.env.cr.execute(
            f"SELECT id, write_date FROM {table} WHERE id = ANY(%s) ORDER BY id",  # noqa: S608
            [list(ids)],
        )
        return self.env.cr.fetchall()

    @freeze_time("2026-03-01")
    def test_one_row_per_client_and_company_contacts_read_it(self):
        client = self.create_client("Row")
        contact = self.env["res.partner"].create(
            {"name": "Buyer", "parent_id": client.id}
        )
        self.paid_invoice(contact, 500.0, "2026-02-01")
        self.recompute(client | contact)
        rows = self.client_rows(client | contact)
        self.assertEqual(rows.partner_id, client, "no row for the contact")
        self.assertEqual(rows.purchase_count, 1)
        self.assertEqual(rows.stage_id.code, "new_customer")
        # the contact shows its commercial entity's state
        self.assertEqual(contact.lifecycle_stage_id, rows.stage_id)
        self.assertEqual(contact.paid_revenue, 500.0)
        self.assertEqual(contact.purchase_count, 1)

    @freeze_time("2026-03-01")
    def test_second_run_writes_nothing(self):
        clients = self.create_client("Calm A") | self.create_client("Calm B")
        self.paid_invoice(clients[0], 800.0, "2026-01-15")
        self.lead(clients[1])
        self.recompute(clients)
        rows = self.client_rows(clients)
        self.assertEqual(len(rows), 2)
        rows_before = self.table_state("crm_lifecycle_client", rows.ids)
        partners_before = self.table_state("res_partner", clients.ids)
        history = self.env["crm.lifecycle.history"].search_count([])
        messages = self.env["mail.message"].search_count(
            [("model", "=", "res.partner"), ("res_id", "in", clients.ids)]
        )
        written = []
        original = type(self.env["crm.lifecycle.client"])._write_states

        def spy(model, company, rows, states=None):
            result = original(model, company, rows, states)
            written.extend(result)
            return result

        self.patch(type(self.env["crm.lifecycle.client"]), "_write_states", spy)
        with freeze_time("2026-03-01 18:00:00"):
            self.recompute(clients)
        self.assertEqual(written, [], "no client row written")
        self.assertEqual(
            self.table_state("crm_lifecycle_client", rows.ids), rows_before
        )
        self.assertEqual(self.table_state("res_partner", clients.ids), partners_before)
        self.assertEqual(self.env["crm.lifecycle.history"].search_count([]), history)
        self.assertEqual(
            self.env["mail.message"].search_count(
                [("model", "=", "res.partner"), ("res_id", "in", clients.ids)]
            ),
            messages,
        )

    def test_amounts_are_stored_as_rounded_and_compare_equal(self):
        """The amounts and days the engine writes (sent in fixed-point
        notation) are stored as the numbers rounded as their columns keep
        them, halves and signs included, and the same values written again
        change nothing."""
        client = self.create_client("Rounded")
        Client = self.env["crm.lifecycle.client"]
        places = self.company.currency_id.decimal_places
        values = {
            "paid_revenue": 2.675,
            "invoiced_revenue": 1234567.891,
            "receivable_open": -0.004,
            "receivable_overdue": -1234.5678,
            "clv": None,
            "avg_days_to_pay": 12.345,
            "purchase_interval_days": 1e-9,
        }
        row = {**Client._empty_state(), **values}
        self.assertEqual(
            Client._write_states(self.company, {client.id: row}), [client.id]
        )
        self.env.cr.execute(
            "SELECT paid_revenue, invoiced_revenue, receivable_open,"
            " receivable_overdue, clv, avg_days_to_pay, purchase_interval_days"
            " FROM crm_lifecycle_client WHERE partner_id = %s AND company_id = %s",
            [client.id, self.company.id],
        )
        stored = [float(value) for value in self.env.cr.fetchone()]
        self.assertEqual(
            stored,
            [
                round(2.675, places),
                round(1234567.891, places),
                0.0,
                round(-1234.5678, places),
                0.0,
                round(12.345, 2),
                0.0,
            ],
        )
        # compared in SQL, then with the stored state in Python
        self.assertEqual(Client._write_states(self.company, {client.id: row}), [])
        states = Client._read_states([client.id], self.company)
        self.assertEqual(
            Client._write_states(self.company, {client.id: row}, states), []
        )

    def computed(self):
        """The ids of the clients the engine computes from now on (their
        metrics read), in order."""
        computed = []
        original = type(self.env["crm.lifecycle.engine"])._metrics

        def spy(engine, partners, *args):
            computed.extend(partners.ids)
            return original(engine, partners, *args)

        self.patch(type(self.env["crm.lifecycle.engine"]), "_metrics", spy)
        return computed

    @freeze_time("2026-03-01")
    def test_unchanged_clients_are_not_computed_again(self):
        payer, lead_only, quiet = (
            self.create_client("Payer"),
            self.create_client("Lead only"),
            self.create_client("Quiet"),
        )
        invoice = self.invoice(payer, 800.0, "2026-02-01")
        lead = self.lead(lead_only)
        clients = payer | lead_only | quiet
        self.recompute(clients)
        rows = self.client_rows(clients)
        self.assertTrue(all(rows.mapped("facts_key")))
        # the new clients of the class computed at precommit first
        self.env.cr.flush()
        computed = self.computed()
        self.env.invalidate_all()
        # facts, figures and settings as they were: the queries of a run
        # (clients, stages, levels, settings, the figures of the day, facts),
        # whatever the number of clients, and no metric
        with self.assertQueryCount(SKIPPED_RUN_QUERIES):
            self.recompute(clients)
        self.assertEqual(computed, [])

        # a payment, in the same transaction even, is a change of the payer
        self.pay(invoice, date="2026-02-20")
        self.recompute(clients)
        self.assertEqual(computed, payer.ids)
        self.assertEqual(self.stage_of(payer), "new_customer")
        # so is a lead converted, and a contact's new lead
        computed.clear()
        lead.convert_opportunity(lead_only)
        contact = self.env["res.partner"].create(
            {"name": "Contact", "parent_id": quiet.id}
        )
        self.lead(contact)
        self.recompute(clients)
        self.assertEqual(sorted(computed), sorted((lead_only | quiet).ids))
        self.assertEqual(self.stage_of(lead_only), "opportunity")
        self.assertEqual(self.stage_of(quiet), "prospect")

        # a setting every client depends on computes them all
        computed.clear()
        self.company.lifecycle_at_risk_factor = 1.2
        self.recompute(clients)
        self.assertEqual(sorted(computed), sorted(clients.ids))

        # a row changed by hand is computed by the next run, whatever its facts
        computed.clear()
        self.client_rows(quiet).sudo().write({"stage_locked": False})
        self.recompute(clients)
        self.assertEqual(computed, quiet.ids)

    @freeze_time("2026-03-01")
    def test_fingerprints_with_and_without_hash_record(self):
        """On PostgreSQL 14 and later the facts are hashed with hash_record,
        before as text: either fingerprint changes with a payment, and only
        with it."""
        client = self.create_client("Fingerprints")
        invoice = self.invoice(client, 400.0, "2026-02-01")
        engine = self.env["crm.lifecycle.engine"].sudo()
        today = fields.Date.to_date("2026-03-01")

        def keys():
            keys = {}
            for hash_record in (True, False):
                context = engine._company_context(self.company, today)
                engine._facts(client.ids, self.company, today, context)
                context["hash_record"] = hash_record
                facts = engine._facts(client.ids, self.company, today, context)
                keys[hash_record] = facts[client.id]["key"]
            return keys

        before = keys()
        self.assertNotEqual(before[True], before[False])
        self.assertEqual(keys(), before, "nothing changed, nor did the keys")
        self.pay(invoice, date="2026-02-20")
        after = keys()
        self.assertNotEqual(after[True], before[True])
        self.assertNotEqual(after[False], before[False])

    @freeze_time("2026-03-01")
    def test_time_alone_computes_a_client_on_its_recheck_date(self):
        client = self.create_client("Time passes")
        self.paid_invoice(client, 800.0, "2025-11-01")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "new_customer")
        row = self.client_rows(client)
        recheck = row.recheck_date
        # no later than the day it falls at risk: 90 days of default
        # interval × 1.5, "more than 135 days" after 2025-11-01: 2026-03-17
        self.assertTrue(
            fields.Date.to_date("2026-03-01")
            < recheck
            <= fields.Date.to_date("2026-03-17")
        )
        computed = self.computed()
        with freeze_time(recheck - relativedelta(days=1)):
            self.recompute(client)
        self.assertEqual(computed, [], "nothing to do before the recheck date")
        day = recheck
        while self.stage_of(client) != "at_risk":
            with freeze_time(day):
                self.recompute(client)
            self.assertLessEqual(day, fields.Date.to_date("2026-03-17"))
            day = self.client_rows(client).recheck_date
        self.assertEqual(self.last_history(client).stage_to_id.code, "at_risk")
        self.assertIn(client.id, computed)

    @freeze_time("2026-03-01")
    def test_overdue_receivable_is_computed_every_day(self):
        client = self.create_client("Late payer")
        self.invoice(client, 500.0, "2026-01-01")
        self.recompute(client)
        days = self.client_rows(client).max_days_overdue
        self.assertGreater(days, 0)
        self.assertEqual(
            self.client_rows(client).recheck_date, fields.Date.to_date("2026-03-02")
        )
        with freeze_time("2026-03-02"):
            self.recompute(client)
            self.assertEqual(self.client_rows(client).max_days_overdue, days + 1)

    @freeze_time("2026-03-01")
    def test_company_figures_are_kept_for_the_day(self):
        first = self.create_client("First of the day")
        self.paid_invoice(first, 300.0, "2026-02-01")
        Engine = type(self.env["crm.lifecycle.engine"])
        bounds = []
        original = Engine._document_figures

        def spy(engine, company, today, months):
            bounds.append(today)
            return original(engine, company, today, months)

        self.patch(Engine, "_document_figures", spy)
        self.recompute(first)
        self.assertEqual(len(bounds), 1)
        kept = self.company.sudo().lifecycle_figures
        self.assertEqual(kept["date"], "2026-03-01")
        later = self.create_client("Later that day")
        self.paid_invoice(later, 300.0, "2026-02-15")
        self.recompute(later)
        self.assertEqual(
            len(bounds), 1, "the figures of the day are read, not computed"
        )
        # a setting they read computes them again, so does a new day
        self.company.lifecycle_rfm_months = 6
        self.recompute(later)
        self.assertEqual(len(bounds), 2)
        with freeze_time("2026-03-02"):
            self.recompute(later)
        self.assertEqual(len(bounds), 3)
        # and rebuilt snapshots (the conversion rates read them)
        self.env["crm.lifecycle.snapshot"]._rebuild_dates(
            self.company, [fields.Date.to_date("2026-02-28")]
        )
        self.assertFalse(self.company.sudo().lifecycle_figures)

    @freeze_time("2026-03-01")
    def test_time_moves_the_stage_without_any_event(self):
        client = self.create_client("Time")
        self.paid_invoice(client, 800.0, "2026-02-01")
        self.recompute(client)
        self.assertEqual(self.stage_of(client), "new_customer")
        partner_state = self.table_state("res_partner", client.ids)
        # 90 days of default interval × 1.5: at risk after 135 days
        with freeze_time("2026-07-01"):
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "at_risk")
        self.assertEqual(self.last_history(client).stage_to_id.code, "at_risk")
        self.assertEqual(
            self.table_state("res_partner", client.ids),
            partner_state,
            "the engine never writes res_partner",
        )

    @freeze_time("2026-03-01")
    def test_partner_fields_search_sort_and_group(self):
        buyer = self.create_client("Buyer")
        self.paid_invoice(buyer, 900.0, "2026-02-01")
        small = self.create_client("Small buyer")
        self.paid_invoice(small, 100.0, "2026-02-01")
        never = self.create_client("Never computed")
        self.recompute(buyer | small)
        Partner = self.env["res.partner"]
        scope = [("id", "in", (buyer | small | never).ids)]
        self.assertEqual(
            Partner.search([*scope, ("purchase_count", ">", 0)]), buyer | small
        )
        self.assertEqual(Partner.search([*scope, ("paid_revenue", ">", 500)]), buyer)
        # a partner without a row matches what an empty row would
        self.assertEqual(
            Partner.search([*scope, ("lifecycle_stage_id", "=", False)]), never
        )
        self.assertEqual(Partner.search([*scope, ("purchase_count", "=", 0)]), never)
        self.assertEqual(
            Partner.search([*scope, ("lifecycle_stage_id.code", "=", "new_customer")]),
            buyer | small,
        )
        ordered = Partner.search(scope, order="paid_revenue desc, id")
        self.assertEqual(ordered[:2], buyer | small)
        self.assertEqual(ordered[0], buyer)
        groups = dict(Partner._read_group(scope, ["lifecycle_stage_id"], ["__count"]))
        self.assertEqual(groups[self.stage["new_customer"]], 2)
        self.assertEqual(groups[self.stage["new_customer"].browse()], 1)
        fields_info = Partner.fields_get(["lifecycle_stage_id", "paid_revenue"])
        self.assertTrue(fields_info["lifecycle_stage_id"]["sortable"])
        self.assertTrue(fields_info["lifecycle_stage_id"]["groupable"])
        self.assertTrue(fields_info["paid_revenue"]["searchable"])

    @freeze_time("2026-03-01")
    def test_client_only_in_companies_where_visible(self):
        other = self.setup_other_company()["company"]
        restricted = self.create_client("Only B", company_id=other.id)
        shared = self.create_client("Shared")
        self.env["crm.lifecycle.queue"].sudo().search([]).unlink()
        self.engine._enqueue_all_clients()
        queued = (
            self.env["crm.lifecycle.queue"]
            .sudo()
            .search([("partner_id", "in", (restricted | shared).ids)])
        )
        self.assertEqual(
            {
                (q.partner_id, q.company_id)
                for q in queued
                if q.partner_id == restricted
            },
            {(restricted, other)},
        )
        self.recompute(restricted | shared, self.company | other)
        self.assertFalse(self.client_rows(restricted))
        self.assertTrue(self.client_rows(restricted, other))
        self.assertTrue(self.client_rows(shared) and self.client_rows(shared, other))
        self.assertFalse(
            self.env["crm.lifecycle.history"].search(
                [
                    ("partner_id", "=", restricted.id),
                    ("company_id", "=", self.company.id),
                ]
            )
        )

    @freeze_time("2026-03-01")
    def test_branch_invoices_count_in_the_parent_company(self):
        branch = self._create_company(name="Branch", parent_id=self.company.id)
        self.env.user.company_ids |= branch
        client = self.create_client("Branch buyer")
        self.env["crm.lifecycle.queue"].sudo().search([]).unlink()
        invoice = self.init_invoice(
            "out_invoice",
            partner=client,
            invoice_date=fields.Date.to_date("2026-02-01"),
            amounts=[300.0],
            taxes=[],
            company=branch,
            post=True,
        )
        self.assertEqual(invoice.company_id, branch)
        # the branch's event queues the client in the branch and above it
        companies = (
            self.env["crm.lifecycle.queue"]
            .sudo()
            .search([("partner_id", "=", client.id)])
            .company_id
        )
        self.assertEqual(companies, self.company | branch)
        self.pay(invoice)
        self.engine._process_queue()
        self.assertEqual(client.with_company(self.company).purchase_count, 1)
        self.assertEqual(client.with_company(self.company).paid_revenue, 300.0)
        self.assertEqual(client.with_company(branch).purchase_count, 1)

    def list_specification(self, view_xmlid):
        """The web client's specification of the fields of a list view."""
        view = self.env.ref(view_xmlid)
        fields_info = self.env["res.partner"].get_views([(view.id, "list")])["models"][
            "res.partner"
        ]["fields"]
        Partner = self.env["res.partner"]
        return {
            name: {"fields": {"display_name": {}}}
            if Partner._fields[name].type == "many2one"
            else {}
            for name in fields_info
            if name in Partner._fields
        }

    @freeze_time("2026-03-01")
    def test_lifecycle_list_reads_like_the_contacts_list(self):
        """The lifecycle list of 80 clients costs at most 2 queries more than
        the standard Contacts list of the same clients."""
        clients = self.env["res.partner"].create(
            [{"name": f"Listed {index}", "is_company": True} for index in range(80)]
        )
        for client in clients[:3]:
            self.paid_invoice(client, 100.0, "2026-02-01")
        self.recompute(clients)
        domain = [("id", "in", clients.ids)]
        Partner = self.env["res.partner"].with_user(self.salesman)
        lifecycle = self.list_specification(
            "crm_lifecycle.res_partner_view_list_lifecycle"
        )
        contacts = self.list_specification("base.view_partner_tree")
        self.assertIn("lifecycle_stage_id", lifecycle)
        self.assertIn("paid_revenue", lifecycle)

        def read(specification):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            records = Partner.web_search_read(domain, specification, limit=80)
            self.assertEqual(records["length"], 80)
            return self.env.cr.sql_log_count - before

        read(contacts)  # warm-up: caches of models, views, access rights
        read(lifecycle)
        standard = read(contacts)
        self.env.invalidate_all()
        with self.assertQueryCount(standard + 2):
            result = Partner.web_search_read(domain, lifecycle, limit=80)
        by_id = {record["id"]: record for record in result["records"]}
        self.assertEqual(by_id[clients[0].id]["purchase_count"], 1)
        self.assertEqual(
            by_id[clients[0].id]["lifecycle_stage_id"]["id"],
            self.stage["new_customer"].id,
        )

    @freeze_time("2026-03-01")
    def test_invoicing_costs_one_query_per_transaction(self):
        """Posting and paying invoices queues their clients with one INSERT at
        the end of the transaction, whatever the number of invoices."""
        Queue = self.env["crm.lifecycle.queue"].sudo()

        def invoice_all(prefix):
            """Queries of invoicing and paying 5 new clients, commit hooks
            included; the clients."""
            clients = self.env["res.partner"].create(
                [
                    {"name": f"{prefix} {index}", "is_company": True}
                    for index in range(5)
                ]
            )
            self.env.cr.precommit.run()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            moves = self.env["account.move"]
            for client in clients:
                moves |= self.invoice(client, 200.0, "2026-02-01", post=False)
            moves.action_post()
            self.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=moves.ids
            ).create({"group_payment": False})._create_payments()
            self.env.flush_all()
            self.env.cr.precommit.run()  # what the commit runs
            return self.env.cr.sql_log_count - before, clients

        invoice_all("Warm-up")
        Queue.search([]).unlink()
        with_queue, clients = invoice_all("Invoiced")
        self.assertEqual(Queue.search([]).partner_id, clients)
        # the same documents with the queue's hook doing nothing
        self.patch(type(Queue), "_enqueue", lambda *args, **kwargs: None)
        self.patch(type(Queue), "_enqueue_moves", lambda *args, **kwargs: None)
        without_queue, _clients = invoice_all("Plain")
        self.assertLessEqual(with_queue - without_queue, 1)

    @freeze_time("2026-03-01")
    def test_client_that_becomes_a_contact_keeps_no_row(self):
        group = self.create_client("Group")
        joined = self.create_client("Joined")
        self.paid_invoice(joined, 400.0, "2026-02-01")
        self.recompute(group | joined)
        self.assertTrue(self.client_rows(joined))
        # the company becomes a person of the group: a contact
        joined.write({"parent_id": group.id, "is_company": False})
        self.assertEqual(joined.commercial_partner_id, group)
        self.engine._process_queue()
        self.assertFalse(self.client_rows(joined), "a contact has no row")
        # it reads its new commercial entity's row
        self.assertTrue(group.lifecycle_stage_id)
        self.assertEqual(joined.lifecycle_stage_id, group.lifecycle_stage_id)
        self.assertEqual(joined.purchase_count, group.purchase_count)

    @freeze_time("2026-03-01")
    def test_new_contact_form_shows_its_company_state(self):
        company = self.create_client("Form company")
        self.paid_invoice(company, 250.0, "2026-02-01")
        self.recompute(company)
        form = Form(self.env["res.partner"])
        form.name = "New person"
        self.assertFalse(form.lifecycle_stage_id)
        form.parent_id = company
        self.assertEqual(form.lifecycle_stage_id, self.stage["new_customer"])
        contact = form.save()
        self.assertEqual(contact.purchase_count, 1)
