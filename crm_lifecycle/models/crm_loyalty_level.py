# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .. import series

# Thresholds that must not fall when the level rises (minimums).
RISING_THRESHOLDS = ("min_paid_revenue", "min_purchase_count", "min_tenure_months")


class CrmLoyaltyLevel(models.Model):
    """A loyalty tier earned with money and behaviour, not points.

    A client holds the highest level (by sequence) whose every threshold it
    meets. It rises at once; it falls only after ``grace_months`` below it.
    """

    _name = "crm.loyalty.level"
    _description = "Client Loyalty Level"
    _order = "company_id, sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(
        default=10, help="Higher sequence, higher level: thresholds rise with it."
    )
    active = fields.Boolean(default=True)
    color = fields.Integer()
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    # Thresholds
    window_months = fields.Integer(
        string="Revenue window (months)",
        default=12,
        help="Paid revenue is counted over this many months back from today.",
    )
    min_paid_revenue = fields.Monetary(
        string="Minimum paid revenue",
        help="Untaxed, paid, net of refunds, over the revenue window.",
    )
    min_purchase_count = fields.Integer(
        string="Minimum paid purchases", help="Paid customer invoices since the start."
    )
    min_tenure_months = fields.Integer(
        string="Minimum tenure (months)", help="Months since the first paid purchase."
    )
    max_overdue_ratio = fields.Float(
        string="Maximum overdue ratio",
        default=1.0,
        digits=(16, 4),
        help="Payment discipline: overdue receivable divided by the paid revenue "
        "of the window. 0 means nothing may be overdue.",
    )
    grace_months = fields.Integer(
        string="Grace period (months)",
        default=3,
        help="A client that no longer meets this level keeps it this many months "
        "before it falls to the level it meets.",
    )
    # What the client gets
    pricelist_id = fields.Many2one(
        "product.pricelist",
        help="Given to the client when it reaches this level, if Settings allow.",
        domain="[('company_id', 'in', [False, company_id])]",
    )
    benefits = fields.Html(translate=True)
    partner_count = fields.Integer(compute="_compute_partner_count")

    def _compute_partner_count(self):
        groups = self.env["res.partner"]._read_group(
            [("loyalty_level_id", "in", self.ids), ("is_lifecycle_client", "=", True)],
            ["loyalty_level_id"],
            ["__count"],
        )
        counts = {level.id: count for level, count in groups}
        for level in self:
            level.partner_count = counts.get(level.id, 0)

    @api.constrains(
        "sequence",
        "company_id",
        "active",
        "window_months",
        "max_overdue_ratio",
        "grace_months",
        *RISING_THRESHOLDS,
    )
    def _check_thresholds(self):
        for level in self:
            values = [level[name] for name in RISING_THRESHOLDS] + [
                level.max_overdue_ratio,
                level.grace_months,
            ]
            if min(values) < 0:
                raise ValidationError(
                    self.env._(
                        "Level %(level)s: thresholds cannot be negative.",
                        level=level.name,
                    )
                )
            if level.window_months < 1:
                raise ValidationError(
                    self.env._(
                        "Level %(level)s: the revenue window is at least one month.",
                        level=level.name,
                    )
                )
        for company in self.company_id:
            self._check_company_levels(company)

    def _check_company_levels(self, company):
        levels = self.search([("company_id", "=", company.id)], order="sequence, id")
        for lower, higher in zip(levels, levels[1:], strict=False):
            if lower.sequence == higher.sequence:
                raise ValidationError(
                    self.env._(
                        "Levels %(lower)s and %(higher)s have the same sequence: "
                        "which one is higher?",
                        lower=lower.name,
                        higher=higher.name,
                    )
                )
            falling = [
                higher._fields[name]._description_string(self.env)
                for name in RISING_THRESHOLDS
                if higher[name] < lower[name]
            ]
            if higher.max_overdue_ratio > lower.max_overdue_ratio:
                falling.append(
                    higher._fields["max_overdue_ratio"]._description_string(self.env)
                )
            if falling:
                raise ValidationError(
                    self.env._(
                        "Level %(higher)s is above %(lower)s but asks less: "
                        "%(fields)s. Thresholds must rise with the level.",
                        higher=higher.name,
                        lower=lower.name,
                        fields=", ".join(falling),
                    )
                )
            if all(higher[name] == lower[name] for name in RISING_THRESHOLDS):
                raise ValidationError(
                    self.env._(
                        "Levels %(lower)s and %(higher)s ask the same: they overlap.",
                        lower=lower.name,
                        higher=higher.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        levels = super().create(vals_list)
        if levels.pricelist_id:
            series.ensure_pricelist_feature(self.env)
        return levels

    def write(self, vals):
        result = super().write(vals)
        if vals.get("pricelist_id"):
            # on 19.0 a client has no pricelist unless the feature is on
            series.ensure_pricelist_feature(self.env)
        return result

    @api.model
    def _create_company_defaults(self, companies):
        """Give ``companies`` without levels a copy of the default levels
        (those of this module's data), amounts converted to their currency
        and without pricelist: a starting point to adjust."""
        defaults = self.browse()
        for name in ("bronze", "silver", "gold", "platinum"):
            defaults |= (
                self.env.ref(
                    f"crm_lifecycle.loyalty_level_{name}", raise_if_not_found=False
                )
                or self.browse()
            )
        defaults = defaults.sudo().filtered("active")
        if not defaults:
            return self.browse()
        with_levels = set(
            self.sudo()
            .with_context(active_test=False)
            .search([("company_id", "in", companies.ids)])
            .company_id.ids
        )
        today = fields.Date.context_today(self)
        created = self.browse()
        for company in companies.filtered(lambda c: c.id not in with_levels):
            for level in defaults:
                # copy() keeps the translations of the name and benefits
                created |= level.copy(
                    {
                        "company_id": company.id,
                        "pricelist_id": False,
                        "min_paid_revenue": level.currency_id._convert(
                            level.min_paid_revenue, company.currency_id, company, today
                        ),
                    }
                )
        return created

    def action_view_partners(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_lifecycle.res_partner_action_lifecycle"
        )
        action["domain"] = [("loyalty_level_id", "=", self.id)]
        action["context"] = {"group_by": "lifecycle_stage_id"}
        return action
