"""A large data set for the benchmarks, built once and kept in its own database.

``ensure_dataset(config)`` returns the database ``crm_lifecycle_scale`` holding
50,000 client companies (``is_company``, ``customer_rank`` > 0) with about ten
posted customer invoice lines each over the last three years, in the main
company, plus their payments, credit notes and leads. It is built once; the
ir.config_parameter ``crm_lifecycle_bench.scale_clients`` (the number of
clients) says it is there, and asking for more clients later adds the missing
ones. Smaller sets for a quick test: ``--clients 2000``.

    $PYTHON bench/scale_data.py --config $ODOO_RC --clients N [--database DB]

prints the build time, the sanity check and the SQL floors over the clients.

Method
------
1. The database is created with ``odoo-bin -i crm_lifecycle --without-demo all
   --stop-after-init`` when it does not exist.
2. Templates, through the ORM, the way users work: 50 client companies (every
   fifth with a purchasing contact that some documents are addressed to),
   each with 0 to 10 customer invoices (``account.move``, 1 to 3 lines, 15 %
   tax on most lines, immediate, 30-day or advance payment terms) dated over
   the last two years and posted with ``action_post()``. Most are paid with
   ``account.payment.register`` (some two at once), some partly, some not at
   all, a few get a full or partial credit note through
   ``account.move.reversal``. Each template also gets 0 to 3 leads or
   opportunities (open, won, lost). The first four templates have no
   invoices (no lead, a lead, an open opportunity, a lost one).
3. Clones, in SQL (``odoo.tools.SQL`` objects only): clone k (1..N) copies
   template (k - 1) mod 50 with everything that belongs to it: partners,
   account moves (invoices, credit notes, payment entries), move lines,
   payments, partial and full reconciles, leads, and the many2many rows of
   these (taxes and tax tags of the lines, invoices of the payments). Every
   column is copied as it is, except:

   - ids: each table's template rows are numbered once (``idx``); a chunk of
     clones reserves a block of ids from the table's own sequence (one
     ``nextval``, then ``setval``) and clone slot s gets id
     ``base + s * rows + idx - 1``; many2one columns (and the partial
     reconcile in ``matching_number``) that point to a template row are
     mapped the same way, so every reference stays inside its clone;
   - dates and datetimes are shifted back by the clone's offset, 0 to 364
     days, small offsets more often (h * h / 365 with h = ``hashint4(k)``
     mod 365): the templates span two years, the clones three, and payments
     still follow their invoices;
   - names: clients are "Scale client 000123" (ref ``scale-client-000123``);
     posted moves are named ``<journal prefix>/<year of the shifted date>/
     <8-digit new id>`` with matching ``sequence_prefix`` and
     ``sequence_number`` (unique per journal; the next number the ORM gives
     in a journal follows them), payments take the name of their entry;
   - on res_partner, the columns of the fields that crm_lifecycle adds and
     computes or keeps per company (the engine's results) are left empty:
     the engine computes the clones.

   Inserts are set-based (``INSERT ... SELECT`` over the template rows and
   the clones of the chunk, ordered by date so that a client's documents are
   spread over the table as in a real database), 5,000 clones a statement,
   committed with the progress marker ``crm_lifecycle_bench.scale_cloned``
   after each chunk (an interrupted build resumes), under ``SET LOCAL
   session_replication_role = replica`` (foreign keys are not checked row by
   row; unique indexes and check constraints are). Then ``VACUUM
   (ANALYZE)`` of the tables written (``vacuum``: as autovacuum would,
   where it is on), ``env.invalidate_all()`` and the sanity check: no
   dangling reference, and every clone has its template's posted invoices
   and credit notes, paid invoices, untaxed total, residual, open receivable
   and leads.

Not cloned: chatter (messages, followers, activities) and the lifecycle
queue: the clones are data nobody has looked at yet. Texts copied from the
templates (invoice references in memos and line labels, lead names) still
name the template's documents where they are only labels.
"""

import argparse
import logging
import random
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg2
import psycopg2.sql
from lxml import etree

import odoo
import odoo.release
import odoo.service.db
import odoo.sql_db
from odoo import Command, api, fields
from odoo.modules.registry import Registry
from odoo.tools import SQL
from odoo.tools.safe_eval import datetime as safe_datetime
from odoo.tools.safe_eval import dateutil, safe_eval
from odoo.tools.safe_eval import time as safe_time

_logger = logging.getLogger("crm_lifecycle.bench.scale_data")

MODULE = "crm_lifecycle"
DATABASE = "crm_lifecycle_scale"
CLIENTS = 50_000
TEMPLATES = 50
CHUNK = 5_000
SHIFT_DAYS = 365
SEED = 20261127
PARAM_CLIENTS = "crm_lifecycle_bench.scale_clients"
PARAM_CLONED = "crm_lifecycle_bench.scale_cloned"
PARAM_TEMPLATES = "crm_lifecycle_bench.scale_templates"
PARAM_BUILT_ON = "crm_lifecycle_bench.scale_built_on"
TEMPLATE_REF = "scale-template-"
CLIENT_REF = "scale-client-"
CLIENT_NAME = "Scale client "
TEMPLATE_NAME = "Scale template "
PAID_STATES = ("paid", "in_payment")

# Tables cloned for each client, with the query that lists the template rows
# (id, template number); a query may use the tables listed before it.
CLONED_TABLES = (
    (
        "res_partner",
        SQL(
            "SELECT p.id, s.tpl FROM res_partner p"
            " JOIN scale_template s ON s.partner_id = p.commercial_partner_id"
        ),
    ),
    (
        "account_move",
        SQL(
            "SELECT m.id, x.tpl FROM account_move m"
            " JOIN scale_tpl_res_partner x ON x.old_id = m.commercial_partner_id"
        ),
    ),
    (
        "account_payment",
        SQL(
            "SELECT p.id, x.tpl FROM account_payment p"
            " JOIN scale_tpl_res_partner x ON x.old_id = p.partner_id"
        ),
    ),
    (
        "account_move_line",
        SQL(
            "SELECT l.id, x.tpl FROM account_move_line l"
            " JOIN scale_tpl_account_move x ON x.old_id = l.move_id"
        ),
    ),
    (
        "account_full_reconcile",
        SQL(
            "SELECT DISTINCT l.full_reconcile_id, x.tpl FROM account_move_line l"
            " JOIN scale_tpl_account_move_line x ON x.old_id = l.id"
            " WHERE l.full_reconcile_id IS NOT NULL"
        ),
    ),
    (
        "account_partial_reconcile",
        SQL(
            "SELECT r.id, x.tpl FROM account_partial_reconcile r"
            " JOIN scale_tpl_account_move_line x ON x.old_id = r.debit_move_id"
        ),
    ),
    (
        "crm_lead",
        SQL(
            "SELECT l.id, x.tpl FROM crm_lead l"
            " JOIN scale_tpl_res_partner x ON x.old_id = l.partner_id"
        ),
    ),
)
# Physical order of the clones' rows: by date, as a real database grows.
INSERT_ORDER = {
    "account_move": "date",
    "account_payment": "date",
    "account_move_line": "date",
    "account_partial_reconcile": "max_date",
    "crm_lead": "create_date",
}


# ----------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------
def ensure_dataset(config, database=DATABASE, clients=CLIENTS, upgrade=False):
    """Return ``database`` once it holds at least ``clients`` cloned clients.

    Creates the database with crm_lifecycle (without demo data) when needed,
    updates the module first with ``upgrade``, then builds what is missing:
    the templates, then the clones not made yet. Does nothing but check the
    marker when the data set is there."""
    odoo.tools.config.parse_config(["--config", config, "-d", database])
    state = _module_state(database)
    if state != "installed" or upgrade:
        option = "--update" if state == "installed" else "--init"
        _logger.info("scale data: %s %s on %s", option, MODULE, database)
        _run_odoo(config, database, option)
        registry = Registry.new(database)
    else:
        registry = Registry(database)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        build_dataset(env, clients)
    return database


def vacuum(database, tables=None):
    """VACUUM (ANALYZE) ``tables`` of ``database``, every table without
    (outside a transaction: a connection of its own, in autocommit). This
    project's machine runs PostgreSQL with autovacuum off; a production
    server has it on."""
    _dsn, info = odoo.sql_db.connection_info_for(database)
    connection = psycopg2.connect(**info)
    statement = psycopg2.sql.SQL("VACUUM (ANALYZE)")
    if tables:
        statement = psycopg2.sql.SQL("{} {}").format(
            statement,
            psycopg2.sql.SQL(", ").join(map(psycopg2.sql.Identifier, tables)),
        )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def build_dataset(env, clients=CLIENTS):
    """Build the templates and the clones missing up to ``clients``,
    committing as it goes. Returns the sanity check, or None when the data
    set was already there."""
    params = env["ir.config_parameter"].sudo()
    if int(params.get_param(PARAM_CLIENTS) or 0) >= clients:
        return None
    cr = env.cr
    start = time.perf_counter()
    if not params.get_param(PARAM_TEMPLATES):
        _build_templates(env, TEMPLATES)
        params.set_param(PARAM_TEMPLATES, TEMPLATES)
        params.set_param(PARAM_BUILT_ON, fields.Date.to_string(fields.Date.today()))
        cr.commit()  # pylint: disable=invalid-commit
        _logger.info("scale data: templates in %.0f s", time.perf_counter() - start)
    templates = int(params.get_param(PARAM_TEMPLATES))
    cloned = int(params.get_param(PARAM_CLONED) or 0)
    tables = _prepare_templates(env, log=True)
    for first in range(cloned + 1, clients + 1, CHUNK):
        last = min(first + CHUNK - 1, clients)
        chunk_start = time.perf_counter()
        rows = _clone_chunk(env, tables, templates, first, last)
        params.set_param(PARAM_CLONED, last)
        cr.commit()  # pylint: disable=invalid-commit
        _logger.info(
            "scale data: clients %d-%d in %.1f s (%s)",
            first,
            last,
            time.perf_counter() - chunk_start,
            ", ".join(f"{table} {count}" for table, count in rows.items()),
        )
    # statistics and the visibility map of the tables written, as
    # autovacuum leaves the invoices of a real database: without it, every
    # index-only scan of the engine reads the table too
    vacuum(cr.dbname, [*tables, *(rel["table"] for rel in _relations(env, tables))])
    env.invalidate_all()
    check = check_dataset(env, tables)
    for line in format_check(check):
        _logger.info("scale data: %s", line)
    if check["mismatches"] or check["dangling"]:
        raise RuntimeError(f"scale data: sanity check failed: {check}")
    params.set_param(PARAM_CLIENTS, clients)
    cr.execute(SQL("DROP TABLE IF EXISTS scale_clone"))
    cr.commit()  # pylint: disable=invalid-commit
    _logger.info(
        "scale data: %d clients ready in %.0f s", clients, time.perf_counter() - start
    )
    return check


def client_ids(env, limit=None):
    """Ids of the cloned client companies, in the order they were made."""
    env["res.partner"].flush_model(["ref", "parent_id"])
    env.cr.execute(
        SQL(
            "SELECT id FROM res_partner WHERE ref LIKE %s AND parent_id IS NULL"
            " ORDER BY id %s",
            CLIENT_REF + "%",
            SQL("LIMIT %s", limit) if limit else SQL(),
        )
    )
    return [row[0] for row in env.cr.fetchall()]


def sample_ids(env, n, seed=0):
    """``n`` cloned clients drawn at random (always the same for a seed),
    sorted: a sample spread over every template and date offset."""
    ids = client_ids(env)
    return sorted(random.Random(seed).sample(ids, min(n, len(ids))))


def floors(env, partner_ids, company=None, repeat=3):
    """The bare SQL cost, in seconds, of what the engine does for
    ``partner_ids`` (commercial partners) in ``company``: the best of
    ``repeat`` runs of each floor, each run in a savepoint rolled back (the
    caller's transaction is left as it was).

    - ``read``: three GROUP BY aggregates: posted customer invoices and
      credit notes (count, untaxed, last date), open receivables (residual)
      and leads (count), per client;
    - ``write``: the same rows the engine writes: one INSERT of a row per
      client into ``crm_lifecycle_client`` (every column the engine writes,
      with valid references), then one UPDATE of all those rows, both from
      one array per column (``unnest``) of values made in Python beforehand:
      the time includes writing the arrays' text, as any engine has to send
      its values;
    - ``insert``: one history row and one chatter note per client, inserted
      into ``crm_lifecycle_history`` and ``mail_message`` (the message bodies
      sent as an array).

    The rows go into the tables the engine writes, with their indexes,
    foreign keys and write-ahead log, as the engine's own rows do (a
    temporary table has none of them: a floor measured there is no floor
    of writing these rows). Rows of these clients already in the company
    are deleted first, in the same savepoint and out of the time: the floor
    is that of a first run (``scale.py`` resets the clients beforehand, so
    that there is nothing to delete).
    """
    cr = env.cr
    company_id = (company or env.company).id
    ids = list(partner_ids)
    env.flush_all()
    columns = _client_columns(env)
    inserted = _state_values(ids, company_id, columns, 0)
    updated = _state_values(ids, company_id, columns, 1)
    stages = env["crm.lifecycle.stage"].search([]).ids
    author = env.ref("base.partner_root").id
    subtype = env.ref("mail.mt_note").id
    bodies = [
        f"<p>Lifecycle stage (My Company): Stage {partner_id % 8} → "
        f"Stage {partner_id % 8 + 1} (Rule)</p>"
        for partner_id in ids
    ]
    measures = {
        "read": (None, lambda: _read_floor(cr, ids, company_id)),
        "write": (
            lambda: _forget_clients(cr, ids, company_id),
            lambda: _write_floor(cr, inserted, updated, columns),
        ),
        "insert": (
            None,
            lambda: _insert_floor(cr, ids, company_id, stages, bodies, author, subtype),
        ),
    }
    result = {}
    for name, (prepare, run) in measures.items():
        timings = []
        for _index in range(repeat):
            with _rolled_back(cr):
                if prepare:
                    prepare()
                start = time.perf_counter()
                run()
                timings.append(time.perf_counter() - start)
        result[name] = min(timings)
    result["total"] = sum(result.values())
    return result


# ----------------------------------------------------------------------
# Database creation
# ----------------------------------------------------------------------
def _module_state(database):
    """crm_lifecycle's state in ``database``: None without database, "empty"
    without Odoo tables, "absent" when unknown."""
    if not odoo.service.db.exp_db_exist(database):
        return None
    with odoo.sql_db.db_connect(database).cursor() as cr:
        cr.execute(SQL("SELECT to_regclass('ir_module_module') IS NOT NULL"))
        if not cr.fetchone()[0]:
            return "empty"
        cr.execute(SQL("SELECT state FROM ir_module_module WHERE name = %s", MODULE))
        row = cr.fetchone()
    return row[0] if row else "absent"


def _run_odoo(config, database, option):
    # odoo is a namespace package on 19.0 (no __file__): its release module
    odoo_bin = Path(odoo.release.__file__).resolve().parent.parent / "odoo-bin"
    subprocess.run(
        [
            sys.executable,
            str(odoo_bin),
            "--config",
            config,
            "--database",
            database,
            option,
            MODULE,
            # 19.0 loads demo data only with --with-demo
            *(["--without-demo", "all"] if odoo.release.version_info[0] < 19 else []),
            "--stop-after-init",
            "--no-http",
            "--max-cron-threads",
            "0",
            "--log-level",
            "warn",
        ],
        check=True,
    )


# ----------------------------------------------------------------------
# Templates, through the ORM
# ----------------------------------------------------------------------
def _build_templates(env, count):
    rng = random.Random(SEED)
    today = fields.Date.context_today(env["res.partner"])
    # created as customers (customer_rank 1), as from Invoicing > Customers
    Partner = env["res.partner"].with_context(res_partner_search_mode="customer")
    clients = Partner.create(
        [
            {
                "name": f"{TEMPLATE_NAME}{index + 1:02d}",
                "ref": f"{TEMPLATE_REF}{index + 1:02d}",
                "is_company": True,
                "email": f"template{index + 1:02d}@example.com",
            }
            for index in range(count)
        ]
    )
    contacts = {
        index: Partner.create(
            {
                "name": "Purchasing",
                "parent_id": clients[index].id,
                "type": "contact",
                "email": f"purchasing.template{index + 1:02d}@example.com",
            }
        )
        for index in range(count)
        if index % 5 == 1
    }
    plans = []
    for index, client in enumerate(clients):
        for plan in _invoice_plans(rng, index, today):
            contact = contacts.get(index)
            plan["partner"] = contact if contact and rng.random() < 0.5 else client
            plans.append(plan)
    plans.sort(key=lambda plan: plan["date"])
    invoices = _create_invoices(env, rng, plans)
    for plan, invoice in zip(plans, invoices, strict=True):
        plan["invoice"] = invoice
    _settle_invoices(env, rng, plans, today)
    _create_leads(env, rng, clients, contacts)
    env.flush_all()
    _logger.info(
        "scale data: %d templates, %d invoices, %d leads",
        count,
        len(invoices),
        env["crm.lead"]
        .with_context(active_test=False)
        .search_count([("partner_id.commercial_partner_id", "in", clients.ids)]),
    )


def _invoice_plans(rng, index, today):
    """Dates, lines and outcome of the invoices of template ``index``."""
    if index < 4:  # pre-customers: target, prospect, opportunity, lost
        return []
    # most clients bought lately, some months ago, a few long ago
    draw = rng.random()
    if draw < 0.55:
        last = rng.randint(1, 45)
    elif draw < 0.8:
        last = rng.randint(45, 240)
    else:
        last = rng.randint(240, 600)
    count = min(rng.randint(1, 10), 731 - last)
    days = [last, *rng.sample(range(last + 1, 731), count - 1)]
    plans = []
    for days_ago in sorted(days, reverse=True):
        invoice_date = today - timedelta(days=days_ago)
        draw = rng.random()
        if days_ago < 45 and draw < 0.5:
            outcome = "unpaid"
        elif draw < 0.03:
            outcome = "full_credit_note"
        elif draw < 0.06:
            outcome = "partial_credit_note"
        elif draw < 0.14:
            outcome = "partial"
        elif draw < 0.24:
            outcome = "unpaid"
        else:
            outcome = "paid"
        plans.append(
            {
                "date": invoice_date,
                "outcome": outcome,
                "lines": rng.randint(1, 3),
                "term": rng.choice(("immediate", "30days", "30days", "advance")),
            }
        )
    return plans


def _create_invoices(env, rng, plans):
    sale_tax = env["account.tax"].search(
        [("type_tax_use", "=", "sale"), ("company_id", "=", env.company.id)], limit=1
    )
    terms = {
        "immediate": env.ref("account.account_payment_term_immediate", False),
        "30days": env.ref("account.account_payment_term_30days", False),
        "advance": env.ref("account.account_payment_term_advance_60days", False),
    }
    invoices = env["account.move"].create(
        [
            {
                "move_type": "out_invoice",
                "partner_id": plan["partner"].id,
                "invoice_date": plan["date"],
                "invoice_payment_term_id": terms[plan["term"]].id
                if terms[plan["term"]]
                else False,
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": f"Service {line + 1}",
                            "quantity": rng.randint(1, 5),
                            "price_unit": round(rng.uniform(40.0, 1500.0), 2),
                            "tax_ids": [Command.set(sale_tax.ids)]
                            if rng.random() < 0.8
                            else [Command.clear()],
                        }
                    )
                    for line in range(plan["lines"])
                ],
            }
            for plan in plans
        ]
    )
    invoices.action_post()
    return invoices


def _settle_invoices(env, rng, plans, today):
    """Payments and credit notes, in date order; now and then two invoices
    of a client paid together."""
    events = []
    for plan in plans:
        settle_date = min(plan["date"] + timedelta(days=rng.randint(0, 75)), today)
        events.append((settle_date, plan))
    events.sort(key=lambda event: (event[0], event[1]["invoice"].id))
    waiting = {}
    for settle_date, plan in events:
        invoice = plan["invoice"]
        outcome = plan["outcome"]
        if outcome == "paid":
            partner = invoice.commercial_partner_id
            if partner in waiting:
                _register_payment(env, waiting.pop(partner) | invoice, settle_date)
            elif rng.random() < 0.12:
                waiting[partner] = invoice  # paid with the client's next one
            else:
                _register_payment(env, invoice, settle_date)
        elif outcome == "partial":
            amount = invoice.currency_id.round(
                invoice.amount_residual * rng.uniform(0.3, 0.7)
            )
            _register_payment(env, invoice, settle_date, amount)
        elif outcome.endswith("credit_note"):
            _credit_note(env, invoice, settle_date, outcome == "full_credit_note")
            if outcome == "partial_credit_note" and rng.random() < 0.5:
                _register_payment(
                    env, invoice, min(settle_date + timedelta(days=10), today)
                )
    for invoice in waiting.values():
        _register_payment(env, invoice, min(invoice.invoice_date_due, today))


def _register_payment(env, invoices, payment_date, amount=None):
    values = {"payment_date": payment_date, "group_payment": True}
    if amount is not None:
        values.update(amount=amount, payment_difference_handling="open")
    env["account.payment.register"].with_context(
        active_model="account.move", active_ids=invoices.ids
    ).create(values)._create_payments()


def _credit_note(env, invoice, reversal_date, full):
    reversal = (
        env["account.move.reversal"]
        .with_context(active_model="account.move", active_ids=invoice.ids)
        .create(
            {
                "date": reversal_date,
                "journal_id": invoice.journal_id.id,
                "reason": "Returned goods" if full else "Discount granted",
            }
        )
    )
    reversal.refund_moves()
    credit_note = reversal.new_move_ids
    if not full:
        line = credit_note.invoice_line_ids[:1]
        credit_note.write(
            {
                "invoice_line_ids": [
                    Command.update(
                        line.id, {"price_unit": round(line.price_unit * 0.4, 2)}
                    )
                ]
            }
        )
    credit_note.action_post()


def _create_leads(env, rng, clients, contacts):
    stages = env["crm.stage"].search([])
    open_stages = stages.filtered(lambda stage: not stage.is_won)
    fixed = {0: [], 1: ["lead"], 2: ["open", "lead"], 3: ["lost"]}
    kinds_by_lead = []
    values = []
    for index, client in enumerate(clients):
        kinds = fixed.get(index)
        if kinds is None:
            kinds = rng.choices(
                ("lead", "open", "won", "lost"), (2, 3, 2, 2), k=rng.randint(0, 3)
            )
        for kind in kinds:
            contact = contacts.get(index)
            partner = contact if contact and rng.random() < 0.5 else client
            vals = {
                "name": f"{kind.capitalize()} deal {client.name}",
                "partner_id": partner.id,
                "type": "lead" if kind == "lead" else "opportunity",
                "expected_revenue": round(rng.uniform(500.0, 20000.0), 2),
            }
            if kind != "lead":
                vals.update(
                    stage_id=rng.choice(open_stages).id,
                    probability=rng.choice((10.0, 30.0, 50.0, 70.0)),
                )
            values.append(vals)
            kinds_by_lead.append(kind)
    leads = env["crm.lead"].create(values)
    ids_by_kind = defaultdict(list)
    for lead, kind in zip(leads, kinds_by_lead, strict=True):
        ids_by_kind[kind].append(lead.id)
    leads.browse(ids_by_kind["won"]).action_set_won()
    leads.browse(ids_by_kind["lost"]).action_set_lost()


# ----------------------------------------------------------------------
# Clones, in SQL
# ----------------------------------------------------------------------
def _prepare_templates(env, log=False):
    """Number the template rows of each cloned table in temporary tables
    ``scale_tpl_<table>`` (old_id, tpl, idx, ref_<column>: idx of the
    template row a many2one points to) and describe the tables."""
    cr = env.cr
    env.flush_all()
    cr.execute(SQL("DROP TABLE IF EXISTS scale_template"))
    cr.execute(
        SQL(
            """
            CREATE TEMP TABLE scale_template AS
            SELECT id AS partner_id, substr(ref, %s)::int - 1 AS tpl
              FROM res_partner WHERE ref LIKE %s AND parent_id IS NULL
            """,
            len(TEMPLATE_REF) + 1,
            TEMPLATE_REF + "%",
        )
    )
    tables = {}
    for table, query in CLONED_TABLES:
        tpl_table = SQL.identifier(f"scale_tpl_{table}")
        cr.execute(SQL("DROP TABLE IF EXISTS %s", tpl_table))
        cr.execute(
            SQL(
                """
                CREATE TEMP TABLE %(tpl_table)s AS
                SELECT s.old_id, s.tpl,
                       (row_number() OVER (ORDER BY s.tpl, s.old_id))::int AS idx
                  FROM (%(query)s) AS s(old_id, tpl)
                """,
                tpl_table=tpl_table,
                query=query,
            )
        )
        cr.execute(
            SQL(
                "SELECT count(*), count(DISTINCT old_id) FROM %s",
                tpl_table,
            )
        )
        rows, distinct = cr.fetchone()
        if rows != distinct:
            raise RuntimeError(f"scale data: {table} rows shared by two templates")
        cr.execute(SQL("CREATE UNIQUE INDEX ON %s (old_id)", tpl_table))
        tables[table] = {
            "rows": rows,
            "columns": _columns(cr, table),
            "model": _model_of(env, table),
        }
    for table, info in tables.items():
        info["refs"] = _many2one_refs(env, info["model"], tables)
        for column, target in info["refs"].items():
            _add_ref(cr, table, column, target, SQL.identifier("t", column))
    # 'P<id>': the partial reconcile that numbers a partly matched line
    _add_ref(
        cr,
        "account_move_line",
        "_matching",
        "account_partial_reconcile",
        SQL(
            "CASE WHEN t.matching_number LIKE %s"
            " THEN substr(t.matching_number, 2)::int END",
            "P%",
        ),
    )
    for info in tables.values():
        info["empty"] = _engine_columns(info["model"])
    if log:
        _log_references_left(env, tables)
    cr.execute(SQL("ANALYZE scale_template"))
    return tables


def _columns(cr, table):
    cr.execute(
        SQL(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s"
            " ORDER BY ordinal_position",
            table,
        )
    )
    return cr.fetchall()


def _model_of(env, table):
    for name in env.registry:
        model = env[name]
        if model._table == table and not model._abstract and model._auto:
            return model
    raise RuntimeError(f"scale data: no model for {table}")


def _many2one_refs(env, model, tables):
    """{column: cloned table} of the stored many2one fields of ``model``
    that point to a cloned table."""
    refs = {}
    for field in model._fields.values():
        if field.type != "many2one" or not field.store or not field.column_type:
            continue
        target = env[field.comodel_name]._table
        if target not in tables:
            continue
        if field.company_dependent:
            _logger.warning(
                "scale data: %s.%s (company dependent) is copied, not mapped",
                model._name,
                field.name,
            )
            continue
        refs[field.name] = target
    return refs


def _add_ref(cr, table, name, target, expression):
    """Column ``ref_<name>`` of scale_tpl_<table>: idx of the template row of
    ``target`` that ``expression`` (over the row ``t``) points to."""
    tpl_table = SQL.identifier(f"scale_tpl_{table}")
    ref = SQL.identifier(f"ref_{name}")
    cr.execute(SQL("ALTER TABLE %s ADD COLUMN %s int", tpl_table, ref))
    cr.execute(
        SQL(
            """
            UPDATE %(tpl_table)s x SET %(ref)s = y.idx
              FROM %(table)s t, %(target_tpl)s y
             WHERE t.id = x.old_id AND y.old_id = %(expression)s
            """,
            tpl_table=tpl_table,
            ref=ref,
            table=SQL.identifier(table),
            target_tpl=SQL.identifier(f"scale_tpl_{target}"),
            expression=expression,
        )
    )
    cr.execute(
        SQL(
            """
            SELECT count(*) FROM %(tpl_table)s x
              JOIN %(target_tpl)s y ON y.idx = x.%(ref)s
             WHERE y.tpl != x.tpl
            """,
            tpl_table=tpl_table,
            ref=ref,
            target_tpl=SQL.identifier(f"scale_tpl_{target}"),
        )
    )
    if cr.fetchone()[0]:
        raise RuntimeError(f"scale data: {table}.{name} crosses templates")


def _engine_columns(model):
    """Columns of the fields that crm_lifecycle adds to res.partner and
    computes or keeps per company: the engine's results, left empty on the
    clones (fields it adds to documents and leads are copied)."""
    if model._name != "res.partner":
        return set()
    return {
        name
        for name, field in model._fields.items()
        if field.store
        and field.column_type
        and field._modules
        and all(module.startswith(MODULE) for module in field._modules)
        and (field.company_dependent or field.compute)
        and not field.required
    }


def _relations(env, tables):
    """Many2many tables whose rows belong to a cloned row (column1), with
    the cloned table of column2 if any; only those the templates use."""
    relations = {}
    for info in tables.values():
        model = info["model"]
        for field in model._fields.values():
            if field.type != "many2many" or not field.store:
                continue
            comodel = env[field.comodel_name]
            if field.relation in relations or comodel._transient:
                continue
            relations[field.relation] = {
                "table": field.relation,
                "column1": field.column1,
                "owner": model._table,
                "column2": field.column2,
                "target": comodel._table if comodel._table in tables else None,
            }
    used = []
    for relation in relations.values():
        env.cr.execute(
            SQL(
                "SELECT EXISTS (SELECT 1 FROM %s t JOIN %s x ON x.old_id = t.%s)",
                SQL.identifier(relation["table"]),
                SQL.identifier(f"scale_tpl_{relation['owner']}"),
                SQL.identifier(relation["column1"]),
            )
        )
        if env.cr.fetchone()[0]:
            used.append(relation)
    return used


def _log_references_left(env, tables):
    """Log the rows of other tables that point to template rows: they are not
    cloned (chatter, followers, the lifecycle queue...)."""
    cloned_tables = set(tables)
    left = []
    for name in env.registry:
        model = env[name]
        if (
            model._abstract
            or model._transient
            or not model._auto
            or model._table in cloned_tables
        ):
            continue
        for field in model._fields.values():
            if field.type != "many2one" or not field.store or not field.column_type:
                continue
            target = env[field.comodel_name]._table
            if target not in cloned_tables or field.company_dependent:
                continue
            env.cr.execute(
                SQL(
                    "SELECT count(*) FROM %s t JOIN %s x ON x.old_id = t.%s",
                    SQL.identifier(model._table),
                    SQL.identifier(f"scale_tpl_{target}"),
                    SQL.identifier(field.name),
                )
            )
            count = env.cr.fetchone()[0]
            if count:
                left.append(f"{model._table}.{field.name} ({count})")
    if left:
        _logger.info("scale data: not cloned: %s", ", ".join(sorted(set(left))))


def _clone_chunk(env, tables, templates, first, last):
    """Clone clients ``first``..``last`` (numbers k from 1) in one
    transaction, a statement per table. Returns {table: rows inserted}."""
    cr = env.cr
    cr.execute(SQL("SET LOCAL session_replication_role = replica"))
    cr.execute(SQL("SET LOCAL work_mem = '64MB'"))
    first_round = (first - 1) // templates
    rounds = (last - 1) // templates - first_round + 1
    cr.execute(
        SQL(
            """
            CREATE TEMP TABLE IF NOT EXISTS scale_clone (
                slot int, tpl int, k int PRIMARY KEY, shift int)
            """
        )
    )
    cr.execute(SQL("TRUNCATE scale_clone"))
    cr.execute(
        SQL(
            """
            INSERT INTO scale_clone (slot, tpl, k, shift)
            SELECT c.slot, c.tpl, c.k,
                   (mod(hashint4(c.k)::bigint + 2147483648, %(shift_days)s) ^ 2
                    / %(shift_days)s)::int
              FROM (SELECT r.slot, t.tpl, (%(first_round)s + r.slot) * %(templates)s
                           + t.tpl + 1 AS k
                      FROM generate_series(0, %(rounds)s - 1) AS r(slot),
                           generate_series(0, %(templates)s - 1) AS t(tpl)) c
             WHERE c.k BETWEEN %(first)s AND %(last)s
            """,
            shift_days=SHIFT_DAYS,
            first_round=first_round,
            templates=templates,
            rounds=rounds,
            first=first,
            last=last,
        )
    )
    cr.execute(SQL("ANALYZE scale_clone"))
    bases = {
        table: _reserve_ids(cr, table, rounds * info["rows"])
        for table, info in tables.items()
        if info["rows"]
    }
    inserted = {}
    for table, info in tables.items():
        if info["rows"]:
            inserted[table] = _insert_clones(cr, table, info, tables, bases)
    for relation in _relations(env, tables):
        inserted[relation["table"]] = _insert_relation_clones(
            cr, relation, tables, bases
        )
    if "account_payment" in bases:
        cr.execute(
            SQL(
                """
                UPDATE account_payment p SET name = m.name
                  FROM account_move m
                 WHERE m.id = p.move_id AND p.id >= %s AND p.name IS NOT NULL
                """,
                bases["account_payment"],
            )
        )
    return inserted


def _reserve_ids(cr, table, count):
    """First id of a block of ``count`` ids taken from the table's sequence."""
    sequence = SQL("pg_get_serial_sequence(%s, 'id')", table)
    cr.execute(SQL("SELECT nextval(%s)", sequence))
    base = cr.fetchone()[0]
    if count > 1:
        cr.execute(SQL("SELECT setval(%s, %s)", sequence, base + count - 1))
    return base


def _mapped(table, tables, bases, idx):
    """Id in the clone of the template row number ``idx`` of ``table``."""
    return SQL("(%s + c.slot * %s + %s - 1)", bases[table], tables[table]["rows"], idx)


def _insert_clones(cr, table, info, tables, bases):
    new_id = _mapped(table, tables, bases, SQL("x.idx"))
    columns = []
    values = []
    for column, data_type in info["columns"]:
        columns.append(SQL.identifier(column))
        values.append(
            _clone_value(table, info, column, data_type, tables, bases, new_id)
        )
    order_column = INSERT_ORDER.get(table)
    order = (
        SQL("%s::date - c.shift, 1", SQL.identifier("t", order_column))
        if order_column
        else SQL("1")
    )
    cr.execute(
        SQL(
            """
            INSERT INTO %(table)s (%(columns)s)
            SELECT %(values)s
              FROM %(table)s t
              JOIN %(tpl_table)s x ON x.old_id = t.id
              JOIN scale_clone c ON c.tpl = x.tpl
             ORDER BY %(order)s
            """,
            table=SQL.identifier(table),
            columns=SQL(", ").join(columns),
            values=SQL(", ").join(values),
            tpl_table=SQL.identifier(f"scale_tpl_{table}"),
            order=order,
        )
    )
    return cr.rowcount


def _shifted(expression, data_type):
    if data_type == "date":
        return SQL("(%s - c.shift)", expression)
    return SQL("(%s - make_interval(days => c.shift))", expression)


def _clone_value(table, info, column, data_type, tables, bases, new_id):
    """SQL value of ``column`` in the clone of the template row ``t``."""
    source = SQL.identifier("t", column)
    if column == "id":
        return new_id
    special = _special_value(table, column, source, tables, bases, new_id)
    if special is not None:
        return special
    if column in info["empty"]:
        return SQL("NULL")
    if column in info["refs"]:
        ref = SQL.identifier("x", f"ref_{column}")
        target = info["refs"][column]
        return SQL(
            "CASE WHEN %s IS NULL THEN %s ELSE %s END",
            ref,
            source,
            _mapped(target, tables, bases, ref),
        )
    if data_type == "date" or data_type.startswith("timestamp"):
        return _shifted(source, "date" if data_type == "date" else "timestamp")
    return source


def _special_value(table, column, source, tables, bases, new_id):
    """Names and numbers that must differ between clones, or None."""
    client_name = SQL("(%s || lpad(c.k::text, 6, '0'))", CLIENT_NAME)
    template_name = SQL("(%s || lpad((c.tpl + 1)::text, 2, '0'))", TEMPLATE_NAME)
    renamed = SQL("replace(%s, %s, %s)", source, template_name, client_name)
    if table == "res_partner":
        company = SQL("t.parent_id IS NULL")
        if column == "name":
            return SQL("CASE WHEN %s THEN %s ELSE %s END", company, client_name, source)
        if column == "complete_name":
            return SQL(
                "CASE WHEN %s THEN %s ELSE %s || ', ' || t.name END",
                company,
                client_name,
                client_name,
            )
        if column in ("commercial_company_name", "company_name"):
            return renamed
        if column == "ref":
            return SQL(
                "CASE WHEN %s THEN %s || lpad(c.k::text, 6, '0') ELSE %s END",
                company,
                CLIENT_REF,
                source,
            )
        if column in ("email", "email_normalized"):
            return SQL(
                "split_part(%s, '@', 1) || '.' || c.k || '@' || split_part(%s, '@', 2)",
                source,
                source,
            )
    if table == "account_move":
        prefix = SQL(
            "regexp_replace(t.sequence_prefix, '(19|20)[0-9]{2}',"
            " to_char(t.date - c.shift, 'YYYY'))"
        )
        name = SQL("(%s || lpad(%s::text, 8, '0'))", prefix, new_id)
        posted_name = SQL("t.name IS NOT NULL AND t.name != '/'")
        if column == "name":
            return SQL("CASE WHEN %s THEN %s ELSE t.name END", posted_name, name)
        if column == "sequence_prefix":
            return SQL(
                "CASE WHEN %s THEN %s ELSE t.sequence_prefix END", posted_name, prefix
            )
        if column == "sequence_number":
            return SQL(
                "CASE WHEN %s THEN %s ELSE t.sequence_number END", posted_name, new_id
            )
        if column == "payment_reference":
            return SQL(
                "CASE WHEN t.payment_reference = t.name AND %s THEN %s"
                " ELSE t.payment_reference END",
                posted_name,
                name,
            )
        if column == "invoice_partner_display_name":
            return renamed
    if table == "account_move_line" and column == "matching_number":
        return SQL(
            """CASE WHEN x.ref__matching IS NOT NULL THEN 'P' || %s
                    WHEN x.ref_full_reconcile_id IS NOT NULL THEN %s::text
                    ELSE t.matching_number END""",
            _mapped("account_partial_reconcile", tables, bases, SQL("x.ref__matching")),
            _mapped(
                "account_full_reconcile", tables, bases, SQL("x.ref_full_reconcile_id")
            ),
        )
    if table == "crm_lead" and column in ("name", "partner_name"):
        return renamed
    return None


def _insert_relation_clones(cr, relation, tables, bases):
    owner_tpl = SQL.identifier(f"scale_tpl_{relation['owner']}")
    column1 = SQL.identifier(relation["column1"])
    column2 = SQL.identifier(relation["column2"])
    if relation["target"]:
        target_join = SQL(
            "LEFT JOIN %s y ON y.old_id = t.%s",
            SQL.identifier(f"scale_tpl_{relation['target']}"),
            column2,
        )
        value2 = SQL(
            "CASE WHEN y.idx IS NULL THEN t.%s ELSE %s END",
            column2,
            _mapped(relation["target"], tables, bases, SQL("y.idx")),
        )
    else:
        target_join = SQL()
        value2 = SQL("t.%s", column2)
    cr.execute(
        SQL(
            """
            INSERT INTO %(table)s (%(column1)s, %(column2)s)
            SELECT %(value1)s, %(value2)s
              FROM %(table)s t
              JOIN %(owner_tpl)s x ON x.old_id = t.%(column1)s
              %(target_join)s
              JOIN scale_clone c ON c.tpl = x.tpl
            """,
            table=SQL.identifier(relation["table"]),
            column1=column1,
            column2=column2,
            value1=_mapped(relation["owner"], tables, bases, SQL("x.idx")),
            value2=value2,
            owner_tpl=owner_tpl,
            target_join=target_join,
        )
    )
    return cr.rowcount


# ----------------------------------------------------------------------
# Sanity check
# ----------------------------------------------------------------------
def check_dataset(env, tables=None):
    """Compare every clone with its template and look for dangling
    references. Returns counts: clients, mismatches per measure, dangling
    references per column, and the size of the data set."""
    cr = env.cr
    tables = tables or _prepare_templates(env)
    templates = int(
        env["ir.config_parameter"].sudo().get_param(PARAM_TEMPLATES) or TEMPLATES
    )
    company = env.company.id
    cr.execute(
        SQL(
            """
            WITH client AS (
                SELECT id, mod(substr(ref, %(client_from)s)::int - 1, %(templates)s)
                           AS tpl, false AS is_template
                  FROM res_partner WHERE ref LIKE %(client_ref)s AND parent_id IS NULL
                UNION ALL
                SELECT partner_id, tpl, true FROM scale_template
            ),
            doc AS (
                SELECT commercial_partner_id AS id, count(*) AS documents,
                       count(*) FILTER (WHERE move_type = 'out_invoice'
                                          AND payment_state IN %(paid)s)
                           AS paid_invoices,
                       sum(amount_untaxed_signed) AS untaxed,
                       sum(amount_residual_signed) AS residual
                  FROM account_move
                 WHERE state = 'posted' AND company_id = %(company)s
                   AND move_type IN ('out_invoice', 'out_refund')
                 GROUP BY commercial_partner_id
            ),
            receivable AS (
                SELECT l.partner_id AS id, sum(l.amount_residual) AS open
                  FROM account_move_line l
                  JOIN account_account a ON a.id = l.account_id
                 WHERE l.company_id = %(company)s AND l.parent_state = 'posted'
                   AND a.account_type = 'asset_receivable' AND NOT l.reconciled
                 GROUP BY l.partner_id
            ),
            lead AS (
                SELECT p.commercial_partner_id AS id, count(*) AS leads
                  FROM crm_lead l JOIN res_partner p ON p.id = l.partner_id
                 GROUP BY p.commercial_partner_id
            ),
            profile AS (
                SELECT c.id, c.tpl, c.is_template,
                       coalesce(d.documents, 0) AS documents,
                       coalesce(d.paid_invoices, 0) AS paid_invoices,
                       coalesce(d.untaxed, 0) AS untaxed,
                       coalesce(d.residual, 0) AS residual,
                       coalesce(r.open, 0) AS open,
                       coalesce(l.leads, 0) AS leads
                  FROM client c
                  LEFT JOIN doc d ON d.id = c.id
                  LEFT JOIN receivable r ON r.id = c.id
                  LEFT JOIN lead l ON l.id = c.id
            )
            SELECT count(*),
                   count(*) FILTER (WHERE c.documents != t.documents),
                   count(*) FILTER (WHERE c.paid_invoices != t.paid_invoices),
                   count(*) FILTER (WHERE c.untaxed != t.untaxed),
                   count(*) FILTER (WHERE c.residual != t.residual),
                   count(*) FILTER (WHERE c.open != t.open),
                   count(*) FILTER (WHERE c.leads != t.leads),
                   sum(c.documents), sum(c.paid_invoices), sum(c.untaxed),
                   sum(c.leads)
              FROM profile c
              JOIN profile t ON t.tpl = c.tpl AND t.is_template
             WHERE NOT c.is_template
            """,
            client_from=len(CLIENT_REF) + 1,
            templates=templates,
            client_ref=CLIENT_REF + "%",
            paid=PAID_STATES,
            company=company,
        )
    )
    row = cr.fetchone()
    measures = ("documents", "paid_invoices", "untaxed", "residual", "open", "leads")
    check = {
        "clients": row[0],
        "mismatches": {
            name: count for name, count in zip(measures, row[1:7], strict=True) if count
        },
        "documents": int(row[7] or 0),
        "paid_invoices": int(row[8] or 0),
        "untaxed": float(row[9] or 0),
        "leads": int(row[10] or 0),
    }
    cr.execute(
        SQL(
            """
            SELECT count(*) FROM account_move_line l
              JOIN account_move m ON m.id = l.move_id
              JOIN res_partner p ON p.id = m.commercial_partner_id
             WHERE p.ref LIKE %s AND l.display_type = 'product'
               AND m.state = 'posted' AND m.move_type IN ('out_invoice', 'out_refund')
            """,
            CLIENT_REF + "%",
        )
    )
    check["invoice_lines"] = cr.fetchone()[0]
    check["rows"] = {}
    for table in tables:
        cr.execute(SQL("SELECT count(*) FROM %s", SQL.identifier(table)))
        check["rows"][table] = cr.fetchone()[0]
    check["dangling"] = {}
    for table, info in tables.items():
        for column, target in info["refs"].items():
            cr.execute(
                SQL(
                    """
                    SELECT count(*) FROM %(table)s t
                     WHERE t.%(column)s IS NOT NULL AND NOT EXISTS (
                           SELECT 1 FROM %(target)s r WHERE r.id = t.%(column)s)
                    """,
                    table=SQL.identifier(table),
                    column=SQL.identifier(column),
                    target=SQL.identifier(target),
                )
            )
            count = cr.fetchone()[0]
            if count:
                check["dangling"][f"{table}.{column}"] = count
    return check


def format_check(check):
    """Lines that tell the result of ``check_dataset``."""
    return [
        f"{check['clients']} clients compared with their templates: "
        + (
            "every one matches (documents, paid invoices, untaxed, residual, "
            "open receivable, leads)"
            if not check["mismatches"]
            else f"MISMATCHES {check['mismatches']}"
        ),
        f"dangling references: {check['dangling'] or 'none'}",
        f"clients' posted invoices and credit notes: {check['documents']} "
        f"({check['invoice_lines']} invoice lines), paid invoices: "
        f"{check['paid_invoices']}, untaxed total: {check['untaxed']:.2f}, "
        f"leads: {check['leads']}",
        "rows: "
        + ", ".join(f"{table} {count}" for table, count in check["rows"].items()),
    ]


# ----------------------------------------------------------------------
# Floors
# ----------------------------------------------------------------------
@contextmanager
def _rolled_back(cr):
    cr.execute(SQL("SAVEPOINT scale_floor"))
    try:
        yield
    finally:
        cr.execute(SQL("ROLLBACK TO SAVEPOINT scale_floor"))
        cr.execute(SQL("RELEASE SAVEPOINT scale_floor"))


def _read_floor(cr, ids, company_id):
    cr.execute(
        SQL(
            """
            SELECT commercial_partner_id, count(*), sum(amount_untaxed_signed),
                   max(invoice_date)
              FROM account_move
             WHERE company_id = %s AND state = 'posted'
               AND move_type IN ('out_invoice', 'out_refund')
               AND commercial_partner_id = ANY(%s)
             GROUP BY commercial_partner_id
            """,
            company_id,
            ids,
        )
    )
    cr.fetchall()
    cr.execute(
        SQL(
            """
            SELECT l.partner_id, sum(l.amount_residual)
              FROM account_move_line l
              JOIN account_account a ON a.id = l.account_id
             WHERE l.company_id = %s AND l.parent_state = 'posted'
               AND a.account_type = 'asset_receivable' AND NOT l.reconciled
               AND l.partner_id = ANY(%s)
             GROUP BY l.partner_id
            """,
            company_id,
            ids,
        )
    )
    cr.fetchall()
    cr.execute(
        SQL(
            """
            SELECT p.commercial_partner_id, count(*)
              FROM crm_lead l JOIN res_partner p ON p.id = l.partner_id
             WHERE p.commercial_partner_id = ANY(%s)
               AND (l.company_id = %s OR l.company_id IS NULL)
             GROUP BY p.commercial_partner_id
            """,
            ids,
            company_id,
        )
    )
    cr.fetchall()


def _client_columns(env):
    """[(column, SQL type, references)] of the columns of
    ``crm_lifecycle_client`` that the engine writes; ``references`` are ids
    of the target table for a many2one (a few, cycled through)."""
    Client = env["crm.lifecycle.client"]
    columns = []
    for name in Client._state_columns():
        field = Client._fields[name]
        references = None
        if field.type == "many2one":
            references = (
                env[field.comodel_name]
                .with_context(active_test=False)
                .search([], limit=8)
                .ids
            )
        columns.append((name, field.column_type[1], references))
    return columns


def _state_value(sql_type, references, position, partner_id, variant):
    """A value that differs by client, column and variant (insert, update)."""
    number = partner_id + variant + position
    if references is not None:
        return references[number % len(references)] if references else None
    if sql_type.startswith(("int", "float")):
        return 1 + number % 9
    if sql_type == "numeric":
        return round(number * 1.37, 2)
    if sql_type == "bool":
        return bool(number % 2)
    if sql_type == "date":
        return date(2024, 1, 1) + timedelta(days=number % 700)
    if sql_type == "timestamp":
        return datetime(2026, 1, 1) + timedelta(minutes=number)
    return f"{number:x}"


def _state_values(ids, company_id, columns, variant):
    """[(column, SQL type, values)] of the write floor's rows."""
    arrays = [
        ("partner_id", "int4", ids),
        ("company_id", "int4", [company_id] * len(ids)),
    ]
    for position, (name, sql_type, references) in enumerate(columns):
        values = [
            _state_value(sql_type, references, position, pid, variant) for pid in ids
        ]
        arrays.append((name, sql_type, values))
    return arrays


def _array(values, sql_type):
    """``values`` as one PostgreSQL array literal: one string to send."""
    if sql_type.startswith(("varchar", "text")):
        items = (
            '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for value in values
        )
    elif sql_type in ("date", "timestamp"):
        items = (value.isoformat() for value in values)
    else:
        items = ("NULL" if value is None else str(value) for value in values)
    return SQL("%s::%s[]", "{" + ",".join(items) + "}", SQL(sql_type))


def _forget_clients(cr, ids, company_id):
    cr.execute(
        SQL(
            "DELETE FROM crm_lifecycle_client"
            " WHERE company_id = %s AND partner_id = ANY(%s)",
            company_id,
            ids,
        )
    )


def _write_floor(cr, inserted, updated, columns):
    column_list = SQL(", ").join(
        SQL.identifier(name) for name, _type, _values in inserted
    )
    now = SQL("now() at time zone 'UTC'")
    cr.execute(
        SQL(
            """
            INSERT INTO crm_lifecycle_client
                   (%(columns)s, create_uid, create_date, write_uid, write_date)
            SELECT *, 1, %(now)s, 1, %(now)s FROM unnest(%(arrays)s)
            """,
            columns=column_list,
            now=now,
            arrays=SQL(", ").join(
                _array(values, sql_type) for _name, sql_type, values in inserted
            ),
        )
    )
    cr.execute(
        SQL(
            """
            UPDATE crm_lifecycle_client c
               SET %(assignments)s, write_uid = 1, write_date = %(now)s
              FROM unnest(%(arrays)s) AS v(%(columns)s)
             WHERE c.partner_id = v.partner_id AND c.company_id = v.company_id
            """,
            assignments=SQL(", ").join(
                SQL("%s = v.%s", SQL.identifier(name), SQL.identifier(name))
                for name, _type, _references in columns
            ),
            now=now,
            arrays=SQL(", ").join(
                _array(values, sql_type) for _name, sql_type, values in updated
            ),
            columns=column_list,
        )
    )


def _insert_floor(cr, ids, company_id, stages, bodies, author, subtype):
    cr.execute(
        SQL(
            """
            INSERT INTO crm_lifecycle_history (
                partner_id, company_id, stage_from_id, stage_to_id, reason, date,
                days_in_previous_stage, user_id, create_uid, create_date,
                write_uid, write_date)
            SELECT p.id, %(company)s, (%(stages)s)[1 + mod(p.id, %(count)s)],
                   (%(stages)s)[1 + mod(p.id + 1, %(count)s)], 'rule',
                   now() at time zone 'UTC', mod(p.id, 300), 1, 1,
                   now() at time zone 'UTC', 1, now() at time zone 'UTC'
              FROM unnest(%(ids)s) AS p(id)
            """,
            company=company_id,
            stages=_array(stages, "int4"),
            count=len(stages),
            ids=_array(ids, "int4"),
        )
    )
    cr.execute(
        SQL(
            """
            INSERT INTO mail_message (
                model, res_id, message_type, is_internal, subtype_id, body,
                author_id, email_from, reply_to, message_id, date, create_uid,
                create_date, write_uid, write_date)
            SELECT 'res.partner', m.id, 'notification', true, %(subtype)s,
                   m.body, %(author)s, '"OdooBot" <odoobot@example.com>',
                   '"My Company" <info@example.com>',
                   '<' || md5(m.id::text) || '-openerp-message-notify@example>',
                   now() at time zone 'UTC', 1, now() at time zone 'UTC', 1,
                   now() at time zone 'UTC'
              FROM unnest(%(ids)s, %(bodies)s) AS m(id, body)
            """,
            subtype=subtype,
            author=author,
            ids=_array(ids, "int4"),
            bodies=_array(bodies, "text"),
        )
    )


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--upgrade", action="store_true")
    args = parser.parse_args()
    if args.clients is None:
        # `make bench` runs every script of bench/ on its own database: this
        # one builds only when asked how many clients
        print("scale_data.py: nothing to do without --clients N")
        return
    start = time.perf_counter()
    database = ensure_dataset(args.config, args.database, args.clients, args.upgrade)
    print(f"data set {database}: ready in {time.perf_counter() - start:.0f} s")
    with Registry(database).cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        for line in format_check(check_dataset(env)):
            print(line)
        ids = client_ids(env, args.clients)
        result = floors(env, ids)
        print(
            f"floors over {len(ids)} clients: "
            + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in result.items())
        )
        cr.rollback()


if __name__ == "__main__":
    main()


# ----------------------------------------------------------------------
# Snapshots and reports
# ----------------------------------------------------------------------


def snapshot_floor(env, company_id, dates, repeat=3):
    """Seconds of one bare INSERT … SELECT of a snapshot row per client row
    of the company and date of ``dates`` into a table like the snapshots'
    (its indexes and unique key included): the best of ``repeat``, each
    rolled back. The columns copied are those the rebuild takes from the
    engine's results (``CLIENT_COLUMNS``) that the snapshots have too."""
    from odoo.addons.crm_lifecycle.models.crm_lifecycle_snapshot import (
        CLIENT_COLUMNS,
    )

    cr = env.cr
    copied = [
        name for name in CLIENT_COLUMNS if name in env["crm.lifecycle.snapshot"]._fields
    ]
    columns = SQL(", ").join(SQL.identifier(name) for name in copied)
    values = SQL(", ").join(SQL.identifier("c", name) for name in copied)
    timings = []
    for _index in range(repeat):
        with _rolled_back(cr):
            cr.execute(
                SQL(
                    "CREATE TEMP TABLE scale_floor_snapshot"
                    " (LIKE crm_lifecycle_snapshot INCLUDING ALL)"
                )
            )
            start = time.perf_counter()
            cr.execute(
                SQL(
                    """
                    INSERT INTO scale_floor_snapshot
                           (date, partner_id, company_id, %(columns)s,
                            customer_capital)
                    SELECT d.date, c.partner_id, c.company_id, %(values)s,
                           c.clv + c.potential_value
                      FROM crm_lifecycle_client c
                     CROSS JOIN unnest(%(dates)s::date[]) AS d(date)
                     WHERE c.company_id = %(company)s
                    """,
                    columns=columns,
                    values=values,
                    dates=list(dates),
                    company=company_id,
                )
            )
            timings.append(time.perf_counter() - start)
    return min(timings)


def report_timings(env):
    """{action name: seconds} of the read_group each report action of
    crm_lifecycle runs when it opens (two actions of a model are two
    reports): the first view of the action (graph or pivot: its groupbys
    and measures; list: the first page), with the action's domain and the
    default filters of its context, on a cold ORM cache."""
    # the module's addons path is known once Odoo's configuration is read
    from odoo.addons.crm_lifecycle import series

    actions = env["ir.actions.act_window"].search(
        [("res_model", "like", "crm.lifecycle.%report")]
    )
    eval_context = {
        "uid": env.uid,
        "context_today": lambda: fields.Date.context_today(env.user),
        "datetime": safe_datetime,
        "relativedelta": dateutil.relativedelta.relativedelta,
        "time": safe_time,
    }
    timings = {}
    for action in actions:
        Model = env[action.res_model]
        context = safe_eval(action.context or "{}", eval_context)
        domain = safe_eval(action.domain or "[]", eval_context)
        search = Model.get_view(view_type="search")["arch"]
        defaults = {
            key[len("search_default_") :]
            for key, value in context.items()
            if key.startswith("search_default_") and value
        }
        groupby = []
        for element in etree.fromstring(search).iter("filter"):
            if element.get("name") not in defaults:
                continue
            if element.get("domain"):
                domain += safe_eval(element.get("domain"), eval_context)
            group = safe_eval(element.get("context") or "{}", eval_context)
            if group.get("group_by"):
                groupby.append(group["group_by"])
        view_type = (action.view_mode or "list").split(",")[0]
        view_ids = {view.view_mode: view.view_id.id for view in action.view_ids}
        view_id = view_ids.get(view_type, False)
        arch = etree.fromstring(Model.get_view(view_id, view_type=view_type)["arch"])
        measures = [
            f"{element.get('name')}:sum"
            for element in arch.iter("field")
            if element.get("type") == "measure"
        ] or ["__count"]
        # the groupbys of the view: rows and columns (a graph's untyped
        # fields are its rows)
        grouping = ("row", "col", None) if view_type == "graph" else ("row", "col")
        if view_type in ("graph", "pivot") and not groupby:
            groupby = [
                element.get("name")
                + (f":{element.get('interval')}" if element.get("interval") else "")
                for element in arch.iter("field")
                if element.get("type") in grouping
            ]
        env.invalidate_all()
        Model = Model.with_context(**context)
        start = time.perf_counter()
        if groupby:
            series.formatted_read_group(Model, domain, groupby, measures)
        else:
            Model.search_fetch(domain, list(Model._fields)[:20], limit=80)
        timings[action.name] = time.perf_counter() - start
    return timings
