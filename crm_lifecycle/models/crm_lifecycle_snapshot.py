# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import calendar
import logging
from datetime import timedelta
from itertools import pairwise

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.tools import SQL, create_index, split_every

from .. import series
from .crm_lifecycle_client import id_array, json_columns, visible_in
from .crm_lifecycle_engine import METRIC_FIELDS

_logger = logging.getLogger(__name__)

# Columns of a client row (crm.lifecycle.client) a snapshot is made of.
CLIENT_COLUMNS = (
    "stage_id",
    "loyalty_level_id",
    "rfm_segment_id",
    "purchase_count",
    "first_purchase_date",
    "paid_revenue",
    "receivable_open",
    "clv",
    "potential_value",
    "pipeline_expected_revenue",
)
# Periods the reports compare a month end with: (code, months between the
# start and the end, offset of the report rows' ids).
PERIODS = (("month", 1, 0), ("year", 12, 1))
PERIOD_SELECTION = [("month", "Month"), ("year", "Year (12 months)")]
# Columns of a snapshot that repeat the client's snapshots at the start of
# the periods the reports compare (``_period_values``).
PERIOD_COLUMNS = (
    "revenue_12m",
    "month_start_stage_id",
    "month_start_purchases",
    "month_start_capital",
    "month_start_revenue",
    "year_start_stage_id",
    "year_start_purchases",
    "year_start_capital",
    "year_start_revenue",
)
# "Rebuild history" rebuilds a company with at most this many clients at once,
# larger ones in the background.
INLINE_REBUILD_CLIENTS = 200


def month_end(day):
    """The last day of the month of ``day``."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def period_start(day, months):
    """The month end ``months`` month ends before the month end ``day``."""
    return day.replace(day=1) - relativedelta(months=months - 1) - timedelta(days=1)


@series.sql_constraints(
    (
        "date_partner_company_uniq",
        "unique(date, partner_id, company_id)",
        "A client has one snapshot per company and month end.",
    ),
)
class CrmLifecycleSnapshot(models.Model):
    """The state of a client in a company at a month end, for analytics.

    One row per client, company and month end, written only by the engine in
    SQL: at each month end from the client rows (``_take_month_end``), and for
    past months from accounting with the engine as of each month end
    ("Rebuild history" in Settings, ``_rebuild``).
    """

    _name = "crm.lifecycle.snapshot"
    _description = "Client Lifecycle Snapshot"
    _order = "date desc, company_id, partner_id"
    _rec_name = "partner_id"

    date = fields.Date(required=True, readonly=True, help="A month end.")
    partner_id = fields.Many2one(
        "res.partner",
        string="Client",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, ondelete="cascade"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Lifecycle Stage",
        readonly=True,
        ondelete="set null",
    )
    loyalty_level_id = fields.Many2one(
        "crm.loyalty.level", string="Loyalty Level", readonly=True, ondelete="set null"
    )
    rfm_segment_id = fields.Many2one(
        "crm.rfm.segment", string="RFM Segment", readonly=True, ondelete="set null"
    )
    user_id = fields.Many2one(
        "res.users", string="Salesperson", readonly=True, ondelete="set null"
    )
    team_id = fields.Many2one(
        "crm.team", string="Sales Team", readonly=True, ondelete="set null"
    )
    industry_id = fields.Many2one(
        "res.partner.industry", readonly=True, ondelete="set null"
    )
    country_id = fields.Many2one("res.country", readonly=True, ondelete="set null")
    state_id = fields.Many2one(
        "res.country.state", string="Region", readonly=True, ondelete="set null"
    )
    purchase_count = fields.Integer(string="Paid Purchases", readonly=True)
    first_purchase_date = fields.Date(
        string="First Purchase",
        readonly=True,
        help="Invoice date of the first paid purchase: the client's cohort.",
    )
    paid_revenue = fields.Monetary(
        readonly=True, help="Paid revenue to date, untaxed, net of refunds."
    )
    revenue = fields.Monetary(
        string="Revenue of the month",
        readonly=True,
        help="Untaxed revenue invoiced in the month, net of credit notes.",
    )
    receivable_open = fields.Monetary(string="Open Receivable", readonly=True)
    clv = fields.Monetary(string="Client Lifetime Value", readonly=True)
    customer_capital = fields.Monetary(
        readonly=True,
        help="The client's share of the customer capital: its lifetime value "
        "when in a customer stage, plus its weighted pipeline and its potential "
        "value.",
    )

    # What the reports compare a month end with, written with the row
    # (``_upsert``) and kept up to date when an earlier month end is
    # rewritten (``_refresh_periods``): the client's snapshot at the previous
    # month end (``month_start_*``) and 12 month ends before
    # (``year_start_*``), empty when it had none then, and its cohort.
    revenue_12m = fields.Monetary(
        string="Revenue of 12 months",
        readonly=True,
        help="Revenue of the 12 months ending at this month end.",
    )
    month_start_stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Stage a month before",
        readonly=True,
        ondelete="set null",
    )
    month_start_purchases = fields.Integer(
        string="Paid purchases a month before", readonly=True
    )
    month_start_capital = fields.Monetary(
        string="Capital a month before", readonly=True
    )
    month_start_revenue = fields.Monetary(
        string="Revenue a month before",
        readonly=True,
        help="Revenue of the month before this one.",
    )
    year_start_stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Stage 12 months before",
        readonly=True,
        ondelete="set null",
    )
    year_start_purchases = fields.Integer(
        string="Paid purchases 12 months before", readonly=True
    )
    year_start_capital = fields.Monetary(
        string="Capital 12 months before", readonly=True
    )
    year_start_revenue = fields.Monetary(
        string="Revenue 12 months before",
        readonly=True,
        help="Revenue of the 12 months before the last 12.",
    )
    cohort_date = fields.Date(
        string="Cohort",
        readonly=True,
        help="Month of the first paid purchase, as the client's last snapshot "
        "knows it.",
    )
    is_cohort_start = fields.Boolean(
        string="First month end in the cohort",
        readonly=True,
        help="The client's first snapshot from its cohort's month on.",
    )

    def init(self):
        create_index(
            self.env.cr,
            "crm_lifecycle_snapshot_company_date_index",
            self._table,
            ["company_id", "date"],
        )
        # a client's earlier month ends, read for every row written (the
        # periods, the cohort start): by client first, whatever PostgreSQL's
        # statistics say while a rebuild fills the table
        create_index(
            self.env.cr,
            "crm_lifecycle_snapshot_client_date_index",
            self._table,
            ["partner_id", "company_id", "date"],
        )
        create_index(
            self.env.cr,
            "crm_lifecycle_snapshot_cohort_start_index",
            self._table,
            ["company_id", "cohort_date"],
            where="is_cohort_start",
        )
        # rows written before the columns of the periods existed: filled once
        self.env.cr.execute(
            SQL(
                "SELECT DISTINCT company_id FROM crm_lifecycle_snapshot"
                " WHERE revenue_12m IS NULL"
            )
        )
        for (company_id,) in self.env.cr.fetchall():
            self._refresh_periods(self.env["res.company"].browse(company_id))

    # ------------------------------------------------------------------
    # Scheduled actions
    # ------------------------------------------------------------------
    @api.model
    def _cron_take_month_end(self):
        """Daily: the month ends of each company (``_take_month_ends``),
        committed company by company. They write the company's row (the
        figures of the day, kept or forgotten), as the queue's workers do:
        after a serialization failure a company's month ends are rolled back
        and done again in a new transaction, not left to fail the scheduled
        action."""
        engine = self.env["crm.lifecycle.engine"]
        for company in self.env["res.company"].sudo().search([]):
            engine._commit_retrying(
                lambda company=company: self._take_month_ends(company),
                "month-end snapshot",
            )

    @api.model
    def _take_month_ends(self, company):
        """On a month end, the snapshot of that day; a previous month end
        without snapshot (the server was down) is computed as of then."""
        today = fields.Date.context_today(self.with_company(company))
        if today == month_end(today):
            self._take_month_end(company, today)
        previous = today.replace(day=1) - timedelta(days=1)
        if not self.sudo().search_count(
            [("company_id", "=", company.id), ("date", "=", previous)], limit=1
        ):
            self._rebuild_dates(company, [previous])

    @api.model
    def _cron_rebuild(self):
        self._rebuild(auto_commit=True)

    # ------------------------------------------------------------------
    # Engine
    # ------------------------------------------------------------------
    @api.model
    def _inline_rebuild_limit(self):
        return INLINE_REBUILD_CLIENTS

    @api.model
    def _month_ends(self, company, months):
        """The last ``months`` month ends before today, oldest first."""
        first = fields.Date.context_today(self.with_company(company)).replace(day=1)
        return [
            first - relativedelta(months=back) - timedelta(days=1)
            for back in range(months - 1, -1, -1)
        ]

    @api.model
    def _clients(self, company):
        """Ids of the clients of ``company`` (``_client_domain``, visible in
        the company)."""
        engine = self.env["crm.lifecycle.engine"]
        partners = (
            self.env["res.partner"]
            .sudo()
            .with_context(active_test=False)
            .search(
                [
                    *engine._client_domain(),
                    ("company_id", "in", [False, company.id]),
                ],
                order="id",
            )
        )
        return partners.ids

    @api.model
    def _take_month_end(self, company, date):
        """Snapshot of every client of ``company`` dated ``date`` (today, a
        month end): the client rows computed up to date are copied in one
        statement; clients waiting in the queue, or never computed, are
        computed as of ``date`` with the engine. Returns the number of rows."""
        self = self.sudo()
        self.env.flush_all()
        clients = self._clients(company)
        self.env.cr.execute(
            SQL(
                """
                SELECT c.partner_id FROM crm_lifecycle_client c
                 WHERE c.company_id = %(company)s
                   AND c.partner_id = ANY(%(clients)s)
                   AND NOT EXISTS (
                       SELECT 1 FROM crm_lifecycle_queue q
                        WHERE q.company_id = c.company_id
                          AND q.partner_id = c.partner_id)
                """,
                company=company.id,
                clients=id_array(clients),
            )
        )
        current = [row[0] for row in self.env.cr.fetchall()]
        source = SQL(
            "(SELECT partner_id, %s FROM crm_lifecycle_client"
            " WHERE company_id = %s AND partner_id = ANY(%s)) v",
            SQL(", ").join(SQL.identifier(name) for name in CLIENT_COLUMNS),
            company.id,
            id_array(current),
        )
        count = self._upsert(company, date, source, None)
        others = sorted(set(clients) - set(current))
        run = {}
        for batch in split_every(
            self.env["crm.lifecycle.engine"]._batch_size(), others
        ):
            count += self._upsert_as_of(company, date, batch, run)
        self._refresh_periods(company, [date])
        return count

    @api.model
    def _rebuild(self, companies=None, auto_commit=False):
        """Rebuild the snapshots of the companies that asked for it ("Rebuild
        history" in Settings; ``companies`` when given) over their last
        ``lifecycle_snapshot_months`` month ends, from accounting, by batches
        of clients; with ``auto_commit`` (the cron) each batch is committed
        and the progress reported. Idempotent: rows are replaced."""
        self = self.sudo()
        if companies is None:
            companies = (
                self.env["res.company"]
                .sudo()
                .search([("lifecycle_snapshot_rebuild", "=", True)])
            )
        for company in companies:
            dates = self._month_ends(company, company.lifecycle_snapshot_months)
            self._rebuild_dates(company, dates, auto_commit=auto_commit, requested=True)

    @api.model
    def _rebuild_dates(self, company, dates, auto_commit=False, requested=False):
        """Snapshots of ``company`` at ``dates`` (oldest first) computed with
        the engine as of each date, by batches of clients: every client of a
        month end before the next one, whose conversion rates read them
        (``_conversion_rates``); what a client carries from one month end to
        the next (its stage, loyalty level and grace) is kept for all.
        ``requested``: the rebuild Settings asked for, marked done with its
        end (``_end_rebuild``)."""
        clients = self._clients(company)
        engine = self.env["crm.lifecycle.engine"]
        run = {}
        states = {}
        done = 0
        batches = list(split_every(engine._batch_size(), clients))
        for date in dates:
            self._analyze()
            for batch in batches:
                self._upsert_as_of(company, date, batch, run, states)
                done += len(batch)
                if auto_commit:
                    # progress shown; a failure loses one batch of work
                    series.commit_progress(
                        self.env, len(batch), done, len(clients) * len(dates) - done
                    )
                self.env.invalidate_all()
        if auto_commit:
            # the end writes the company's row, as the queue's workers do
            # (the figures of the day): committed, or done again after a
            # serialization failure, not left to fail the scheduled action
            engine._commit_retrying(
                lambda: self._end_rebuild(company, dates, requested),
                "end of a history rebuild",
            )
        else:
            self._end_rebuild(company, dates, requested)
        _logger.info(
            "Lifecycle: %s clients of company %s rebuilt over %s month ends",
            len(clients),
            company.id,
            len(dates),
        )

    @api.model
    def _end_rebuild(self, company, dates, requested):
        """The end of a rebuild of ``company`` at ``dates``: the month ends'
        totals, the company's figures of the day forgotten (its conversion
        rates read the snapshots) and, for a rebuild asked for
        (``requested``), its mark removed."""
        self._refresh_periods(company, dates)
        self.env["crm.lifecycle.engine"]._forget_figures(company)
        if requested:
            self.env.cr.execute(
                SQL(
                    "UPDATE res_company SET lifecycle_snapshot_rebuild = false"
                    " WHERE id = %s",
                    company.id,
                ),
                # a worker that wrote the company's row meanwhile fails the
                # end, done again (``_commit_retrying``): not an error to log
                log_exceptions=False,
            )
            company.invalidate_recordset(["lifecycle_snapshot_rebuild"])

    @api.model
    def _analyze(self):
        """Refresh PostgreSQL's statistics of the snapshots. Each month end
        of a rebuild reads, client by client, the snapshots written for the
        month ends before it (``_period_values``): planned on the statistics
        of a table that was empty or much smaller, each lookup scans all the
        company's snapshots of the dates instead of the client's (12 s
        instead of 0.1 s per batch of 1,000 clients at 50,000 clients).
        Autovacuum analyzes on its own schedule, not between two month ends
        of a run, and not at all where it is off."""
        self.flush_model()
        self.env.cr.execute(SQL("ANALYZE crm_lifecycle_snapshot"))

    @api.model
    def _upsert_as_of(self, company, date, partner_ids, run, states=None):
        """Compute ``partner_ids`` of ``company`` as of ``date`` and write
        their snapshot rows; ``states`` ({partner id: state}) is updated with
        the results. Partners that did not exist yet on that date (created
        later and without a document dated by then) are left out."""
        engine = self.env["crm.lifecycle.engine"]
        end = engine._as_of_end(date)
        self.env.cr.execute(
            SQL(
                """
                SELECT p.id FROM res_partner p
                 WHERE p.id = ANY(%(partners)s)
                   AND %(visible)s
                   AND (p.create_date < %(end)s OR EXISTS (
                       SELECT 1 FROM account_move m
                        WHERE m.commercial_partner_id = p.id
                          AND m.company_id IN (%(companies)s)
                          AND m.state = 'posted'
                          AND m.move_type IN ('out_invoice', 'out_refund')
                          AND m.invoice_date <= %(date)s))
                 ORDER BY p.id
                """,
                partners=id_array(partner_ids),
                visible=visible_in(SQL("p.company_id"), company.id),
                end=end,
                companies=engine._company_tree(company),
                date=date,
            )
        )
        existing = [row[0] for row in self.env.cr.fetchall()]
        if not existing:
            return 0
        results = engine._compute_as_of(
            self.env["res.partner"].browse(existing), company, date, run, states
        )
        if states is not None:
            # what the next month end goes on from, as the client row would
            # (the metrics are computed again): kept for every client
            carried = [
                name
                for name in self.env["crm.lifecycle.client"]._state_columns()
                if name not in METRIC_FIELDS
            ]
            states.update(
                {
                    partner_id: {name: row.get(name) for name in carried}
                    for partner_id, row in results.items()
                }
            )
        Client = self.env["crm.lifecycle.client"]
        convert, digits = Client._column_converter(
            list(CLIENT_COLUMNS), company.currency_id
        )
        source = json_columns(
            Client,
            {"partner_id": list(results), **convert(results.values())},
            keys=[("partner_id", "int4")],
            digits=digits,
        )
        return self._upsert(company, date, source, list(results))

    @api.model
    def _upsert(self, company, date, source, partner_ids):
        """Insert or replace the snapshot rows of ``company`` at ``date`` from
        ``source`` (SQL of rows aliased ``v`` with ``partner_id`` and
        ``CLIENT_COLUMNS``), with the client's attributes (salesperson, team,
        industry, country, region), the untaxed revenue invoiced in the month
        (``_documents`` as of ``date``: the same definition as the engine's)
        and its customer capital, in one statement. Returns the number of
        rows."""
        engine = self.env["crm.lifecycle.engine"]
        now = self.env.cr.now()
        columns = (
            "stage_id",
            "loyalty_level_id",
            "rfm_segment_id",
            "user_id",
            "team_id",
            "industry_id",
            "country_id",
            "state_id",
            "purchase_count",
            "first_purchase_date",
            "paid_revenue",
            "revenue",
            "receivable_open",
            "clv",
            "customer_capital",
            *PERIOD_COLUMNS,
            "cohort_date",
            "is_cohort_start",
        )
        joins, values = self._period_values(
            company, date, SQL("v.partner_id"), SQL("coalesce(month.revenue, 0)")
        )
        self.env.cr.execute(
            SQL(
                """
                WITH doc AS (%(documents)s),
                month AS (
                    SELECT partner_id, sum(untaxed) AS revenue
                      FROM doc
                     WHERE invoice_date >= %(month_start)s
                     GROUP BY partner_id
                )
                INSERT INTO crm_lifecycle_snapshot AS snap
                       (date, partner_id, company_id, %(columns)s,
                        create_uid, create_date, write_uid, write_date)
                SELECT %(date)s, v.partner_id, %(company)s,
                       v.stage_id, v.loyalty_level_id, v.rfm_segment_id,
                       p.user_id, u.sale_team_id, p.industry_id, p.country_id,
                       p.state_id,
                       coalesce(v.purchase_count, 0),
                       v.first_purchase_date,
                       coalesce(v.paid_revenue, 0),
                       coalesce(month.revenue, 0),
                       coalesce(v.receivable_open, 0),
                       coalesce(v.clv, 0),
                       CASE WHEN s.is_customer_stage THEN coalesce(v.clv, 0)
                            ELSE 0 END
                       + coalesce(v.pipeline_expected_revenue, 0)
                       + coalesce(v.potential_value, 0),
                       %(values)s,
                       date_trunc('month', v.first_purchase_date)::date,
                       -- the first month end from the cohort's month on
                       -- (when this one is the client's last: else see
                       -- _refresh_cohorts)
                       date_trunc('month', v.first_purchase_date) <= %(date)s
                       AND NOT EXISTS (
                           SELECT 1 FROM crm_lifecycle_snapshot x
                            WHERE x.company_id = %(company)s
                              AND x.partner_id = v.partner_id
                              AND x.date < %(date)s
                              AND x.date >= date_trunc(
                                  'month', v.first_purchase_date)),
                       %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM %(source)s
                  JOIN res_partner p ON p.id = v.partner_id
                  LEFT JOIN res_users u ON u.id = p.user_id
                  LEFT JOIN crm_lifecycle_stage s ON s.id = v.stage_id
                  LEFT JOIN month ON month.partner_id = v.partner_id
                  %(joins)s
                ON CONFLICT (date, partner_id, company_id) DO UPDATE
                   SET %(assignments)s,
                       write_uid = EXCLUDED.write_uid,
                       write_date = EXCLUDED.write_date
                """,
                documents=engine._documents(company, partner_ids, date),
                month_start=date.replace(day=1),
                columns=SQL(", ").join(SQL.identifier(name) for name in columns),
                date=date,
                company=company.id,
                uid=self.env.uid,
                now=now,
                source=source,
                values=SQL(", ").join(values[name] for name in PERIOD_COLUMNS),
                joins=joins,
                assignments=SQL(", ").join(
                    SQL("%s = EXCLUDED.%s", SQL.identifier(name), SQL.identifier(name))
                    for name in columns
                ),
            )
        )
        count = self.env.cr.rowcount
        self.invalidate_model()
        return count

    @api.model
    def _period_values(self, company, date, partner, revenue):
        """The joins and the values of ``PERIOD_COLUMNS`` ({column: SQL}) of
        the snapshot of ``partner`` (an SQL expression) in ``company`` at
        ``date`` whose revenue of the month is ``revenue``, from the client's
        snapshots before: at the previous month end (``ms``), 12 month ends
        before (``ys``), and its revenue of the 11 months before."""
        month_start = period_start(date, 1)
        year_start = period_start(date, 12)
        joins = SQL(
            """
            LEFT JOIN crm_lifecycle_snapshot ms
              ON ms.company_id = %(company)s AND ms.partner_id = %(partner)s
             AND ms.date = %(month_start)s
            LEFT JOIN crm_lifecycle_snapshot ys
              ON ys.company_id = %(company)s AND ys.partner_id = %(partner)s
             AND ys.date = %(year_start)s
            LEFT JOIN LATERAL (
                SELECT sum(x.revenue) AS revenue
                  FROM crm_lifecycle_snapshot x
                 WHERE x.partner_id = %(partner)s
                   AND x.company_id = %(company)s
                   AND x.date > %(year_start)s AND x.date < %(date)s
            ) before ON TRUE
            """,
            company=company.id,
            partner=partner,
            month_start=month_start,
            year_start=year_start,
            date=date,
        )
        values = {
            "revenue_12m": SQL("%s + coalesce(before.revenue, 0)", revenue),
            "month_start_stage_id": SQL("ms.stage_id"),
            "month_start_purchases": SQL("ms.purchase_count"),
            "month_start_capital": SQL("ms.customer_capital"),
            "month_start_revenue": SQL("ms.revenue"),
            "year_start_stage_id": SQL("ys.stage_id"),
            "year_start_purchases": SQL("ys.purchase_count"),
            "year_start_capital": SQL("ys.customer_capital"),
            "year_start_revenue": SQL("ys.revenue_12m"),
        }
        return joins, values

    @api.model
    def _refresh_periods(self, company, dates=None):
        """After the snapshots of ``company`` at ``dates`` (oldest first; all
        when None) were written: the columns that repeat a previous month end
        (``PERIOD_COLUMNS``) of the later snapshots that read them and were
        not rewritten after them, month end by month end, oldest first; then
        the totals of the month ends written or refreshed
        (``_refresh_totals``) and the cohorts of the company
        (``_refresh_cohorts``)."""
        self.env.cr.execute(
            SQL(
                "SELECT DISTINCT date FROM crm_lifecycle_snapshot"
                " WHERE company_id = %s ORDER BY date",
                company.id,
            )
        )
        existing = [row[0] for row in self.env.cr.fetchall()]
        if dates is None:
            stale = existing
        else:
            # a snapshot reads the 23 month ends before it (the revenue of
            # the 12 months before the last 12); consecutive month ends
            # written oldest first read each other as they are written
            first, last = min(dates), max(dates)
            consecutive = all(
                period_start(later, 1) == earlier for earlier, later in pairwise(dates)
            )
            stale = [
                day
                for day in existing
                if first < day <= month_end(last + relativedelta(months=23))
                and (day > last or not consecutive)
            ]
        for day in stale:
            joins, values = self._period_values(
                company, day, SQL("s.partner_id"), SQL("s.revenue")
            )
            self.env.cr.execute(
                SQL(
                    """
                    UPDATE crm_lifecycle_snapshot t
                       SET %(assignments)s
                      FROM (SELECT s.id, %(values)s
                              FROM crm_lifecycle_snapshot s
                              %(joins)s
                             WHERE s.company_id = %(company)s
                               AND s.date = %(date)s) n
                     WHERE t.id = n.id AND (%(changed)s)
                    """,
                    assignments=SQL(", ").join(
                        SQL("%s = n.%s", SQL.identifier(name), SQL.identifier(name))
                        for name in PERIOD_COLUMNS
                    ),
                    values=SQL(", ").join(
                        SQL("%s AS %s", values[name], SQL.identifier(name))
                        for name in PERIOD_COLUMNS
                    ),
                    joins=joins,
                    company=company.id,
                    date=day,
                    changed=SQL(" OR ").join(
                        SQL(
                            "t.%s IS DISTINCT FROM n.%s",
                            SQL.identifier(name),
                            SQL.identifier(name),
                        )
                        for name in PERIOD_COLUMNS
                    ),
                )
            )
        self._refresh_totals(company, None if dates is None else {*dates, *stale})
        self._refresh_cohorts(company)
        self.invalidate_model()

    @api.model
    def _refresh_totals(self, company, dates=None):
        """The totals of the snapshots of ``company`` at ``dates`` (all when
        None; crm.lifecycle.snapshot.total) written again from the
        snapshots: per period, month end and stage at the start, the
        snapshots whose client had paid purchases at the start and their
        revenue before."""
        at_dates = SQL("TRUE") if dates is None else SQL("date = ANY(%s)", list(dates))
        self.env.cr.execute(
            SQL(
                "DELETE FROM crm_lifecycle_snapshot_total WHERE company_id = %s AND %s",
                company.id,
                at_dates,
            )
        )
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO crm_lifecycle_snapshot_total
                       (company_id, date, period, stage_id, customer_count,
                        start_revenue)
                %s
                """,
                SQL(" UNION ALL ").join(
                    SQL(
                        """
                        SELECT company_id, date, %(code)s, %(stage)s, count(*),
                               sum(coalesce(%(revenue)s, 0))
                          FROM crm_lifecycle_snapshot
                         WHERE company_id = %(company)s AND %(at_dates)s
                           AND %(purchases)s > 0
                         GROUP BY company_id, date, %(stage)s
                        """,
                        code=code,
                        stage=SQL.identifier(f"{code}_start_stage_id"),
                        revenue=SQL.identifier(f"{code}_start_revenue"),
                        purchases=SQL.identifier(f"{code}_start_purchases"),
                        company=company.id,
                        at_dates=at_dates,
                    )
                    for code, _months, _offset in PERIODS
                ),
            )
        )
        self.env["crm.lifecycle.snapshot.total"].invalidate_model()

    @api.model
    def _counted_companies(self, partner_ids):
        """The companies whose totals count snapshots of ``partner_ids``
        (paid purchases at the start of a period): the ones to count again
        when these snapshots are deleted with their partner or moved by a
        merge."""
        self.env.cr.execute(
            SQL(
                """
                SELECT DISTINCT company_id FROM crm_lifecycle_snapshot
                 WHERE partner_id = ANY(%s)
                   AND (month_start_purchases > 0 OR year_start_purchases > 0)
                """,
                list(partner_ids),
            )
        )
        return self.env["res.company"].browse(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _refresh_cohorts(self, company):
        """The cohort of every snapshot of ``company``: the month of the
        first paid purchase the client's last snapshot knows, and the
        client's first snapshot from that month on (what counts it in its
        cohort), where they changed."""
        self.env.cr.execute(
            SQL(
                """
                WITH latest AS (
                    SELECT DISTINCT ON (partner_id) partner_id,
                           date_trunc('month', first_purchase_date)::date AS cohort
                      FROM crm_lifecycle_snapshot
                     WHERE company_id = %(company)s
                     ORDER BY partner_id, date DESC
                ),
                first AS (
                    SELECT s.partner_id, min(s.date) AS date
                      FROM crm_lifecycle_snapshot s
                      JOIN latest l ON l.partner_id = s.partner_id
                     WHERE s.company_id = %(company)s AND s.date >= l.cohort
                     GROUP BY s.partner_id
                ),
                target AS (
                    SELECT s.id, l.cohort,
                           coalesce(s.date = f.date, FALSE) AS is_start
                      FROM crm_lifecycle_snapshot s
                      JOIN latest l ON l.partner_id = s.partner_id
                      LEFT JOIN first f ON f.partner_id = s.partner_id
                     WHERE s.company_id = %(company)s
                )
                UPDATE crm_lifecycle_snapshot t
                   SET cohort_date = target.cohort, is_cohort_start = target.is_start
                  FROM target
                 WHERE t.id = target.id
                   AND (t.cohort_date IS DISTINCT FROM target.cohort
                        OR t.is_cohort_start IS DISTINCT FROM target.is_start)
                """,
                company=company.id,
            )
        )
