# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools.safe_eval import safe_eval

from .. import series

# Stages whose condition is built in: the engine evaluates them from the
# client's metrics and the thresholds of the company's Settings.
BUILTIN_CODES = (
    "target",
    "prospect",
    "opportunity",
    "new_customer",
    "repeat_customer",
    "loyal",
    "at_risk",
    "dormant",
    "lost",
)
# A customer stage reached from one of these is logged as a reactivation.
CHURN_CODES = ("at_risk", "dormant", "lost")


@series.sql_constraints(
    (
        "code_company_uniq",
        "unique(code, company_id)",
        "A stage code must be unique per company.",
    ),
)
class CrmLifecycleStage(models.Model):
    _name = "crm.lifecycle.stage"
    _description = "Client Lifecycle Stage"
    _order = "sequence, id"

    # Identification
    name = fields.Char(required=True, translate=True)
    code = fields.Char(
        help="Technical code, stable across languages. The default stages "
        "(target, prospect, opportunity, new_customer, repeat_customer, loyal, "
        "advocate, at_risk, dormant, lost) have a built-in condition.",
    )
    sequence = fields.Integer(default=10, help="Order on the status bar and board.")
    active = fields.Boolean(default=True)
    fold = fields.Boolean(help="Folded on the lifecycle board and status bar.")
    color = fields.Integer()
    description = fields.Text(translate=True)
    company_id = fields.Many2one(
        "res.company", help="Leave empty to use the stage in every company."
    )
    # Automatic assignment
    priority = fields.Integer(
        string="Evaluation priority",
        default=10,
        help="The engine evaluates stages from the highest priority to the lowest "
        "and gives the client the first stage whose condition holds. The "
        "condition of a stage with a built-in code is that code's rule (with the "
        "thresholds of Settings) AND the rule domain below when one is set; the "
        "condition of any other stage is its rule domain alone, and a stage "
        "without one is only set by hand. Default precedence: lost, dormant, at "
        "risk, advocate, loyal, repeat customer, new customer, opportunity, "
        "prospect, target. A stage set by hand (locked) is never replaced.",
    )
    rule_domain = fields.Char(
        string="Rule",
        default="[]",
        help="Extra condition over the client's lifecycle state in the company "
        "(paid revenue, purchase count, receivables, opportunities, level...) "
        "and the client itself (Client > Country, Industry, Tags...).",
    )
    rule_error = fields.Text(
        readonly=True,
        copy=False,
        help="Why the rule failed the last time the engine evaluated it: the "
        "stage was skipped for those clients. Cleared when the rule evaluates "
        "again or is edited.",
    )
    is_customer_stage = fields.Boolean(
        help="Clients in this stage have bought and are active; reaching it from "
        "at risk, dormant or lost is logged as a reactivation.",
    )
    counts_as_churn = fields.Boolean(
        string="Counts as churn",
        help="A customer who enters this stage is counted as churned in the "
        "churn, retention and customer capital reports.",
    )
    partner_count = fields.Integer(compute="_compute_partner_count")

    def _compute_partner_count(self):
        groups = self.env["res.partner"]._read_group(
            [
                ("lifecycle_stage_id", "in", self.ids),
                ("is_lifecycle_client", "=", True),
            ],
            ["lifecycle_stage_id"],
            ["__count"],
        )
        counts = {stage.id: count for stage, count in groups}
        for stage in self:
            stage.partner_count = counts.get(stage.id, 0)

    @api.constrains("rule_domain")
    def _check_rule_domain(self):
        # rules are domains over the client rows (metrics, stage, level...
        # and the client itself through partner_id), evaluated in SQL: a
        # rule is run once on the clients of a company here, so that one
        # that would fail in the engine is refused now
        clients = self.env["crm.lifecycle.client"].sudo()
        for stage in self:
            try:
                domain = stage._get_rule_domain()
                series.validate_domain(domain, clients)
                if domain:
                    company = stage.company_id or self.env.company
                    with self.env.cr.savepoint():
                        clients.search_count(
                            [*domain, ("company_id", "=", company.id)], limit=1
                        )
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The rule of stage %(stage)s is not a valid domain over "
                        "clients: %(error)s",
                        stage=stage.name,
                        error=error,
                    )
                ) from error

    @api.ondelete(at_uninstall=False)
    def _unlink_except_builtin_or_used(self):
        for stage in self:
            if stage.code in BUILTIN_CODES:
                raise UserError(
                    self.env._(
                        "The stage %(stage)s is built in: archive it instead of "
                        "deleting it.",
                        stage=stage.name,
                    )
                )
        self._check_not_used(archive=False)

    def write(self, vals):
        if "rule_domain" in vals and "rule_error" not in vals:
            vals = {**vals, "rule_error": False}
        if vals.get("active") is False:
            self.filtered("active")._check_not_used(archive=True)
        return super().write(vals)

    def _check_not_used(self, archive):
        """Refuse to delete (or, with ``archive``, to archive) stages that
        clients are in or playbook steps use; deleting also keeps the stages
        that history rows recorded. The message names what uses them."""
        if not self:
            return
        env = self.sudo().env
        clients = dict(
            env["crm.lifecycle.client"]._read_group(
                [("stage_id", "in", self.ids)], ["stage_id"], ["__count"]
            )
        )
        steps = env["crm.lifecycle.playbook.step"].with_context(active_test=False)
        steps = steps.search([("stage_id", "in", self.ids)])
        history = {}
        if not archive:
            for column in ("stage_from_id", "stage_to_id"):
                for stage, count in env["crm.lifecycle.history"]._read_group(
                    [(column, "in", self.ids)], [column], ["__count"]
                ):
                    history[stage] = history.get(stage, 0) + count
        for stage in self:
            uses = []
            if clients.get(stage):
                uses.append(
                    self.env._("%(count)s clients are in it", count=clients[stage])
                )
            if history.get(stage):
                uses.append(
                    self.env._("%(count)s history rows record it", count=history[stage])
                )
            playbooks = steps.filtered(lambda step, s=stage: step.stage_id == s)
            if playbooks:
                uses.append(
                    self.env._(
                        "the playbooks %(playbooks)s use it",
                        playbooks=", ".join(
                            sorted(set(playbooks.playbook_id.mapped("name")))
                        ),
                    )
                )
            if not uses:
                continue
            if archive:
                message = self.env._(
                    "The stage %(stage)s cannot be archived: %(uses)s. Move "
                    "its clients to another stage and change those playbooks "
                    "first.",
                    stage=stage.name,
                    uses="; ".join(uses),
                )
            else:
                message = self.env._(
                    "The stage %(stage)s cannot be deleted: %(uses)s. Archive "
                    "it instead once no client is in it and no playbook uses it.",
                    stage=stage.name,
                    uses="; ".join(uses),
                )
            raise UserError(message)

    def _get_rule_domain(self):
        self.ensure_one()
        domain = safe_eval(self.rule_domain or "[]")
        if not isinstance(domain, list | tuple):
            raise ValueError(self.env._("a domain is a list of conditions"))
        self._check_searchable(self.env["crm.lifecycle.client"], domain)
        return list(domain)

    def _check_searchable(self, model, domain):
        # a field that cannot be searched would be ignored by the search
        # (with an error in the log), not refused: refuse it here
        for leaf in domain:
            if not isinstance(leaf, list | tuple) or len(leaf) != 3:
                continue
            path, operator, value = leaf
            if not isinstance(path, str):
                continue
            current = model
            for name in path.split("."):
                field = current._fields.get(name)
                if field is None:
                    break  # unknown fields: the domain parser says so
                if not (field.store or field.search):
                    raise ValueError(
                        self.env._("the field %(field)s cannot be searched", field=path)
                    )
                if not field.relational:
                    break
                current = self.env[field.comodel_name]
            else:
                if operator in ("any", "not any") and isinstance(value, list | tuple):
                    self._check_searchable(current, value)

    def action_view_partners(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.res_partner_action_lifecycle"
        )
        action["domain"] = [("lifecycle_stage_id", "=", self.id)]
        return action
