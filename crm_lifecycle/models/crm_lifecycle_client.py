# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
from datetime import date, timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from .. import series

# res.partner field -> crm.lifecycle.client field: what contacts and their
# commercial entity show of the current company's client row (public API of
# res.partner, kept when the state moved to its own table).
PARTNER_FIELDS = {
    "lifecycle_stage_id": "stage_id",
    "lifecycle_stage_locked": "stage_locked",
    "lifecycle_stage_date": "stage_date",
    "lifecycle_stage_days": "stage_days",
    "lifecycle_lock_purchase_count": "lock_purchase_count",
    "lifecycle_computed_date": "write_date",
    "purchase_count": "purchase_count",
    "first_purchase_date": "first_purchase_date",
    "last_purchase_date": "last_purchase_date",
    "paid_revenue": "paid_revenue",
    "paid_revenue_12m": "paid_revenue_12m",
    "invoiced_revenue": "invoiced_revenue",
    "receivable_open": "receivable_open",
    "receivable_overdue": "receivable_overdue",
    "max_days_overdue": "max_days_overdue",
    "avg_days_to_pay": "avg_days_to_pay",
    "purchase_interval_days": "purchase_interval_days",
    "expected_next_purchase_date": "expected_next_purchase_date",
    "lead_count": "lead_count",
    "open_opportunity_count": "open_opportunity_count",
    "pipeline_expected_revenue": "pipeline_expected_revenue",
    "won_opportunity_count": "won_opportunity_count",
    "lost_opportunity_count": "lost_opportunity_count",
    "loyalty_level_id": "loyalty_level_id",
    "loyalty_level_since": "loyalty_level_since",
    "loyalty_below_since": "loyalty_below_since",
    "rfm_recency": "rfm_recency",
    "rfm_frequency": "rfm_frequency",
    "rfm_monetary": "rfm_monetary",
    "rfm_score": "rfm_score",
    "rfm_revenue": "rfm_revenue",
    "rfm_segment_id": "rfm_segment_id",
    "clv": "clv",
    "lifecycle_potential_value": "potential_value",
}


def visible_in(partner_company, company):
    """SQL condition: a partner whose company is ``partner_company`` is a
    client of ``company`` (both SQL expressions): it has no company, or
    that one."""
    return SQL("(%s IS NULL OR %s = %s)", partner_company, partner_company, company)


def id_array(ids):
    """SQL of the array of the integers ``ids``, sent as one literal that
    PostgreSQL parses: psycopg2 adapts a list as ``ARRAY[...]`` of one
    quoted value per element, 1.2 ms per 1,000 ids against 0.1 ms for the
    literal, and a batch's queries send their 1,000 ids about ten times."""
    return SQL("%s::int4[]", f"{{{','.join(map(str, ids))}}}")


def json_rows(model, names, rows, keys=()):
    """SQL of ``rows`` (dicts) as a row source aliased ``v`` with the columns
    ``keys`` ((name, SQL type) pairs) and ``names`` (stored fields of
    ``model``, typed as their columns): ``json_columns`` of their values."""
    return json_columns(
        model,
        {
            name: [row.get(name) for row in rows]
            for name in (*(name for name, _column_type in keys), *names)
        },
        keys,
    )


def json_array(column, places=None):
    """The JSON array of the values of ``column``; numbers rounded to
    ``places`` decimal places when given (``_column_converter``), written
    in fixed-point notation: the same numbers, in less than half the time
    the JSON encoder takes to find the shortest text of each float. Dates
    and datetimes (a column holds one kind of value: its first one tells)
    are written in ISO format by their own method, and empty values as
    ``null``, not by the encoder called for each value (``json.dumps`` of
    one ``None`` costs as much as writing ten dates). Without an empty
    value, each kind is written by one ``map`` of its method."""
    empty = None in column
    if places is not None:
        if empty:
            spec = f".{places}f"
            texts = [
                "null" if value is None else format(value, spec) for value in column
            ]
        else:
            texts = map(f"{{:.{places}f}}".format, column)
        return f"[{','.join(texts)}]"
    first = next((value for value in column if value is not None), None)
    if not isinstance(first, date):
        return json.dumps(column, default=str)
    if not empty and all(type(value) is type(first) for value in column):
        return '["' + '","'.join(map(type(first).isoformat, column)) + '"]'
    texts = [
        "null"
        if value is None
        else f'"{value.isoformat()}"'
        if isinstance(value, date)
        else json.dumps(value, default=str)
        for value in column
    ]
    return f"[{','.join(texts)}]"


def json_columns(model, values, keys=(), digits=None):
    """SQL of rows given column by column, ``values`` ({name: [value of each
    row]}), as a row source aliased ``v``: the names of ``keys`` ((name, SQL
    type) pairs) typed as given, the others stored fields of ``model`` typed
    as their columns. One parameter per column, whatever the number of rows:
    each column travels as a JSON array, the arrays zipped by ``ROWS FROM``
    (the names are not repeated in every row, and no ``jsonb`` tree is
    built: a third of the time of a batch's INSERT of client rows went to
    both). ``digits`` ({name: decimal places}, as ``_column_converter``
    gives them): the columns of numbers already rounded to that many places
    (``json_array``)."""
    digits = digits or {}
    types = dict(keys)
    columns = [
        (name, types.get(name) or model._fields[name].column_type[1]) for name in values
    ]
    return SQL(
        "(SELECT %s FROM ROWS FROM (%s) AS j(%s)) AS v",
        SQL(", ").join(
            SQL(
                "j.%s::%s AS %s",
                SQL.identifier(name),
                SQL(column_type),
                SQL.identifier(name),
            )
            for name, column_type in columns
        ),
        SQL(", ").join(
            SQL(
                "json_array_elements_text(%s::json)",
                json_array(column, digits.get(name)),
            )
            for name, column in values.items()
        ),
        SQL(", ").join(SQL.identifier(name) for name in values),
    )


@series.sql_constraints(
    (
        "partner_company_uniq",
        "unique(partner_id, company_id)",
        "A client has one lifecycle state per company.",
    ),
)
class CrmLifecycleClient(models.Model):
    """The lifecycle state of a client (a commercial partner) in a company.

    One row per commercial partner and company, written only by the engine
    (set-based, only where something changed) and by the manual stage change,
    which locks the stage. ``res.partner`` shows the current company's row.
    """

    _name = "crm.lifecycle.client"
    _description = "Client Lifecycle State"
    _order = "company_id, partner_id"
    _rec_name = "partner_id"

    partner_id = fields.Many2one(
        "res.partner", string="Client", required=True, ondelete="cascade"
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, ondelete="cascade"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    # Stage
    stage_id = fields.Many2one(
        "crm.lifecycle.stage", string="Lifecycle Stage", index=True, ondelete="restrict"
    )
    stage_locked = fields.Boolean(string="Stage set by hand")
    stage_date = fields.Datetime(string="In stage since")
    stage_days = fields.Integer(
        string="Days in stage",
        compute="_compute_stage_days",
        search="_search_stage_days",
    )
    lock_purchase_count = fields.Integer(
        help="Paid purchases when the stage was set by hand: a new purchase "
        "unlocks it when Settings say so."
    )
    # Metrics, in the company currency, net of refunds
    purchase_count = fields.Integer(string="Paid Purchases")
    first_purchase_date = fields.Date(string="First Purchase")
    last_purchase_date = fields.Date(string="Last Purchase")
    paid_revenue = fields.Monetary()
    paid_revenue_12m = fields.Monetary(string="Paid Revenue (12 months)")
    invoiced_revenue = fields.Monetary()
    receivable_open = fields.Monetary(string="Open Receivable")
    receivable_overdue = fields.Monetary(string="Overdue Receivable")
    max_days_overdue = fields.Integer(string="Oldest Overdue (days)")
    avg_days_to_pay = fields.Float(string="Average Days to Pay", digits=(16, 2))
    purchase_interval_days = fields.Float(
        string="Purchase Interval (days)", digits=(16, 2)
    )
    expected_next_purchase_date = fields.Date(string="Expected Next Purchase")
    lead_count = fields.Integer(string="Leads")
    open_opportunity_count = fields.Integer(string="Open Opportunities")
    pipeline_expected_revenue = fields.Monetary(string="Weighted Pipeline")
    won_opportunity_count = fields.Integer(string="Won Opportunities")
    lost_opportunity_count = fields.Integer(string="Lost Opportunities")
    # Loyalty, RFM, value
    loyalty_level_id = fields.Many2one(
        "crm.loyalty.level", string="Loyalty Level", ondelete="set null"
    )
    loyalty_level_since = fields.Date(string="Level since")
    loyalty_below_since = fields.Date(string="Below its level since")
    rfm_recency = fields.Integer(string="Recency score")
    rfm_frequency = fields.Integer(string="Frequency score")
    rfm_monetary = fields.Integer(string="Monetary score")
    rfm_score = fields.Char(string="RFM score")
    rfm_revenue = fields.Monetary(string="Paid revenue of the RFM period")
    rfm_segment_id = fields.Many2one(
        "crm.rfm.segment", string="RFM Segment", ondelete="set null"
    )
    clv = fields.Monetary(string="Client Lifetime Value")
    potential_value = fields.Monetary()
    # What the engine last computed the row from: a run skips the client
    # while both hold (``crm.lifecycle.engine._needs_computing``).
    facts_key = fields.Char(
        string="Computed from",
        help="Fingerprint of the facts (documents, open receivables, leads, the "
        "client) and of the company's settings and figures the row was "
        "computed from.",
    )
    recheck_date = fields.Date(
        string="Computed again on",
        help="The first day on which time alone may change the row (a stage "
        "threshold, a window, a due date): the client is computed again then, "
        "even when nothing else changed.",
    )

    @api.depends("stage_date")
    def _compute_stage_days(self):
        now = fields.Datetime.now()
        for client in self:
            since = client.stage_date
            client.stage_days = (now - since).days if since else 0

    def _search_stage_days(self, operator, value):
        # whole days in stage compared with n, as conditions on stage_date
        if operator not in ("=", "!=", "<", "<=", ">", ">=") or not isinstance(
            value, int
        ):
            raise NotImplementedError(operator)
        now = fields.Datetime.now()

        def since(days):
            return now - timedelta(days=days)

        conditions = {
            ">": [("stage_date", "<=", since(value + 1))],
            ">=": [("stage_date", "<=", since(value))],
            "<": [("stage_date", ">", since(value))],
            "<=": [("stage_date", ">", since(value + 1))],
            "=": [
                ("stage_date", ">", since(value + 1)),
                ("stage_date", "<=", since(value)),
            ],
        }
        if operator == "!=":
            domain = ["!", "&", *conditions["="]]
        else:
            domain = series.domain_and([[c] for c in conditions[operator]])
        # without a date the client counts 0 days
        zero_matches = {
            "=": value == 0,
            "!=": value != 0,
            "<": value > 0,
            "<=": value >= 0,
            ">": value < 0,
            ">=": value <= 0,
        }[operator]
        if zero_matches:
            return series.domain_or([[("stage_date", "=", False)], domain])
        return series.domain_and([[("stage_date", "!=", False)], domain])

    def write(self, vals):
        # a row changed outside the engine (a stage set by hand, a lock
        # released) is computed again by the next run, whatever its facts
        return super().write({**vals, "facts_key": False})

    # ------------------------------------------------------------------
    # Engine
    # ------------------------------------------------------------------
    @api.model
    def _state_columns(self):
        """The columns the engine writes: every stored field but the keys and
        the log columns."""
        skip = {"id", "partner_id", "company_id", *models.LOG_ACCESS_COLUMNS}
        return [
            name
            for name, field in self._fields.items()
            if field.store and field.column_type and name not in skip
        ]

    @api.model
    def _empty_state(self):
        """The state of a client without a row."""
        zero = {"integer": 0, "float": 0.0, "monetary": 0.0, "boolean": False}
        return {
            name: zero.get(self._fields[name].type) for name in self._state_columns()
        }

    @api.model
    def _read_states(self, partner_ids, company):
        """{partner id: {column: value}} of the rows of ``partner_ids`` in
        ``company``, in one query (none without ids)."""
        if not partner_ids:
            return {}
        self.flush_model()
        columns = self._state_columns()
        self.env.cr.execute(
            SQL(
                "SELECT partner_id, %s FROM crm_lifecycle_client"
                " WHERE company_id = %s AND partner_id = ANY(%s)",
                SQL(", ").join(SQL.identifier(name) for name in columns),
                company.id,
                list(partner_ids),
            )
        )
        empty = self._empty_state()
        states = {}
        for partner_id, *values in self.env.cr.fetchall():
            state = dict(zip(columns, values, strict=True))
            states[partner_id] = {
                name: empty[name] if value is None else value
                for name, value in state.items()
            }
        return states

    @api.model
    def _write_states(self, company, rows, states=None, converter=None):
        """Insert or update the rows of ``company`` from ``rows`` ({partner id:
        {column: value}}) in one statement, only where a value differs; the
        ORM cache is invalidated. With ``states`` (the stored rows, as
        ``_read_states`` gives them), rows equal to them are not even sent.
        ``converter``: ``_column_converter`` of the state columns in the
        company's currency, made once for a run of many batches (made here
        when not given). Returns the ids of the partners written."""
        columns = self._state_columns()
        convert, digits = converter or self._column_converter(
            columns, company.currency_id
        )
        states = states or {}
        partner_ids = list(rows)
        new = convert(rows.values())
        if states:
            # each client's values as a tuple, compared with its stored row
            stored_ids = [pid for pid in partner_ids if pid in states]
            stored_rows = zip(
                *convert(states[pid] for pid in stored_ids).values(), strict=False
            )
            stored = dict(zip(stored_ids, stored_rows, strict=True))
            kept = [
                (partner_id, row)
                for partner_id, row in zip(
                    partner_ids, zip(*new.values(), strict=False), strict=True
                )
                if stored.get(partner_id) != row
            ]
            partner_ids = [partner_id for partner_id, _row in kept]
            new = dict(
                zip(
                    columns,
                    map(list, zip(*(row for _pid, row in kept), strict=False)),
                    strict=False,
                )
            )
        if not partner_ids:
            return []
        payload = {"partner_id": partner_ids, **new}
        identifiers = SQL(", ").join(SQL.identifier(name) for name in columns)
        now = self.env.cr.now()
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO crm_lifecycle_client AS c
                       (partner_id, company_id, %(columns)s,
                        create_uid, create_date, write_uid, write_date)
                SELECT v.partner_id, %(company)s, %(values)s,
                       %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM %(rows)s
                ON CONFLICT (partner_id, company_id) DO UPDATE
                   SET %(assignments)s,
                       write_uid = EXCLUDED.write_uid,
                       write_date = EXCLUDED.write_date
                 WHERE (%(current)s) IS DISTINCT FROM (%(excluded)s)
                RETURNING c.partner_id
                """,
                columns=identifiers,
                company=company.id,
                values=SQL(", ").join(SQL.identifier("v", name) for name in columns),
                uid=self.env.uid,
                now=now,
                rows=json_columns(
                    self,
                    payload,
                    keys=[("partner_id", "int4")],
                    digits=digits,
                ),
                assignments=SQL(", ").join(
                    SQL("%s = EXCLUDED.%s", SQL.identifier(name), SQL.identifier(name))
                    for name in columns
                ),
                current=SQL(", ").join(SQL.identifier("c", name) for name in columns),
                excluded=SQL(", ").join(
                    SQL("EXCLUDED.%s", SQL.identifier(name)) for name in columns
                ),
            ),
            # a row another worker or a user's transaction changed meanwhile
            # fails the batch, which is taken again (``_process_queue``):
            # expected, not an error to log
            log_exceptions=False,
        )
        written = [row[0] for row in self.env.cr.fetchall()]
        if written:
            self.invalidate_model()
            self.env["res.partner"].invalidate_model(
                [*PARTNER_FIELDS, "lifecycle_stage_code", "rfm_segment"]
            )
        return written

    @api.model
    def _column_kinds(self, columns, currency):
        """``columns`` by how the engine stores their values: (many2one,
        integer, boolean, other, [(name, digits)] of the numbers rounded as
        their columns keep them). Dates and datetimes are "other": they stay
        objects (compared as such, sent as text)."""
        kinds = {"many2one": [], "integer": [], "boolean": [], "other": []}
        rounded = []
        for name in columns:
            field = self._fields[name]
            if field.type in ("monetary", "float"):
                digits = (
                    currency.decimal_places
                    if field.type == "monetary"
                    else field.get_digits(self.env)[1]
                )
                rounded.append((name, digits))
            else:
                kinds.get(field.type, kinds["other"]).append(name)
        return (*kinds.values(), rounded)

    @api.model
    def _column_converter(self, columns, currency):
        """A function giving, for a list of dicts of values (missing, None or
        False: empty), {column: [value of each dict]} of ``columns`` as the
        engine stores them: numbers rounded as their columns keep them, so
        that the same result twice compares equal to what is stored. One
        comprehension per column, not a dict per row (it runs for every
        column of every client of a run). With it, {column: decimal places}
        of the numbers it rounds (``json_columns`` sends them as such)."""
        many2one, integer, boolean, other, rounded = self._column_kinds(
            columns, currency
        )
        Model = models.BaseModel

        def reference(value):
            return (value.id if isinstance(value, Model) else value) or None

        def convert(rows):
            rows = list(rows)
            values = {name: [row.get(name) or None for row in rows] for name in other}
            values.update(
                {name: [int(row.get(name) or 0) for row in rows] for name in integer}
            )
            values.update(
                {name: [bool(row.get(name)) for row in rows] for name in boolean}
            )
            values.update(
                {
                    name: [round(float(row.get(name) or 0.0), digits) for row in rows]
                    for name, digits in rounded
                }
            )
            values.update(
                {name: [reference(row.get(name)) for row in rows] for name in many2one}
            )
            # in the order of ``columns``
            return {name: values[name] for name in columns}

        return convert, dict(rounded)

    @api.model
    def _forget(self, partners, company):
        """Delete the rows of ``partners`` in ``company``."""
        self.env.cr.execute(
            SQL(
                "DELETE FROM crm_lifecycle_client"
                " WHERE company_id = %s AND partner_id = ANY(%s)",
                company.id,
                partners.ids,
            )
        )
        self.invalidate_model()
        self.env["res.partner"].invalidate_model(list(PARTNER_FIELDS))

    @api.model
    def _get_or_create(self, partners, company):
        """The rows of commercial ``partners`` in ``company``, created empty
        where missing."""
        existing = self.search(
            [("partner_id", "in", partners.ids), ("company_id", "=", company.id)]
        )
        missing = partners - existing.partner_id
        if missing:
            existing |= self.create(
                [
                    {"partner_id": partner.id, "company_id": company.id}
                    for partner in missing
                ]
            )
        return existing
