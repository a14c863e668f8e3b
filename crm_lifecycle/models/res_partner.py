# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import textwrap

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, format_amount, format_date, html2plaintext, is_html_empty

from .. import series
from .crm_lifecycle_client import PARTNER_FIELDS
from .crm_lifecycle_handover import OPEN_LEAD_DOMAIN, attached_to_domain

METRICS_GROUP = "crm_lifecycle.group_lifecycle_user"
# the rest of the lifecycle is for employees: a portal user reads nothing of
# it, not even on its own company's partner
INTERNAL_GROUP = "base.group_user"
# The money of a client: salespeople with "own documents only" see it only on
# their own clients (the commercial entity's salesperson), as Odoo's
# crm.activity.report shows them their own activities.
MONEY_FIELDS = frozenset(
    {
        "paid_revenue",
        "paid_revenue_12m",
        "invoiced_revenue",
        "receivable_open",
        "receivable_overdue",
        "pipeline_expected_revenue",
        "clv",
        "lifecycle_potential_value",
        "rfm_revenue",
    }
)
# What the engine computes: nobody writes it through the partner. A person
# moves the stage only (its inverse is the override path); the related codes
# would write the stage or segment records themselves.
ENGINE_FIELDS = frozenset(PARTNER_FIELDS) - {"lifecycle_stage_id"} | {
    "lifecycle_stage_code",
    "lifecycle_stage_color",
    "rfm_segment",
}

# Precommit data: {company id: ids of partners created in the transaction}.
NEW_CLIENTS_KEY = "crm_lifecycle.new_clients"

_logger = logging.getLogger(__name__)


def _client_field(name, field_type, string, groups=METRICS_GROUP, **kwargs):
    """A field of the current company's client row (crm.lifecycle.client) of
    the partner's commercial entity: read-only, searchable, sortable and
    groupable like a stored field (see ``_field_to_sql``)."""

    def search(partners, operator, value):
        return partners._search_lifecycle_client_field(name, operator, value)

    return field_type(
        string=string,
        compute="_compute_lifecycle_client_fields",
        search=search,
        readonly=True,
        copy=False,
        groups=groups,
        **kwargs,
    )


class ResPartner(models.Model):
    _inherit = "res.partner"

    # Lifecycle state: the current company's row of crm.lifecycle.client of
    # the commercial entity (a client shared between companies has a state in
    # each of them). Nothing is stored on the partner, nor copied on contacts.
    lifecycle_stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Lifecycle Stage",
        compute="_compute_lifecycle_client_fields",
        inverse="_inverse_lifecycle_stage_id",
        search=lambda partners, operator, value: (
            partners._search_lifecycle_client_field(
                "lifecycle_stage_id", operator, value
            )
        ),
        group_expand="_read_group_lifecycle_stage_ids",
        domain="[('company_id', 'in', [False, current_company_id])]",
        copy=False,
        groups=INTERNAL_GROUP,
    )
    lifecycle_stage_locked = _client_field(
        "lifecycle_stage_locked",
        fields.Boolean,
        "Stage set by hand",
        groups=INTERNAL_GROUP,
        help="The stage was set by a person: the engine keeps it until it is "
        "unlocked, or until the event chosen in Settings.",
    )
    lifecycle_stage_date = _client_field(
        "lifecycle_stage_date", fields.Datetime, "In stage since", groups=INTERNAL_GROUP
    )
    lifecycle_stage_days = _client_field(
        "lifecycle_stage_days", fields.Integer, "Days in stage", groups=INTERNAL_GROUP
    )
    lifecycle_lock_purchase_count = _client_field(
        "lifecycle_lock_purchase_count",
        fields.Integer,
        "Paid purchases when set by hand",
        groups="base.group_system",
    )
    lifecycle_computed_date = _client_field(
        "lifecycle_computed_date",
        fields.Datetime,
        "Lifecycle changed on",
        groups=INTERNAL_GROUP,
        help="When the engine last found something new about the client.",
    )
    lifecycle_stage_code = fields.Char(
        related="lifecycle_stage_id.code", groups=INTERNAL_GROUP
    )
    lifecycle_stage_color = fields.Integer(
        related="lifecycle_stage_id.color", groups=INTERNAL_GROUP
    )
    lifecycle_history_ids = fields.One2many(
        "crm.lifecycle.history",
        "partner_id",
        string="Lifecycle History",
        groups=INTERNAL_GROUP,
    )
    lifecycle_history_count = fields.Integer(
        compute="_compute_lifecycle_history_count", groups=INTERNAL_GROUP
    )
    relationship_notes = fields.Html(
        company_dependent=True,
        groups=INTERNAL_GROUP,
        help="Preferences, agreements, how to approach the client: what the "
        "company knows and keeps when the salesperson changes.",
    )
    is_lifecycle_client = fields.Boolean(
        compute="_compute_is_lifecycle_client", search="_search_is_lifecycle_client"
    )
    lifecycle_currency_id = fields.Many2one(
        "res.currency", compute="_compute_lifecycle_currency_id"
    )
    lifecycle_salesperson_archived = fields.Boolean(
        string="Salesperson archived",
        compute="_compute_lifecycle_salesperson_archived",
        search="_search_lifecycle_salesperson_archived",
        help="The client's salesperson left: its portfolio waits for a handover.",
    )
    # Metrics, per company, in the company currency, net of refunds. Readable
    # by lifecycle users only: they are the engine's results, not accounting.
    # Money is Float with the monetary widget (lifecycle_currency_id).
    purchase_count = _client_field("purchase_count", fields.Integer, "Paid Purchases")
    first_purchase_date = _client_field(
        "first_purchase_date", fields.Date, "First Purchase"
    )
    last_purchase_date = _client_field(
        "last_purchase_date", fields.Date, "Last Purchase"
    )
    paid_revenue = _client_field(
        "paid_revenue",
        fields.Float,
        "Paid Revenue",
        help="Untaxed amount of customer invoices, pro rata of what is paid, "
        "minus settled credit notes.",
    )
    paid_revenue_12m = _client_field(
        "paid_revenue_12m", fields.Float, "Paid Revenue (12 months)"
    )
    invoiced_revenue = _client_field(
        "invoiced_revenue", fields.Float, "Invoiced Revenue"
    )
    receivable_open = _client_field("receivable_open", fields.Float, "Open Receivable")
    receivable_overdue = _client_field(
        "receivable_overdue", fields.Float, "Overdue Receivable"
    )
    max_days_overdue = _client_field(
        "max_days_overdue", fields.Integer, "Oldest Overdue (days)"
    )
    avg_days_to_pay = _client_field(
        "avg_days_to_pay", fields.Float, "Average Days to Pay"
    )
    purchase_interval_days = _client_field(
        "purchase_interval_days",
        fields.Float,
        "Purchase Interval (days)",
        help="Median number of days between two paid purchases.",
    )
    expected_next_purchase_date = _client_field(
        "expected_next_purchase_date", fields.Date, "Expected Next Purchase"
    )
    lead_count = _client_field("lead_count", fields.Integer, "Leads")
    open_opportunity_count = _client_field(
        "open_opportunity_count", fields.Integer, "Open Opportunities"
    )
    pipeline_expected_revenue = _client_field(
        "pipeline_expected_revenue",
        fields.Float,
        "Weighted Pipeline",
        help="Expected revenue of open opportunities weighted by probability.",
    )
    won_opportunity_count = _client_field(
        "won_opportunity_count", fields.Integer, "Won Opportunities"
    )
    lost_opportunity_count = _client_field(
        "lost_opportunity_count", fields.Integer, "Lost Opportunities"
    )
    # Loyalty level: from money and behaviour, per company
    loyalty_level_id = _client_field(
        "loyalty_level_id",
        fields.Many2one,
        "Loyalty Level",
        groups=INTERNAL_GROUP,
        comodel_name="crm.loyalty.level",
    )
    loyalty_level_since = _client_field(
        "loyalty_level_since", fields.Date, "Level since", groups=INTERNAL_GROUP
    )
    loyalty_below_since = _client_field(
        "loyalty_below_since",
        fields.Date,
        "Below its level since",
        help="The client stopped meeting its level on this date; it keeps the "
        "level until the level's grace period has passed.",
    )
    # RFM: scores 1-5 by quintiles over the company's customers of the period
    rfm_recency = _client_field("rfm_recency", fields.Integer, "Recency score")
    rfm_frequency = _client_field("rfm_frequency", fields.Integer, "Frequency score")
    rfm_monetary = _client_field("rfm_monetary", fields.Integer, "Monetary score")
    rfm_score = _client_field("rfm_score", fields.Char, "RFM score")
    rfm_revenue = _client_field(
        "rfm_revenue", fields.Float, "Paid revenue of the RFM period"
    )
    rfm_segment_id = _client_field(
        "rfm_segment_id",
        fields.Many2one,
        "RFM Segment",
        groups=INTERNAL_GROUP,
        comodel_name="crm.rfm.segment",
    )
    rfm_segment = fields.Char(
        string="RFM segment code", related="rfm_segment_id.code", groups=INTERNAL_GROUP
    )
    # Value
    clv = _client_field(
        "clv",
        fields.Float,
        "Client Lifetime Value",
        help="Average paid purchase × purchases per year × expected remaining "
        "years as a client (from the company's own yearly retention, over the "
        "horizon of Settings).",
    )
    lifecycle_potential_value = _client_field(
        "lifecycle_potential_value",
        fields.Float,
        "Potential value",
        help="For clients who have not bought yet and have no weighted "
        "pipeline: the share of the clients of their stage that became "
        "customers within twelve months × the average first-year value of a "
        "customer.",
    )

    @api.model
    def _read_group_lifecycle_stage_ids(self, stages, domain):
        return stages.search(
            [("company_id", "in", [False, self.env.company.id])], order=stages._order
        )

    @api.depends_context("company", "uid")
    @api.depends("commercial_partner_id", "commercial_partner_id.user_id")
    def _compute_lifecycle_client_fields(self):
        # one query for the whole recordset: the client rows of the commercial
        # entities in the current company
        company = self.env.company
        # new records (forms being filled) read their origin's row, if any
        commercial_ids = [
            partner_id
            for partner_id in self.commercial_partner_id._origin.ids
            if partner_id
        ]
        Client = self.env["crm.lifecycle.client"]
        clients = Client.sudo().search_fetch(
            [
                ("partner_id", "in", commercial_ids),
                ("company_id", "=", company.id),
            ],
            ["partner_id", *{name for name in PARTNER_FIELDS.values()}],
        )
        by_partner = {client.partner_id.id: client for client in clients}
        all_money = self._lifecycle_sees_all_money()
        for partner in self:
            commercial = partner.commercial_partner_id._origin
            client = by_partner.get(commercial.id, Client)
            money = all_money or commercial.sudo().user_id == self.env.user
            for name, client_name in PARTNER_FIELDS.items():
                value = client[client_name]
                if name in ("lifecycle_stage_id",):
                    value = value.sudo(False)
                elif name in MONEY_FIELDS and not money:
                    value = 0.0
                partner[name] = value

    def _inverse_lifecycle_stage_id(self):
        # a person moving the stage (board, status bar, API) is an override
        states = self.env["crm.lifecycle.client"]._read_states(
            self.commercial_partner_id.ids, self.env.company
        )
        for stage, partners in self.grouped("lifecycle_stage_id").items():
            moved = partners.commercial_partner_id.filtered(
                lambda partner, stage=stage: states.get(partner.id, {}).get("stage_id")
                != stage.id
            )
            if stage and moved:
                moved._lifecycle_set_stage(
                    stage, self.env._("Moved on the lifecycle board")
                )

    def _search_lifecycle_client_field(self, name, operator, value):
        """Domain on partners whose commercial entity's client row in the
        current company matches ``(field, operator, value)``; a partner without
        a row matches when an empty row would."""
        Client = self.env["crm.lifecycle.client"].sudo()
        condition = [(PARTNER_FIELDS[name], operator, value)]
        company = self.env.company
        matching = Client._search([*condition, ("company_id", "=", company.id)])
        domain = [("commercial_partner_id", "in", matching.subselect("partner_id"))]
        if Client.new({"company_id": company.id}).filtered_domain(condition):
            with_row = Client._search([("company_id", "=", company.id)])
            domain = series.domain_or(
                [
                    domain,
                    [
                        (
                            "commercial_partner_id",
                            "not in",
                            with_row.subselect("partner_id"),
                        )
                    ],
                ]
            )
        if name in MONEY_FIELDS and not self._lifecycle_sees_all_money():
            # the money of a colleague's client is 0 for this user
            own = [("commercial_partner_id.user_id", "=", self.env.uid)]
            domain = series.domain_and([own, domain])
            if Client.new({"company_id": company.id}).filtered_domain(condition):
                domain = series.domain_or([domain, ["!", *own]])
        return domain

    def _field_to_sql(self, alias, fname, query=None, *args, **kwargs):
        # the fields of the client row are a LEFT JOIN away: searching,
        # sorting and grouping work as on stored fields. ``flush`` is an
        # argument of 18.0 only (positional or named), passed on as given.
        flush = args[0] if args else kwargs.get("flush", True)
        client_name = PARTNER_FIELDS.get(fname)
        Client = self.env["crm.lifecycle.client"]
        if (
            client_name is None
            or query is None
            or not Client._fields[client_name].store
        ):
            return super()._field_to_sql(alias, fname, query, *args, **kwargs)
        series.check_field_read(self, fname)
        client_alias = query.make_alias(alias, "lifecycle_client")
        query.add_join(
            "LEFT JOIN",
            client_alias,
            Client._table,
            SQL(
                "%s = %s AND %s = %s",
                SQL.identifier(client_alias, "partner_id"),
                super()._field_to_sql(
                    alias, "commercial_partner_id", query, *args, **kwargs
                ),
                SQL.identifier(client_alias, "company_id"),
                self.env.company.id,
            ),
        )
        field = Client._fields[client_name]
        sql = SQL.identifier(
            client_alias, client_name, to_flush=field if flush else None
        )
        if field.type in ("integer", "float", "monetary", "boolean"):
            # a client without a row shows zeros, and sorts with them
            sql = SQL("COALESCE(%s, %s)", sql, field.type != "boolean" and 0)
        if fname in MONEY_FIELDS and not self._lifecycle_sees_all_money():
            # the money of a colleague's client is 0 for this user: sorting,
            # grouping and sums see what the form shows
            commercial_alias = query.make_alias(alias, "lifecycle_commercial")
            query.add_join(
                "LEFT JOIN",
                commercial_alias,
                self._table,
                SQL(
                    "%s = %s",
                    SQL.identifier(commercial_alias, "id"),
                    super()._field_to_sql(
                        alias, "commercial_partner_id", query, *args, **kwargs
                    ),
                ),
            )
            sql = SQL(
                "CASE WHEN %s = %s THEN %s ELSE 0 END",
                SQL.identifier(
                    commercial_alias,
                    "user_id",
                    to_flush=self._fields["user_id"] if flush else None,
                ),
                self.env.uid,
                sql,
            )
        return sql

    @api.model
    def _lifecycle_sees_all_money(self):
        """Whether the user sees the money of every client: salespeople with
        "All documents" and lifecycle managers; others only of their own."""
        user = self.env.user
        return (
            self.env.su
            or user.has_group("sales_team.group_sale_salesman_all_leads")
            or user.has_group("crm_lifecycle.group_lifecycle_manager")
        )

    def _compute_lifecycle_history_count(self):
        groups = self.env["crm.lifecycle.history"]._read_group(
            [("partner_id", "in", self.commercial_partner_id.ids)],
            ["partner_id"],
            ["__count"],
        )
        counts = {partner.id: count for partner, count in groups}
        for partner in self:
            partner.lifecycle_history_count = counts.get(
                partner.commercial_partner_id.id, 0
            )

    @api.depends("parent_id", "user_ids")
    def _compute_is_lifecycle_client(self):
        clients = self.env["crm.lifecycle.engine"]._clients_among(self._origin)
        for partner in self:
            origin = partner._origin
            partner.is_lifecycle_client = not partner.parent_id and (
                origin in clients if origin else not partner.user_ids
            )

    def _search_is_lifecycle_client(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(operator)
        domain = self.env["crm.lifecycle.engine"]._client_domain()
        positive = (operator == "=") == value
        return domain if positive else ["!", "&", "&", *domain]

    @api.depends_context("company")
    def _compute_lifecycle_currency_id(self):
        self.lifecycle_currency_id = self.env.company.currency_id

    @api.depends("user_id.active")
    def _compute_lifecycle_salesperson_archived(self):
        for partner in self:
            user = partner.user_id
            partner.lifecycle_salesperson_archived = bool(user) and not user.active

    def _search_lifecycle_salesperson_archived(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(operator)
        # archived users are hidden from searches unless asked for explicitly
        archived_users = (
            self.env["res.users"]
            .sudo()
            .with_context(active_test=False)
            ._search([("active", "=", False)])
        )
        if (operator == "=") == value:
            return [("user_id", "in", archived_users)]
        return ["|", ("user_id", "=", False), ("user_id", "not in", archived_users)]

    @api.model
    def _lifecycle_check_engine_fields(self, names):
        # no path (form, import, RPC, superuser) writes the engine's results
        engine = sorted(ENGINE_FIELDS.intersection(names))
        if engine:
            raise UserError(
                self.env._(
                    "These fields are computed by the lifecycle engine and "
                    "cannot be written: %(fields)s",
                    fields=", ".join(
                        f"{self._fields[name].string} ({name})" for name in engine
                    ),
                )
            )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._lifecycle_check_engine_fields(vals)
        partners = super().create(vals_list)
        self.env["crm.lifecycle.queue"].sudo()._enqueue(partners.ids)
        self._lifecycle_compute_new(partners)
        return partners

    def write(self, vals):
        self._lifecycle_check_engine_fields(vals)
        if "parent_id" in vals:
            self.env["crm.lifecycle.queue"].sudo()._enqueue(
                self.commercial_partner_id.ids
            )
        result = super().write(vals)
        if "parent_id" in vals or "company_id" in vals:
            self.env["crm.lifecycle.queue"].sudo()._enqueue(
                self.commercial_partner_id.ids
            )
        return result

    def unlink(self):
        # the deleted clients' snapshots go with them: the totals that
        # counted them are counted again
        Snapshot = self.env["crm.lifecycle.snapshot"].sudo()
        counted = Snapshot._counted_companies(self.ids)
        result = super().unlink()
        for company in counted:
            Snapshot._refresh_totals(company)
        return result

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_lifecycle_recompute(self):
        """Recompute these clients now, for lifecycle users on clients they
        may read; a notification says what happened."""
        self._lifecycle_check_user("read")
        partners = self.commercial_partner_id
        # asked for: computed even where no fact changed
        self.env["crm.lifecycle.engine"]._recompute(
            partners, self.env.companies, force=True
        )
        if len(partners) == 1:
            message = self.env._(
                "%(client)s recomputed: lifecycle stage %(stage)s.",
                client=partners.display_name,
                stage=partners.lifecycle_stage_id.name or self.env._("none"),
            )
        else:
            message = self.env._("%(count)s clients recomputed.", count=len(partners))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": message,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_lifecycle_unlock(self):
        self._lifecycle_check_manual_change()
        partners = self.commercial_partner_id
        clients = (
            self.env["crm.lifecycle.client"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", partners.ids),
                    ("company_id", "=", self.env.company.id),
                    ("stage_locked", "=", True),
                ]
            )
        )
        clients.write({"stage_locked": False})
        self.env["crm.lifecycle.engine"].sudo()._recompute(
            partners.sudo(), self.env.company
        )
        return True

    def action_lifecycle_change_stage(self):
        self._lifecycle_check_user("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.crm_lifecycle_stage_wizard_action"
        )
        action["context"] = {"default_partner_ids": self.commercial_partner_id.ids}
        return action

    def action_view_lifecycle_history(self):
        self.ensure_one()
        self._lifecycle_check_user("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.crm_lifecycle_history_action"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {"create": False}
        return action

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------
    def _lifecycle_check_user(self, operation):
        """The buttons of the lifecycle are for lifecycle users, on partners
        they may read or write (``operation``): portal users reach none."""
        if not self.env.user.has_group(METRICS_GROUP):
            raise AccessError(
                self.env._("Only lifecycle users can use the client lifecycle.")
            )
        self.check_access(operation)

    def _lifecycle_check_manual_change(self):
        """Lifecycle managers may set any client's stage; salespeople only their
        own clients', when the company's Settings allow it; both must be
        allowed to edit the clients."""
        user = self.env.user
        if self.env.su:
            return
        if user.has_group("crm_lifecycle.group_lifecycle_manager"):
            self.check_access("write")
            return
        company = self.env.company
        own = all(partner.user_id == user for partner in self.commercial_partner_id)
        if (
            company.lifecycle_salesperson_override
            and own
            and user.has_group("crm_lifecycle.group_lifecycle_user")
        ):
            self.check_access("write")
            return
        raise AccessError(
            self.env._(
                "Only lifecycle managers can set a client's stage by hand"
                " (salespeople for their own clients, when Settings allow it)."
            )
        )

    @api.model
    def _lifecycle_compute_new(self, partners):
        """Give new clients their stage in the current company when the
        transaction ends, in one batch, not minutes later by the queue (which
        still computes them in every company). At the end, because a partner
        created for a user or a company is not a client once they exist."""
        pending = self.env.cr.precommit.data.setdefault(NEW_CLIENTS_KEY, {})
        if not pending:
            self.env.cr.precommit.add(self._lifecycle_compute_pending)
        pending.setdefault(self.env.company.id, set()).update(partners.ids)

    @api.model
    def _lifecycle_compute_pending(self):
        pending = self.env.cr.precommit.data.pop(NEW_CLIENTS_KEY, {})
        Partner = self.sudo().with_context(active_test=False)
        engine = self.env["crm.lifecycle.engine"].sudo()
        for company_id, partner_ids in pending.items():
            partners = Partner.browse(sorted(partner_ids)).exists()
            clients = engine._clients_among(partners.commercial_partner_id)
            if not clients:
                continue
            try:
                with self.env.cr.savepoint():
                    engine._recompute(
                        clients, self.env["res.company"].browse(company_id)
                    )
                    self.env.flush_all()
            except Exception as error:  # noqa: BLE001 - the queue computes them
                self.env.invalidate_all()
                _logger.info("Lifecycle: new clients left to the queue: %s", error)

    def _lifecycle_set_stage(self, stage, note):
        """Set ``stage`` by hand on these commercial partners in the current
        company: it is locked, logged in the history and on the chatter, and
        the clients are computed with it at once (their values are those of
        the new stage). The lock counts the paid purchases of today: only a
        later one ends it."""
        self._lifecycle_check_manual_change()
        company = self.env.company
        partners = self.sudo()
        engine = self.env["crm.lifecycle.engine"].sudo()
        # the client row may not know a purchase of the queue yet
        purchases = {
            row["partner_id"]: row["purchase_count"]
            for row in engine._query_invoices(
                partners.ids, company, fields.Date.context_today(partners)
            )
        }
        now = fields.Datetime.now()
        clients = (
            self.env["crm.lifecycle.client"].sudo()._get_or_create(partners, company)
        )
        history = []
        bodies = {}
        for client in clients:
            since = client.stage_date
            old = client.stage_id
            history.append(
                {
                    "partner_id": client.partner_id.id,
                    "company_id": company.id,
                    "stage_from_id": old.id,
                    "stage_to_id": stage.id,
                    "reason": "manual",
                    "note": note,
                    "user_id": self.env.uid,
                    "date": now,
                    "days_in_previous_stage": (now - since).total_seconds() / 86400
                    if since and old
                    else 0.0,
                }
            )
            bodies[client.partner_id.id] = self.env._(
                "Lifecycle stage (%(company)s) set by hand: %(old)s → %(new)s. "
                "Reason: %(note)s",
                company=company.name,
                old=old.name or self.env._("none"),
                new=stage.name,
                note=note,
            )
            client.write(
                {
                    "stage_id": stage.id,
                    "stage_locked": True,
                    "stage_date": now,
                    "lock_purchase_count": purchases.get(client.partner_id.id, 0),
                }
            )
        self.env["crm.lifecycle.history"].sudo().create(history)
        partners.browse(list(bodies))._message_log_batch(
            bodies=bodies, author_id=self.env.user.partner_id.id
        )
        # the values of the new stage (potential value, lifetime value)
        engine._recompute(partners, company)
        self.invalidate_model(list(PARTNER_FIELDS))

    # ------------------------------------------------------------------
    # Portfolio handover
    # ------------------------------------------------------------------
    def _lifecycle_handover_dossier_values(self):
        """What the next salesperson should know about this client in the
        current company, as a list of ``(label, value)`` lines; a value is
        text or ``Markup``. Other modules extend it to add lines."""
        self.ensure_one()
        company = self.env.company
        # metrics and notes are company-dependent and restricted to lifecycle
        # users: the dossier reads them for the client's new salesperson
        partner = self.sudo().with_company(company)
        currency = company.currency_id
        none = self.env._("None")
        contacts = partner.with_context(active_test=False).search(
            [("commercial_partner_id", "=", partner.id)]
        )
        leads = (
            self.env["crm.lead"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", contacts.ids),
                    ("company_id", "in", [False, company.id]),
                    *OPEN_LEAD_DOMAIN,
                ],
                order="expected_revenue desc, id",
            )
        )
        values = [
            (
                self.env._("Lifecycle stage"),
                partner.lifecycle_stage_id.name or none,
            ),
            (
                self.env._("Loyalty level"),
                partner.loyalty_level_id.display_name or none,
            ),
            (
                self.env._("Last interactions"),
                partner._lifecycle_handover_interactions(contacts, leads) or none,
            ),
            (
                self.env._("Open opportunities"),
                self._lifecycle_html_list(
                    self.env._(
                        "%(name)s: %(amount)s (%(probability)s%%), %(salesperson)s",
                        name=lead.name,
                        amount=format_amount(
                            self.env, lead.expected_revenue, lead.company_currency
                        ),
                        probability=round(lead.probability),
                        salesperson=lead.user_id.name or none,
                    )
                    for lead in leads
                )
                or none,
            ),
            (
                self.env._("Open receivable"),
                format_amount(self.env, partner.receivable_open, currency),
            ),
            (
                self.env._("Overdue receivable"),
                format_amount(self.env, partner.receivable_overdue, currency),
            ),
            (
                self.env._("Upcoming activities"),
                self._lifecycle_html_list(
                    self.env._(
                        "%(date)s, %(type)s: %(summary)s (%(user)s)",
                        date=format_date(self.env, activity.date_deadline),
                        type=activity.activity_type_id.name or "",
                        summary=activity.summary or activity.res_name or "",
                        user=activity.user_id.name or none,
                    )
                    for activity in self.env["mail.activity"]
                    .sudo()
                    .search(
                        attached_to_domain(contacts.ids, leads.ids),
                        order="date_deadline, id",
                        limit=10,
                    )
                )
                or none,
            ),
            (
                self.env._("Relationship notes"),
                none
                if is_html_empty(partner.relationship_notes)
                else Markup(partner.relationship_notes),
            ),
        ]
        return values

    def _lifecycle_handover_interactions(self, contacts, leads, limit=3):
        """The last messages exchanged and activities done on the client, its
        contacts and its open leads."""
        messages = (
            self.env["mail.message"]
            .sudo()
            .search(
                [
                    *attached_to_domain(contacts.ids, leads.ids, "model"),
                    "|",
                    ("message_type", "in", ("email", "email_outgoing")),
                    "|",
                    ("mail_activity_type_id", "!=", False),
                    ("subtype_id", "=", self.env.ref("mail.mt_comment").id),
                ],
                order="date desc, id desc",
                limit=limit,
            )
        )
        lines = []
        for message in messages:
            text = message.subject or html2plaintext(message.body or "")
            if message.mail_activity_type_id:
                text = f"{message.mail_activity_type_id.name}: {text}"
            lines.append(
                self.env._(
                    "%(date)s, %(author)s: %(text)s",
                    date=format_date(self.env, message.date),
                    author=message.author_id.name or message.email_from or "",
                    text=textwrap.shorten(" ".join(text.split()), 120),
                )
            )
        return self._lifecycle_html_list(lines)

    @api.model
    def _lifecycle_html_list(self, lines):
        items = [Markup("<li>%s</li>") % line for line in lines]
        return Markup("<ul>%s</ul>") % Markup("").join(items) if items else ""

    def _lifecycle_handover_dossier_body(self, from_user, to_user, note=None):
        self.ensure_one()
        rows = Markup("").join(
            Markup("<li><strong>%s</strong>: %s</li>") % (label, value)
            for label, value in self._lifecycle_handover_dossier_values()
        )
        title = self.env._(
            "Portfolio handover: %(old_user)s → %(new_user)s",
            old_user=from_user.name,
            new_user=to_user.name,
        )
        body = Markup("<p><strong>%s</strong></p>") % title
        if note:
            body += Markup("<p>%s</p>") % note
        return body + Markup("<ul>%s</ul>") % rows
