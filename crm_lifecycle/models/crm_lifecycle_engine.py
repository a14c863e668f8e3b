# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import calendar
import gc
import hashlib
import json
import logging
import math
import random
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import pytz
from dateutil.relativedelta import relativedelta
from markupsafe import Markup, escape
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.tools import SQL, split_every
from odoo.tools.mail import generate_tracking_message_id

from .. import series
from .crm_lifecycle_client import id_array, json_rows, visible_in
from .crm_lifecycle_stage import BUILTIN_CODES, CHURN_CODES

_logger = logging.getLogger(__name__)

# Metric fields of res.partner written by the engine (company-dependent).
METRIC_FIELDS = (
    "purchase_count",
    "first_purchase_date",
    "last_purchase_date",
    "paid_revenue",
    "paid_revenue_12m",
    "invoiced_revenue",
    "receivable_open",
    "receivable_overdue",
    "max_days_overdue",
    "avg_days_to_pay",
    "purchase_interval_days",
    "expected_next_purchase_date",
    "lead_count",
    "open_opportunity_count",
    "pipeline_expected_revenue",
    "won_opportunity_count",
    "lost_opportunity_count",
)
# The metrics of a client without documents nor leads.
EMPTY_METRICS = {
    name: (None if name.endswith("_date") else 0) for name in METRIC_FIELDS
}
PAID_STATES = ("paid", "in_payment", "partial")
# The figures of a client over a window of months (``_query_invoices``):
# SQL aggregates over its documents ``d``, ``%s`` standing for "in the window".
WINDOW_AGGREGATES = {
    "count": "count(*) FILTER (WHERE %s)",
    "revenue": "coalesce(sum(d.paid) FILTER (WHERE %s), 0)",
    "purchases": "count(*) FILTER (WHERE %s AND d.is_purchase)",
    "last_date": "max(d.invoice_date) FILTER (WHERE %s AND d.is_purchase)",
    "first_date": "min(d.invoice_date) FILTER (WHERE %s)",
}
# A batch that meets one of these is rolled back and taken again.
CONCURRENCY_ERRORS = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
)
MAX_CONFLICTS = 8
# The scheduled actions that drain the queue, side by side.
QUEUE_CRONS = (
    "crm_lifecycle.ir_cron_lifecycle_queue",
    "crm_lifecycle.ir_cron_lifecycle_queue_second",
)
DEFAULT_BATCH_SIZE = 1000


def day_in_month(year, month, day):
    """``day``, or the last day of the month ``month`` of ``year`` when it
    has no such day (as relativedelta and PostgreSQL add months). Every
    month has 28 days: the month's length is looked up only after them."""
    if day <= 28:
        return day
    return min(day, calendar.monthrange(year, month)[1])


@contextmanager
def collection_paused():
    """Pause Python's cyclic garbage collector for the block, as Odoo 19
    pauses it while it loads a registry: a batch allocates some hundred
    thousand short-lived objects (rows, dicts, dates), freed by their
    reference counts, which set off collections of the whole heap (the
    registry's objects included) that find nothing to collect: 0.7 to 0.8 s
    of a first run of 17 to 20 s on 50,000 clients (bench/scale.py, timed
    by ``gc.callbacks``; 0.1 s with the pause). The objects of the batch are
    collected, if need be, once it is over. Left as found when already
    paused (by another thread of the server: the collector is the
    process's)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class CrmLifecycleEngine(models.AbstractModel):
    """The one place that computes lifecycle metrics and stages.

    It works on a batch of commercial partners for one company with a constant
    number of queries: the facts of each client (one query: the clients whose
    facts did not change since their row was computed are left out, see
    ``_facts``), metrics from invoices, receivables and leads, then the stage
    of each client in Python, then one statement of the results, one batch of
    history rows and one batch of chatter notes.
    """

    _name = "crm.lifecycle.engine"
    _description = "Client Lifecycle Engine"

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------
    @api.model
    def _recompute(self, partners, companies=None, force=False):
        """Recompute ``partners`` (any contacts: their commercial entities,
        when clients, are computed) in ``companies`` (default: the allowed
        companies) now. Clients whose facts did not change since their row
        was computed are skipped (``_needs_computing``), unless ``force``.

        The engine works as superuser: callers check the user's rights."""
        self = self.sudo()
        self.env["res.partner"].flush_model(["commercial_partner_id"])
        # their commercial entities that are clients (``_client_domain``),
        # archived ones included, as one array from one query: the run holds
        # their ids once, not a row of the result per id, fetched for the
        # entities, then again for the clients (4 MB for 50,000 clients,
        # more than a batch's working set)
        clients = (
            self.env["res.partner"]
            .with_context(active_test=False)
            ._search(self._client_domain())
        )
        self.env.cr.execute(
            SQL(
                "SELECT array_agg(DISTINCT p.commercial_partner_id"
                " ORDER BY p.commercial_partner_id) FROM res_partner p"
                " WHERE p.id = ANY(%s) AND p.commercial_partner_id IN %s",
                id_array(partners.ids),
                clients.subselect(),
            )
        )
        commercial_ids = self.env.cr.fetchone()[0] or []
        run = {"force": force}
        for company in (companies or self.env.companies).sudo():
            for batch in split_every(self._batch_size(), commercial_ids):
                self._compute_batch(self.env["res.partner"].browse(batch), company, run)
                if len(commercial_ids) > len(batch):
                    # memory stays that of one batch, whatever the number
                    self.env.flush_all()
                    self.env.invalidate_all()

    @api.model
    def _cron_enqueue_all_clients(self):
        """The daily recomputation (``_enqueue_all_clients``), committed. It
        writes the companies' rows (their figures of the day forgotten), as
        the queue's workers do when they keep them: after a serialization
        failure it is rolled back and done again in a new transaction, not
        left to fail the scheduled action."""
        self._commit_retrying(self._enqueue_all_clients, "daily recomputation")

    @api.model
    def _enqueue_all_clients(self):
        """Queue every client of every company; the cron does the work."""
        partners = self.env["res.partner"].sudo().search(self._client_domain())
        self._forget_figures(self.env["res.company"].sudo().search([]))
        self.env["crm.lifecycle.queue"]._enqueue_all(partners.ids)
        for xmlid in QUEUE_CRONS:
            cron = self.env.ref(xmlid, raise_if_not_found=False)
            if cron and cron.active:
                cron._trigger()
        return len(partners)

    def _forget_figures(self, companies):
        """Drop the figures of the day kept for ``companies``
        (``_company_figures``): the next run computes them again. After a
        rebuild of the snapshots (the conversion rates read them), and
        before a run of every client (the nightly one), which thus computes
        the day's figures from the day's data."""
        self.env.cr.execute(
            SQL(
                "UPDATE res_company SET lifecycle_figures = NULL"
                " WHERE id = ANY(%s) AND lifecycle_figures IS NOT NULL",
                companies.ids,
            ),
            # a worker that kept the figures meanwhile fails the transaction,
            # done again (``_commit_retrying``): not an error to log
            log_exceptions=False,
        )
        companies.invalidate_recordset(["lifecycle_figures"])

    @api.model
    def _cron_process_queue(self):
        self._process_queue(auto_commit=True)

    @api.model
    def _process_queue(self, limit=None, auto_commit=False):
        """Drain the queue in batches of the configured size.

        A batch takes its clients under a transaction-level advisory lock (so
        that several workers never compute a client at the same time), computes
        them and removes the queue rows it saw, in one transaction: an event
        committed meanwhile leaves a row of its own and the client is computed
        again. With ``auto_commit`` (the cron) every batch is committed; a batch
        that meets a serialization failure or a lock is rolled back and taken
        again after a pause; a client that fails on its own stays queued with
        its error. Returns the number of clients processed.
        """
        self = self.sudo()
        Queue = self.env["crm.lifecycle.queue"]
        Queue._flush_pending()
        batch_size = self._batch_size()
        processed = 0
        conflicts = 0
        run = {}
        while limit is None or processed < limit:
            size = batch_size if limit is None else min(batch_size, limit - processed)
            try:
                if auto_commit:
                    done = self._process_batch(size, run)
                else:
                    with self.env.cr.savepoint():
                        done = self._process_batch(size, run)
            except CONCURRENCY_ERRORS as error:
                if not auto_commit or conflicts >= MAX_CONFLICTS:
                    raise
                conflicts += 1
                self._after_conflict(error, conflicts, "batch")
                continue
            if done is None:
                break
            conflicts = 0
            processed += done
            if auto_commit:
                # the cron commits each batch: a failure later never loses it
                series.commit_progress(
                    self.env, done, processed, Queue._pending_count()
                )
            # memory stays that of one batch, whatever the queue holds
            self.env.invalidate_all()
        if processed:
            # new stages and levels may make playbook steps due now
            self.env.ref("crm_lifecycle.ir_cron_lifecycle_playbooks")._trigger()
        return processed

    def _after_conflict(self, error, conflicts, what):
        """Roll back the transaction that met ``error`` (one of
        ``CONCURRENCY_ERRORS``, the ``conflicts``-th in a row) and pause,
        longer each time, before ``what`` is done again in a new one:
        logged, not an error."""
        self.env.cr.rollback()
        self.env.invalidate_all()
        _logger.info(
            "Lifecycle: %s rolled back on %s, taken again (%s)",
            what,
            type(error).__name__,
            conflicts,
        )
        time.sleep(min(0.05 * 2**conflicts, 2.0) * (1 + random.random()))

    def _commit_retrying(self, step, what):
        """Run ``step`` and commit; after a serialization failure or a lock
        (another transaction changed what ``step`` writes since this one
        began) roll back and do it again in a new transaction, at most
        ``MAX_CONFLICTS`` times (``_after_conflict``)."""
        conflicts = 0
        while True:
            try:
                step()
                self.env.cr.commit()  # pylint: disable=invalid-commit
                return
            except CONCURRENCY_ERRORS as error:
                if conflicts >= MAX_CONFLICTS:
                    raise
                conflicts += 1
                self._after_conflict(error, conflicts, what)

    def _process_batch(self, size, run):
        """Take up to ``size`` queued clients, compute them and take them off
        the queue; None when nothing is left to take."""
        Queue = self.env["crm.lifecycle.queue"]
        taken = Queue._take(size)
        if not taken:
            return None
        done = 0
        for company_id, partner_ids in taken.items():
            company = self.env["res.company"].browse(company_id)
            failed = self._process_queued(company, partner_ids, run)
            Queue._done(company, [pid for pid in partner_ids if pid not in failed])
            if failed:
                Queue._failed(company, failed)
            done += len(partner_ids)
        return done

    def _process_queued(self, company, partner_ids, run):
        """Compute the queued ``partner_ids`` in ``company``; when the batch
        fails, client by client. Returns {partner id: error} of the clients
        that failed on their own."""
        queued = self.env["res.partner"].browse(partner_ids).exists()
        partners = self._clients_among(queued)
        if queued - partners:
            # no longer a client (now a contact of a company, a user...):
            # its contacts read their new commercial entity's row
            self.env["crm.lifecycle.client"]._forget(queued - partners, company)
        try:
            with self.env.cr.savepoint():
                self._compute_batch(partners, company, run)
            return {}
        except CONCURRENCY_ERRORS:
            raise
        except Exception:  # noqa: BLE001 - retried client by client below
            self.env.invalidate_all()
        failed = {}
        for partner in partners:
            try:
                with self.env.cr.savepoint():
                    self._compute_batch(partner, company, run)
            except CONCURRENCY_ERRORS:
                raise
            except Exception as error:  # noqa: BLE001 - kept on the queue row
                self.env.invalidate_all()
                _logger.warning(
                    "Lifecycle: client %s kept queued in company %s: %s",
                    partner.id,
                    company.id,
                    error,
                )
                failed[partner.id] = f"{type(error).__name__}: {error}"
        return failed

    # ------------------------------------------------------------------
    # Batch computation
    # ------------------------------------------------------------------
    def _compute_batch(self, partners, company, run=None):
        """Compute metrics, stage, level, scores and value of commercial
        ``partners`` in ``company`` and write what changed. ``run`` caches what
        is computed once per run and company (stages, levels, quintile
        boundaries, rates). Partners restricted to another company are left
        out: a client is computed only where it is visible."""
        if not partners:
            return
        # the objects of the batch are freed as ``_compute_paused`` returns,
        # before the collector is switched on again: its first collection
        # then has no batch to go through
        with collection_paused():
            self._compute_paused(partners, company, run)

    def _compute_paused(self, partners, company, run):
        """``_compute_batch``, the garbage collector paused."""
        self.env.flush_all()
        self._without_jit()
        run = {} if run is None else run
        if ("today", company.id) not in run:
            # one day for the whole run
            run["today", company.id] = fields.Date.context_today(
                self.with_company(company)
            )
        today = run["today", company.id]
        key = (company.id, today)
        if key not in run:
            run[key] = self._company_context(company, today)
        context = run[key]
        facts = self._facts(partners.ids, company, today, context)
        # the clients whose facts, company figures and settings are those
        # their row was computed from, on a day before their recheck date,
        # would come out as they are: nothing to compute, nothing written
        partners = (
            self.env["res.partner"]
            .with_company(company)
            .with_context(active_test=False)
            .browse(
                [
                    partner_id
                    for partner_id, partner_facts in sorted(facts.items())
                    if run.get("force") or self._needs_computing(partner_facts, today)
                ]
            )
        )
        if not partners:
            return
        # the rows of the clients that have one (none on a first run)
        states = self.env["crm.lifecycle.client"]._read_states(
            [partner_id for partner_id in partners.ids if facts[partner_id]["stored"]],
            company,
        )
        metrics = self._metrics(partners, company, today, context, facts)
        for partner_id, values in metrics.items():
            values["facts"] = facts[partner_id]
        results, changes = self._write_results(
            partners, company, metrics, states, context, today
        )
        self._after_results(partners, company, results, changes, context)

    def _needs_computing(self, facts, today):
        """Whether a client whose facts are ``facts`` (``_facts``) must be
        computed ``today``: unless its row was computed from the same facts,
        company figures and settings, and no day on which time alone changes
        it has come."""
        return facts["stored_key"] != facts["key"] or bool(
            facts["recheck_date"] and facts["recheck_date"] <= today
        )

    def _facts(self, partner_ids, company, today, context):
        """{partner id: facts} of the clients of ``partner_ids`` visible in
        ``company`` (no company, or that one; the others are left out), in
        one query over indexes:

        - ``key``: a fingerprint of what the engine reads for the client
          today: its posted customer documents, its open receivable lines,
          its leads (each by id and last write: posting, paying, reversing,
          resetting, editing a document or a lead changes it) and its own
          partner row, with the company's key (``_context_key``);
        - ``next_date``: the first day after ``today`` on which a document, a
          receivable line or a reconciliation dated in the future counts;
        - ``settled_later``: whether a line of the client or of its contacts
          has a reconciliation dated after ``today`` (a payment recorded
          ahead of its date counts from that date): read for the batch, in
          its transaction, not once per run (a payment registered between
          two batches of a run counts in the next one);
        - ``stored_key`` and ``recheck_date``: those of its client row, as
          the engine last wrote them (None without a row); ``stored``: whether
          it has a row;
        - ``documents``, ``lines``, ``leads``: how many of each it has (the
          metrics' queries leave out the clients without any)."""
        if "key" not in context:
            context["key"] = self._context_key(context)
            context["company_tree"] = self._company_tree(company)
            context["hash_record"] = self._has_hash_record()
        companies = context["company_tree"]

        def fingerprint(alias, columns):
            # the last write and the values read: a transaction's writes
            # share one write date, and a change made in the transaction
            # that computed the client still shows
            row = SQL(
                "ROW(%s)",
                SQL(", ").join(
                    SQL.identifier(alias, name)
                    for name in ("id", "write_date", *columns)
                ),
            )
            if context["hash_record"]:
                # the values hashed as they are, not written as text first
                # (twice as fast); every column named has a hash function
                return SQL("count(*) AS n, sum(hash_record(%s)) AS h", row)
            return SQL("count(*) AS n, sum(hashtext(%s::text)) AS h", row)

        self.env.cr.execute(
            SQL(
                """
                WITH doc AS (
                    SELECT m.commercial_partner_id AS partner_id, %(move_print)s,
                           min(m.invoice_date) FILTER (
                               WHERE m.invoice_date > %(today)s) AS next_date
                      FROM account_move m
                     WHERE m.commercial_partner_id = ANY(%(partners)s)
                       AND m.company_id IN (%(companies)s)
                       AND m.state = 'posted'
                       AND m.move_type IN ('out_invoice', 'out_refund')
                     GROUP BY m.commercial_partner_id
                ),
                line AS (
                    -- the open receivable lines of each contact of the
                    -- clients (``_query_receivables``), by Odoo's index of
                    -- unreconciled lines per account and partner
                    SELECT p.commercial_partner_id AS partner_id, %(line_print)s,
                           min(l.date) FILTER (WHERE l.date > %(today)s)
                               AS next_date
                      FROM res_partner p
                      JOIN LATERAL (
                          SELECT l.* FROM account_move_line l
                           WHERE l.partner_id = p.id
                             AND l.account_id = ANY(%(accounts)s)
                             AND (l.reconciled IS NULL OR l.reconciled = false
                                  OR l.reconciled IS NOT true)
                             AND l.parent_state = 'posted'
                             AND l.company_id IN (%(companies)s)
                          OFFSET 0
                      ) l ON TRUE
                     WHERE p.commercial_partner_id = ANY(%(partners)s)
                     GROUP BY p.commercial_partner_id
                ),
                lead AS (
                    -- the leads of each contact of the clients, by index (OFFSET
                    -- 0: a lookup per contact, not a scan of all leads)
                    SELECT p.commercial_partner_id AS partner_id, %(lead_print)s
                      FROM res_partner p
                      JOIN LATERAL (
                          SELECT l.* FROM crm_lead l
                           WHERE l.partner_id = p.id
                             AND (l.company_id IN (%(companies)s)
                                  OR l.company_id IS NULL)
                          OFFSET 0
                      ) l ON TRUE
                     WHERE p.commercial_partner_id = ANY(%(partners)s)
                     GROUP BY p.commercial_partner_id
                ),
                later AS (
                    -- the reconciliations dated after today of the lines of
                    -- the clients and their contacts, by the module's index
                    -- of reconciliations by date (few are dated later)
                    SELECT p.commercial_partner_id AS partner_id,
                           min(r.max_date) AS next_date
                      FROM account_partial_reconcile r
                      JOIN account_move_line l
                        ON l.id = r.debit_move_id OR l.id = r.credit_move_id
                      JOIN res_partner p ON p.id = l.partner_id
                     WHERE r.max_date > %(today)s
                       AND l.company_id IN (%(companies)s)
                       AND p.commercial_partner_id = ANY(%(partners)s)
                     GROUP BY p.commercial_partner_id
                )
                SELECT p.id,
                       concat_ws(':', hashtext(p::text), doc.n, doc.h, line.n, line.h,
                                 lead.n, lead.h),
                       least(doc.next_date, line.next_date, later.next_date),
                       later.partner_id IS NOT NULL,
                       c.facts_key, c.recheck_date, c.partner_id IS NOT NULL,
                       coalesce(doc.n, 0), coalesce(line.n, 0), coalesce(lead.n, 0)
                  FROM res_partner p
                  LEFT JOIN doc ON doc.partner_id = p.id
                  LEFT JOIN line ON line.partner_id = p.id
                  LEFT JOIN lead ON lead.partner_id = p.id
                  LEFT JOIN later ON later.partner_id = p.id
                  LEFT JOIN LATERAL (
                      SELECT c.partner_id, c.facts_key, c.recheck_date
                        FROM crm_lifecycle_client c
                       WHERE c.partner_id = p.id AND c.company_id = %(company)s
                      OFFSET 0
                  ) c ON TRUE
                 WHERE p.id = ANY(%(partners)s)
                   AND %(visible)s
                """,
                move_print=fingerprint(
                    "m",
                    (
                        "move_type",
                        "invoice_date",
                        "payment_state",
                        "amount_untaxed_signed",
                        "amount_total_signed",
                        "amount_residual_signed",
                        "reversed_entry_id",
                    ),
                ),
                line_print=fingerprint(
                    "l", ("balance", "amount_residual", "date", "date_maturity")
                ),
                lead_print=fingerprint(
                    "l",
                    (
                        "type",
                        "active",
                        "stage_id",
                        "probability",
                        "expected_revenue",
                        "create_date",
                        "date_closed",
                    ),
                ),
                partners=id_array(partner_ids),
                companies=companies,
                accounts=context["receivable_accounts"],
                today=today,
                company=company.id,
                visible=visible_in(SQL("p.company_id"), company.id),
            )
        )
        facts = {}
        for row in self.env.cr.fetchall():
            (
                partner_id,
                fingerprint_text,
                next_date,
                settled_later,
                stored_key,
                recheck_date,
                stored,
                documents,
                lines,
                leads,
            ) = row
            key = hashlib.md5(
                f"{context['key']}|{fingerprint_text}".encode(), usedforsecurity=False
            ).hexdigest()
            facts[partner_id] = {
                "key": key,
                "next_date": next_date,
                "settled_later": settled_later,
                "stored_key": stored_key,
                "recheck_date": recheck_date,
                "stored": stored,
                "documents": documents,
                "lines": lines,
                "leads": leads,
            }
        return facts

    def _has_hash_record(self):
        """Whether the server hashes a row as it is (``hash_record``,
        PostgreSQL 14 and later; Odoo runs on earlier ones too)."""
        self.env.cr.execute(
            SQL("SELECT current_setting('server_version_num')::int >= 140000")
        )
        return self.env.cr.fetchone()[0]

    def _context_key(self, context):
        """A fingerprint of what the results of every client of the company
        depend on besides its own facts: settings, stages and their rules,
        and (``crm_lifecycle_engine_value``) levels, segments and the
        company's figures of the day. A change of any of them computes every
        client again."""
        return hashlib.md5(
            json.dumps(
                {**context["fingerprint"], "settings": context["settings"]},
                sort_keys=True,
                default=str,
            ).encode(),
            usedforsecurity=False,
        ).hexdigest()

    def _company_context(self, company, today):
        """What every batch of a run needs about ``company``, read once: its
        stages and their rule domains."""
        stages = self.env["crm.lifecycle.stage"].search(
            [("company_id", "in", [False, company.id])],
            order="priority desc, sequence",
        )
        Client = self.env["crm.lifecycle.client"]
        return {
            "stages": stages,
            # read once per run, not once per batch (the ORM's cache is
            # emptied between batches): the company's name in the notes, the
            # converter of the client rows with its currency's decimals, the
            # names of stages and levels in the notes (``_note_names``)
            "company_name": company.name,
            "client_converter": Client._column_converter(
                Client._state_columns(), company.currency_id
            ),
            "note_names": {},
            # whether ``today`` is the current day (not a past date)
            "current": today >= fields.Date.context_today(self.with_company(company)),
            # read once, not per client: (stage, id, code, built-in?) in
            # evaluation order
            "stage_rules": [
                (stage, stage.id, stage.code, stage.code in BUILTIN_CODES)
                for stage in stages
            ],
            # {stage id: (code, customer stage?)}, read once, not per client
            "stage_kinds": {
                stage.id: (stage.code, stage.is_customer_stage) for stage in stages
            },
            "settings": {
                "loyal_min_purchases": company.lifecycle_loyal_min_purchases,
                "loyal_min_months": company.lifecycle_loyal_min_months,
                "loyal_max_overdue_days": company.lifecycle_loyal_max_overdue_days,
                "at_risk_factor": company.lifecycle_at_risk_factor,
                "dormant_factor": company.lifecycle_dormant_factor,
                "lost_days": company.lifecycle_lost_days,
                "unlock_on": company.lifecycle_unlock_on,
                "default_interval_days": company.lifecycle_default_interval_days,
            },
            "rule_domains": self._rule_domains(stages),
            # literal ids: Odoo's index of open lines by account and partner
            # serves them, not a subquery
            "receivable_accounts": self._receivable_accounts(),
            # the errors kept on the stages: written only when they change
            "rule_errors": {stage.id: stage.rule_error or False for stage in stages},
            # what ``_context_key`` hashes; extended with the values
            "fingerprint": {
                "stages": [
                    (
                        stage.id,
                        stage.code,
                        stage.is_customer_stage,
                        stage.rule_domain,
                    )
                    for stage in stages
                ],
            },
        }

    def _receivable_accounts(self):
        """The ids of the receivable accounts of every company."""
        return (
            self.env["account.account"]
            .sudo()
            .with_context(active_test=False)
            .search([("account_type", "=", "asset_receivable")], order="id")
            .ids
        )

    def _rule_domains(self, stages):
        """{stage id: domain} of the ``stages`` with a rule; None for a rule
        that cannot be read (the stage is skipped, see ``_rule_matches``)."""
        domains = {}
        for stage in stages:
            try:
                domain = stage._get_rule_domain()
            except Exception as error:  # noqa: BLE001 - kept on the stage
                domains[stage.id] = error
                continue
            if domain:
                domains[stage.id] = domain
        return domains

    def _rule_matches(self, stage, domain, partners, company, context):
        """The ids of ``partners`` whose client row in ``company`` matches the
        rule ``domain`` of ``stage``. A rule that fails (in its own savepoint)
        matches nobody: the stage is skipped for the batch, every client is
        still computed with the other stages, and the error is kept on the
        stage for managers until the rule evaluates again."""
        Client = self.env["crm.lifecycle.client"]
        error = domain if isinstance(domain, Exception) else None
        matches = set()
        if error is None:
            try:
                with self.env.cr.savepoint():
                    matches = set(
                        Client.search_fetch(
                            [
                                *domain,
                                ("company_id", "=", company.id),
                                ("partner_id", "in", partners.ids),
                            ],
                            ["partner_id"],
                        ).partner_id.ids
                    )
            except CONCURRENCY_ERRORS:
                raise
            except Exception as failure:  # noqa: BLE001 - kept on the stage
                self.env.invalidate_all()
                error = failure
        message = f"{type(error).__name__}: {error}" if error else False
        if error:
            _logger.info(
                "Lifecycle: stage %s skipped in company %s, its rule failed: %s",
                stage.id,
                company.id,
                message,
            )
        if context["rule_errors"].get(stage.id, False) != message:
            stage.write({"rule_error": message})
            context["rule_errors"][stage.id] = message
        return matches

    def _after_results(self, partners, company, results, changes, context):
        """Log what changed, once the results are written."""
        self._log_changes(changes, company, results, context)

    def _value_results(self, partner, values, stage, context, today):
        """Values of the client row for ``partner`` whose new stage is
        ``stage``; extended by the loyalty, RFM and value computations."""
        return {}

    def _metrics(self, partners, company, today, context, facts=None):
        """Return {partner_id: {metric: value}} for ``partners`` in ``company``.
        With their ``facts`` (``_facts``, today), each query reads only the
        clients that have what it reads."""
        ids = partners.ids
        metrics = {pid: self._empty_metrics() for pid in ids}
        # today: the clients with a reconciliation dated later (``_facts``);
        # without facts every reconciliation is read
        settled_later = (
            None
            if facts is None
            else {pid for pid in ids if facts[pid]["settled_later"]}
        )

        def having(count):
            if facts is None:
                return ids
            return [
                pid
                for pid in ids
                if facts[pid][count] or (count == "lines" and pid in settled_later)
            ]

        rows = []
        documents, lines, leads = having("documents"), having("lines"), having("leads")
        if documents:
            rows += self._query_invoices(
                documents, company, today, context.get("windows", ())
            )
        if lines:
            # today (``_facts`` read the later reconciliations of the batch):
            # the lines Odoo marks reconciled need no reading
            rows += self._query_receivables(
                lines,
                company,
                today,
                settled_later,
                context.get("receivable_accounts"),
            )
        if leads:
            # today (``_company_context``): the leads as they are, without
            # reading the day again
            rows += self._query_leads(
                leads, company, None if context.get("current") else today
            )
        for row in rows:
            metrics[row["partner_id"]].update(row)
        for values in metrics.values():
            values.pop("partner_id", None)
            values["windows"] = values.pop("windows", None) or {}
            interval = values["purchase_interval_days"]
            if values["purchase_count"] < 3 or not interval:
                interval = context["settings"]["default_interval_days"]
            values["reference_interval"] = interval
            if values["last_purchase_date"]:
                values["expected_next_purchase_date"] = values[
                    "last_purchase_date"
                ] + timedelta(days=round(interval))
        return metrics

    def _empty_metrics(self):
        return dict(EMPTY_METRICS)

    def _fetch(self, query):
        self.env.cr.execute(query)
        columns = [column.name for column in self.env.cr.description]
        return [dict(zip(columns, row, strict=True)) for row in self.env.cr.fetchall()]

    def _as_of(self, company, as_of=None):
        """The date the engine computes ``company`` at: ``as_of``, else today
        (in the user's timezone, as ``context_today``)."""
        return as_of or fields.Date.context_today(self.with_company(company))

    def _as_of_end(self, as_of):
        """The UTC datetime at which the day ``as_of`` ends (in the user's
        timezone, as ``context_today`` counts days): what was created, won or
        lost before it existed as of that date."""
        tz_name = self.env.context.get("tz") or self.env.user.tz or "UTC"
        try:
            tz = pytz.timezone(tz_name)
        except pytz.UnknownTimeZoneError:
            tz = pytz.utc
        end = tz.localize(
            datetime.combine(as_of + timedelta(days=1), datetime.min.time())
        )
        return end.astimezone(pytz.utc).replace(tzinfo=None)

    def _past_end(self, company, as_of):
        """The end of the past day ``as_of`` (``_as_of_end``), or None when
        ``as_of`` is today (or later, or not given): today the engine reads
        leads and history as they are."""
        if not as_of or as_of >= fields.Date.context_today(self.with_company(company)):
            return None
        return self._as_of_end(as_of)

    def _documents(self, company, partner_ids=None, as_of=None):
        """SQL of the posted customer invoices and credit notes of ``company``
        that count as of the date ``as_of`` (default today; of ``partner_ids``
        when given). The same SQL serves today and any past date, so that the
        state of a client as of a past month end is what the engine computed
        on that day:

        - a document counts when dated on or before ``as_of``;
        - what is paid of it is the sum of the reconciliations of its
          receivable lines dated (``max_date``: the later of the payment and
          the invoice) on or before ``as_of``, in company currency;
        - an invoice and the credit note that fully reversed it (payment state
          'reversed', reconciled with each other by ``as_of``) are both left
          out.

        Columns: id, partner_id, move_type, invoice_date, payment_state,
        is_purchase (a customer invoice partly or fully paid as of the date:
        the one definition of a paid purchase), untaxed (company currency,
        negative for credit notes), paid (untaxed pro rata of what is paid as
        of the date) and paid_date (the last reconciliation of an invoice
        fully paid as of the date, else NULL)."""
        as_of = self._as_of(company, as_of)
        companies = self._company_tree(company)
        if partner_ids is not None:
            partner_filter = SQL(
                "AND m.commercial_partner_id = ANY(%s)", id_array(partner_ids)
            )
            # a batch: the reconciliations of each of its documents, by index
            settled = SQL(
                """
                LEFT JOIN LATERAL (
                    SELECT sum(r.amount) AS amount, max(r.max_date) AS last_date
                      FROM account_move_line l
                      CROSS JOIN LATERAL (%(sides)s) r
                     WHERE l.move_id = m.id
                       AND l.display_type = 'payment_term'
                ) s ON TRUE
                """,
                sides=self._reconciliation_sides(
                    as_of, SQL("l.id"), SQL("m.amount_total_signed")
                ),
            )
        else:
            partner_filter = SQL()
            # the whole company: every reconciliation once from each of its
            # sides, joined to the payment term lines in one pass (a hash
            # join, not a lookup per document), grouped by document. The
            # lines' company is their document's, filtered below: the ids
            # of the lines come from the module's index alone
            settled = SQL(
                """
                LEFT JOIN (
                    SELECT l.move_id, sum(side.amount) AS amount,
                           max(side.max_date) AS last_date
                      FROM (%(sides)s) side
                      JOIN account_move_line l ON l.id = side.line_id
                     WHERE l.display_type = 'payment_term'
                     GROUP BY l.move_id
                ) s ON s.move_id = m.id
                """,
                sides=self._reconciliation_sides(as_of),
            )
        return SQL(
            """
            SELECT m.id, m.commercial_partner_id AS partner_id, m.move_type,
                   m.invoice_date, m.payment_state,
                   m.move_type = 'out_invoice'
                       AND (s.amount > 0 OR (m.amount_total_signed = 0
                                             AND m.payment_state IN %(paid)s))
                       AS is_purchase,
                   m.amount_untaxed_signed AS untaxed,
                   CASE WHEN s.amount IS NULL OR m.amount_total_signed = 0 THEN 0
                        ELSE m.amount_untaxed_signed * s.amount
                             / abs(m.amount_total_signed) END AS paid,
                   CASE WHEN s.amount >= abs(m.amount_total_signed)
                        THEN s.last_date END AS paid_date
              FROM account_move m
              %(settled)s
              LEFT JOIN account_move o ON o.id = m.reversed_entry_id
             WHERE m.company_id IN (%(companies)s)
               AND m.state = 'posted'
               AND m.move_type IN ('out_invoice', 'out_refund')
               AND m.invoice_date <= %(as_of)s
               %(partner_filter)s
               AND NOT (m.payment_state = 'reversed' AND s.amount IS NOT NULL)
               AND NOT (s.amount IS NOT NULL
                        AND o.payment_state IS NOT DISTINCT FROM 'reversed')
            """,
            paid=PAID_STATES,
            as_of=as_of,
            companies=companies,
            partner_filter=partner_filter,
            settled=settled,
        )

    def _reconciliation_sides(self, as_of, line=None, total=None):
        """SQL of the reconciliations dated on or before ``as_of``, once from
        each of their sides: (line_id, amount, max_date), the debit side and
        the credit side each by its own index; only those of the line
        ``line`` (an SQL expression) when given.

        ``total`` (an SQL expression: the signed total of the line's
        document), when given, leaves out the side the line cannot be on:
        a reconciliation debits the line whose balance is positive, and the
        receivable lines of a customer document have the sign of its total
        (Odoo posts no invoice with a negative total): an invoice's lines
        are looked up as debits only, a credit note's as credits only, both
        sides for a total of zero. Half the lookups of a batch's
        reconciliations found nothing: the other side."""
        return SQL(" UNION ALL ").join(
            SQL(
                "SELECT %(side)s AS line_id, r.amount, r.max_date"
                " FROM account_partial_reconcile r"
                " WHERE r.max_date <= %(as_of)s %(of_line)s %(signed)s",
                side=SQL.identifier("r", side),
                as_of=as_of,
                of_line=SQL("AND %s = %s", SQL.identifier("r", side), line)
                if line is not None
                else SQL(),
                signed=SQL(f"AND %s {operator} 0", total)
                if total is not None
                else SQL(),
            )
            for side, operator in (("debit_move_id", ">="), ("credit_move_id", "<="))
        )

    def _company_tree(self, company):
        """SQL of the ids of ``company`` and its branches: their documents count
        in the company's figures, as Odoo counts them for credit. The tree is
        read by the query, not from the company's record: a batch reads no
        record of the company's (the engine empties the ORM's cache between
        batches)."""
        return SQL(
            "SELECT c.id FROM res_company c JOIN res_company root"
            " ON c.parent_path LIKE root.parent_path || %s WHERE root.id = %s",
            "%",
            company.id,
        )

    def _query_invoices(self, partner_ids, company, today, windows=()):
        """Purchases, revenue, payment delays and purchase interval of each
        partner as of ``today``, and the same over each window of
        ``windows`` (months back from today): {months: {revenue, purchases,
        last_date, first_date}} under ``windows``, for the windows in which
        the partner has a document. One query: the documents are read once.
        Amounts are untaxed, in company currency, pro rata of what is paid;
        refunds count negative."""
        window_columns = []
        for months in windows:
            within = SQL(
                "d.invoice_date > %s::date - make_interval(months => %s)",
                today,
                months,
            )
            window_columns += [
                SQL(
                    f"{aggregate} AS %s",
                    within,
                    SQL.identifier(f"w{months}_{name}"),
                )
                for name, aggregate in WINDOW_AGGREGATES.items()
            ]
        rows = self._fetch(
            SQL(
                """
                WITH doc AS (%(documents)s),
                purchase AS (
                    SELECT * FROM doc WHERE is_purchase
                ),
                gaps AS (
                    SELECT partner_id,
                           invoice_date - lag(invoice_date) OVER (
                               PARTITION BY partner_id ORDER BY invoice_date
                           ) AS gap
                      FROM (SELECT DISTINCT partner_id, invoice_date FROM purchase) d
                ),
                intervals AS (
                    SELECT partner_id,
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS interval
                      FROM gaps
                     WHERE gap IS NOT NULL
                     GROUP BY partner_id
                )
                SELECT d.partner_id,
                       count(*) FILTER (WHERE d.is_purchase) AS purchase_count,
                       min(d.invoice_date) FILTER (WHERE d.is_purchase)
                           AS first_purchase_date,
                       max(d.invoice_date) FILTER (WHERE d.is_purchase)
                           AS last_purchase_date,
                       coalesce(sum(d.paid), 0) AS paid_revenue,
                       coalesce(sum(d.paid) FILTER (
                           WHERE d.invoice_date > %(year_ago)s), 0)
                           AS paid_revenue_12m,
                       min(d.invoice_date) FILTER (
                           WHERE d.invoice_date > %(year_ago)s) AS first_date_12m,
                       coalesce(sum(d.untaxed), 0) AS invoiced_revenue,
                       coalesce(avg(d.paid_date - d.invoice_date) FILTER (
                           WHERE d.is_purchase), 0) AS avg_days_to_pay,
                       min(i.interval) AS purchase_interval_days
                       %(window_columns)s
                  FROM doc d
                  LEFT JOIN intervals i ON i.partner_id = d.partner_id
                 GROUP BY d.partner_id
                """,
                documents=self._documents(company, partner_ids, today),
                year_ago=today - relativedelta(months=12),
                window_columns=SQL("").join(
                    SQL(", %s", column) for column in window_columns
                ),
            )
        )
        # the column names of each window, made once, not once per row
        window_names = [
            (months, [(name, f"w{months}_{name}") for name in WINDOW_AGGREGATES])
            for months in windows
        ]
        for row in rows:
            row["windows"] = {}
            for months, names in window_names:
                window = {name: row.pop(column) for name, column in names}
                if window.pop("count"):
                    row["windows"][months] = window
        return rows

    def _query_receivables(
        self, partner_ids, company, today, settled_later=None, accounts=None
    ):
        """Open and overdue receivable as of ``today``: the receivable lines
        of each client and of its contacts (by the line's partner, whatever
        the partner of its journal entry: Odoo gives a line the commercial
        entity of the entry's partner unless a person chose another) dated
        on or before ``today``, less their reconciliations dated on or before
        it (company currency). ``accounts``: the receivable accounts' ids
        (``_receivable_accounts``, read when not given).

        ``settled_later`` (the clients with a reconciliation dated after
        ``today``, ``_facts``), when given, says that ``today`` is
        the current day: a line Odoo marks reconciled of another client has
        all its reconciliations dated on or before today, so nothing of it is
        open today, and it is left out without being read: the open lines
        come from Odoo's index of unreconciled lines per account and partner
        (most receivable lines are reconciled)."""
        if accounts is None:
            accounts = self._receivable_accounts()

        def lines(condition):
            # the receivable lines of the contact ``p`` meeting ``condition``
            # by index (a lookup per contact, not a scan of every line)
            return SQL(
                """
                SELECT l.id, l.balance, l.amount_residual, l.date,
                       l.date_maturity, l.company_id
                  FROM account_move_line l
                 WHERE l.partner_id = p.id
                   AND l.account_id = ANY(%s)
                   AND l.parent_state = 'posted'
                   AND %s
                """,
                accounts,
                condition,
            )

        # what is left of a line as of ``today``: its balance less its
        # reconciliations dated on or before it
        as_of_residual = SQL(
            """
            l.balance
            - coalesce((SELECT sum(r.amount)
                          FROM account_partial_reconcile r
                         WHERE r.debit_move_id = l.id
                           AND r.max_date <= %(today)s), 0)
            + coalesce((SELECT sum(r.amount)
                          FROM account_partial_reconcile r
                         WHERE r.credit_move_id = l.id
                           AND r.max_date <= %(today)s), 0)
            """,
            today=today,
        )
        if settled_later is None:
            source = lines(SQL("TRUE"))
            residual = as_of_residual
        else:
            # the clients of the batch settled later, one array for both uses
            later = SQL(
                "p.commercial_partner_id = ANY(%s)", id_array(sorted(settled_later))
            )
            source = SQL(
                "%s UNION ALL %s",
                lines(
                    SQL(
                        "(l.reconciled IS NULL OR l.reconciled = false"
                        " OR l.reconciled IS NOT true)"
                    )
                ),
                lines(SQL("l.reconciled AND %s", later)),
            )
            # today, a client without a reconciliation dated later has all
            # the reconciliations of its lines dated on or before today: what
            # is left of a line is Odoo's residual (the same sum), not
            # summed again from its reconciliations (two lookups per line)
            residual = SQL(
                "CASE WHEN %s THEN %s ELSE l.amount_residual END",
                later,
                as_of_residual,
            )
        return self._fetch(
            SQL(
                """
                -- materialized: the residual of each line is computed once,
                -- not once per aggregate that reads it
                WITH line AS MATERIALIZED (
                    SELECT p.commercial_partner_id AS partner_id, l.date_maturity,
                           %(residual)s AS residual
                      FROM res_partner p
                      JOIN LATERAL (%(source)s) l ON TRUE
                     WHERE p.commercial_partner_id = ANY(%(partners)s)
                       AND l.company_id IN (%(companies)s)
                       AND l.date <= %(today)s
                )
                SELECT partner_id,
                       sum(residual) AS receivable_open,
                       coalesce(sum(residual) FILTER (
                           WHERE date_maturity < %(today)s), 0) AS receivable_overdue,
                       coalesce(max(%(today)s - date_maturity) FILTER (
                           WHERE date_maturity < %(today)s
                             AND residual > 0), 0) AS max_days_overdue,
                       min(date_maturity) FILTER (
                           WHERE date_maturity >= %(today)s
                             AND residual != 0) AS next_maturity
                  FROM line
                 GROUP BY partner_id
                """,
                companies=self._company_tree(company),
                partners=id_array(partner_ids),
                today=today,
                source=source,
                residual=residual,
            )
        )

    def _query_leads(self, partner_ids, company, today=None):
        """Leads and opportunities as of ``today`` (default today), as far as
        Odoo keeps their past: created before the day ended, won (a won stage)
        or lost (archived at probability 0) when closed before it; a lead
        closed later was open then. Type, probability and expected revenue
        are today's."""
        # Leads without a company belong to every company.
        end = self._past_end(company, today)
        if end is None:
            # today: the leads as they are
            closed, created = SQL("TRUE"), SQL("TRUE")
        else:
            closed = SQL("coalesce(l.date_closed, l.write_date) < %s", end)
            created = SQL("l.create_date < %s", end)
        return self._fetch(
            SQL(
                """
                WITH lead AS (
                    SELECT p.commercial_partner_id AS partner_id, l.type,
                           l.create_date,
                           l.probability, l.expected_revenue,
                           l.active OR NOT %(closed)s AS active,
                           coalesce(s.is_won, false) AND %(closed)s AS is_won
                      FROM res_partner p
                      -- the leads of each contact by index (OFFSET 0: not a
                      -- scan of all leads)
                      JOIN LATERAL (
                          SELECT * FROM crm_lead l
                           WHERE l.partner_id = p.id
                             AND (l.company_id IN (%(companies)s)
                                  OR l.company_id IS NULL)
                          OFFSET 0
                      ) l ON TRUE
                      LEFT JOIN crm_stage s ON s.id = l.stage_id
                     WHERE p.commercial_partner_id = ANY(%(partners)s)
                       AND %(created)s
                )
                SELECT partner_id,
                       count(*) AS lead_count,
                       min(create_date) AS first_lead_date,
                       count(*) FILTER (WHERE type = 'opportunity' AND active
                                          AND NOT is_won) AS open_opportunity_count,
                       coalesce(sum(expected_revenue * probability / 100.0) FILTER (
                           WHERE type = 'opportunity' AND active AND NOT is_won), 0)
                           AS pipeline_expected_revenue,
                       count(*) FILTER (WHERE is_won) AS won_opportunity_count,
                       count(*) FILTER (WHERE NOT active AND probability = 0)
                           AS lost_opportunity_count
                  FROM lead
                 GROUP BY partner_id
                """,
                companies=self._company_tree(company),
                partners=id_array(partner_ids),
                closed=closed,
                created=created,
            )
        )

    # ------------------------------------------------------------------
    # As of a date
    # ------------------------------------------------------------------
    def _compute_as_of(self, partners, company, as_of, run=None, states=None):
        """The state of commercial ``partners`` in ``company`` as of the date
        ``as_of``, computed with the same queries as today's but restricted to
        what existed then (``_documents``, ``_query_receivables``,
        ``_query_leads``, the history), without writing anything: no client
        row, history or note. ``states`` ({partner id: state}) are the states
        before that date (the previous month end's results: the loyalty level
        and its grace period go on from them). A stage set by hand applies
        from the day it was set: the stage is the manual one when the latest
        stage change on or before the date was made by hand
        (``_manual_stages``). Returns {partner id: row} as the client rows
        would be, ``stage_id`` included; partners restricted to another
        company are left out."""
        if not partners:
            return {}
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM res_partner WHERE id = ANY(%s) AND %s ORDER BY id",
                id_array(partners.ids),
                visible_in(SQL("company_id"), company.id),
            )
        )
        partners = (
            self.env["res.partner"]
            .with_company(company)
            .with_context(active_test=False)
            .browse([row[0] for row in self.env.cr.fetchall()])
        )
        if not partners:
            return {}
        self._without_jit()
        run = {} if run is None else run
        key = (company.id, as_of)
        if key not in run:
            run[key] = self._company_context(company, as_of)
        context = run[key]
        stages = context["stages"]
        metrics = self._metrics(partners, company, as_of, context)
        manual = self._manual_stages(partners.ids, company, as_of)
        Client = self.env["crm.lifecycle.client"]
        empty = Client._empty_state()
        rows = {}
        for partner in partners:
            state = {**empty, **((states or {}).get(partner.id) or {})}
            values = metrics[partner.id]
            values["state"] = state
            values["settings"] = context["settings"]
            values["stage_rules"] = context["stage_rules"]
            values["stage_kinds"] = context["stage_kinds"]
            rows[partner.id] = {
                **state,
                **{name: values[name] for name in METRIC_FIELDS},
            }
        domain_matches = self._domain_matches_as_of(partners, company, rows, context)
        for partner in partners:
            values = metrics[partner.id]
            result = rows[partner.id]
            if partner.id in manual:
                stage = stages.browse(manual[partner.id])
            else:
                stage = self._evaluate_stage(
                    partner,
                    values,
                    context["stage_rules"],
                    domain_matches,
                    company,
                    as_of,
                ) or stages.browse(values["state"]["stage_id"])
            result.update(self._value_results(partner, values, stage, context, as_of))
            result.pop("loyalty_change", None)
            result["stage_id"] = stage.id
            result["stage_locked"] = partner.id in manual
        return rows

    def _manual_stages(self, partner_ids, company, as_of):
        """{partner id: stage id} of the clients whose latest stage change on
        or before ``as_of`` (all of them when it is today) was made by hand:
        the stage a person set, locked then. One query."""
        self.env["crm.lifecycle.history"].flush_model()
        end = self._past_end(company, as_of)
        self.env.cr.execute(
            SQL(
                """
                SELECT DISTINCT ON (partner_id) partner_id, reason, stage_to_id
                  FROM crm_lifecycle_history
                 WHERE company_id = %(company)s
                   AND partner_id = ANY(%(partners)s)
                   AND reason != 'loyalty'
                   AND stage_to_id IS NOT NULL
                   %(written)s
                 ORDER BY partner_id, date DESC, id DESC
                """,
                company=company.id,
                partners=id_array(partner_ids),
                written=SQL("AND date < %s", end) if end else SQL(),
            )
        )
        return {
            partner_id: stage_id
            for partner_id, reason, stage_id in self.env.cr.fetchall()
            if reason == "manual"
        }

    def _domain_matches_as_of(self, partners, company, rows, context):
        """{stage id: partner ids} of the stage rules with a domain for the
        as-of ``rows``: the domains are searched on the client rows, so the
        rows are written in a savepoint that is rolled back, and nothing
        stays."""
        if not context["rule_domains"]:
            return {}
        Client = self.env["crm.lifecycle.client"]
        matches = {}
        savepoint = self.env.cr.savepoint()
        try:
            Client._write_states(company, rows)
            for stage_id, domain in context["rule_domains"].items():
                matches[stage_id] = set(
                    Client.search_fetch(
                        [
                            *domain,
                            ("company_id", "=", company.id),
                            ("partner_id", "in", partners.ids),
                        ],
                        ["partner_id"],
                    ).partner_id.ids
                )
        finally:
            # nothing written stays
            savepoint.close(rollback=True)
        Client.invalidate_model()
        self.env["res.partner"].invalidate_model()
        return matches

    # ------------------------------------------------------------------
    # Stages
    # ------------------------------------------------------------------
    def _builtin_condition(self, code, values, company, today):
        """Whether the built-in rule of stage ``code`` holds for ``values``
        (the thresholds of the company's Settings are in
        ``values["settings"]``)."""
        settings = values["settings"]
        purchases = values["purchase_count"]
        days_since = (
            (today - values["last_purchase_date"]).days
            if values["last_purchase_date"]
            else 0
        )
        interval = values["reference_interval"]
        if code == "target":
            return True
        if code == "prospect":
            return values["lead_count"] > 0
        if code == "opportunity":
            # an open deal, or a won one not paid yet (a paid purchase makes
            # the client a customer, a stage of higher priority)
            return (
                values["open_opportunity_count"] > 0
                or values["won_opportunity_count"] > 0
            )
        if code == "new_customer":
            return purchases >= 1
        if code == "repeat_customer":
            return purchases >= 2
        if code == "loyal":
            return (
                purchases >= settings["loyal_min_purchases"]
                and self._tenure_months(values, today) >= settings["loyal_min_months"]
                and values["max_days_overdue"] <= settings["loyal_max_overdue_days"]
            )
        if code == "at_risk":
            return purchases >= 1 and days_since > settings["at_risk_factor"] * interval
        if code == "dormant":
            return purchases >= 1 and days_since > settings["dormant_factor"] * interval
        if code == "lost":
            if purchases:
                return days_since > settings["lost_days"]
            lost = values["lost_opportunity_count"]
            return bool(lost) and lost == values["lead_count"]
        return False

    def _tenure_months(self, values, today):
        """Whole months since the client's first paid purchase (0 without);
        kept in ``values`` for the other rules of the client."""
        key = ("tenure_months", today)
        if key not in values:
            values[key] = self._count_tenure_months(values, today)
        return values[key]

    def _count_tenure_months(self, values, today):
        first = values["first_purchase_date"]
        if not first:
            return 0
        months = (today.year - first.year) * 12 + today.month - first.month
        if months <= 0:
            tenure = relativedelta(today, first)
            return tenure.years * 12 + tenure.months
        # as relativedelta counts: the same day of the month (or the month's
        # last day) must be reached
        if first.day <= today.day:
            return months
        first_day = day_in_month(today.year, today.month, first.day)
        return months - 1 if first_day > today.day else months

    def _evaluate_stage(
        self, partner, values, stage_rules, domain_matches, company, today
    ):
        """The first stage of ``stage_rules`` ((stage, id, code, built-in?)
        in evaluation order) whose condition holds."""
        for stage, stage_id, code, builtin in stage_rules:
            has_domain = stage_id in domain_matches
            if not builtin and not has_domain:
                continue  # set by hand only
            if has_domain and partner.id not in domain_matches[stage_id]:
                continue
            if builtin and not self._builtin_condition(code, values, company, today):
                continue
            return stage
        return self.env["crm.lifecycle.stage"]

    def _write_results(self, partners, company, metrics, states, context, today):
        """Decide the stage and values of each client from ``metrics`` and its
        current state (``states``), and write the client rows where something
        changed, set-based. Stage rules with a domain are evaluated in SQL over
        the client rows once their metrics are written. Returns the results by
        partner id and the stage changes."""
        Client = self.env["crm.lifecycle.client"]
        stages = context["stages"]
        empty = Client._empty_state()
        rows = {}
        for partner_id in partners.ids:
            state = states.get(partner_id, empty)
            values = metrics[partner_id]
            values["state"] = state
            values["settings"] = context["settings"]
            values["stage_rules"] = context["stage_rules"]
            values["stage_kinds"] = context["stage_kinds"]
            rows[partner_id] = {
                **state,
                **{name: values[name] for name in METRIC_FIELDS},
            }
        domain_matches = {}
        if context["rule_domains"]:
            # the rules read the new metrics: write them first
            Client._write_states(
                company, rows, states, converter=context["client_converter"]
            )
            for stage_id, domain in context["rule_domains"].items():
                domain_matches[stage_id] = self._rule_matches(
                    stages.browse(stage_id), domain, partners, company, context
                )
        now = fields.Datetime.now()
        changes = []
        kinds = context["stage_kinds"]
        for partner in partners:
            partner_id = partner.id
            values = metrics[partner_id]
            state = values["state"]
            result = rows[partner_id]
            current = stages.browse(state["stage_id"])
            stage, reason = self._new_stage(
                partner, values, result, stages, domain_matches, company, today
            )
            result.update(self._value_results(partner, values, stage, context, today))
            result["facts_key"] = values["facts"]["key"]
            result["recheck_date"] = min(
                (
                    day
                    for day in self._recheck_dates(values, result, context, today)
                    if day and day > today
                ),
                default=None,
            )
            stage_id = stage.id
            if stage_id == current.id:
                continue
            if (
                self._stage_kind(kinds, current)[0] in CHURN_CODES
                and self._stage_kind(kinds, stage)[1]
            ):
                reason = "reactivation"
            result["stage_id"] = stage_id
            result["stage_date"] = (
                now if current else self._first_stage_date(values, stage, now, today)
            )
            changes.append((partner, current, stage, reason, state["stage_date"]))
        Client._write_states(
            company, rows, states, converter=context["client_converter"]
        )
        return rows, changes

    def _recheck_dates(self, values, result, context, today):
        """Days on which time alone may change the client's row of
        ``result`` (computed from ``values`` ``today``): the days after which
        the next computation would differ though no fact changed. Dates not
        after ``today`` are ignored; earlier than needed costs a computation,
        later would leave the row wrong: extended by the values."""
        settings = values["settings"]
        dates = [values["facts"]["next_date"]]
        if context["rule_domains"]:
            # a rule of a person's may read anything (days in stage...)
            dates.append(today + timedelta(days=1))
        last = values["last_purchase_date"]
        if values["purchase_count"] and last:
            interval = values["reference_interval"]
            for days in (
                settings["at_risk_factor"] * interval,
                settings["dormant_factor"] * interval,
                settings["lost_days"],
            ):
                # "more than n days since": the day after the n-th
                dates.append(last + timedelta(days=math.floor(days) + 1))
        first = values["first_purchase_date"]
        if first:
            # the next month of tenure: the same day (or the month's last)
            months = self._tenure_months(values, today) + 1
            year, month = divmod(first.month - 1 + months, 12)
            year, month = first.year + year, month + 1
            dates.append(date(year, month, day_in_month(year, month, first.day)))
        if values["max_days_overdue"] > 0:
            # the oldest overdue grows every day
            dates.append(today + timedelta(days=1))
        if values.get("next_maturity"):
            dates.append(values["next_maturity"] + timedelta(days=1))
        if values.get("first_date_12m"):
            dates.append(self._window_end(values["first_date_12m"], 12))
        return dates

    def _window_end(self, day, months):
        """The first day on which a document dated ``day`` is no longer in a
        window of the last ``months`` months (dated after today minus
        ``months`` months, as PostgreSQL and relativedelta subtract months:
        the same day of the month, or the month's last one)."""
        year, month = divmod(day.month - 1 + months, 12)
        year, month = day.year + year, month + 1
        if day_in_month(year, month, day.day) == day.day:
            return date(year, month, day.day)
        # the 31st, months later, in a shorter month: the window moves past
        # it on the first of the month after
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return date(year, month, 1)

    def _first_stage_date(self, values, stage, now, today):
        """Since when a client that had no stage is in ``stage``, its first
        computed one: the date its facts put it there (first paid purchase
        for a customer stage, last purchase plus the threshold for at risk,
        dormant and lost, first lead for prospect and opportunity (and lost
        without purchase); now otherwise, and never later than now."""
        settings = values["settings"]
        last = values["last_purchase_date"]
        interval = values["reference_interval"]
        code, is_customer = self._stage_kind(values["stage_kinds"], stage)
        day = None
        if code in ("at_risk", "dormant", "lost") and last:
            days = {
                "at_risk": settings["at_risk_factor"] * interval,
                "dormant": settings["dormant_factor"] * interval,
                "lost": settings["lost_days"],
            }[code]
            day = last + timedelta(days=int(days) + 1)
        elif is_customer and values["first_purchase_date"]:
            day = values["first_purchase_date"]
        elif code in ("prospect", "opportunity", "lost"):
            first_lead = values.get("first_lead_date")
            return min(first_lead, now) if first_lead else now
        if day is None or day >= today:
            return now
        return datetime.combine(day, datetime.min.time())

    def _stage_kind(self, kinds, stage):
        """(code, customer stage?) of ``stage``: from ``kinds`` (the run's
        stages, read once: ``_company_context``), else read (a stage the run
        does not have, such as an archived one a lock keeps); (False, False)
        without a stage."""
        if not stage:
            return False, False
        return kinds.get(stage.id) or (stage.code, stage.is_customer_stage)

    def _new_stage(
        self, partner, values, result, stages, domain_matches, company, today
    ):
        """The stage ``partner`` should have now, with the reason: its current
        stage while locked, until the event of Settings unlocks it."""
        state = values["state"]
        current = stages.browse(state["stage_id"])
        reason = "rule"
        if state["stage_locked"]:
            if not (
                values["settings"]["unlock_on"] == "purchase"
                and values["purchase_count"] > state["lock_purchase_count"]
            ):
                return current, reason
            result["stage_locked"] = False
            reason = "event"
        stage = self._evaluate_stage(
            partner,
            values,
            values["stage_rules"],
            domain_matches,
            company,
            today,
        )
        return stage or current, reason

    def _log_changes(self, changes, company, results, context):
        """History rows and one chatter note per client for everything that
        changed in the batch: one INSERT of history rows, one of notes. Each
        note is written in its client's language (``_client_languages``): the
        cron has no reader to translate for, and the client's language is the
        one its salespeople use with it. The notes' author, subtype and
        reply-to are read once per run (``context``)."""
        languages = self._client_languages(
            self.env["res.partner"].browse(list(results)), company
        )
        by_language = {}
        for partner_id, lang in languages.items():
            by_language.setdefault(lang, set()).add(partner_id)
        history, notes = [], {}
        for lang, partner_ids in by_language.items():
            lang_history, lang_notes = self.with_context(lang=lang)._change_logs(
                [change for change in changes if change[0].id in partner_ids],
                company,
                {
                    partner_id: row
                    for partner_id, row in results.items()
                    if partner_id in partner_ids
                },
                context,
            )
            history += lang_history
            notes.update(lang_notes)
        if history:
            self._insert_rows("crm.lifecycle.history", history)
        if notes:
            if "note_header" not in context:
                context["note_header"] = self._note_header()
            # the lines are HTML, escaped by ``_change_logs``
            self._log_notes(
                {
                    partner_id: Markup("<br/>".join(lines))
                    for partner_id, lines in notes.items()
                },
                context["note_header"],
            )

    def _insert_rows(self, model_name, rows, shared=None):
        """Insert ``rows`` (dicts of stored fields; None, or no key, is
        empty: False is a boolean's) into the table of ``model_name`` in one
        statement, as the engine (superuser) at the transaction's time; the
        model's cache is invalidated. ``shared``: the values of stored fields
        every row has, sent once for the statement, not once per row."""
        Model = self.env[model_name]
        names = sorted({name for row in rows for name in row})
        shared = shared or {}
        now = self.env.cr.now()
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO %(table)s (%(columns)s,
                                       create_uid, create_date, write_uid, write_date)
                SELECT %(values)s, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM %(rows)s
                """,
                table=SQL.identifier(Model._table),
                columns=SQL(", ").join(
                    SQL.identifier(name) for name in (*names, *shared)
                ),
                values=SQL(", ").join(
                    [
                        *(SQL.identifier("v", name) for name in names),
                        *(
                            SQL(
                                "%s::%s",
                                value,
                                SQL(Model._fields[name].column_type[1]),
                            )
                            for name, value in shared.items()
                        ),
                    ]
                ),
                uid=self.env.uid,
                now=now,
                rows=json_rows(Model, names, rows),
            )
        )
        Model.invalidate_model()

    def _note_header(self):
        """The values every note of the engine shares, as
        ``_message_log_batch`` gives them: the current user as author, the
        note subtype, the reply-to address."""
        author_id, email_from = series.message_author(self.env["res.partner"])
        return {
            "author_id": author_id or None,
            "email_from": email_from or None,
            "subtype_id": self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
            "reply_to": series.note_reply_to(self.env, email_from, author_id),
        }

    def _log_notes(self, bodies, header=None):
        """One internal note per client of ``bodies`` ({partner id: Markup}),
        as ``_message_log_batch`` writes them (author, subtype, no
        notification; ``header``: ``_note_header``, read when not given), in
        one INSERT. The notes share one message id of Odoo's, each made
        unique by its position in the batch: one random draw and one host
        name for the batch, not for each note."""
        Partner = self.env["res.partner"]
        header = header or self._note_header()
        # "<random.time-openerp-message-notify@host>"
        message_id = generate_tracking_message_id("message-notify")[1:]
        self._insert_rows(
            "mail.message",
            [
                {
                    "res_id": partner_id,
                    "body": str(body),
                    "message_id": f"<{index}.{message_id}",
                }
                for index, (partner_id, body) in enumerate(bodies.items())
            ],
            {
                "model": Partner._name,
                **header,
                "message_type": "notification",
                "is_internal": True,
                "date": self.env.cr.now(),
            },
        )
        Partner.invalidate_model(["message_ids"])

    def _client_languages(self, partners, company):
        """{partner id: language code} of the texts written for the clients
        ``partners``: the client's language, else the company's, else
        en_US. Reads the languages of the whole batch at once."""
        # one column, not the prefetch of every field of the partners
        self.env["res.partner"].flush_model(["lang"])
        self.env.cr.execute(
            SQL(
                "SELECT id, lang FROM res_partner WHERE id = ANY(%s)",
                id_array(partners.ids),
            )
        )
        default = None
        languages = {}
        for partner_id, lang in self.env.cr.fetchall():
            if not lang:
                if default is None:
                    default = company.partner_id.lang or "en_US"
                lang = default
            languages[partner_id] = lang
        return languages

    def _change_logs(self, changes, company, results, context):
        """History values and chatter lines ({partner id: [line]}: HTML, every
        value escaped) of the stage changes, in the language of the engine's
        context (stage names too); extended by the loyalty levels. ``context``:
        the run's (``_company_context``)."""
        now = fields.Datetime.now()
        # the note's HTML: the line translated and escaped, as the names,
        # once for the batch, filled in for each change
        reasons = {
            reason: str(escape(label))
            for reason, label in self.env["crm.lifecycle.history"]
            ._fields["reason"]
            ._description_selection(self.env)
        }
        line = str(
            escape(
                self.env._(
                    "Lifecycle stage (%(company)s): %(old)s → %(new)s (%(reason)s)"
                )
            )
        )
        company_id, company_name = company.id, str(escape(context["company_name"]))
        names = self._note_names(
            "crm.lifecycle.stage",
            [stage.id for change in changes for stage in change[1:3]],
            context,
        )
        history = []
        notes = {}
        for partner, old, new, reason, since in changes:
            old_id, new_id = old.id, new.id
            history.append(
                {
                    "partner_id": partner.id,
                    "company_id": company_id,
                    "stage_from_id": old_id or None,
                    "stage_to_id": new_id or None,
                    "reason": reason,
                    "date": now,
                    "days_in_previous_stage": (now - since).total_seconds() / 86400
                    if since and old_id
                    else 0.0,
                }
            )
            notes.setdefault(partner.id, []).append(
                line
                % {
                    "company": company_name,
                    "old": names[old_id],
                    "new": names[new_id],
                    "reason": reasons[reason],
                }
            )
        return history, notes

    def _note_names(self, model_name, ids, context):
        """{id: name} of the records ``ids`` of ``model_name`` (stages or
        levels; False, no record: "none") in the language of the engine's
        context, escaped for a note's HTML, read at once: once per run and
        language (kept in the run's ``context``), not once per change."""
        lang = self.env.lang
        names = context["note_names"].get((model_name, lang))
        if names is None:
            names = context["note_names"][model_name, lang] = {
                False: str(escape(self.env._("none")))
            }
        missing = set(ids) - set(names)
        for record in self.env[model_name].browse(missing):
            names[record.id] = str(escape(record.name or names[False]))
        return names

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    @api.model
    def _client_domain(self):
        """Clients: commercial entities that are not a company of this database
        nor the partner of a user, internal or portal, active or archived:
        people who log in are colleagues and partners' contacts, not clients
        (a client company whose contacts have portal access stays a client).
        A search domain: its subquery is not for ``filtered_domain``."""
        company_partners = self.env["res.company"].sudo().search([]).partner_id
        users = self.env["res.users"].sudo().with_context(active_test=False)._search([])
        return [
            ("parent_id", "=", False),
            ("id", "not in", company_partners.ids),
            ("id", "not in", users.subselect("partner_id")),
        ]

    def _without_jit(self):
        """Switch PostgreSQL's JIT compilation off for the rest of the
        transaction. The engine runs many mid-sized queries whose estimated
        cost passes ``jit_above_cost``: compiling them took longer than
        running them (40 ms to 0.7 s of compilation for queries of 0.2 to
        1 s, on the data set of bench/scale.py)."""
        self.env.cr.execute(SQL("SET LOCAL jit = off"))

    @api.model
    def _clients_among(self, partners):
        """The clients (``_client_domain``) among ``partners``, archived ones
        included, in one query."""
        return (
            self.env["res.partner"]
            .sudo()
            .with_context(active_test=False)
            .search([("id", "in", partners.ids), *self._client_domain()], order="id")
            .with_env(partners.env)
        )

    @api.model
    def _batch_size(self):
        value = (
            self.env["ir.config_parameter"].sudo().get_param("crm_lifecycle.batch_size")
        )
        try:
            return max(1, int(value or DEFAULT_BATCH_SIZE))
        except ValueError:
            return DEFAULT_BATCH_SIZE
