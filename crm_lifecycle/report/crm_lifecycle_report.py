# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models, tools
from odoo.tools import SQL


class CrmLifecycleReport(models.Model):
    """One row per client and company, from the engine's stored results: the
    base of the RFM grid, the customer capital and the client analysis."""

    _name = "crm.lifecycle.report"
    _description = "Client Lifecycle Analysis"
    _auto = False
    _rec_name = "partner_id"
    _order = "customer_capital desc"

    partner_id = fields.Many2one("res.partner", string="Client", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    industry_id = fields.Many2one("res.partner.industry", readonly=True)
    country_id = fields.Many2one("res.country", readonly=True)
    state_id = fields.Many2one("res.country.state", string="Region", readonly=True)
    stage_id = fields.Many2one(
        "crm.lifecycle.stage", string="Lifecycle Stage", readonly=True
    )
    loyalty_level_id = fields.Many2one("crm.loyalty.level", readonly=True)
    rfm_segment_id = fields.Many2one("crm.rfm.segment", readonly=True)
    rfm_recency = fields.Integer(string="Recency", readonly=True, aggregator=None)
    rfm_frequency = fields.Integer(string="Frequency", readonly=True, aggregator=None)
    rfm_monetary = fields.Integer(string="Monetary", readonly=True, aggregator=None)
    client_count = fields.Integer(string="Clients", readonly=True)
    purchase_count = fields.Integer(string="Paid Purchases", readonly=True)
    paid_revenue = fields.Monetary(readonly=True)
    rfm_revenue = fields.Monetary(string="Revenue of the RFM period", readonly=True)
    receivable_open = fields.Monetary(string="Open Receivable", readonly=True)
    receivable_overdue = fields.Monetary(string="Overdue Receivable", readonly=True)
    clv = fields.Monetary(string="Client Lifetime Value", readonly=True)
    active_clv = fields.Monetary(
        string="Value of active customers",
        readonly=True,
        help="Client lifetime value of the clients in a customer stage.",
    )
    pipeline_expected_revenue = fields.Monetary(
        string="Weighted Pipeline", readonly=True
    )
    potential_value = fields.Monetary(
        string="Potential of prospects",
        readonly=True,
        help="Clients who have not bought yet × their stage's historical "
        "conversion rate × the average first-year value.",
    )
    customer_capital = fields.Monetary(
        readonly=True,
        help="Value of active customers + weighted pipeline + potential of prospects.",
    )

    def _company_value(self, column, sql_type):
        return SQL("(p.%s ->> c.id::text)::%s", SQL.identifier(column), SQL(sql_type))

    def _query(self):
        value = self._company_value
        return SQL(
            """
            SELECT client.*,
                   active_clv + pipeline_expected_revenue + potential_value
                       AS customer_capital
              FROM (
            SELECT row_number() OVER (ORDER BY p.id, c.id) AS id,
                   p.id AS partner_id, c.id AS company_id,
                   c.currency_id, p.user_id, u.sale_team_id AS team_id, p.industry_id,
                   p.country_id, p.state_id,
                   s.id AS stage_id,
                   %(level)s AS loyalty_level_id,
                   %(segment)s AS rfm_segment_id,
                   coalesce(%(recency)s, 0) AS rfm_recency,
                   coalesce(%(frequency)s, 0) AS rfm_frequency,
                   coalesce(%(monetary)s, 0) AS rfm_monetary,
                   1 AS client_count,
                   coalesce(%(purchases)s, 0) AS purchase_count,
                   coalesce(%(paid)s, 0) AS paid_revenue,
                   coalesce(%(rfm_revenue)s, 0) AS rfm_revenue,
                   coalesce(%(receivable)s, 0) AS receivable_open,
                   coalesce(%(overdue)s, 0) AS receivable_overdue,
                   coalesce(%(clv)s, 0) AS clv,
                   CASE WHEN s.is_customer_stage THEN coalesce(%(clv)s, 0)
                        ELSE 0 END AS active_clv,
                   coalesce(%(pipeline)s, 0) AS pipeline_expected_revenue,
                   coalesce(%(potential)s, 0) AS potential_value
              FROM res_partner p
              JOIN res_company c
                ON p.lifecycle_computed_date ? c.id::text
               AND (p.company_id IS NULL OR p.company_id = c.id)
              LEFT JOIN crm_lifecycle_stage s ON s.id = %(stage)s
              LEFT JOIN res_users u ON u.id = p.user_id
             -- the clients of the engine (crm.lifecycle.engine._client_domain)
             WHERE p.parent_id IS NULL
               AND p.partner_share
               AND p.id NOT IN (SELECT partner_id FROM res_company)
              ) client
            """,
            stage=value("lifecycle_stage_id", "int"),
            level=value("loyalty_level_id", "int"),
            segment=value("rfm_segment_id", "int"),
            recency=value("rfm_recency", "int"),
            frequency=value("rfm_frequency", "int"),
            monetary=value("rfm_monetary", "int"),
            purchases=value("purchase_count", "int"),
            paid=value("paid_revenue", "numeric"),
            rfm_revenue=value("rfm_revenue", "numeric"),
            receivable=value("receivable_open", "numeric"),
            overdue=value("receivable_overdue", "numeric"),
            clv=value("clv", "numeric"),
            pipeline=value("pipeline_expected_revenue", "numeric"),
            potential=value("lifecycle_potential_value", "numeric"),
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._query(),
            )
        )
