"""The engine at scale: 50,000 clients, ~500,000 invoice lines, as ratios.

On the data set of ``scale_data.py`` (built once, cached in its own
database), prints side by side, from one run on one machine:

- the first run (every client new) and a second run (nothing changed) over
  all clients, against the bare SQL floors over the same clients (the GROUP
  BYs; one INSERT and one UPDATE of the same rows; plain inserts of history
  rows and messages; the rows written into the engine's own tables):
  targets second ≤ 3 × read floor, first ≤ 2 × (read + write + insert);
  each the best of three runs, as the floors (the first runs each from a
  reset: every client new);
- the time per client of a first run (one run each, so that the peak
  memory below is that of one run) over 5k, 20k and all clients: target
  all ≤ 1.1 × 5k;
- the peak memory of each entry point (``_recompute``, ``_process_queue``) on
  5k and on all clients, each in a process of its own: target ratio ≈ 1;
- a per-partner ORM loop on a sample against the engine: target ≥ 30×;
- the queue drained by one worker, then by two at once: the speed-up;
- "Rebuild history" of 24 month ends over all clients (1.2 million snapshot
  rows at 50,000 clients) against one bare ``INSERT … SELECT`` of as many
  rows into a table like the snapshots' (indexes included), then the time
  each lifecycle report takes to open on those rows: the ``read_group`` of
  its default view with its default filters (printed, target < 1 s).

    $PYTHON bench/scale.py --config $ODOO_RC [--clients 50000] [--sample 200]

Each measured step runs in a subprocess of its own (``--step``), so that
memory peaks are those of the step. ``make bench`` runs it.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import odoo
from odoo import api, fields
from odoo.modules.registry import Registry
from odoo.tools import SQL

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_data  # noqa: E402

PAID_STATES = ("paid", "in_payment", "partial")


def environment(args):
    odoo.tools.config.parse_config(["--config", args.config, "-d", args.database])
    registry = Registry(args.database)
    return registry


def reset(env, partner_ids):
    """Forget what the engine wrote for these clients (rows, history, its
    chatter notes, queue, the company's figures of the day): the next run
    finds them all new."""
    company = env.company
    cr = env.cr
    cr.execute(
        SQL(
            "DELETE FROM crm_lifecycle_client WHERE company_id = %s"
            " AND partner_id = ANY(%s)",
            company.id,
            partner_ids,
        )
    )
    cr.execute(
        SQL(
            "DELETE FROM crm_lifecycle_history WHERE company_id = %s"
            " AND partner_id = ANY(%s)",
            company.id,
            partner_ids,
        )
    )
    cr.execute(
        SQL(
            "DELETE FROM mail_message WHERE model = 'res.partner'"
            " AND res_id = ANY(%s) AND message_type = 'notification'"
            " AND author_id IS NOT DISTINCT FROM %s",
            partner_ids,
            env.ref("base.partner_root").id,
        )
    )
    cr.execute(SQL("DELETE FROM crm_lifecycle_queue"))
    # and the company's figures of the day: a first run computes them
    env["crm.lifecycle.engine"]._forget_figures(company)
    forget_snapshots(env)
    cr.commit()  # pylint: disable=invalid-commit
    vacuum(cr.dbname)


def forget_snapshots(env):
    """Delete the company's snapshots and their totals, as before its first
    "Rebuild history". A first run is the module's first: it finds none (the
    bench rebuilds them after the engine's measures), and reads no snapshot
    for the conversion rates of the day. Until 2026-12-08 it found those an
    earlier bench had left, or none on a data set just built: whether a
    first run read them depended on the runs before."""
    company = env.company
    for table in ("crm_lifecycle_snapshot", "crm_lifecycle_snapshot_total"):
        env.cr.execute(
            SQL(
                "DELETE FROM %s WHERE company_id = %s",
                SQL.identifier(table),
                company.id,
            )
        )


# The tables the engine writes, vacuumed after a reset: the rows deleted are
# gone as autovacuum would take them where it is on (it is off on some
# servers, this project's machine included), so that each measured run
# starts from tables like those of a module just installed, not from the
# dead rows of the measures before it.
VACUUMED = (
    "crm_lifecycle_client",
    "crm_lifecycle_history",
    "crm_lifecycle_queue",
    "crm_lifecycle_snapshot",
    "crm_lifecycle_snapshot_total",
    "mail_message",
    "res_company",
)


def vacuum(database):
    """VACUUM (ANALYZE) the tables of ``VACUUMED``."""
    scale_data.vacuum(database, VACUUMED)


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_recompute(args, registry, commit, repeat=1):
    """Time of ``recompute`` over the first ``args.clients`` clients: the
    best of ``repeat`` runs, as the floors are measured, each rolled back but
    the last one with ``commit`` (its rows stay). A run rolled back that
    wrote rows is followed by a vacuum, as after a reset: the next one
    starts from the same tables, without its dead rows."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        ids = scale_data.client_ids(env, args.clients)
        if args.reset:
            reset(env, ids)
        partners = env["res.partner"].browse(ids)
        base = peak_mb()
        timings = []
        for index in range(repeat):
            env.invalidate_all()
            start = time.perf_counter()
            env["crm.lifecycle.engine"]._recompute(partners, env.company)
            env.flush_all()
            timings.append(time.perf_counter() - start)
            if commit and index == repeat - 1:
                cr.commit()  # pylint: disable=invalid-commit
            else:
                cr.rollback()
                if commit:
                    vacuum(cr.dbname)
        return {
            "seconds": min(timings),
            "runs": [round(seconds, 2) for seconds in timings],
            "clients": len(ids),
            "peak_mb": peak_mb() - base,
        }


def step_enqueue(args, registry):
    """Forget and queue the first ``args.clients`` clients."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        ids = scale_data.client_ids(env, args.clients)
        reset(env, ids)
        env["crm.lifecycle.queue"]._enqueue_all(ids)
        cr.commit()  # pylint: disable=invalid-commit
        return {"clients": len(ids)}


def step_drain(args, registry):
    """Drain the queue as the cron does (one worker)."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        base = peak_mb()
        start = time.perf_counter()
        done = env["crm.lifecycle.engine"]._process_queue(auto_commit=True)
        return {
            "seconds": time.perf_counter() - start,
            "clients": done,
            "peak_mb": peak_mb() - base,
        }


def step_orm_loop(args, registry):
    """What an addon computing client by client with the ORM costs, on a
    sample without client rows (rolled back), as the engine's first run
    finds them: for each client, search and read its documents,
    receivables and leads, then write what the engine's first run writes for
    it: its row (its figures and a stage), a history row of the stage change
    and a chatter note. It reads less than the engine (7 figures, no
    reconciliation, window, level, RFM or value): a floor of such a
    loop. The best of three runs, each rolled back, as the engine's runs."""
    runs = [_orm_loop(args, registry) for _index in range(3)]
    seconds, clients = min(runs)
    return {"seconds": seconds, "clients": clients}


def _orm_loop(args, registry):
    """One run of ``step_orm_loop``, rolled back: (seconds, clients)."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        ids = scale_data.sample_ids(env, args.sample)
        company = env.company
        Client = env["crm.lifecycle.client"]
        History = env["crm.lifecycle.history"]
        stages = {
            stage.code: stage
            for stage in env["crm.lifecycle.stage"].search(
                [("company_id", "in", [False, company.id])]
            )
        }
        # as the engine's first run finds them: without a row (rolled back)
        cr.execute(
            SQL(
                "DELETE FROM crm_lifecycle_client WHERE company_id = %s"
                " AND partner_id = ANY(%s)",
                company.id,
                ids,
            )
        )
        env.invalidate_all()
        start = time.perf_counter()
        for partner in env["res.partner"].browse(ids):
            moves = env["account.move"].search(
                [
                    ("commercial_partner_id", "=", partner.id),
                    ("company_id", "=", company.id),
                    ("state", "=", "posted"),
                    ("move_type", "in", ("out_invoice", "out_refund")),
                ]
            )
            paid = moves.filtered(
                lambda m: m.move_type == "out_invoice"
                and m.payment_state in PAID_STATES
            )
            lines = env["account.move.line"].search(
                [
                    ("partner_id", "child_of", partner.id),
                    ("company_id", "=", company.id),
                    ("parent_state", "=", "posted"),
                    ("account_id.account_type", "=", "asset_receivable"),
                    ("reconciled", "=", False),
                ]
            )
            leads = env["crm.lead"].search_count(
                [("partner_id", "child_of", partner.id)]
            )
            stage = stages[
                "new_customer" if paid else "prospect" if leads else "target"
            ]
            values = {
                "stage_id": stage.id,
                "purchase_count": len(paid),
                "first_purchase_date": min(paid.mapped("invoice_date"), default=False),
                "last_purchase_date": max(paid.mapped("invoice_date"), default=False),
                "paid_revenue": sum(paid.mapped("amount_untaxed_signed")),
                "invoiced_revenue": sum(moves.mapped("amount_untaxed_signed")),
                "receivable_open": sum(lines.mapped("amount_residual")),
                "lead_count": leads,
            }
            row = Client.search(
                [("partner_id", "=", partner.id), ("company_id", "=", company.id)]
            )
            old_stage = row.stage_id
            if row:
                row.write(values)
            else:
                Client.create(
                    {"partner_id": partner.id, "company_id": company.id, **values}
                )
            if old_stage != stage:
                History.create(
                    {
                        "partner_id": partner.id,
                        "company_id": company.id,
                        "stage_from_id": old_stage.id,
                        "stage_to_id": stage.id,
                        "reason": "rule",
                    }
                )
                partner._message_log(
                    body=f"Lifecycle stage ({company.name}): "
                    f"{old_stage.name or 'none'} → {stage.name} (Rule)"
                )
            env.flush_all()
        seconds = time.perf_counter() - start
        cr.rollback()
        return seconds, len(ids)


def step_floors(args, registry):
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        ids = scale_data.client_ids(env, args.clients)
        # as before a first run: the floors write the rows of clients the
        # tables do not hold yet
        reset(env, ids)
        result = scale_data.floors(env, ids)
        cr.rollback()
        return result


def step_rebuild(args, registry):
    """Rebuild 24 month ends of snapshots for every client of the company,
    as the "Rebuild history" cron does (committed batch by batch), then the
    floor: one INSERT … SELECT of as many rows, rolled back."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        company = env.company
        Snapshot = env["crm.lifecycle.snapshot"]
        dates = Snapshot._month_ends(company, args.months)
        # a rebuild into tables without the rows of the rebuilds before
        forget_snapshots(env)
        cr.commit()  # pylint: disable=invalid-commit
        vacuum(cr.dbname)
        base = peak_mb()
        start = time.perf_counter()
        Snapshot._rebuild_dates(company, dates, auto_commit=True)
        seconds = time.perf_counter() - start
        peak = peak_mb() - base
        cr.execute(
            SQL(
                "SELECT count(*) FROM crm_lifecycle_snapshot WHERE company_id = %s",
                company.id,
            )
        )
        [rows] = cr.fetchone()
        cr.execute(SQL("ANALYZE crm_lifecycle_snapshot"))
        cr.commit()  # pylint: disable=invalid-commit
        floor = scale_data.snapshot_floor(env, company.id, dates)
        return {
            "seconds": seconds,
            "rows": rows,
            "months": len(dates),
            "floor": floor,
            "peak_mb": peak,
        }


def step_reports(args, registry):
    """Seconds each report of the module takes to open: the read_group of
    the first view of its action, with the action's domain and default
    filters."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        return scale_data.report_timings(env)


STEPS = {
    "first": lambda args, registry: step_recompute(
        args, registry, commit=True, repeat=args.repeat
    ),
    "second": lambda args, registry: step_recompute(
        args, registry, commit=False, repeat=3
    ),
    "enqueue": step_enqueue,
    "drain": step_drain,
    "orm": step_orm_loop,
    "floors": step_floors,
    "rebuild": step_rebuild,
    "reports": step_reports,
}


def run_step(args, name, clients=None, reset=False, count=1, repeat=3):
    """Run step ``name`` in ``count`` subprocesses at once; their results.
    ``repeat``: the number of runs of the first run, the best one taken."""
    command = [
        sys.executable,
        __file__,
        "--config",
        args.config,
        "--database",
        args.database,
        "--step",
        name,
        "--clients",
        str(clients or args.clients),
        "--sample",
        str(args.sample),
        "--months",
        str(args.months),
        "--repeat",
        str(repeat),
    ] + (["--reset"] if reset else [])
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ)
        for _index in range(count)
    ]
    results = []
    for process in processes:
        output, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"step {name} failed")
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


def timed_step(args, name, clients=None, reset=False, count=1):
    start = time.perf_counter()
    results = run_step(args, name, clients, reset, count)
    return time.perf_counter() - start, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--database", default=scale_data.DATABASE)
    parser.add_argument("--clients", type=int, default=scale_data.CLIENTS)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument(
        "--only-history",
        action="store_true",
        help="only the rebuild of the snapshots and the reports",
    )
    parser.add_argument("--step", choices=sorted(STEPS))
    parser.add_argument("--reset", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the first run, the best one taken (as the floors)",
    )
    args = parser.parse_args()
    if args.step:
        registry = environment(args)
        print(json.dumps(STEPS[args.step](args, registry), default=str))
        return
    scale_data.ensure_dataset(args.config, args.database, args.clients, upgrade=True)
    total = args.clients
    print(f"data set: {total} clients in {args.database} ({fields.Date.today()})")
    if not args.only_history:
        engine_measures(args, total)
    history_measures(args)


def history_measures(args):
    [rebuild] = run_step(args, "rebuild")
    print(
        f"rebuild of {rebuild['months']} month ends: {rebuild['rows']} snapshot "
        f"rows in {rebuild['seconds']:.1f} s = "
        f"{rebuild['seconds'] / rebuild['floor']:.1f} × one INSERT … SELECT of as "
        f"many rows ({rebuild['floor']:.2f} s); peak memory "
        f"{rebuild['peak_mb']:.0f} MB"
    )
    [timings] = run_step(args, "reports")
    for name, seconds in sorted(timings.items()):
        print(f"report {name} opens in {seconds:.2f} s [target < 1 s]")


def engine_measures(args, total):
    small, medium = max(total // 10, 1), max(total * 2 // 5, 1)

    [floor] = run_step(args, "floors")
    [first] = run_step(args, "first", reset=True)
    [second] = run_step(args, "second")
    print(
        f"floors over {total} clients: read {floor['read']:.2f} s, "
        f"write {floor['write']:.2f} s, insert {floor['insert']:.2f} s"
    )
    print(
        f"first run {first['seconds']:.1f} s (best of "
        f"{', '.join(map(str, first['runs']))} s, each from a reset) = "
        f"{first['seconds'] / floor['total']:.2f} × (read + write + insert) "
        f"[target ≤ 2]"
    )
    print(
        f"second run (nothing changed) {second['seconds']:.1f} s (best of "
        f"{', '.join(map(str, second['runs']))} s, as the floors are the best "
        f"of 3) = {second['seconds'] / floor['read']:.2f} × read floor "
        f"[target ≤ 3]"
    )

    per_client = {}
    peaks = {"recompute": {}, "process_queue": {}}
    for count in (small, medium, total):
        # one run each: a process's peak memory is that of all its runs
        [result] = run_step(args, "first", clients=count, reset=True, repeat=1)
        per_client[count] = result["seconds"] / result["clients"]
        if count in (small, total):
            peaks["recompute"][count] = result["peak_mb"]
    line = ", ".join(
        f"{count}: {seconds * 1000:.2f} ms" for count, seconds in per_client.items()
    )
    print(
        f"first run per client: {line}; {total} / {small} = "
        f"{per_client[total] / per_client[small]:.2f} [target ≤ 1.1]"
    )

    drain = {}
    for workers in (1, 2):
        run_step(args, "enqueue")
        seconds, results = timed_step(args, "drain", count=workers)
        drain[workers] = seconds
        done = sum(result["clients"] for result in results)
        print(
            f"queue of {total} clients drained by {workers} worker(s): "
            f"{seconds:.1f} s ({done} computed)"
        )
        if workers == 1:
            peaks["process_queue"][total] = results[0]["peak_mb"]
    print(f"speed-up with 2 workers: {drain[1] / drain[2]:.2f}")
    run_step(args, "enqueue", clients=small)
    [small_drain] = run_step(args, "drain")
    peaks["process_queue"][small] = small_drain["peak_mb"]
    for entry, values in peaks.items():
        print(
            f"peak memory of {entry}: {small} clients {values[small]:.0f} MB, "
            f"{total} clients {values[total]:.0f} MB, ratio "
            f"{values[total] / max(values[small], 1):.2f} [target ≈ 1]"
        )

    [orm] = run_step(args, "orm")
    orm_per_client = orm["seconds"] / orm["clients"]
    engine_per_client = first["seconds"] / first["clients"]
    print(
        f"per-partner ORM loop on {orm['clients']} clients: "
        f"{orm_per_client * 1000:.1f} ms per client = "
        f"{orm_per_client / engine_per_client:.1f} × the engine [target ≥ 30]"
    )
    # leave the data set computed, as a user would find it
    run_step(args, "first", reset=True, repeat=1)


if __name__ == "__main__":
    main()
