"""Nothing is lost when users invoice while the engine drains its queue.

These tests need real, committed transactions on two or more connections, so
they run here (pytest on the test database) rather than in Odoo's
TransactionCase, which never commits. Invoices are posted and paid through
Odoo's own methods; each user transaction is retried on a concurrency error,
as Odoo's RPC layer does.
"""

import logging
import random
import threading
import time
import uuid
from datetime import timedelta

import pytest
from psycopg2 import errors as pg_errors

import odoo
from odoo import Command, fields
from odoo.modules.registry import Registry
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

CHECKED = ("purchase_count", "paid_revenue", "receivable_open", "invoiced_revenue")


def make_env(cr):
    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})


def in_transaction(registry, function, attempts=10):
    """Run ``function(env)`` in its own committed transaction, retried on
    concurrency errors."""
    for attempt in range(attempts):
        try:
            with registry.cursor() as cr:
                return function(make_env(cr))
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.01, 0.1) * 2**attempt)


def create_clients(env, prefix, count):
    return env["res.partner"].create(
        [{"name": f"{prefix} {index}", "is_company": True} for index in range(count)]
    )


def post_invoice(env, partner_id, amount):
    move = env["account.move"].create(
        {
            "move_type": "out_invoice",
            "partner_id": partner_id,
            "invoice_date": fields.Date.context_today(env["res.partner"]),
            "invoice_line_ids": [
                Command.create({"name": "Service", "price_unit": amount, "tax_ids": []})
            ],
        }
    )
    move.action_post()
    return move.id


def pay(env, move_id):
    move = env["account.move"].browse(move_id)
    env["account.payment.register"].with_context(
        active_model="account.move", active_ids=move.ids
    ).create({})._create_payments()


def refund(env, move_id):
    move = env["account.move"].browse(move_id)
    wizard = (
        env["account.move.reversal"]
        .with_context(active_model="account.move", active_ids=move.ids)
        .create({"reason": "concurrency test", "journal_id": move.journal_id.id})
    )
    wizard.modify_moves()


def stored_and_fresh(registry, partner_ids):
    """The stored figures of the clients and a fresh computation from the
    invoices, with the engine's own queries, in the main company."""
    with registry.cursor() as cr:
        env = make_env(cr)
        company = env.company
        engine = env["crm.lifecycle.engine"]
        partners = env["res.partner"].with_company(company).browse(partner_ids)
        # the engine's day: the company's (the user's time zone), as the
        # invoices are dated; UTC's differs for an hour or more at midnight
        today = fields.Date.context_today(engine.with_company(company))
        context = engine._company_context(company, today)
        fresh = engine._metrics(partners, company, today, context)
        stored = {
            partner.id: {name: partner[name] for name in CHECKED}
            for partner in partners
        }
        expected = {
            pid: {name: round(float(fresh[pid][name]), 2) for name in CHECKED}
            for pid in partner_ids
        }
        for values in stored.values():
            for name in CHECKED:
                values[name] = round(float(values[name]), 2)
        return stored, expected


@pytest.fixture
def registry(database):
    return Registry(database)


def test_payment_committed_while_a_batch_computes(registry, monkeypatch):
    """Deterministic: the batch has taken the client (its snapshot is set)
    when another connection pays the invoice and commits; the batch writes
    what it saw, and the payment's event computes the client again."""
    tag = uuid.uuid4().hex[:8]

    def setup(env):
        partner = create_clients(env, f"Two cursors {tag}", 1)
        move_id = post_invoice(env, partner.id, 700.0)
        env["crm.lifecycle.engine"]._process_queue()
        return partner.id, move_id

    partner_id, move_id = in_transaction(registry, setup)
    stored, _expected = stored_and_fresh(registry, [partner_id])
    assert stored[partner_id]["purchase_count"] == 0

    def invoice_again(env):
        # a second invoice, unpaid: the client's facts changed, it is queued
        # and the next batch computes it (one whose facts did not change
        # would be skipped)
        post_invoice(env, partner_id, 300.0)

    in_transaction(registry, invoice_again)
    Engine = registry["crm.lifecycle.engine"]
    original = Engine._metrics
    paid = []

    def metrics_after_a_payment(self, partners, *args):
        if partner_id in partners.ids and not paid:
            # a user pays on another connection, during the batch
            in_transaction(registry, lambda env: pay(env, move_id))
            paid.append(True)
        return original(self, partners, *args)

    monkeypatch.setattr(Engine, "_metrics", metrics_after_a_payment)
    with registry.cursor() as cr:
        make_env(cr)["crm.lifecycle.engine"]._process_queue(auto_commit=True)
    assert paid, "the batch computed the client"
    stored, expected = stored_and_fresh(registry, [partner_id])
    assert expected[partner_id]["purchase_count"] == 1
    assert stored == expected


def test_invoicing_while_the_queue_drains(registry):
    """Two users post, pay and refund invoices while two workers drain the
    queue; once the queue is empty, every client's figures are right."""
    tag = uuid.uuid4().hex[:8]
    partner_ids = in_transaction(
        registry, lambda env: create_clients(env, f"Threads {tag}", 8).ids
    )
    stop = threading.Event()
    failures = []

    def user(seed):
        rng = random.Random(seed)
        try:
            for _ in range(12):
                partner_id = rng.choice(partner_ids)
                amount = rng.choice([100.0, 250.0, 400.0])
                move_id = in_transaction(
                    registry,
                    lambda env, p=partner_id, a=amount: post_invoice(env, p, a),
                )
                action = rng.random()
                if action < 0.6:
                    in_transaction(registry, lambda env, m=move_id: pay(env, m))
                elif action < 0.75:
                    in_transaction(registry, lambda env, m=move_id: refund(env, m))
        except Exception as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    def worker():
        try:
            while not stop.is_set():
                with registry.cursor() as cr:
                    make_env(cr)["crm.lifecycle.engine"]._process_queue(
                        auto_commit=True
                    )
                time.sleep(0.05)
        except Exception as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    users = [threading.Thread(target=user, args=(seed,)) for seed in (1, 2)]
    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in users + workers:
        thread.start()
    for thread in users:
        thread.join()
    stop.set()
    for thread in workers:
        thread.join()
    assert not failures, failures
    # the system settles by its own means: the queue drained once more
    with registry.cursor() as cr:
        make_env(cr)["crm.lifecycle.engine"]._process_queue(auto_commit=True)
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM crm_lifecycle_queue WHERE partner_id = ANY(%s)",
            [partner_ids],
        )
        assert cr.fetchone()[0] == 0
    stored, expected = stored_and_fresh(registry, partner_ids)
    assert sum(values["purchase_count"] for values in expected.values()) > 0
    assert stored == expected


def test_serialization_failure_retries_the_batch(registry, monkeypatch):
    """A batch that meets a serialization failure is rolled back and taken
    again: its clients are computed, nothing is logged as an error."""
    tag = uuid.uuid4().hex[:8]
    partner_id = in_transaction(
        registry, lambda env: create_clients(env, f"Retry {tag}", 1).id
    )
    Engine = registry["crm.lifecycle.engine"]
    original = Engine._compute_batch
    failed = []

    def failing_once(self, partners, company, run=None):
        if partner_id in partners.ids and not failed:
            failed.append(True)
            raise pg_errors.SerializationFailure("could not serialize access")
        return original(self, partners, company, run)

    monkeypatch.setattr(Engine, "_compute_batch", failing_once)
    with registry.cursor() as cr:
        make_env(cr)["crm.lifecycle.engine"]._process_queue(auto_commit=True)
    assert failed
    with registry.cursor() as cr:
        env = make_env(cr)
        client = env["crm.lifecycle.client"].search(
            [("partner_id", "=", partner_id), ("company_id", "=", env.company.id)]
        )
        assert client.stage_id.code == "target"
        assert not env["crm.lifecycle.queue"].search([("partner_id", "=", partner_id)])


def test_two_workers_never_take_the_same_client(registry):
    """A worker holds the clients it took until its transaction ends: another
    worker takes the next ones."""
    tag = uuid.uuid4().hex[:8]

    def queue_clients(env):
        partners = create_clients(env, f"Workers {tag}", 6)
        env["crm.lifecycle.queue"]._enqueue(partners.ids)
        return partners.ids

    in_transaction(registry, queue_clients)
    with registry.cursor() as first, registry.cursor() as second:
        taken_first = make_env(first)["crm.lifecycle.queue"]._take(3)
        taken_second = make_env(second)["crm.lifecycle.queue"]._take(50)
        clients_first = {pid for ids in taken_first.values() for pid in ids}
        clients_second = {pid for ids in taken_second.values() for pid in ids}
        assert clients_first
        assert clients_second
        assert not clients_first & clients_second
        first.rollback()
        # released with the first transaction: the second may take them now
        with registry.cursor() as third:
            taken_third = make_env(third)["crm.lifecycle.queue"]._take(50)
            clients_third = {pid for ids in taken_third.values() for pid in ids}
            assert clients_first <= clients_third
            assert not clients_third & clients_second
        second.rollback()


def test_concurrent_update_of_a_client_row_is_not_logged(registry, caplog):
    """Two workers may compute the same client when one commits between the
    other's snapshot and its lock: the second one's write of the client row
    meets a real serialization failure (REPEATABLE READ), its batch is taken
    again, and nothing is logged as an ERROR (Odoo logs every failed query
    as "bad query" unless told it is expected)."""
    tag = uuid.uuid4().hex[:8]

    def computed_client(env):
        partner = create_clients(env, f"Concurrent row {tag}", 1)
        env["crm.lifecycle.engine"]._recompute(partner, env.company)
        return partner.id

    partner_id = in_transaction(registry, computed_client)
    with registry.cursor() as late, registry.cursor() as early:
        late_env = make_env(late)
        company = late_env.company
        Client = late_env["crm.lifecycle.client"]
        states = Client._read_states([partner_id], company)
        # the late worker's snapshot is taken; the other commits after it
        early_env = make_env(early)
        early_env["crm.lifecycle.client"]._write_states(
            company, {partner_id: {**states[partner_id], "purchase_count": 7}}
        )
        early.commit()
        caplog.clear()
        with (
            caplog.at_level("ERROR", logger="odoo.sql_db"),
            pytest.raises(pg_errors.SerializationFailure),
        ):
            Client._write_states(
                company, {partner_id: {**states[partner_id], "purchase_count": 3}}
            )
        late.rollback()
        assert not [
            record for record in caplog.records if record.levelname == "ERROR"
        ], caplog.text


def done_again(registry, monkeypatch, caplog, company_id, before, cron, what):
    """Run the scheduled action ``cron`` ((model, method)) in a transaction
    of its own, where the first call of ``before`` ((model, method), whose
    first argument is companies) for the company ``company_id`` is preceded
    by the commit of an update of the company's row in another transaction,
    after the snapshot of the action's (a queue worker keeping the figures of
    the day). The action does not fail, nothing is logged as an error and
    ``what`` was rolled back on a serialization failure and done again.

    The action may handle other companies first, in an order of the
    database's: an update made at their turn would be committed before the
    company's own transaction starts and would not conflict."""
    Model = registry[before[0]]
    original = getattr(Model, before[1])
    updated = []

    def after_a_concurrent_update(self, companies, *args):
        if not updated and company_id in companies.ids:
            self.env.cr.execute(SQL("SELECT 1"))
            with registry.cursor() as worker:
                worker.execute(
                    SQL(
                        "UPDATE res_company SET lifecycle_figures = lifecycle_figures"
                        " WHERE id = %s",
                        company_id,
                    )
                )
            updated.append(True)
        return original(self, companies, *args)

    monkeypatch.setattr(Model, before[1], after_a_concurrent_update)
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="odoo"),
        registry.cursor() as cr,
    ):
        getattr(make_env(cr)[cron[0]], cron[1])()
    assert updated
    assert not [record for record in caplog.records if record.levelname == "ERROR"], (
        caplog.text
    )
    assert f"{what} rolled back on SerializationFailure" in caplog.text


def test_rebuild_end_done_again_after_a_concurrent_update(
    registry, monkeypatch, caplog
):
    """A worker of the queue commits the company's figures of the day while
    "Rebuild history" runs: the end of the rebuild writes the company's row
    too and meets a serialization failure. It is done again in a new
    transaction: the rebuild is marked done, the scheduled action does not
    fail and nothing is logged as an error."""

    def request(env):
        env.company.lifecycle_snapshot_rebuild = True
        return env.company.id

    company_id = in_transaction(registry, request)
    done_again(
        registry,
        monkeypatch,
        caplog,
        company_id,
        before=("crm.lifecycle.snapshot", "_end_rebuild"),
        cron=("crm.lifecycle.snapshot", "_cron_rebuild"),
        what="end of a history rebuild",
    )
    with registry.cursor() as cr:
        company = make_env(cr)["res.company"].browse(company_id)
        assert not company.lifecycle_snapshot_rebuild


def keep_figures(registry):
    """Give the company kept figures of the day, committed (any value: the
    daily recomputation and a month end forget them); its id."""

    def kept(env):
        env.cr.execute(
            SQL(
                "UPDATE res_company SET lifecycle_figures = '{}'::jsonb WHERE id = %s",
                env.company.id,
            )
        )
        return env.company.id

    return in_transaction(registry, kept)


def test_daily_recomputation_done_again_after_a_concurrent_update(
    registry, monkeypatch, caplog
):
    """The daily recomputation forgets the company's figures of the day while
    a queue worker commits them: it meets a serialization failure and is done
    again in a new transaction; every client is queued, the scheduled action
    does not fail and nothing is logged as an error."""
    company_id = keep_figures(registry)
    clients = in_transaction(registry, lambda env: create_clients(env, "Daily", 2).ids)
    done_again(
        registry,
        monkeypatch,
        caplog,
        company_id,
        before=("crm.lifecycle.engine", "_forget_figures"),
        cron=("crm.lifecycle.engine", "_cron_enqueue_all_clients"),
        what="daily recomputation",
    )
    with registry.cursor() as cr:
        env = make_env(cr)
        assert env.company.id == company_id
        assert not env.company.lifecycle_figures
        queued = env["crm.lifecycle.queue"].search(
            [("partner_id", "in", clients), ("company_id", "=", company_id)]
        )
        assert sorted(queued.partner_id.ids) == sorted(clients)
        # the other tests find the queue as they left it: drained
        env["crm.lifecycle.engine"]._process_queue()


def test_month_end_done_again_after_a_concurrent_update(registry, monkeypatch, caplog):
    """The daily month-end action computes a missing month end and forgets
    the company's figures of the day while a queue worker commits them: it
    meets a serialization failure and the company's month ends are done
    again in a new transaction; the snapshot is there, the scheduled action
    does not fail and nothing is logged as an error."""
    company_id = keep_figures(registry)

    def previous_month_end(env):
        today = fields.Date.context_today(env["res.partner"])
        previous = today.replace(day=1) - timedelta(days=1)
        # the server was down on that day: no snapshot of it
        env.cr.execute(
            SQL(
                "DELETE FROM crm_lifecycle_snapshot WHERE date = %s",
                previous,
            )
        )
        # a client of the company on that day
        client = create_clients(env, "Month end", 1)
        env.cr.execute(
            SQL(
                "UPDATE res_partner SET create_date = %s WHERE id = %s",
                previous - timedelta(days=10),
                client.id,
            )
        )
        return previous, client.id

    previous, client = in_transaction(registry, previous_month_end)
    done_again(
        registry,
        monkeypatch,
        caplog,
        company_id,
        before=("crm.lifecycle.snapshot", "_end_rebuild"),
        cron=("crm.lifecycle.snapshot", "_cron_take_month_end"),
        what="month-end snapshot",
    )
    with registry.cursor() as cr:
        # the month end is there (none before the scheduled action)
        snapshot = make_env(cr)["crm.lifecycle.snapshot"].search(
            [
                ("partner_id", "=", client),
                ("company_id", "=", company_id),
                ("date", "=", previous),
            ]
        )
        assert snapshot.stage_id.code == "target"
