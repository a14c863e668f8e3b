# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import itertools

from odoo import api, fields, models
from odoo.tools import SQL

# RFM scores, 1 to 5 by fifths of the company's customers of the RFM period.
RECENCY_SCORES = [
    ("1", "1 — bought longest ago"),
    ("2", "2 — bought long ago"),
    ("3", "3 — bought a while ago"),
    ("4", "4 — bought recently"),
    ("5", "5 — bought most recently"),
]
FREQUENCY_SCORES = [
    ("1", "1 — fewest purchases"),
    ("2", "2 — few purchases"),
    ("3", "3 — some purchases"),
    ("4", "4 — many purchases"),
    ("5", "5 — most purchases"),
]
GRID_FIELDS = ("rfm_recency", "rfm_frequency")


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
    # the current company's, a column: 19.0 sums amounts only in a currency
    # it can group by
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
    # the axes of the RFM grid: every score is a row or a column, with what it
    # means, even when no client has it (``_read_group``)
    rfm_recency = fields.Selection(
        RECENCY_SCORES, string="Recency", readonly=True, group_expand=True
    )
    rfm_frequency = fields.Selection(
        FREQUENCY_SCORES, string="Frequency", readonly=True, group_expand=True
    )
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
        help="Clients who have not bought yet and have no weighted pipeline: "
        "the share of the clients of their stage that became customers within "
        "twelve months × the average first-year value of a customer.",
    )
    customer_capital = fields.Monetary(
        readonly=True,
        help="Value of active customers + weighted pipeline + potential of prospects.",
    )

    def _query(self):
        # amounts in the current company's currency at today's rate, as
        # sale.report converts them; ids are the client rows' (stable)
        currency_table = self.env["res.currency"]._get_simple_currency_table(
            self.env.companies
        )

        def money(column):
            return SQL(
                "coalesce(cl.%s, 0) * coalesce(account_currency_table.rate, 1)",
                SQL.identifier(column),
            )

        return SQL(
            """
            SELECT client.*,
                   active_clv + pipeline_expected_revenue + potential_value
                       AS customer_capital,
                   %(currency)s AS currency_id
              FROM (
            SELECT cl.id, cl.partner_id, cl.company_id,
                   p.user_id, u.sale_team_id AS team_id, p.industry_id,
                   p.country_id, p.state_id,
                   cl.stage_id, cl.loyalty_level_id, cl.rfm_segment_id,
                   nullif(cl.rfm_recency, 0)::varchar AS rfm_recency,
                   nullif(cl.rfm_frequency, 0)::varchar AS rfm_frequency,
                   coalesce(cl.rfm_monetary, 0) AS rfm_monetary,
                   1 AS client_count,
                   coalesce(cl.purchase_count, 0) AS purchase_count,
                   %(paid)s AS paid_revenue,
                   %(rfm_revenue)s AS rfm_revenue,
                   %(receivable)s AS receivable_open,
                   %(overdue)s AS receivable_overdue,
                   %(clv)s AS clv,
                   CASE WHEN s.is_customer_stage THEN %(clv)s ELSE 0 END
                       AS active_clv,
                   %(pipeline)s AS pipeline_expected_revenue,
                   %(potential)s AS potential_value
              FROM crm_lifecycle_client cl
              JOIN res_partner p ON p.id = cl.partner_id
              JOIN %(currency_table)s
                ON account_currency_table.company_id = cl.company_id
              LEFT JOIN crm_lifecycle_stage s ON s.id = cl.stage_id
              LEFT JOIN res_users u ON u.id = p.user_id
             WHERE p.active
               -- a client given a user since its last computation is no
               -- longer a client (the queue forgets its row)
               AND NOT EXISTS (SELECT 1 FROM res_users pu WHERE pu.partner_id = p.id)
              ) client
            """,
            currency_table=currency_table,
            currency=self.env.company.currency_id.id,
            paid=money("paid_revenue"),
            rfm_revenue=money("rfm_revenue"),
            receivable=money("receivable_open"),
            overdue=money("receivable_overdue"),
            clv=money("clv"),
            pipeline=money("pipeline_expected_revenue"),
            potential=money("potential_value"),
        )

    @property
    def _table_query(self):
        return self._query()

    @api.model
    def _read_group(
        self,
        domain,
        groupby=(),
        aggregates=(),
        having=(),
        offset=0,
        limit=None,
        order=None,
    ):
        """Grouped by the RFM scores only (the grid), every score is there,
        empty ones too: the pivot reads its cells in one grouping of rows
        and columns, where Odoo expands the groups of neither."""
        rows = super()._read_group(
            domain, groupby, aggregates, having, offset, limit, order
        )
        if (
            not groupby
            or having
            or offset
            or limit
            or any(spec not in GRID_FIELDS for spec in groupby)
        ):
            return rows
        width = len(groupby)
        found = {row[:width]: row for row in rows}
        # an empty cell counts nothing and sums to zero
        empty = tuple(
            0
            if spec == "__count" or spec.endswith((":sum", ":count"))
            else self._read_group_empty_value(spec)
            for spec in aggregates
        )
        grid = list(
            itertools.product(
                *(self._fields[spec].get_values(self.env) for spec in groupby)
            )
        )
        result = [found.pop(key, key + empty) for key in grid]
        # clients without scores, when the domain keeps them
        result += found.values()
        # in the order asked for, on the scores (ascending by default)
        for term in reversed((order or "").split(",")):
            name, _, direction = term.strip().partition(" ")
            if name in groupby:
                index = list(groupby).index(name)
                result.sort(
                    key=lambda row, index=index: row[index] or "",
                    reverse=direction.strip().lower() == "desc",
                )
        return result
