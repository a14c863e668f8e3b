# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import textwrap

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import format_amount, format_date, html2plaintext, is_html_empty

from .crm_lifecycle_handover import OPEN_LEAD_DOMAIN, attached_to_domain

METRICS_GROUP = "crm_lifecycle.group_lifecycle_user"


def _metric(field_type, string, **kwargs):
    """A metric written by the engine: per company, read-only, for lifecycle
    users."""
    return field_type(
        string=string,
        company_dependent=True,
        readonly=True,
        copy=False,
        groups=METRICS_GROUP,
        **kwargs,
    )


class ResPartner(models.Model):
    _inherit = "res.partner"

    # Lifecycle state. Company-dependent (jsonb per company, Odoo 18): a client
    # shared between companies has its own stage and metrics in each of them,
    # and the current company's value is what forms, lists, search and
    # group-by see. Written by the engine on the commercial entity and its
    # contacts, so contacts show (and group by) their company's stage.
    lifecycle_stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        string="Lifecycle Stage",
        company_dependent=True,
        group_expand="_read_group_lifecycle_stage_ids",
        domain="[('company_id', 'in', [False, current_company_id])]",
    )
    lifecycle_stage_locked = fields.Boolean(
        string="Stage set by hand",
        company_dependent=True,
        readonly=True,
        help="The stage was set by a person: the engine keeps it until it is "
        "unlocked, or until the event chosen in Settings.",
    )
    lifecycle_stage_date = fields.Datetime(
        string="In stage since", company_dependent=True, readonly=True
    )
    lifecycle_stage_days = fields.Integer(
        string="Days in stage", compute="_compute_lifecycle_stage_days"
    )
    lifecycle_lock_purchase_count = fields.Integer(
        company_dependent=True, readonly=True, groups="base.group_system"
    )
    lifecycle_computed_date = fields.Datetime(
        string="Lifecycle computed on", company_dependent=True, readonly=True
    )
    lifecycle_stage_code = fields.Char(related="lifecycle_stage_id.code")
    lifecycle_history_ids = fields.One2many(
        "crm.lifecycle.history", "partner_id", string="Lifecycle History"
    )
    lifecycle_history_count = fields.Integer(compute="_compute_lifecycle_history_count")
    relationship_notes = fields.Html(
        company_dependent=True,
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
    purchase_count = _metric(fields.Integer, "Paid Purchases")
    first_purchase_date = _metric(fields.Date, "First Purchase")
    last_purchase_date = _metric(fields.Date, "Last Purchase")
    paid_revenue = _metric(
        fields.Float,
        "Paid Revenue",
        help="Untaxed amount of customer invoices, pro rata of what is paid, "
        "minus settled credit notes.",
    )
    paid_revenue_12m = _metric(fields.Float, "Paid Revenue (12 months)")
    invoiced_revenue = _metric(fields.Float, "Invoiced Revenue")
    receivable_open = _metric(fields.Float, "Open Receivable")
    receivable_overdue = _metric(fields.Float, "Overdue Receivable")
    max_days_overdue = _metric(fields.Integer, "Oldest Overdue (days)")
    avg_days_to_pay = _metric(fields.Float, "Average Days to Pay")
    purchase_interval_days = _metric(
        fields.Float,
        "Purchase Interval (days)",
        help="Median number of days between two paid purchases.",
    )
    expected_next_purchase_date = _metric(fields.Date, "Expected Next Purchase")
    lead_count = _metric(fields.Integer, "Leads")
    open_opportunity_count = _metric(fields.Integer, "Open Opportunities")
    pipeline_expected_revenue = _metric(
        fields.Float,
        "Weighted Pipeline",
        help="Expected revenue of open opportunities weighted by probability.",
    )
    won_opportunity_count = _metric(fields.Integer, "Won Opportunities")
    lost_opportunity_count = _metric(fields.Integer, "Lost Opportunities")
    # Loyalty level: from money and behaviour, per company
    loyalty_level_id = fields.Many2one(
        "crm.loyalty.level",
        string="Loyalty Level",
        company_dependent=True,
        readonly=True,
        copy=False,
        domain="[('company_id', '=', current_company_id)]",
    )
    loyalty_level_since = fields.Date(
        string="Level since", company_dependent=True, readonly=True, copy=False
    )
    loyalty_below_since = _metric(
        fields.Date,
        "Below its level since",
        help="The client stopped meeting its level on this date; it keeps the "
        "level until the level's grace period has passed.",
    )
    # RFM: scores 1-5 by quintiles over the company's customers of the period
    rfm_recency = _metric(fields.Integer, "Recency score")
    rfm_frequency = _metric(fields.Integer, "Frequency score")
    rfm_monetary = _metric(fields.Integer, "Monetary score")
    rfm_score = _metric(fields.Char, "RFM score")
    rfm_revenue = _metric(fields.Float, "Paid revenue of the RFM period")
    rfm_segment_id = fields.Many2one(
        "crm.rfm.segment",
        string="RFM Segment",
        company_dependent=True,
        readonly=True,
        copy=False,
    )
    rfm_segment = fields.Char(string="RFM segment code", related="rfm_segment_id.code")
    # Value
    clv = _metric(
        fields.Float,
        "Client Lifetime Value",
        help="Average paid purchase × purchases per year × expected remaining "
        "years as a client (from the company's own yearly retention, over the "
        "horizon of Settings).",
    )
    lifecycle_potential_value = _metric(
        fields.Float,
        "Potential value",
        help="For clients who have not bought yet: the company's historical "
        "conversion rate from their stage to new customer × the average "
        "first-year value of a customer.",
    )

    @api.model
    def _read_group_lifecycle_stage_ids(self, stages, domain):
        return stages.search(
            [("company_id", "in", [False, self.env.company.id])], order=stages._order
        )

    @api.depends_context("company")
    @api.depends("lifecycle_stage_date")
    def _compute_lifecycle_stage_days(self):
        now = fields.Datetime.now()
        for partner in self:
            since = partner.lifecycle_stage_date
            partner.lifecycle_stage_days = (now - since).days if since else 0

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

    @api.depends("parent_id", "partner_share")
    def _compute_is_lifecycle_client(self):
        company_partners = self.env["res.company"].sudo().search([]).partner_id
        for partner in self:
            partner.is_lifecycle_client = (
                not partner.parent_id
                and partner.partner_share
                and partner not in company_partners
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

    def _commercial_fields(self):
        # contacts created under a company start with the company's stage
        return super()._commercial_fields() + [
            "lifecycle_stage_id",
            "loyalty_level_id",
            "rfm_segment_id",
        ]

    @api.model_create_multi
    def create(self, vals_list):
        partners = super().create(vals_list)
        self.env["crm.lifecycle.queue"].sudo()._enqueue(partners.ids)
        return partners

    def write(self, vals):
        if "lifecycle_stage_id" in vals and not self.env.context.get(
            "lifecycle_engine"
        ):
            # a person moving the stage (board, status bar, API) is an override
            vals = dict(vals)
            stage = self.env["crm.lifecycle.stage"].browse(
                vals.pop("lifecycle_stage_id")
            )
            result = super().write(vals) if vals else True
            targets = self.commercial_partner_id.filtered(
                lambda p: p.lifecycle_stage_id != stage
            )
            if targets and stage:
                targets._lifecycle_set_stage(
                    stage, self.env._("Moved on the lifecycle board")
                )
            return result
        if "parent_id" in vals:
            self.env["crm.lifecycle.queue"].sudo()._enqueue(
                self.commercial_partner_id.ids
            )
        return super().write(vals)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_lifecycle_recompute(self):
        self.env["crm.lifecycle.engine"].sudo().recompute(
            self.sudo(), self.env.companies
        )
        return True

    def action_lifecycle_unlock(self):
        self._lifecycle_check_manual_change()
        partners = self.commercial_partner_id
        contacts = (
            self.sudo()
            .with_context(active_test=False)
            .search([("commercial_partner_id", "in", partners.ids)])
        )
        contacts.with_context(lifecycle_engine=True).write(
            {"lifecycle_stage_locked": False}
        )
        self.env["crm.lifecycle.engine"].sudo().recompute(
            partners.sudo(), self.env.company
        )
        return True

    def action_lifecycle_change_stage(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.crm_lifecycle_stage_wizard_action"
        )
        action["context"] = {"default_partner_ids": self.commercial_partner_id.ids}
        return action

    def action_view_lifecycle_history(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.crm_lifecycle_history_action"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {"create": False}
        return action

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------
    def _lifecycle_check_manual_change(self):
        """Lifecycle managers may set any client's stage; salespeople only their
        own clients', when the company's Settings allow it."""
        user = self.env.user
        if user.has_group("crm_lifecycle.group_lifecycle_manager") or self.env.su:
            return
        company = self.env.company
        own = all(partner.user_id == user for partner in self.commercial_partner_id)
        if (
            company.lifecycle_salesperson_override
            and own
            and user.has_group("crm_lifecycle.group_lifecycle_user")
        ):
            return
        raise AccessError(
            self.env._(
                "Only lifecycle managers can set a client's stage by hand"
                " (salespeople for their own clients, when Settings allow it)."
            )
        )

    def _lifecycle_set_stage(self, stage, note):
        """Set ``stage`` by hand on these commercial partners in the current
        company: it is locked, logged in the history and on the chatter."""
        self._lifecycle_check_manual_change()
        company = self.env.company
        now = fields.Datetime.now()
        partners = self.sudo().with_context(lifecycle_engine=True)
        history = []
        bodies = {}
        for partner in partners:
            since = partner.lifecycle_stage_date
            old = partner.lifecycle_stage_id
            history.append(
                {
                    "partner_id": partner.id,
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
            bodies[partner.id] = self.env._(
                "Lifecycle stage (%(company)s) set by hand: %(old)s → %(new)s. "
                "Reason: %(note)s",
                company=company.name,
                old=old.name or self.env._("none"),
                new=stage.name,
                note=note,
            )
            contacts = partner.with_context(active_test=False).search(
                [("commercial_partner_id", "=", partner.id)]
            )
            contacts.write(
                {
                    "lifecycle_stage_id": stage.id,
                    "lifecycle_stage_locked": True,
                    "lifecycle_stage_date": now,
                    "lifecycle_lock_purchase_count": partner.purchase_count,
                }
            )
        self.env["crm.lifecycle.history"].sudo().create(history)
        partners._message_log_batch(
            bodies=bodies, author_id=self.env.user.partner_id.id
        )

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
