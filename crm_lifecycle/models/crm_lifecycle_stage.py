# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.osv import expression
from odoo.tools.safe_eval import safe_eval

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
    is_customer_stage = fields.Boolean(
        help="Clients in this stage have bought and are active; reaching it from "
        "at risk, dormant or lost is logged as a reactivation.",
    )
    partner_count = fields.Integer(compute="_compute_partner_count")

    _sql_constraints = [  # noqa: RUF012
        (
            "code_company_uniq",
            "unique(code, company_id)",
            "A stage code must be unique per company.",
        ),
    ]

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
        # and the client itself through partner_id), evaluated in SQL
        clients = self.env["crm.lifecycle.client"]
        for stage in self:
            try:
                domain = stage._get_rule_domain()
                expression.expression(domain, clients)
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The rule of stage %(stage)s is not a valid domain over "
                        "clients: %(error)s",
                        stage=stage.name,
                        error=error,
                    )
                ) from error

    def _get_rule_domain(self):
        self.ensure_one()
        domain = safe_eval(self.rule_domain or "[]")
        if not isinstance(domain, list | tuple):
            raise ValueError(self.env._("a domain is a list of conditions"))
        return list(domain)

    def action_view_partners(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.res_partner_action_lifecycle"
        )
        action["domain"] = [("lifecycle_stage_id", "=", self.id)]
        return action
