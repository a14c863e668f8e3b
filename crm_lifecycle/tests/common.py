# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields
from odoo.tests import new_test_user

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from .. import series


class LifecycleCase(AccountTestInvoicingCommon):
    """Real invoices posted and paid through Odoo's own wizards."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the user of the tests manages sales (18.0's did, 19.0's does not)
        series.add_group_users(
            cls.env.ref("sales_team.group_sale_manager"), cls.env.user
        )
        cls.company = cls.env.company
        cls.engine = cls.env["crm.lifecycle.engine"]
        cls.Stage = cls.env["crm.lifecycle.stage"]
        cls.stage = {
            stage.code: stage
            for stage in cls.Stage.search(
                [("company_id", "in", [False, cls.company.id])]
            )
        }
        cls.salesman = new_test_user(
            cls.env,
            login="lifecycle_salesman",
            groups="sales_team.group_sale_salesman",
            company_id=cls.company.id,
        )
        cls.sales_manager = new_test_user(
            cls.env,
            login="lifecycle_manager",
            groups="sales_team.group_sale_manager",
            company_id=cls.company.id,
        )
        cls.company.write(
            {
                "lifecycle_default_interval_days": 90,
                "lifecycle_at_risk_factor": 1.5,
                "lifecycle_dormant_factor": 3.0,
                "lifecycle_lost_days": 365,
                "lifecycle_loyal_min_purchases": 4,
                "lifecycle_loyal_min_months": 12,
                "lifecycle_loyal_max_overdue_days": 30,
                "lifecycle_unlock_on": "purchase",
            }
        )
        cls.level = cls.create_levels(cls.company)

    @classmethod
    def create_levels(cls, company):
        """Bronze, Silver, Gold of ``company`` by code; thresholds on paid
        revenue of 12 months, paid purchases, tenure and overdue ratio."""
        Level = cls.env["crm.loyalty.level"]
        Level.search([("company_id", "=", company.id)]).unlink()
        rows = [
            ("bronze", 10, 0.0, 1, 0, 1.0, 3),
            ("silver", 20, 1000.0, 2, 0, 0.5, 3),
            ("gold", 30, 5000.0, 3, 0, 0.2, 6),
        ]
        return {
            code: Level.create(
                {
                    "name": code.title(),
                    "company_id": company.id,
                    "sequence": sequence,
                    "window_months": 12,
                    "min_paid_revenue": revenue,
                    "min_purchase_count": purchases,
                    "min_tenure_months": tenure,
                    "max_overdue_ratio": ratio,
                    "grace_months": grace,
                }
            )
            for code, sequence, revenue, purchases, tenure, ratio, grace in rows
        }

    @classmethod
    def create_client(cls, name="Client", **values):
        # invoices are due on their date: overdue days count from it
        immediate = cls.env.ref("account.account_payment_term_immediate")
        return cls.env["res.partner"].create(
            {
                "name": name,
                "is_company": True,
                "user_id": cls.salesman.id,
                "property_payment_term_id": immediate.id,
                **values,
            }
        )

    @classmethod
    def invoice(cls, partner, amount, date, post=True, move_type="out_invoice"):
        return cls.init_invoice(
            move_type,
            partner=partner,
            invoice_date=fields.Date.to_date(date),
            post=post,
            amounts=[amount],
            taxes=[],
        )

    @classmethod
    def pay(cls, move, amount=None, date=None):
        wizard = (
            cls.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=move.ids)
            .create(
                {
                    "amount": amount if amount is not None else move.amount_residual,
                    "payment_date": fields.Date.to_date(date)
                    if date
                    else move.invoice_date,
                }
            )
        )
        return wizard._create_payments()

    @classmethod
    def paid_invoice(cls, partner, amount, date, paid_on=None):
        move = cls.invoice(partner, amount, date)
        cls.pay(move, date=paid_on or date)
        return move

    @classmethod
    def reverse(cls, move, date, cancel=False):
        """Credit note through the reversal wizard; ``cancel`` fully reverses
        (posted and reconciled with the invoice), else a draft to post."""
        wizard = (
            cls.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=move.ids)
            .create(
                {
                    "reason": "test",
                    "journal_id": move.journal_id.id,
                    "date": fields.Date.to_date(date),
                }
            )
        )
        wizard.modify_moves() if cancel else wizard.refund_moves()
        return wizard.new_move_ids.filtered(lambda m: m.move_type == "out_refund")

    @classmethod
    def lead(cls, partner, lead_type="lead", **values):
        return cls.env["crm.lead"].create(
            {
                "name": f"Deal {partner.name}",
                "partner_id": partner.id,
                "type": lead_type,
                "user_id": cls.salesman.id,
                **values,
            }
        )

    def recompute(self, partners, company=None):
        self.engine._recompute(partners, company or self.company)

    def stage_of(self, partner, company=None):
        return partner.with_company(company or self.company).lifecycle_stage_id.code

    def last_history(self, partner, company=None, loyalty=False):
        """The last stage change of ``partner`` (level change with
        ``loyalty``)."""
        return self.env["crm.lifecycle.history"].search(
            [
                ("partner_id", "=", partner.commercial_partner_id.id),
                ("company_id", "=", (company or self.company).id),
                ("reason", "=" if loyalty else "!=", "loyalty"),
            ],
            limit=1,
        )
