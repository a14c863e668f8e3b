"""Benchmark of the lifecycle engine: one client at a time against batches.

Two identical sets of clients (each with a posted and paid invoice and a
lead) are computed, one client per call and in one call, inside a
transaction that is rolled back. Prints ratios, never asserts times:

    $PYTHON bench/engine_batch.py --config $ODOO_RC --database DB [--clients N]

``make bench`` prepares everything and runs it on the database
``crm_lifecycle_bench``.
"""

import argparse
import time

import odoo
from odoo import Command, api, fields
from odoo.modules.registry import Registry


def build_clients(env, prefix, count):
    """``count`` clients, each with a paid invoice and an open lead."""
    clients = env["res.partner"].create(
        [{"name": f"{prefix} {index}", "is_company": True} for index in range(count)]
    )
    today = fields.Date.context_today(env["res.partner"])
    invoices = env["account.move"].create(
        [
            {
                "move_type": "out_invoice",
                "partner_id": client.id,
                "invoice_date": today,
                "invoice_line_ids": [
                    Command.create(
                        {"name": "Service", "price_unit": 100.0 + index, "tax_ids": []}
                    )
                ],
            }
            for index, client in enumerate(clients)
        ]
    )
    invoices.action_post()
    env["account.payment.register"].with_context(
        active_model="account.move", active_ids=invoices.ids
    ).create({"group_payment": False})._create_payments()
    env["crm.lead"].create(
        [
            {"name": f"Deal {client.name}", "partner_id": client.id, "type": "lead"}
            for client in clients
        ]
    )
    env.flush_all()
    return clients


def measure(env, function):
    cr = env.cr
    env.invalidate_all()
    queries = cr.sql_log_count
    start = time.perf_counter()
    function()
    env.flush_all()
    return time.perf_counter() - start, cr.sql_log_count - queries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    odoo.tools.config.parse_config(["--config", args.config, "-d", args.database])
    with Registry(args.database).cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        engine = env["crm.lifecycle.engine"]
        company = env.company
        one_by_one = build_clients(env, "Bench single", args.clients)
        batched = build_clients(env, "Bench batch", args.clients)
        # a first client warms the caches of both runs alike
        engine._recompute(build_clients(env, "Bench warm-up", 1), company)
        single_time, single_queries = measure(
            env,
            lambda: [engine._recompute(client, company) for client in one_by_one],
        )
        batch_time, batch_queries = measure(
            env, lambda: engine._recompute(batched, company)
        )
        stages = set(one_by_one.mapped("lifecycle_stage_id.code")) | set(
            batched.mapped("lifecycle_stage_id.code")
        )
        count = args.clients
        print(f"clients per set: {count}; stages reached: {', '.join(sorted(stages))}")
        print(
            f"queries per client: one at a time {single_queries / count:.1f}, "
            f"batched {batch_queries / count:.2f}"
        )
        ratio = single_queries / batch_queries
        print(f"queries ratio one at a time / batched: {ratio:.1f}")
        print(f"time ratio one at a time / batched: {single_time / batch_time:.1f}")
        cr.rollback()


if __name__ == "__main__":
    main()
