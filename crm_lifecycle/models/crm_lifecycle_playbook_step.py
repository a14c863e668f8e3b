# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

# Longest delay a step accepts: ten years.
MAX_DELAY_DAYS = 3650
# Events anchored on a date metric of the client (company-dependent field).
DATE_EVENTS = {
    "first_purchase": "first_purchase_date",
    "last_purchase": "last_purchase_date",
    "before_next_purchase": "expected_next_purchase_date",
}


class CrmLifecyclePlaybookStep(models.Model):
    """One automated action of a playbook: when it is due, what it does, for
    whom, and when it stops.

    Each step acts at most once per client, company and *cycle*; the cycle
    key of each trigger is documented on ``cycle_description`` and written on
    the run log (``crm.lifecycle.playbook.run``) whose unique constraint
    enforces it.
    """

    _name = "crm.lifecycle.playbook.step"
    _description = "Client Lifecycle Playbook Step"
    _order = "playbook_id, sequence, id"

    playbook_id = fields.Many2one(
        "crm.lifecycle.playbook", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="playbook_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    # When
    trigger = fields.Selection(
        [
            ("stage_entered", "Stage entered"),
            ("level_entered", "Loyalty level entered"),
            ("after_event", "Days after an event"),
            ("before_next_purchase", "Days before the expected next purchase"),
        ],
        required=True,
        default="stage_entered",
        help="Stage entered: the client entered the stage (lifecycle history) and "
        "is still in it, e.g. the at risk or dormant stage for a reactivation "
        "sequence. Loyalty level entered: the client reached the level "
        "(lifecycle history) and still holds it. Days after an event: the "
        "first or last paid purchase, the entry into a stage, or a posted "
        "invoice with a product of a category. "
        "Days before the expected next purchase: the date the engine expects "
        "from the client's purchase interval.",
    )
    event = fields.Selection(
        [
            ("first_purchase", "First purchase"),
            ("last_purchase", "Last purchase"),
            ("stage_entered", "Stage entered"),
            ("product_category_invoice", "Invoice with a product of a category"),
        ],
        default="last_purchase",
    )
    stage_id = fields.Many2one(
        "crm.lifecycle.stage",
        ondelete="restrict",
        domain="[('company_id', 'in', [False, company_id])]",
    )
    loyalty_level_id = fields.Many2one(
        "crm.loyalty.level",
        string="Loyalty Level",
        ondelete="restrict",
        domain="[('company_id', '=?', company_id)]",
    )
    product_categ_id = fields.Many2one(
        "product.category",
        string="Product Category",
        ondelete="restrict",
        help="Posted customer invoices with a product of this category (or of "
        "its subcategories); the date is the invoice date.",
    )
    delay_days = fields.Integer(
        string="Delay (days)",
        help="Days after the event (before the expected next purchase); 0 acts "
        "on the day itself.",
    )
    repeat_period = fields.Selection(
        [
            ("month", "Every month"),
            ("quarter", "Every quarter"),
            ("year", "Every year"),
        ],
        string="Repeat",
        help="Act again once per calendar period for as long as the client "
        "matches, e.g. a quarterly check-in of loyal clients. The cycle is "
        "then the period.",
    )
    cycle_description = fields.Char(
        string="Cycle", compute="_compute_cycle_description"
    )
    # What
    activity_type_id = fields.Many2one(
        "mail.activity.type",
        ondelete="set null",
        domain="['|', ('res_model', '=', False), ('res_model', '=', 'res.partner')]",
        help="Deleting the activity type deactivates the step (noted on the playbook).",
    )
    summary = fields.Char(translate=True, help="Summary of the activity.")
    note = fields.Html(translate=True, sanitize_style=True)
    deadline_days = fields.Integer(
        string="Deadline (days)",
        help="Days between the day the activity is scheduled and its deadline.",
    )
    template_id = fields.Many2one(
        "mail.template",
        string="E-mail Template",
        ondelete="set null",
        domain="[('model', '=', 'res.partner')]",
        help="Sent to the client and logged on its chatter with the activity.",
    )
    create_opportunity = fields.Boolean(
        help="Also create an opportunity named after the step (repeat purchase, "
        "upsell, trade-in...), for the responsible user.",
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        help="Team of the opportunity; by default the responsible user's team.",
    )
    # Who
    responsible = fields.Selection(
        [
            ("salesperson", "Salesperson of the client"),
            ("team_leader", "Leader of the salesperson's team"),
            ("fixed", "Fixed user"),
        ],
        required=True,
        default="salesperson",
        help="When this user is missing or archived, the playbook's fallback "
        "user gets the activity, else the user who last saved the playbook.",
    )
    user_id = fields.Many2one(
        "res.users", string="Fixed User", domain="[('share', '=', False)]"
    )
    # Stop
    stop_on_purchase = fields.Boolean(
        help="A paid purchase dated after the start of the cycle (e.g. after the "
        "client entered the stage) stops the step for that cycle: it is not "
        "done any more and its open activity is closed with a note.",
    )
    run_ids = fields.One2many("crm.lifecycle.playbook.run", "step_id")

    @api.depends("trigger", "event", "repeat_period")
    def _compute_cycle_description(self):
        for step in self:
            kind = step._event_kind()
            if step.repeat_period:
                text = self.env._("Once per calendar period while the client matches.")
            elif kind == "product_category_invoice":
                text = self.env._("Once per invoice.")
            elif kind in ("first_purchase", "last_purchase"):
                text = self.env._("Once per purchase date.")
            elif kind == "before_next_purchase":
                text = self.env._(
                    "Once per purchase cycle (from one paid purchase to the next)."
                )
            else:
                text = self.env._(
                    "Once per purchase cycle (from one paid purchase to the next): "
                    "entering the stage (level) again before a new purchase does "
                    "not repeat the step."
                )
            step.cycle_description = text

    @api.constrains("delay_days", "deadline_days")
    def _check_delays(self):
        for step in self:
            for fname in ("delay_days", "deadline_days"):
                value = step[fname]
                if not 0 <= value <= MAX_DELAY_DAYS:
                    raise ValidationError(
                        self.env._(
                            "%(field)s of step %(step)s must be between 0 and "
                            "%(max)s days, not %(value)s.",
                            field=self._fields[fname]._description_string(self.env),
                            step=step.name,
                            max=MAX_DELAY_DAYS,
                            value=value,
                        )
                    )

    @api.constrains(
        "active",
        "trigger",
        "event",
        "stage_id",
        "loyalty_level_id",
        "product_categ_id",
        "activity_type_id",
        "responsible",
        "user_id",
        "template_id",
    )
    def _check_configuration(self):
        root_category = self.env.ref(
            "product.product_category_all", raise_if_not_found=False
        )
        for step in self:
            kind = step._event_kind()
            if kind == "stage_entered" and not step.stage_id:
                raise ValidationError(
                    self.env._("Step %(step)s needs a stage.", step=step.name)
                )
            if kind == "level_entered" and not step.loyalty_level_id:
                raise ValidationError(
                    self.env._("Step %(step)s needs a loyalty level.", step=step.name)
                )
            if kind == "product_category_invoice" and not step.product_categ_id:
                raise ValidationError(
                    self.env._(
                        "Step %(step)s needs a product category.", step=step.name
                    )
                )
            if (
                kind == "product_category_invoice"
                and step.active
                and step.playbook_id.active
                and step.product_categ_id == root_category
            ):
                raise ValidationError(
                    self.env._(
                        "Step %(step)s counts from the invoices of the product "
                        "category %(category)s, that is from every invoice: choose "
                        "the category of the products it follows (e.g. Vehicles) "
                        "before activating it.",
                        step=step.name,
                        category=step.product_categ_id.display_name,
                    )
                )
            if step.responsible == "fixed" and not step.user_id:
                raise ValidationError(
                    self.env._("Step %(step)s needs a fixed user.", step=step.name)
                )
            if step.active and not step.activity_type_id:
                raise ValidationError(
                    self.env._("Step %(step)s needs an activity type.", step=step.name)
                )
            if step.template_id and step.template_id.model != "res.partner":
                raise ValidationError(
                    self.env._(
                        "The e-mail template of step %(step)s must be made for "
                        "contacts.",
                        step=step.name,
                    )
                )

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------
    def _event_kind(self):
        """What the step's date is counted from."""
        self.ensure_one()
        return self.event if self.trigger == "after_event" else self.trigger

    @api.model
    def _use_vehicles_category(self):
        """The car dealer steps shipped before the Vehicles category counted
        from the category All, that is from every invoice: they follow
        Vehicles (run at each install and update; steps moved to another
        category stay there)."""
        vehicles = self.env.ref(
            "crm_lifecycle.product_category_vehicles", raise_if_not_found=False
        )
        root = self.env.ref("product.product_category_all", raise_if_not_found=False)
        if not vehicles or not root:
            return
        names = [
            "playbook_car_dealer_step_courtesy",
            "playbook_car_dealer_step_service",
            "playbook_car_dealer_step_greeting",
            "playbook_car_dealer_step_trade_in",
        ]
        steps = self.browse(
            self.env["ir.model.data"]
            .search(
                [
                    ("module", "=", "crm_lifecycle"),
                    ("model", "=", self._name),
                    ("name", "in", names),
                ]
            )
            .mapped("res_id")
        ).exists()
        steps.filtered(lambda step: step.product_categ_id == root).write(
            {"product_categ_id": vehicles.id}
        )

    def _problem(self):
        """Why this step cannot run (its configuration lost a record), or
        ``False``."""
        self.ensure_one()
        if not self.activity_type_id:
            return self.env._("its activity type no longer exists.")
        return False

    def _deactivate(self, reason):
        """Deactivate the steps and say why on their playbook's chatter."""
        for step in self:
            step.playbook_id.message_post(
                body=self.env._(
                    "Step “%(step)s” was deactivated: %(reason)s",
                    step=step.name,
                    reason=reason,
                ),
            )
        self.write({"active": False})

    def _delay(self):
        """From the anchor date to the due date (backwards before the expected
        next purchase)."""
        self.ensure_one()
        sign = -1 if self._event_kind() == "before_next_purchase" else 1
        return timedelta(days=sign * self.delay_days)

    def _anchor_window(self, today):
        """Anchor dates whose due date falls in the catch-up window (any past
        due date for repeated steps), as (first or None, last)."""
        self.ensure_one()
        shift = self._delay()
        latest = today - shift
        if self.repeat_period:
            return None, latest
        earliest_due = today - timedelta(days=self.playbook_id.catch_up_days)
        return earliest_due - shift, latest

    def _stopped_by_purchase(self, last_purchase, cycle_start):
        """Whether a paid purchase after the start of the cycle stopped it."""
        return bool(last_purchase and cycle_start and last_purchase > cycle_start)

    def _period(self, today):
        """(start, label) of the calendar period of ``today`` for repeats."""
        if self.repeat_period == "month":
            return today.replace(day=1), f"{today:%Y-%m}"
        if self.repeat_period == "quarter":
            quarter = (today.month - 1) // 3
            return today.replace(month=quarter * 3 + 1, day=1), (
                f"{today.year}-Q{quarter + 1}"
            )
        return today.replace(month=1, day=1), str(today.year)

    def _date_condition(self, column, first, last):
        condition = SQL("%s <= %s", column, last)
        if first:
            condition = SQL("%s AND %s >= %s", condition, column, first)
        return condition

    def _query_entries(self, company, first, last):
        """Latest entry of each client into the step's stage (loyalty level),
        in the window: [(partner_id, entry date)]."""
        self.env["crm.lifecycle.history"].flush_model(
            ["partner_id", "company_id", "stage_to_id", "loyalty_to_id", "date"]
        )
        if self._event_kind() == "level_entered":
            target = SQL("loyalty_to_id = %s", self.loyalty_level_id.id)
        else:
            target = SQL("stage_to_id = %s", self.stage_id.id)
        self.env.cr.execute(
            SQL(
                """
                SELECT partner_id, entry FROM (
                    SELECT DISTINCT ON (partner_id) partner_id, date::date AS entry
                      FROM crm_lifecycle_history
                     WHERE company_id = %(company)s AND %(target)s
                     ORDER BY partner_id, date DESC, id DESC
                ) h
                 WHERE %(condition)s
                """,
                company=company.id,
                target=target,
                condition=self._date_condition(SQL("entry"), first, last),
            )
        )
        return self.env.cr.fetchall()

    def _query_category_invoices(self, company, first, last):
        """Posted customer invoices with a product of the step's category, in
        the window, that count for the engine (not fully reversed by a credit
        note): [(commercial partner id, invoice id, invoice date)]."""
        for model in ("account.move", "account.move.line", "product.product"):
            self.env[model].flush_model()
        self.env["product.template"].flush_model(["categ_id"])
        self.env["product.category"].flush_model(["parent_path"])
        self.env.cr.execute(
            SQL(
                """
                WITH doc AS (%(documents)s)
                SELECT m.partner_id, m.id, m.invoice_date
                  FROM doc m
                 WHERE m.move_type = 'out_invoice'
                   AND %(condition)s
                   AND EXISTS (
                       SELECT 1
                         FROM account_move_line l
                         JOIN product_product pp ON pp.id = l.product_id
                         JOIN product_template pt ON pt.id = pp.product_tmpl_id
                         JOIN product_category c ON c.id = pt.categ_id
                        WHERE l.move_id = m.id
                          AND l.display_type = 'product'
                          AND c.parent_path LIKE %(path)s)
                 ORDER BY m.invoice_date, m.id
                """,
                documents=self.env["crm.lifecycle.engine"]._documents(company),
                condition=self._date_condition(SQL("m.invoice_date"), first, last),
                path=f"{self.product_categ_id.parent_path}%",
            )
        )
        return self.env.cr.fetchall()

    def _collect_due(self, company, today):
        """What the step would do today in ``company``, without doing it.

        Returns a list of dicts (partner, cycle_key, cycle_start, due_date,
        user): clients already served in their cycle, cycles stopped by a
        purchase and clients outside the playbook's filter are left out. A
        constant number of queries whatever the number of clients; runs as
        superuser (callers check rights).
        """
        self.ensure_one()
        step = self.sudo()
        kind = step._event_kind()
        first, last = step._anchor_window(today)
        Partner = (
            self.env["res.partner"]
            .sudo()
            .with_company(company)
            .with_context(active_test=True)
        )
        domain = [
            *self.env["crm.lifecycle.engine"]._client_domain(),
            *step.playbook_id._get_filter_domain(),
        ]
        # anchors: (partner id, anchor date, cycle key or None, cycle start)
        anchors = []
        if kind in DATE_EVENTS:
            fname = DATE_EVENTS[kind]
            domain += [(fname, "<=", last)] + ([(fname, ">=", first)] if first else [])
            partners = Partner.search(domain, order="id")
            for partner in partners:
                anchor = partner[fname]
                start = (
                    partner.last_purchase_date
                    if fname != "first_purchase_date"
                    else anchor
                )
                key = f"purchase:{start}"
                anchors.append((partner.id, anchor, key, start))
        elif kind in ("stage_entered", "level_entered"):
            rows = step._query_entries(company, first, last)
            current = (
                ("lifecycle_stage_id", "=", step.stage_id.id)
                if kind == "stage_entered"
                else ("loyalty_level_id", "=", step.loyalty_level_id.id)
            )
            partners = Partner.search(
                domain + [("id", "in", [row[0] for row in rows]), current]
            )
            anchors = [(pid, entry, None, entry) for pid, entry in rows]
        else:
            rows = step._query_category_invoices(company, first, last)
            partners = Partner.search(domain + [("id", "in", [r[0] for r in rows])])
            anchors = [
                (pid, date, f"invoice:{move_id}", date) for pid, move_id, date in rows
            ]
        if not partners:
            return []
        partners.fetch(["user_id"])
        # computed for the whole recordset at once (the client rows)
        last_purchases = {
            partner.id: partner.last_purchase_date for partner in partners
        }
        existing = {
            (run.partner_id.id, run.cycle_key)
            for run in self.env["crm.lifecycle.playbook.run"]
            .sudo()
            .search_fetch(
                [
                    ("step_id", "=", step.id),
                    ("company_id", "=", company.id),
                    ("partner_id", "in", partners.ids),
                ],
                ["partner_id", "cycle_key"],
            )
        }
        users = step._responsible_users(partners)
        period_start, period = (
            step._period(today) if step.repeat_period else (None, None)
        )
        earliest_due = today - timedelta(days=step.playbook_id.catch_up_days)
        delay = step._delay()
        partner_ids = set(partners.ids)
        due = []
        for partner_id, anchor, key, start in anchors:
            if partner_id not in partner_ids:
                continue
            last_purchase = last_purchases[partner_id]
            due_date = anchor + delay
            if period:
                key = f"period:{period}"
                due_date = max(due_date, period_start)
            elif key is None:
                key = f"purchase:{last_purchase or 'none'}"
            if due_date > today or (not period and due_date < earliest_due):
                continue
            if step.stop_on_purchase and step._stopped_by_purchase(
                last_purchase, start
            ):
                continue
            if (partner_id, key) in existing:
                continue
            existing.add((partner_id, key))
            due.append(
                {
                    "partner_id": partner_id,
                    "cycle_key": key,
                    "cycle_start": start,
                    "due_date": due_date,
                    "user_id": users[partner_id].id,
                }
            )
        return due

    def _responsible_users(self, partners):
        """{partner id: user} of the activities; the fallback replaces a
        missing or archived user (an empty recordset when there is none)."""
        self.ensure_one()
        fallback = self.playbook_id._fallback_user()
        users = {}
        for partner in partners:
            if self.responsible == "salesperson":
                user = partner.user_id
            elif self.responsible == "team_leader":
                user = partner.user_id.sale_team_id.user_id
            else:
                user = self.user_id
            if not user.active or user.share:
                user = fallback
            users[partner.id] = user
        return users

    def _execute(self, due, company, today):
        """Schedule the activities (and send the template, create the
        opportunities) of ``due`` (from ``_collect_due``) and log the runs, in
        batch."""
        self.ensure_one()
        step = self.sudo()
        due = [values for values in due if values["user_id"]]
        if not due:
            return self.env["crm.lifecycle.playbook.run"]
        Partner = self.env["res.partner"].sudo().with_company(company)
        users = self.env["res.users"].sudo().browse({d["user_id"] for d in due})
        # the step's texts (activity, opportunity) in the language of each
        # responsible user: the user works with them, not the client
        localized_steps = {
            lang: step.with_context(lang=lang) for lang in set(users.mapped("lang"))
        }
        # the activities store the clients' names: read them all at once
        Partner.browse([values["partner_id"] for values in due]).mapped("display_name")
        deadline = today + timedelta(days=step.deadline_days)
        model_id = self.env["ir.model"]._get_id("res.partner")
        activity_values = []
        for values in due:
            user = users.browse(values["user_id"])
            localized = localized_steps[user.lang]
            activity_values.append(
                {
                    "res_model_id": model_id,
                    "res_id": values["partner_id"],
                    "activity_type_id": step.activity_type_id.id,
                    "summary": localized.summary or localized.name,
                    "note": localized.note,
                    "date_deadline": deadline,
                    "user_id": user.id,
                }
            )
        # the activity shows in the user's activity menu: no e-mail per activity
        activities = (
            self.env["mail.activity"]
            .sudo()
            .with_context(mail_activity_quick_update=True)
            .create(activity_values)
        )
        leads = self.env["crm.lead"]

        def opportunity_name(values):
            localized = localized_steps[users.browse(values["user_id"]).lang]
            return localized.env._(
                "%(step)s: %(client)s",
                step=localized.name,
                client=Partner.browse(values["partner_id"]).name,
            )

        if step.create_opportunity:
            leads = (
                self.env["crm.lead"]
                .sudo()
                .with_company(company)
                .create(
                    [
                        {
                            "name": opportunity_name(d),
                            "type": "opportunity",
                            "partner_id": d["partner_id"],
                            "user_id": d["user_id"],
                            "team_id": (
                                step.team_id or users.browse(d["user_id"]).sale_team_id
                            ).id,
                            "company_id": company.id,
                        }
                        for d in due
                    ]
                )
            )
        if step.template_id:
            by_user = {}
            for values in due:
                by_user.setdefault(values["user_id"], []).append(values["partner_id"])
            # e-mails go through the mail queue, not sent one by one here
            queued = Partner.with_context(mail_notify_force_send=False)
            for user_id, partner_ids in by_user.items():
                queued.browse(partner_ids).message_post_with_source(
                    step.template_id,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                    author_id=users.browse(user_id).partner_id.id,
                )
        now = fields.Datetime.now()
        return (
            self.env["crm.lifecycle.playbook.run"]
            .sudo()
            .create(
                [
                    {
                        "step_id": step.id,
                        "partner_id": values["partner_id"],
                        "company_id": company.id,
                        "cycle_key": values["cycle_key"],
                        "cycle_start": values["cycle_start"],
                        "due_date": values["due_date"],
                        "date": now,
                        "user_id": values["user_id"],
                        "activity_id": activity.id,
                        "lead_id": leads[index].id if leads else False,
                    }
                    for index, (values, activity) in enumerate(
                        zip(due, activities, strict=True)
                    )
                ]
            )
        )

    def _stop_cycles(self, company):
        """Close the open activities of cycles a new paid purchase stopped."""
        self.ensure_one()
        if not self.stop_on_purchase:
            return self.env["crm.lifecycle.playbook.run"]
        runs = (
            self.env["crm.lifecycle.playbook.run"]
            .sudo()
            .search(
                [
                    ("step_id", "=", self.id),
                    ("company_id", "=", company.id),
                    ("state", "=", "done"),
                    ("activity_id.active", "=", True),
                ]
            )
        )
        last_purchases = {
            partner.id: partner.last_purchase_date
            for partner in runs.partner_id.with_company(company)
        }
        stopped = runs.filtered(
            lambda run: self._stopped_by_purchase(
                last_purchases[run.partner_id.id], run.cycle_start
            )
        )
        if not stopped:
            return stopped
        # the note of the run in its responsible user's language (as the
        # activity), the chatter note in the client's
        languages = self.env["crm.lifecycle.engine"]._client_languages(
            stopped.partner_id, company
        )
        bodies = {}
        for run in stopped:
            purchase = last_purchases[run.partner_id.id]
            for_user = self.with_context(
                lang=run.user_id.lang or languages[run.partner_id.id]
            )
            run.note = for_user.env._(
                "Stopped by the purchase of %(date)s.",
                date=fields.Date.to_string(purchase),
            )
            for_client = self.with_context(lang=languages[run.partner_id.id])
            bodies[run.partner_id.id] = for_client.env._(
                "Playbook %(playbook)s: activity “%(activity)s” closed, the "
                "client purchased again on %(date)s.",
                playbook=for_client.playbook_id.name,
                activity=run.activity_id.summary or for_client.name,
                date=fields.Date.to_string(purchase),
            )
        activities = stopped.activity_id
        stopped.write({"state": "cancelled"})
        activities.unlink()
        stopped.partner_id._message_log_batch(bodies=bodies)
        return stopped
