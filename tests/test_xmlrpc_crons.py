"""Invoicing over XML-RPC while the lifecycle's scheduled actions run.

A server of its own, on a new database, runs Odoo's cron threads. Two
outside clients, each in its own thread, create, post and pay invoices and
credit notes over XML-RPC, as two accountants would. Nothing then computes
the clients but the scheduled actions: once the queue is empty, every
client's purchases and paid revenue are what its documents say, each of its
figures is what a fresh computation gives, and the server logged no error.
"""

import datetime
import re
import threading
import time

import pytest
from conftest import XmlRpcClient, demo_options, start_odoo
from test_upgrade_uninstall import _odoo
from test_xmlrpc_lifecycle import pay

import odoo
from odoo.tools import SQL

PAID = ("paid", "in_payment")
# two accountants, three clients each
THREADS, CLIENTS = 2, 3
# what the engine computes, read by the outside client
FIGURES = [
    "lifecycle_stage_id",
    "purchase_count",
    "paid_revenue",
    "receivable_open",
    "last_purchase_date",
    "loyalty_level_id",
    "rfm_score",
    "clv",
]
# the queue's scheduled actions run every minute: they run while the
# accountants work within this time, and drain the rest within the next
SETTLE_SECONDS = 240
# an error of any logger, or a warning of the module's
BAD_LINE = re.compile(
    r"^\S+ \S+ \d+ (?:(?:ERROR|CRITICAL) |WARNING \S+ odoo\.addons\.crm_lifecycle)"
    r".*$",
    re.MULTILINE,
)


@pytest.fixture
def cron_server(scratch_database, tmp_path):
    """An Odoo server with two cron threads on a new database with the
    module (no demo data); yields its URL and its log file."""
    _odoo(scratch_database, "--init", "crm_lifecycle", *demo_options(False))
    logfile = tmp_path / "odoo.log"
    process, url = start_odoo(
        scratch_database, "--max-cron-threads", "2", "--logfile", str(logfile)
    )
    yield url, logfile
    process.terminate()
    process.wait(timeout=60)


def document(api, move_type, partner_id, day, amount):
    """A customer invoice or credit note of ``amount`` (untaxed), posted."""
    move_id = api.create(
        "account.move",
        {
            "move_type": move_type,
            "partner_id": partner_id,
            "invoice_date": day,
            "invoice_line_ids": [
                (0, 0, {"name": "Service", "quantity": 1, "price_unit": amount})
            ],
        },
    )
    api.records("account.move", "action_post", [move_id])
    return move_id


def accountant(url, database, partner_ids, stop, errors):
    """One accountant's work until ``stop`` is set: per client and round, an
    invoice paid at once, or a credit note paid back, or an invoice left
    unpaid (the first client's, one round in four)."""
    try:
        api = XmlRpcClient(url, database)
        today = datetime.date.today()
        number = 0
        while not stop.is_set():
            day = (today - datetime.timedelta(days=number)).isoformat()
            for index, partner_id in enumerate(partner_ids):
                if number % 4 == 2:
                    pay(api, document(api, "out_refund", partner_id, day, 50.0), day)
                    continue
                invoice_id = document(
                    api, "out_invoice", partner_id, day, 100.0 * (index + 1)
                )
                if number % 4 != 3 or index:
                    pay(api, invoice_id, day)
            number += 1
    except Exception as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def queued(database):
    """The ids of the rows on the lifecycle queue."""
    with odoo.sql_db.db_connect(database).cursor() as cr:
        cr.execute(SQL("SELECT id FROM crm_lifecycle_queue"))
        return {row[0] for row in cr.fetchall()}


def test_invoicing_while_crons_run(cron_server, scratch_database):
    url, logfile = cron_server
    admin = XmlRpcClient(url, scratch_database)
    partner_ids = [
        admin.create("res.partner", {"name": f"Client {index}", "is_company": True})
        for index in range(THREADS * CLIENTS)
    ]
    errors, stop = [], threading.Event()
    threads = [
        threading.Thread(
            target=accountant,
            args=(
                url,
                scratch_database,
                partner_ids[index * CLIENTS : (index + 1) * CLIENTS],
                stop,
                errors,
            ),
        )
        for index in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    # the accountants work until the scheduled actions took clients off the
    # queue meanwhile (rows seen before are gone), and a few seconds more
    deadline = time.monotonic() + SETTLE_SECONDS
    seen, drained = set(), None
    while drained is None or time.monotonic() < drained + 5:
        if not all(thread.is_alive() for thread in threads) or (
            time.monotonic() > deadline
        ):
            break
        rows = queued(scratch_database)
        if drained is None and seen - rows:
            drained = time.monotonic()
        seen |= rows
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert drained, "the scheduled actions did not run while the accountants worked"

    # the scheduled actions alone drain the queue
    deadline = time.monotonic() + SETTLE_SECONDS
    while queued(scratch_database):
        assert time.monotonic() < deadline, "the queue was not drained"
        time.sleep(2)

    documents = admin.call(
        "account.move",
        "search_read",
        [
            ("partner_id", "in", partner_ids),
            ("state", "=", "posted"),
            ("move_type", "in", ["out_invoice", "out_refund"]),
        ],
        fields=["partner_id", "move_type", "payment_state", "amount_untaxed_signed"],
    )
    expected = {partner_id: [0, 0.0] for partner_id in partner_ids}
    for move in documents:
        if move["payment_state"] not in PAID:
            continue
        figures = expected[move["partner_id"][0]]
        figures[0] += move["move_type"] == "out_invoice"
        figures[1] += move["amount_untaxed_signed"]
    # every client bought
    assert all(count for count, _revenue in expected.values()), expected
    stored = admin.records("res.partner", "read", partner_ids, fields=FIGURES)
    for partner in stored:
        count, revenue = expected[partner["id"]]
        assert partner["purchase_count"] == count, partner
        assert partner["paid_revenue"] == pytest.approx(revenue), partner
    # and every figure is what a fresh computation gives ("Recompute now")
    admin.records("res.partner", "action_lifecycle_recompute", partner_ids)
    assert admin.records("res.partner", "read", partner_ids, fields=FIGURES) == stored

    log = logfile.read_text()
    assert not BAD_LINE.findall(log), log[-5000:]
    assert "Traceback" not in log, log[-5000:]
