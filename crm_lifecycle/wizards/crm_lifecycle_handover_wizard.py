# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..models.crm_lifecycle_handover import OPEN_LEAD_DOMAIN, attached_to_domain

MANAGER_GROUPS = (
    "crm_lifecycle.group_lifecycle_manager",
    "sales_team.group_sale_manager",
)


class CrmLifecycleHandoverWizard(models.TransientModel):
    """Move a salesperson's portfolio to another salesperson or a sales team.

    The portfolio of a salesperson, in the wizard's company: the commercial
    clients whose salesperson they are (their contacts with the same
    salesperson follow), their open leads and opportunities, their open
    activities on those clients and leads, and their follower entries on them.
    After checking the user's rights the work is done as superuser: a sales
    manager acts on documents the record rules of the sales groups may hide.
    """

    _name = "crm.lifecycle.handover.wizard"
    _description = "Hand Over a Portfolio"

    # From whom to whom
    from_user_id = fields.Many2one(
        "res.users",
        string="From",
        required=True,
        domain="[('share', '=', False)]",
        context={"active_test": False},
        help="The salesperson who leaves the portfolio, archived or not.",
    )
    to_user_id = fields.Many2one(
        "res.users",
        string="To Salesperson",
        domain="[('share', '=', False), ('id', '!=', from_user_id), "
        "('company_ids', 'in', company_id)]",
    )
    to_team_id = fields.Many2one(
        "crm.team",
        string="To Sales Team",
        domain="[('company_id', 'in', [False, company_id])]",
        help="The clients are shared round-robin among the team's active members; "
        "a lead goes to whoever receives its client.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    # What to hand over
    include_clients = fields.Boolean(string="Clients", default=True)
    include_leads = fields.Boolean(string="Open Leads and Opportunities", default=True)
    include_activities = fields.Boolean(string="Open Activities", default=True)
    include_followers = fields.Boolean(string="Follower Entries", default=True)
    note = fields.Text(help="Kept in the handover log and on each client's dossier.")
    # Dry run: what the handover would move now
    client_count = fields.Integer(string="Clients to move", compute="_compute_counts")
    lead_count = fields.Integer(string="Leads to move", compute="_compute_counts")
    activity_count = fields.Integer(
        string="Activities to move", compute="_compute_counts"
    )
    follower_count = fields.Integer(
        string="Follower entries to replace", compute="_compute_counts"
    )
    preview = fields.Html(
        string="What would move",
        compute="_compute_counts",
        sanitize=False,
        help="The clients, leads and opportunities and activities the handover "
        "would move now, by name.",
    )
    distribution = fields.Text(compute="_compute_distribution")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if (
            "from_user_id" in fields_list
            and not values.get("from_user_id")
            and context.get("active_model") == "res.users"
            and context.get("active_id")
        ):
            values["from_user_id"] = context["active_id"]
        return values

    @api.depends(
        "from_user_id",
        "company_id",
        "include_clients",
        "include_leads",
        "include_activities",
        "include_followers",
    )
    def _compute_counts(self):
        for wizard in self:
            scope = wizard._handover_scope()
            wizard.update(wizard._handover_counts(scope))
            wizard.preview = wizard._handover_preview(scope)

    @api.depends("from_user_id", "to_user_id", "to_team_id", "company_id")
    def _compute_distribution(self):
        for wizard in self:
            members = wizard._handover_receiving_users()
            if not wizard.to_team_id or not members or not wizard.from_user_id:
                wizard.distribution = False
                continue
            scope = wizard._handover_scope()
            receivers = wizard._handover_receivers(scope, members)
            wizard.distribution = wizard._handover_distribution(scope, receivers)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_dry_run(self):
        """Check the input and show again the wizard with what would move."""
        self.ensure_one()
        self._check_handover()
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "name": self.env._("Hand Over Portfolio"),
        }

    def action_hand_over(self):
        self.ensure_one()
        self._check_handover()
        # the dossier reads the company-dependent stage and metrics
        self = self.with_company(self.company_id)
        scope = self._handover_scope()
        counts = self._handover_counts(scope)
        if not any(counts.values()):
            raise UserError(
                self.env._(
                    "%(user)s has nothing to hand over in %(company)s.",
                    user=self.from_user_id.name,
                    company=self.company_id.name,
                )
            )
        receivers = self._handover_receivers(scope, self._handover_receiving_users())
        distribution = self._handover_distribution(scope, receivers)
        if self.include_clients:
            self._hand_over_clients(scope, receivers)
        if self.include_leads:
            self._hand_over_leads(scope, receivers)
        if self.include_activities:
            self._hand_over_activities(scope, receivers)
        if self.include_followers:
            self._hand_over_followers(scope, receivers)
        if self.include_clients:
            self._post_dossiers(scope, receivers)
        note = "\n\n".join(text for text in (self.note, distribution) if text)
        handover = (
            self.env["crm.lifecycle.handover"]
            .sudo()
            .create(
                {
                    "user_id": self.env.uid,
                    "company_id": self.company_id.id,
                    "from_user_id": self.from_user_id.id,
                    "to_user_id": self.to_user_id.id,
                    "to_team_id": self.to_team_id.id,
                    "partner_ids": [
                        fields.Command.set(
                            scope["clients"].ids if self.include_clients else []
                        )
                    ],
                    "lead_ids": [
                        fields.Command.set(
                            scope["leads"].ids if self.include_leads else []
                        )
                    ],
                    "note": note or False,
                    **counts,
                }
            )
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": handover._name,
            "res_id": handover.id,
            "view_mode": "form",
            "target": "current",
        }

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------
    def _check_handover(self):
        """Rights first, then the input: a clear message for each mistake."""
        user = self.env.user
        if not self.env.su and not any(user.has_group(g) for g in MANAGER_GROUPS):
            raise AccessError(
                self.env._("Only sales managers can hand over a portfolio.")
            )
        for wizard in self:
            wizard._check_handover_companies()
            source, target, team = (
                wizard.from_user_id,
                wizard.to_user_id,
                wizard.to_team_id,
            )
            if not source:
                raise UserError(self.env._("Choose whose portfolio is handed over."))
            if target and team:
                raise UserError(
                    self.env._("Hand over to a salesperson or to a team, not both.")
                )
            if not target and not team:
                raise UserError(
                    self.env._(
                        "Choose the salesperson or the sales team who receives the "
                        "portfolio."
                    )
                )
            if target == source:
                raise UserError(
                    self.env._(
                        "%(user)s cannot hand over a portfolio to themselves.",
                        user=source.name,
                    )
                )
            if target and not target.active:
                raise UserError(
                    self.env._(
                        "%(user)s is archived: choose an active salesperson.",
                        user=target.name,
                    )
                )
            if target and target.share:
                raise UserError(
                    self.env._(
                        "%(user)s is not an internal user: a portfolio goes to a "
                        "salesperson.",
                        user=target.name,
                    )
                )
            if target and wizard.company_id not in target.company_ids:
                raise UserError(
                    self.env._(
                        "%(user)s has no access to the company %(company)s.",
                        user=target.name,
                        company=wizard.company_id.name,
                    )
                )
            if team and not wizard._handover_receiving_users():
                raise UserError(
                    self.env._(
                        "The sales team %(team)s has no active member (other than "
                        "%(user)s) who works in %(company)s.",
                        team=team.name,
                        user=source.name,
                        company=wizard.company_id.name,
                    )
                )
            if not (
                wizard.include_clients
                or wizard.include_leads
                or wizard.include_activities
                or wizard.include_followers
            ):
                raise UserError(
                    self.env._(
                        "Choose what to hand over: clients, leads, activities or "
                        "follower entries."
                    )
                )

    def _check_handover_companies(self):
        """A manager hands over only within their own companies: the wizard's
        company and every client, contact and lead of the portfolio (the
        handover works as superuser, record rules do not stop it)."""
        self.ensure_one()
        if self.env.su:
            return
        allowed = self.env.user.company_ids
        if self.company_id not in allowed:
            raise UserError(
                self.env._(
                    "You do not work in %(company)s: you cannot hand over its "
                    "portfolios.",
                    company=self.company_id.sudo().name,
                )
            )
        scope = self._handover_scope()
        outside = [
            record
            for record in [*(scope["clients"] | scope["contacts"]), *scope["leads"]]
            if record.company_id and record.company_id not in allowed
        ]
        if outside:
            raise UserError(
                self.env._(
                    "These records belong to companies you do not work in, they "
                    "cannot be handed over: %(records)s.",
                    records=", ".join(
                        f"{record.display_name} ({record.company_id.name})"
                        for record in outside
                    ),
                )
            )

    def _handover_receiving_users(self):
        """The users who receive the portfolio, in round-robin order."""
        self.ensure_one()
        if self.to_user_id:
            return self.to_user_id
        members = self.to_team_id.sudo().member_ids.filtered(
            lambda user: user.active
            and not user.share
            and user != self.from_user_id
            and self.company_id in user.company_ids
        )
        return members.sorted(lambda user: (user.name or "", user.id))

    def _handover_scope(self):
        """The portfolio of the source salesperson in the wizard's company, as
        superuser: ``clients`` (commercial entities), ``contacts`` (their
        contacts with the same salesperson), ``leads`` (open), ``activities``
        (open, assigned to them) and ``followers`` (their entries)."""
        self.ensure_one()
        env = self.sudo().env
        source = self.from_user_id
        company = self.company_id
        scope = {
            "clients": env["res.partner"],
            "contacts": env["res.partner"],
            "leads": env["crm.lead"],
            "activities": env["mail.activity"],
            "followers": env["mail.followers"],
        }
        if not source or not company:
            return scope
        if not self.env.su and company not in self.env.user.company_ids:
            # nothing to show of a company the user does not work in
            return scope
        # the contacts of internal users and of companies are not clients
        staff = (
            env["res.users"]
            .with_context(active_test=False)
            .search([("share", "=", False)])
            .partner_id
            | env["res.company"].search([]).partner_id
        )
        clients = (
            env["res.partner"]
            .search(
                [
                    ("user_id", "=", source.id),
                    ("company_id", "in", [False, company.id]),
                    ("id", "not in", staff.ids),
                ],
                order="id",
            )
            .filtered(lambda partner: partner.commercial_partner_id == partner)
        )
        contacts = (
            env["res.partner"]
            .with_context(active_test=False)
            .search(
                [
                    ("commercial_partner_id", "in", clients.ids),
                    ("id", "not in", (clients | staff).ids),
                    ("user_id", "=", source.id),
                ],
                order="id",
            )
        )
        leads = env["crm.lead"].search(
            [
                ("user_id", "=", source.id),
                ("company_id", "in", [False, company.id]),
                *OPEN_LEAD_DOMAIN,
            ],
            order="id",
        )
        documents = attached_to_domain((clients | contacts).ids, leads.ids)
        scope.update(
            clients=clients,
            contacts=contacts,
            leads=leads,
            activities=env["mail.activity"].search(
                [("user_id", "=", source.id), *documents], order="id"
            ),
            followers=env["mail.followers"].search(
                [("partner_id", "=", source.partner_id.id), *documents], order="id"
            ),
        )
        return scope

    def _handover_counts(self, scope):
        self.ensure_one()
        return {
            "client_count": len(scope["clients"]) if self.include_clients else 0,
            "lead_count": len(scope["leads"]) if self.include_leads else 0,
            "activity_count": len(scope["activities"])
            if self.include_activities
            else 0,
            "follower_count": len(scope["followers"]) if self.include_followers else 0,
        }

    def _handover_preview(self, scope):
        """What would move, by name: a list per kind of document."""
        self.ensure_one()
        limit = 50
        sections = [
            (self.include_clients, self.env._("Clients"), scope["clients"]),
            (
                self.include_leads,
                self.env._("Leads and opportunities"),
                scope["leads"],
            ),
            (
                self.include_activities,
                self.env._("Activities"),
                scope["activities"],
            ),
        ]
        html = Markup()
        for included, title, records in sections:
            if not included or not records:
                continue
            items = Markup().join(
                Markup("<li>%s</li>") % self._handover_preview_name(record)
                for record in records[:limit]
            )
            if len(records) > limit:
                items += Markup("<li>%s</li>") % self.env._(
                    "and %(count)s more", count=len(records) - limit
                )
            html += Markup("<p><strong>%s</strong></p><ul>%s</ul>") % (title, items)
        return html or False

    @api.model
    def _handover_preview_name(self, record):
        if record._name != "mail.activity":
            return record.display_name
        return self.env._(
            "%(activity)s on %(document)s",
            activity=record.summary or record.activity_type_id.name,
            document=record.res_name,
        )

    def _handover_receivers(self, scope, users):
        """Who receives each document: ``{(model, id): user}``. One user takes
        all; in a team, clients go round-robin and their contacts, leads,
        activities and follower entries go with them; leads without a client
        in the portfolio continue the round."""
        self.ensure_one()
        receivers = {}
        if not users:
            return receivers
        turn = 0

        def next_user():
            nonlocal turn
            user = users[turn % len(users)]
            turn += 1
            return user

        for client in scope["clients"]:
            receivers["res.partner", client.id] = next_user()
        for contact in scope["contacts"]:
            receivers["res.partner", contact.id] = receivers[
                "res.partner", contact.commercial_partner_id.id
            ]
        for lead in scope["leads"]:
            client = lead.partner_id.commercial_partner_id
            receivers["crm.lead", lead.id] = (
                receivers.get(("res.partner", client.id)) or next_user()
            )
        return receivers

    def _handover_distribution(self, scope, receivers):
        """A line per receiving user of a team: how many clients and leads."""
        self.ensure_one()
        if not self.to_team_id:
            return False
        clients = defaultdict(int)
        leads = defaultdict(int)
        for client in scope["clients"]:
            clients[receivers["res.partner", client.id]] += 1
        for lead in scope["leads"]:
            leads[receivers["crm.lead", lead.id]] += 1
        return "\n".join(
            self.env._(
                "%(user)s: %(clients)s clients, %(leads)s leads",
                user=user.name,
                clients=clients[user],
                leads=leads[user],
            )
            for user in self._handover_receiving_users()
        )

    @api.model
    def _group_by_receiver(self, records, receivers, key):
        groups = defaultdict(lambda: records.browse())
        for record in records:
            groups[receivers[key(record)]] |= record
        return groups.items()

    def _hand_over_clients(self, scope, receivers):
        partners = (scope["clients"] | scope["contacts"]).with_context(
            mail_auto_subscribe_no_notify=True
        )
        for user, group in self._group_by_receiver(
            partners, receivers, lambda partner: ("res.partner", partner.id)
        ):
            group.write({"user_id": user.id})

    def _hand_over_leads(self, scope, receivers):
        leads = scope["leads"].with_context(mail_auto_subscribe_no_notify=True)
        values = {"team_id": self.to_team_id.id} if self.to_team_id else {}
        for user, group in self._group_by_receiver(
            leads, receivers, lambda lead: ("crm.lead", lead.id)
        ):
            group.write({"user_id": user.id, **values})

    def _hand_over_activities(self, scope, receivers):
        # one summary on each client, not one email per activity
        activities = scope["activities"].with_context(mail_activity_quick_update=True)
        for user, group in self._group_by_receiver(
            activities,
            receivers,
            lambda activity: (activity.res_model, activity.res_id),
        ):
            group.write({"user_id": user.id})

    def _hand_over_followers(self, scope, receivers):
        """Replace the source's follower entries by the receiver's, keeping the
        subtypes; when the receiver already follows, the subtypes are merged."""
        entries = scope["followers"]
        existing = {
            (entry.res_model, entry.res_id, entry.partner_id): entry
            for entry in entries.search(
                [
                    ("partner_id", "in", [u.partner_id.id for u in receivers.values()]),
                    *attached_to_domain(
                        (scope["clients"] | scope["contacts"]).ids, scope["leads"].ids
                    ),
                ]
            )
        }
        duplicates = entries.browse()
        for entry in entries:
            receiver = receivers[entry.res_model, entry.res_id]
            kept = existing.get((entry.res_model, entry.res_id, receiver.partner_id))
            if kept:
                kept.subtype_ids |= entry.subtype_ids
                duplicates |= entry
        for user, group in self._group_by_receiver(
            entries - duplicates,
            receivers,
            lambda entry: (entry.res_model, entry.res_id),
        ):
            group.partner_id = user.partner_id
        duplicates.unlink()

    def _post_dossiers(self, scope, receivers):
        for client in scope["clients"]:
            body = client._lifecycle_handover_dossier_body(
                self.from_user_id,
                receivers["res.partner", client.id],
                note=self.note,
            )
            client.message_post(
                body=body, message_type="comment", subtype_xmlid="mail.mt_note"
            )
