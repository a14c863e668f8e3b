"""What crm_lifecycle costs the people who invoice: posting and paying 300
invoices with the module installed against a database without it.

Each invoice is one user transaction: created, posted, paid with Odoo's
payment wizard, then the commit's hooks run (``cr.flush()``, which writes the
queue); everything is rolled back at the end. Both databases are measured in
subprocesses of their own, alternately, after a warm-up, each vacuumed before
it is measured (``VACUUM (ANALYZE)``, as autovacuum would: this project's
PostgreSQL runs without it, and the rows rolled back by the benchmarks before,
more of them in the database with the module, stay in its tables and indexes
until a vacuum); prints the ratio of times (target ≤ 1.03) and the extra
queries per invoice (target ≤ 1).

    $PYTHON bench/invoicing.py --config $ODOO_RC --database DB [--invoices 300]

The database without the module (``<DB>_plain``: crm and account, no demo
data) is created the first time.
"""

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import odoo
from odoo import Command, api, fields
from odoo.modules.registry import Registry
from odoo.tools import SQL

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_data  # noqa: E402


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


def invoice_and_pay(env, partners, count):
    """``count`` invoices, each its own 'transaction': created, posted, paid,
    commit hooks run. Returns (seconds, queries)."""
    cr = env.cr
    today = fields.Date.context_today(env["res.partner"])
    queries = cr.sql_log_count
    start = time.perf_counter()
    for index in range(count):
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


def measure(config, database, count):
    odoo.tools.config.parse_config(["--config", config, "-d", database])
    with Registry(database).cursor() as cr:
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
        seconds, queries = invoice_and_pay(env, partners, count)
        cr.rollback()
    return {"seconds": seconds, "queries": queries}


def run(config, database, count):
    """``measure`` in a subprocess, on ``database`` vacuumed first."""
    odoo.tools.config.parse_config(["--config", config])
    scale_data.vacuum(database)
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--config",
            config,
            "--database",
            database,
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
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.config, args.database, args.invoices)))
        return
    plain = f"{args.database}_plain"
    ensure_plain_database(args.config, plain)
    with_module, without = [], []
    for _round in range(args.rounds):
        with_module.append(run(args.config, args.database, args.invoices))
        without.append(run(args.config, plain, args.invoices))
    best_with = min(result["seconds"] for result in with_module)
    best_without = min(result["seconds"] for result in without)
    extra = (with_module[0]["queries"] - without[0]["queries"]) / args.invoices
    print(
        f"{args.invoices} invoices posted and paid, one transaction each "
        f"(best of {args.rounds}): with crm_lifecycle / without = "
        f"{best_with / best_without:.3f} [target ≤ 1.03]"
    )
    print(f"extra queries per invoice: {extra:.2f} [target ≤ 1]")


if __name__ == "__main__":
    main()
