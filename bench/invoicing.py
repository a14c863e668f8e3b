"""What crm_lifecycle costs the people who invoice: posting and paying 300
invoices with the module installed against a database without it.

Each invoice is one user transaction: created, posted, paid with Odoo's
payment wizard, then the commit's hooks run (``cr.flush()``, which writes the
queue); everything is rolled back at the end. Both databases are measured in
one process, in turns of ten invoices (one database then the other, the
other then the one: ABBA), after a warm-up: a ratio of 1 % needs both sides
measured at the same minutes, the speed of this 2-core machine moves by more
than that from one minute to the next (the same 300 invoices took 83 to 93 s
on the same database within twenty minutes). Each round runs in a process of its
own after both databases are vacuumed (``VACUUM (ANALYZE)``, as autovacuum
would: this project's PostgreSQL runs without it, and the rows rolled back by
the benchmarks before, more of them in the database with the module, stay in
its tables and indexes until a vacuum); prints the ratio of times of each
round and their median (target ≤ 1.03) and the extra queries per invoice
(target ≤ 1).

    $PYTHON bench/invoicing.py --config $ODOO_RC --database DB [--invoices 300]

The database without the module (``<DB>_plain``: crm and account, no demo
data) is created the first time.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import odoo
from odoo import Command, api, fields
from odoo.modules.registry import Registry
from odoo.tools import SQL

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_data  # noqa: E402

# invoices of one database before the other's turn
TURN = 10


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_plain_database(config, database):
    """``database`` with crm and account but without crm_lifecycle."""
    odoo.tools.config.parse_config(["--config", config])
    with odoo.sql_db.db_connect("postgres").cursor() as cr:
        cr.execute(SQL("SELECT 1 FROM pg_database WHERE datname = %s", database))
        if cr.fetchone():
            return
    subprocess.run(
        [
            sys.executable,
            odoo.tools.config["root_path"] + "/../odoo-bin",
            "--config",
            config,
            "--database",
            database,
            "--init",
            "crm,account",
            # 19.0 loads demo data only with --with-demo
            *(["--without-demo", "all"] if odoo.release.version_info[0] < 19 else []),
            "--stop-after-init",
            "--http-port",
            str(_free_port()),
            "--max-cron-threads",
            "0",
            "--log-level",
            "warn",
        ],
        check=True,
    )


def invoice_and_pay(env, partners, count, first=0):
    """``count`` invoices (numbered from ``first``), each its own
    'transaction': created, posted, paid, commit hooks run. Returns
    (seconds, queries)."""
    cr = env.cr
    today = fields.Date.context_today(env["res.partner"])
    queries = cr.sql_log_count
    start = time.perf_counter()
    for index in range(first, first + count):
        move = env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": partners[index % len(partners)].id,
                "invoice_date": today,
                "invoice_line_ids": [
                    Command.create(
                        {"name": "Service", "price_unit": 100.0 + index, "tax_ids": []}
                    )
                ],
            }
        )
        move.action_post()
        env["account.payment.register"].with_context(
            active_model="account.move", active_ids=move.ids
        ).create({})._create_payments()
        cr.flush()  # what the commit runs: ORM flush and precommit hooks
    return time.perf_counter() - start, cr.sql_log_count - queries


def measure(config, databases, count):
    """``count`` invoices in each of ``databases``, in turns of ``TURN``
    invoices, ABBA; [{seconds, queries}] of each database."""
    odoo.tools.config.parse_config(["--config", config])
    with ExitStack() as stack:
        sides = []
        for database in databases:
            cr = stack.enter_context(Registry(database).cursor())
            env = api.Environment(cr, odoo.SUPERUSER_ID, {})
            partners = env["res.partner"].create(
                [
                    {"name": f"Bench buyer {index}", "is_company": True}
                    for index in range(30)
                ]
            )
            cr.flush()
            invoice_and_pay(env, partners, 20)  # warm-up
            env.invalidate_all()
            sides.append((env, partners))
        totals = [{"seconds": 0.0, "queries": 0} for _side in sides]
        for turn in range(0, count, TURN):
            order = range(len(sides))
            for index in order if turn // TURN % 2 == 0 else reversed(order):
                env, partners = sides[index]
                seconds, queries = invoice_and_pay(
                    env, partners, min(TURN, count - turn), first=turn
                )
                totals[index]["seconds"] += seconds
                totals[index]["queries"] += queries
        for env, _partners in sides:
            env.cr.rollback()
    return totals


def run(config, databases, count):
    """``measure`` in a subprocess, on ``databases`` vacuumed first (the
    configuration ``config`` parsed by the caller)."""
    for database in databases:
        scale_data.vacuum(database)
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--config",
            config,
            "--database",
            databases[0],
            "--plain",
            databases[1],
            "--invoices",
            str(count),
            "--measure",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--plain", help="the database without the module")
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true")
    args = parser.parse_args()
    plain = args.plain or f"{args.database}_plain"
    if args.measure:
        print(json.dumps(measure(args.config, [args.database, plain], args.invoices)))
        return
    ensure_plain_database(args.config, plain)
    ratios = []
    for index in range(args.rounds):
        with_module, without = run(args.config, [args.database, plain], args.invoices)
        ratios.append(with_module["seconds"] / without["seconds"])
        print(
            f"round {index + 1}: {with_module['seconds']:.1f} s with the module, "
            f"{without['seconds']:.1f} s without = {ratios[-1]:.3f}",
            flush=True,
        )
        if not index:
            extra = (with_module["queries"] - without["queries"]) / args.invoices
    print(
        f"{args.invoices} invoices posted and paid, one transaction each, "
        f"in turns of {TURN} (median of {args.rounds} rounds): with "
        f"crm_lifecycle / without = {statistics.median(ratios):.3f} "
        f"[target ≤ 1.03]"
    )
    print(f"extra queries per invoice: {extra:.2f} [target ≤ 1]")


if __name__ == "__main__":
    main()
