# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import split_every
from odoo.tools.safe_eval import safe_eval

from .. import series
from .crm_lifecycle_playbook_step import MAX_DELAY_DAYS

_logger = logging.getLogger(__name__)


class CrmLifecyclePlaybook(models.Model):
    """A sequence of activities scheduled automatically on clients by the
    daily cron "Lifecycle: run playbooks"."""

    _name = "crm.lifecycle.playbook"
    _description = "Client Lifecycle Playbook"
    _inherit = "mail.thread"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        tracking=True,
        help="Leave empty to run the playbook in every company.",
    )
    filter_domain = fields.Char(
        string="Clients",
        default="[]",
        help="Only clients matching this condition (in each company) get the "
        "playbook's activities.",
    )
    step_ids = fields.One2many(
        "crm.lifecycle.playbook.step",
        "playbook_id",
        string="Steps",
        copy=True,
        context={"active_test": False},
    )
    fallback_user_id = fields.Many2one(
        "res.users",
        string="Fallback User",
        domain="[('share', '=', False)]",
        tracking=True,
        help="Gets the activities whose responsible is missing or archived. "
        "When empty (or archived), the user who last saved the playbook gets "
        "them.",
    )
    catch_up_days = fields.Integer(
        string="Catch-up (days)",
        default=14,
        help="A step whose due date passed (the cron did not run, a payment came "
        "late, the playbook was just activated) is still done this many days "
        "later; older due dates are skipped.",
    )
    notes = fields.Html(translate=True)
    run_count = fields.Integer(compute="_compute_run_count")

    @api.depends("step_ids")
    def _compute_run_count(self):
        groups = self.env["crm.lifecycle.playbook.run"]._read_group(
            [("playbook_id", "in", self.ids)], ["playbook_id"], ["__count"]
        )
        counts = {playbook.id: count for playbook, count in groups}
        for playbook in self:
            playbook.run_count = counts.get(playbook.id, 0)

    @api.constrains("filter_domain")
    def _check_filter_domain(self):
        partners = self.env["res.partner"]
        for playbook in self:
            try:
                series.validate_domain(playbook._get_filter_domain(), partners)
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The client condition of playbook %(playbook)s is not a "
                        "valid domain: %(error)s",
                        playbook=playbook.name,
                        error=error,
                    )
                ) from error

    @api.constrains("active")
    def _check_active_steps(self):
        # a step is checked when it is activated, and when its playbook is
        self.filtered("active").step_ids.filtered("active")._check_configuration()

    @api.constrains("catch_up_days")
    def _check_catch_up_days(self):
        for playbook in self:
            if not 0 <= playbook.catch_up_days <= MAX_DELAY_DAYS:
                raise ValidationError(
                    self.env._(
                        "The catch-up of playbook %(playbook)s must be between 0 "
                        "and %(max)s days.",
                        playbook=playbook.name,
                        max=MAX_DELAY_DAYS,
                    )
                )

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_activate(self):
        """Start the playbook: the daily cron runs its active steps."""
        self.write({"active": True})
        return True

    def action_deactivate(self):
        self.write({"active": False})
        return True

    def action_preview(self):
        """What the playbook would do today, in a dialog; nothing is done."""
        self.ensure_one()
        # the steps collect the due clients as superuser
        if not self.env.user.has_group("crm_lifecycle.group_lifecycle_manager"):
            raise AccessError(
                self.env._("Only lifecycle managers can preview playbooks.")
            )
        self.check_access("read")
        today = fields.Date.context_today(self)
        lines = []
        for step in self.step_ids.filtered("active"):
            if step._problem():
                continue
            for company in self._target_companies(self.env.companies):
                for due in step._collect_due(company, today):
                    lines.append(
                        fields.Command.create(
                            {
                                "step_id": step.id,
                                "company_id": company.id,
                                "partner_id": due["partner_id"],
                                "due_date": due["due_date"],
                                "cycle_key": due["cycle_key"],
                                "user_id": due["user_id"] or False,
                            }
                        )
                    )
        preview = self.env["crm.lifecycle.playbook.preview"].create(
            {"playbook_id": self.id, "date": today, "line_ids": lines}
        )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Preview: %(playbook)s", playbook=self.name),
            "res_model": "crm.lifecycle.playbook.preview",
            "res_id": preview.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_view_runs(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.crm_lifecycle_playbook_run_action"
        )
        action["domain"] = [("playbook_id", "=", self.id)]
        return action

    # ------------------------------------------------------------------
    # Cron
    # ------------------------------------------------------------------
    @api.model
    def _cron_run_playbooks(self):
        self._run_playbooks(auto_commit=True)

    @api.model
    def _run_playbooks(self, today=None, auto_commit=False):
        """Do every due step of the active playbooks, step by step and
        company by company, with a constant number of queries per step and
        batch. A step that fails is rolled back, logged and noted on its
        playbook; the others go on. With ``auto_commit`` (the cron) every
        batch is committed. Returns the runs created."""
        self = self.sudo()
        today = today or fields.Date.context_today(self)
        Run = self.env["crm.lifecycle.playbook.run"]
        runs = Run
        batch_size = self.env["crm.lifecycle.engine"]._batch_size()
        steps = self.env["crm.lifecycle.playbook.step"].search(
            [("playbook_id.active", "=", True)]
        )
        for step in steps:
            problem = step._problem()
            if problem:
                step._deactivate(problem)
                if auto_commit:
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                continue
            for company in step.playbook_id._target_companies():
                try:
                    with self.env.cr.savepoint():
                        step._stop_cycles(company)
                        due = step._collect_due(company, today)
                    for batch in split_every(batch_size, due, list):
                        with self.env.cr.savepoint():
                            runs |= step._execute(batch, company, today)
                        if auto_commit:
                            # the cron commits each batch: a failure later never
                            # loses it
                            self.env.cr.commit()  # pylint: disable=invalid-commit
                except Exception as error:
                    self.env.invalidate_all()
                    _logger.exception(
                        "Lifecycle: playbook step %s failed in company %s",
                        step.id,
                        company.id,
                    )
                    step.playbook_id.message_post(
                        body=self.env._(
                            "Step “%(step)s” failed in %(company)s: %(error)s",
                            step=step.name,
                            company=company.name,
                            error=error,
                        )
                    )
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return runs

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------
    def _get_filter_domain(self):
        self.ensure_one()
        domain = safe_eval(self.filter_domain or "[]")
        if not isinstance(domain, list | tuple):
            raise ValueError(self.env._("a domain is a list of conditions"))
        return list(domain)

    def _target_companies(self, allowed=None):
        """The companies the playbook runs in (among ``allowed``)."""
        self.ensure_one()
        companies = allowed or self.env["res.company"].sudo().search([])
        if self.company_id:
            return companies & self.company_id
        return companies

    def _fallback_user(self):
        """Who gets the activities without an active responsible: the fallback
        user, else the user who last saved the playbook (an empty recordset
        when neither is an active internal user)."""
        self.ensure_one()
        for user in (self.fallback_user_id, self.write_uid):
            if user.active and not user.share:
                return user
        return self.env["res.users"]
