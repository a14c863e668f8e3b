# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import gc

from freezegun import freeze_time

from odoo import Command, fields
from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import SQL

from ..models.crm_lifecycle_engine import collection_paused
from .common import LifecycleCase

# queries of a run of one engine batch (its clients, in one query; JIT off,
# metrics, stage, level, RFM, value, logs; the receivable accounts, read
# once per run; the language of the company for the notes of clients without
# one): its clients have documents and leads, no open receivable line (no
# query of receivables)
ENGINE_BATCH_QUERIES = 22
# queries of each later batch of the same run: what is read once per run
# (the company, its currency, the names of stages and levels in the notes,
# the receivable accounts) is not read again once the ORM's cache is emptied
# between batches
LATER_BATCH_QUERIES = 9


@tagged("post_install", "-at_install")
class TestLifecycleEngine(LifecycleCase):
    def queued(self, partner):
        return (
            self.env["crm.lifecycle.queue"]
            .sudo()
            .search_count(
                [("partner_id", "=", partner.id), ("company_id", "=", self.company.id)]
            )
        )

    def forget_results(self, partners):
        """Forget what the engine wrote for ``partners`` (stage, level,
        facts): their next computation changes every one of them."""
        self.env.cr.flush()
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lifecycle_client SET stage_id = NULL,"
                " loyalty_level_id = NULL, facts_key = NULL"
                " WHERE partner_id = ANY(%s)",
                partners.ids,
            )
        )
        self.env.invalidate_all()

    @freeze_time("2026-03-01")
    def test_events_only_mark_and_cron_drains(self):
        client = self.create_client("Queued")
        self.env["crm.lifecycle.queue"].sudo().search([]).unlink()
        invoice = self.invoice(client, 1000.0, "2026-02-01")
        self.assertEqual(self.queued(client), 1)
        self.assertFalse(client.lifecycle_stage_id)  # nothing computed yet
        playbooks = self.env.ref("crm_lifecycle.ir_cron_lifecycle_playbooks")
        triggers = self.env["ir.cron.trigger"].sudo()
        before = triggers.search_count([("cron_id", "=", playbooks.id)])
        self.engine._process_queue()
        self.assertEqual(self.queued(client), 0)
        self.assertEqual(self.stage_of(client), "target")
        # the playbooks run right after the clients they may concern
        after = triggers.search_count([("cron_id", "=", playbooks.id)])
        self.assertEqual(after, before + 1)
        self.pay(invoice, date="2026-02-10")
        self.assertEqual(self.queued(client), 1)
        self.engine._process_queue()
        self.assertEqual(self.stage_of(client), "new_customer")
        # a lead won or lost marks its client too
        lead = self.lead(client, lead_type="opportunity")
        self.engine._process_queue()
        lead.action_set_lost()
        self.assertEqual(self.queued(client), 1)
        # resetting the invoice to draft marks it again and undoes the purchase
        self.engine._process_queue()
        invoice.button_draft()
        self.assertEqual(self.queued(client), 1)
        self.engine._process_queue()
        self.assertEqual(client.purchase_count, 0)

    @freeze_time("2026-03-01")
    def test_merge_marks_survivor(self):
        first = self.create_client("Dup A")
        second = self.create_client("Dup B")
        self.paid_invoice(second, 100.0, "2026-02-01")
        self.engine._process_queue()
        self.assertEqual(self.stage_of(first), "target")
        wizard = self.env["base.partner.merge.automatic.wizard"]
        wizard._merge((first | second).ids, first)
        self.assertEqual(self.queued(first), 1)
        self.engine._process_queue()
        self.assertEqual(self.stage_of(first), "new_customer")

    def test_bad_client_is_skipped(self):
        good = self.create_client("Good")
        bad = self.create_client("Bad")
        self.env["crm.lifecycle.queue"].sudo().search([]).unlink()
        self.env["crm.lifecycle.queue"].sudo()._enqueue(
            (good | bad).ids, self.company.ids
        )
        # data that makes the rules fail, on the bad client only
        original = type(self.engine)._builtin_condition

        def failing(engine, code, values, company, today):
            if values.get("partner_marker") == bad.id:
                raise ValueError("corrupt data")
            return original(engine, code, values, company, today)

        original_metrics = type(self.engine)._metrics

        def marked(engine, partners, *args):
            metrics = original_metrics(engine, partners, *args)
            for partner_id, values in metrics.items():
                values["partner_marker"] = partner_id
            return metrics

        self.patch(type(self.engine), "_builtin_condition", failing)
        self.patch(type(self.engine), "_metrics", marked)
        with self.assertLogs(
            "odoo.addons.crm_lifecycle.models.crm_lifecycle_engine", "WARNING"
        ) as logs:
            self.engine._process_queue()
        self.assertIn(f"client {bad.id} kept queued", logs.output[0])
        self.assertEqual(self.stage_of(good), "target")
        self.assertFalse(bad.lifecycle_stage_id)
        # the bad client stays queued with its error, for a later attempt
        Queue = self.env["crm.lifecycle.queue"].sudo()
        waiting = Queue.search([])
        self.assertEqual(waiting.partner_id, bad)
        self.assertEqual(waiting.attempts, 1)
        self.assertIn("corrupt data", waiting.error)
        self.assertGreater(waiting.retry_date, fields.Datetime.now())
        # not taken again before its retry date
        self.assertEqual(self.engine._process_queue(), 0)
        # a manager sees it and asks for it again; a salesperson cannot
        with self.assertRaises(AccessError):
            waiting.with_user(self.salesman).action_retry_now()
        failed = Queue.with_user(self.sales_manager).search([("error", "!=", False)])
        self.assertEqual(failed, waiting)
        failed.action_retry_now()
        self.assertFalse(waiting.retry_date)
        with self.assertLogs(
            "odoo.addons.crm_lifecycle.models.crm_lifecycle_engine", "WARNING"
        ):
            self.assertEqual(self.engine._process_queue(), 1)
        self.assertEqual(waiting.attempts, 2)

    @freeze_time("2026-03-20")
    def test_company_documents_equal_batch_documents(self):
        """The company-wide form of the documents (rates and RFM bounds of a
        run: reconciliations grouped once) gives the rows the batch form
        (one lookup per document) gives, today and as of a past date: paid,
        partly paid, paid later, reversed and credited invoices."""
        paid, partial, later, reversed_, credited = (
            self.create_client(name)
            for name in ("Paid", "Partial", "Later", "Reversed", "Credited")
        )
        self.paid_invoice(paid, 1000.0, "2026-01-10", paid_on="2026-01-20")
        self.pay(self.invoice(partial, 800.0, "2026-01-15"), 300.0, "2026-02-01")
        self.pay(self.invoice(later, 500.0, "2026-01-05"), date="2026-03-05")
        self.reverse(self.invoice(reversed_, 700.0, "2026-01-12"), "2026-02-10", True)
        refund = self.reverse(
            self.paid_invoice(credited, 900.0, "2026-01-08"), "2026-02-15"
        )
        refund.action_post()
        self.pay(refund, date="2026-02-20")
        clients = paid | partial | later | reversed_ | credited
        self.env.flush_all()

        def rows(as_of, batch):
            documents = self.engine._documents(
                self.company, clients.ids if batch else None, as_of
            )
            self.env.cr.execute(
                SQL(
                    "SELECT * FROM (%s) doc WHERE partner_id = ANY(%s) ORDER BY id",
                    documents,
                    clients.ids,
                )
            )
            return self.env.cr.dictfetchall()

        for as_of in (fields.Date.to_date("2026-02-05"), None):
            company_rows = rows(as_of, batch=False)
            self.assertEqual(company_rows, rows(as_of, batch=True))
            by_partner = {}
            for row in company_rows:
                by_partner.setdefault(row["partner_id"], []).append(row)
            if as_of:
                # not reversed yet: an open invoice
                self.assertEqual(by_partner[reversed_.id][0]["paid"], 0.0)
            else:
                # the reversed invoice and its credit note count for nothing
                self.assertNotIn(reversed_.id, by_partner)
            self.assertEqual(by_partner[partial.id][0]["paid"], 300.0)
            self.assertEqual(by_partner[later.id][0]["paid"], 0.0 if as_of else 500.0)
            self.assertEqual(len(by_partner[credited.id]), 1 if as_of else 2)

    @freeze_time("2026-03-01")
    def test_receivables_of_today_read_later_payments(self):
        """Today, the receivable lines Odoo marks reconciled are not read,
        but for a client with a reconciliation dated after today: its invoice
        paid ahead of the payment's date is still open today, as the as-of
        form (which reads every reconciliation) says."""
        ahead, paid = self.create_client("Paid ahead"), self.create_client("Paid")
        for client in (ahead, paid):
            self.paid_invoice(client, 300.0, "2026-01-10", paid_on="2026-01-20")
            self.invoice(client, 200.0, "2026-02-20")
        self.pay(self.invoice(ahead, 500.0, "2026-02-10"), date="2026-03-05")
        self.recompute(ahead | paid)
        self.assertEqual(ahead.receivable_open, 700.0)
        self.assertEqual(ahead.receivable_overdue, 700.0)
        self.assertEqual(ahead.purchase_count, 1)
        self.assertEqual(paid.receivable_open, 200.0)
        as_of = self.engine._compute_as_of(
            ahead | paid, self.company, fields.Date.to_date("2026-03-01")
        )
        for client in (ahead, paid):
            self.assertEqual(
                as_of[client.id]["receivable_open"], client.receivable_open
            )
            self.assertEqual(
                as_of[client.id]["max_days_overdue"], client.max_days_overdue
            )

    @freeze_time("2026-03-01")
    def test_payment_dated_later_between_two_batches_of_a_run(self):
        """A payment dated after today, registered between two batches of
        one run (the queue's cron commits each batch, and a run keeps what
        does not change from batch to batch), leaves its invoice open today
        in the next batch, and the payment's date is one on which the client
        is computed again: each batch reads the reconciliations dated later
        of its own clients."""
        first, ahead = self.create_client("First"), self.create_client("Paid ahead")
        self.invoice(first, 100.0, "2026-02-01")
        invoice = self.invoice(ahead, 400.0, "2026-02-10")
        run = {}
        self.engine._compute_batch(first, self.company, run)
        self.assertEqual(first.receivable_open, 100.0)
        self.pay(invoice, date="2026-03-05")
        self.engine._compute_batch(ahead, self.company, run)
        self.assertEqual(ahead.receivable_open, 400.0)
        self.assertEqual(ahead.max_days_overdue, 19)
        today = fields.Date.to_date("2026-03-01")
        facts = self.engine._facts(
            ahead.ids, self.company, today, run[self.company.id, today]
        )
        self.assertTrue(facts[ahead.id]["settled_later"])
        self.assertEqual(
            facts[ahead.id]["next_date"], fields.Date.to_date("2026-03-05")
        )

    @freeze_time("2026-03-01")
    def test_metrics_read_only_clients_that_have_them(self):
        """Each metrics query of a batch reads only the clients whose facts
        say they have what it reads: documents, open receivable lines (or a
        reconciliation dated after today: a line Odoo marks reconciled that
        is still open today), leads. A client without any is computed from
        none of them; the others get the same figures as before."""
        buyer, debtor, ahead, prospect, nobody = (
            self.create_client(name)
            for name in ("Buyer", "Debtor", "Paid ahead", "Prospect", "Nobody")
        )
        self.paid_invoice(buyer, 100.0, "2026-01-10")
        self.invoice(debtor, 200.0, "2026-02-01")
        # its only receivable line is reconciled, by a payment of next week
        self.pay(self.invoice(ahead, 400.0, "2026-02-10"), date="2026-03-05")
        self.lead(prospect)
        clients = buyer | debtor | ahead | prospect | nobody
        self.env.cr.flush()
        read = {}
        Engine = type(self.engine)

        def spy(name):
            original = getattr(Engine, name)

            def query(engine, partner_ids, *args):
                read[name] = sorted(partner_ids)
                return original(engine, partner_ids, *args)

            return query

        for name in ("_query_invoices", "_query_receivables", "_query_leads"):
            self.patch(Engine, name, spy(name))
        self.engine._recompute(clients, self.company, force=True)
        self.assertEqual(read["_query_invoices"], sorted((buyer | debtor | ahead).ids))
        self.assertEqual(read["_query_receivables"], sorted((debtor | ahead).ids))
        self.assertEqual(read["_query_leads"], prospect.ids)
        self.assertEqual(buyer.purchase_count, 1)
        self.assertEqual(debtor.receivable_open, 200.0)
        self.assertEqual(ahead.receivable_open, 400.0)
        self.assertEqual(ahead.max_days_overdue, 19)
        self.assertEqual(prospect.lead_count, 1)
        self.assertEqual(self.stage_of(prospect), "prospect")
        self.assertEqual(self.stage_of(nobody), "target")

    @freeze_time("2026-03-01")
    def test_receivables_by_line_partner(self):
        """A client owes what the receivable lines of it and of its contacts
        say, whatever the partner of their journal entry: an opening entry
        without partner whose receivable line names a contact counts, today
        and as of a date, and a new line of the contact makes the client
        computed again."""
        client = self.create_client("Opening balance")
        contact = self.env["res.partner"].create(
            {"name": "Accounting", "parent_id": client.id, "type": "invoice"}
        )
        self.paid_invoice(client, 100.0, "2026-01-10")

        def opening_entry(amount, date):
            entry = self.env["account.move"].create(
                {
                    "move_type": "entry",
                    "journal_id": self.company_data["default_journal_misc"].id,
                    "date": date,
                    "line_ids": [
                        Command.create(
                            {
                                "account_id": self.company_data[
                                    "default_account_receivable"
                                ].id,
                                "partner_id": contact.id,
                                "debit": amount,
                                "date_maturity": date,
                            }
                        ),
                        Command.create(
                            {
                                "account_id": self.company_data[
                                    "default_account_revenue"
                                ].id,
                                "credit": amount,
                            }
                        ),
                    ],
                }
            )
            entry.action_post()
            return entry

        opening_entry(250.0, "2026-02-01")
        self.recompute(client)
        self.assertEqual(client.receivable_open, 250.0)
        self.assertEqual(client.max_days_overdue, 28)
        as_of = self.engine._compute_as_of(
            client, self.company, fields.Date.to_date("2026-03-01")
        )
        self.assertEqual(as_of[client.id]["receivable_open"], 250.0)
        opening_entry(50.0, "2026-02-15")
        self.recompute(client)
        self.assertEqual(client.receivable_open, 300.0)

    @freeze_time("2026-03-01")
    def test_constant_queries_per_batch(self):
        """A batch costs the same queries for 1 client as for 200: the
        client rows, the history rows and the chatter notes each in one
        statement."""
        partners = self.env["res.partner"].create(
            [{"name": f"Bulk {index}", "is_company": True} for index in range(301)]
        )
        self.env["crm.lead"].create(
            [
                {"name": f"Lead {p.name}", "partner_id": p.id, "type": "lead"}
                for p in partners
            ]
        )
        single, hundred, two_hundred = partners[0], partners[1:101], partners[101:]
        # one paying client in each set: a stage and a loyalty level change
        for first in (single, hundred[0], two_hundred[0]):
            self.paid_invoice(first, 100.0, "2026-02-01")
        warm_up = self.create_client("Warm-up")
        self.paid_invoice(warm_up, 100.0, "2026-02-01")
        self.recompute(warm_up)
        # the new clients are computed at precommit: their results are
        # forgotten, so that each batch below changes every client
        self.forget_results(partners)

        for clients in (single, hundred, two_hundred):
            # every client changes stage, the paying one changes level too
            self.env.invalidate_all()
            with self.assertQueryCount(ENGINE_BATCH_QUERIES):
                self.recompute(clients)
        for first in (single, hundred[0], two_hundred[0]):
            self.assertEqual(self.stage_of(first), "new_customer")
            self.assertEqual(first.loyalty_level_id, self.level["bronze"])
        self.assertEqual(self.stage_of(partners[300]), "prospect")

    @freeze_time("2026-03-01")
    def test_later_batches_of_a_run_read_nothing_again(self):
        """A run of several batches empties the ORM's cache between them;
        what every batch needs of the company (its branches, name, currency,
        stage and level names) is read once for the run, not again by each
        batch."""
        partners = self.env["res.partner"].create(
            [{"name": f"Batch {index}", "is_company": True} for index in range(3)]
        )
        for partner in partners:
            self.lead(partner)
            self.paid_invoice(partner, 100.0, "2026-02-01")
        self.env["ir.config_parameter"].sudo().set_param("crm_lifecycle.batch_size", 1)

        def run(clients):
            """Queries of a run of one batch per client of ``clients``, every
            client changing stage and level."""
            self.forget_results(partners)
            before = self.env.cr.sql_log_count
            self.recompute(clients)
            return self.env.cr.sql_log_count - before

        run(partners[:1])  # the caches of a process that ran before
        two, three = run(partners[:2]), run(partners)
        self.assertEqual(three - two, LATER_BATCH_QUERIES)
        for partner in partners:
            self.assertEqual(self.stage_of(partner), "new_customer")
            self.assertEqual(partner.loyalty_level_id, self.level["bronze"])

    def test_notes_written_as_odoo_logs_them(self):
        """The engine's notes of a batch, written in one INSERT with their
        shared values sent once, are those ``_message_log_batch`` writes:
        same author, addresses, subtype and type, each with a message id of
        its own in Odoo's format."""
        partners = self.env["res.partner"].create(
            [{"name": f"Noted {index}", "is_company": True} for index in range(3)]
        )
        self.forget_results(partners)
        domain = [
            ("model", "=", "res.partner"),
            ("res_id", "in", partners.ids),
            ("message_type", "=", "notification"),
        ]
        # the notes of their creation, computed at precommit, are left out
        created = self.env["mail.message"].search(domain)
        self.recompute(partners)
        notes = self.env["mail.message"].search(domain) - created
        self.assertEqual(sorted(notes.mapped("res_id")), sorted(partners.ids))
        reference = partners[0]._message_log_batch(bodies={partners[0].id: "Reference"})
        fields_shared = [
            "model",
            "author_id",
            "email_from",
            "reply_to",
            "subtype_id",
            "message_type",
            "is_internal",
        ]
        for note in notes:
            self.assertIn("Lifecycle stage", str(note.body))
            # dated at the transaction's time, as the rows it writes
            self.assertEqual(note.date, self.env.cr.now())
            for name in fields_shared:
                self.assertEqual(note[name], reference[name], name)
        self.assertEqual(len(set(notes.mapped("message_id"))), 3)
        for message_id in notes.mapped("message_id"):
            self.assertRegex(message_id, r"^<[\d.]+-openerp-message-notify@.+>$")

    def test_batch_leaves_the_garbage_collector_as_found(self):
        """A batch pauses the process's garbage collector and switches it
        on again, failed or not; paused by another thread, it stays so."""
        self.assertTrue(gc.isenabled())
        partner = self.env["res.partner"].create({"name": "Paused", "is_company": True})
        self.recompute(partner)
        self.assertTrue(gc.isenabled())
        with self.assertRaises(ValueError), collection_paused():
            self.assertFalse(gc.isenabled())
            raise ValueError("the batch failed")
        self.assertTrue(gc.isenabled())
        gc.disable()
        try:
            with collection_paused():
                pass
            self.assertFalse(gc.isenabled())
        finally:
            gc.enable()
