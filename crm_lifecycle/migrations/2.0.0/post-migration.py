# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""2.0.0 (18.0.2.0.0; a folder name 18.0 and 19.0 both accept): the
lifecycle state of a client moves from company-dependent columns of
res_partner to one row per client and company of crm_lifecycle_client; the
queue accepts several rows per client."""

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL
from odoo.tools.safe_eval import safe_eval

from odoo.addons.crm_lifecycle.models.crm_lifecycle_client import PARTNER_FIELDS


def _columns(cr, table):
    cr.execute(
        SQL(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            table,
        )
    )
    return {row[0] for row in cr.fetchall()}


def _client_domain(domain, Client):
    """A rule domain over res.partner as a domain over crm.lifecycle.client:
    the partner's lifecycle fields by their client names, any other field of
    the client through ``partner_id``."""
    converted = []
    for leaf in domain:
        if isinstance(leaf, list | tuple) and len(leaf) == 3:
            name, operator, value = leaf
            root, _dot, rest = name.partition(".")
            if root in PARTNER_FIELDS:
                name = ".".join(filter(None, [PARTNER_FIELDS[root], rest]))
            elif root not in Client._fields or root in ("id", "display_name"):
                name = f"partner_id.{name}"
            leaf = (name, operator, value)
        converted.append(leaf)
    return converted


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    # stage rules were domains over res.partner
    Stage = env["crm.lifecycle.stage"].with_context(active_test=False)
    cr.execute(
        SQL(
            "SELECT id, rule_domain FROM crm_lifecycle_stage"
            " WHERE rule_domain IS NOT NULL AND rule_domain NOT IN ('', '[]')"
        )
    )
    for stage_id, rule in cr.fetchall():
        domain = safe_eval(rule)
        converted = repr(_client_domain(domain, env["crm.lifecycle.client"]))
        if converted != repr(list(domain)):
            cr.execute(
                SQL(
                    "UPDATE crm_lifecycle_stage SET rule_domain = %s WHERE id = %s",
                    converted,
                    stage_id,
                )
            )
    Stage.invalidate_model(["rule_domain"])
    Client = env["crm.lifecycle.client"]
    present = _columns(cr, "res_partner")
    moved = {
        partner_name: client_name
        for partner_name, client_name in PARTNER_FIELDS.items()
        if partner_name in present
        and client_name in Client._fields
        and Client._fields[client_name].store
        and client_name != "write_date"
    }
    # the report is a query of the client rows now, no longer a view over
    # the columns of res_partner
    cr.execute(SQL("DROP VIEW IF EXISTS crm_lifecycle_report"))
    if "lifecycle_stage_id" in present:
        # every company a client has a value in (the engine wrote
        # lifecycle_computed_date on each run, locks may exist alone)
        keys = SQL(" || ").join(
            SQL("coalesce(p.%s, '{}'::jsonb)", SQL.identifier(name))
            for name in ("lifecycle_computed_date", "lifecycle_stage_id")
            if name in present
        )
        values = SQL(", ").join(
            SQL(
                "(p.%s ->> k.company)::%s",
                SQL.identifier(partner_name),
                SQL(Client._fields[client_name].column_type[1]),
            )
            for partner_name, client_name in moved.items()
        )
        cr.execute(
            SQL(
                """
                INSERT INTO crm_lifecycle_client
                       (partner_id, company_id, %(columns)s,
                        create_uid, create_date, write_uid, write_date)
                SELECT p.id, k.company::int, %(values)s,
                       %(uid)s, now() at time zone 'UTC',
                       %(uid)s, coalesce(
                           (p.lifecycle_computed_date ->> k.company)::timestamp,
                           now() at time zone 'UTC')
                  FROM res_partner p
                 CROSS JOIN LATERAL jsonb_object_keys(%(keys)s) AS k(company)
                  JOIN res_company c ON c.id = k.company::int
                 WHERE p.id = p.commercial_partner_id
                ON CONFLICT (partner_id, company_id) DO NOTHING
                """,
                columns=SQL(", ").join(SQL.identifier(name) for name in moved.values()),
                values=values,
                uid=SUPERUSER_ID,
                keys=keys,
            )
        )
        for partner_name in moved:
            cr.execute(
                SQL(
                    "ALTER TABLE res_partner DROP COLUMN IF EXISTS %s",
                    SQL.identifier(partner_name),
                )
            )
        if "lifecycle_computed_date" in present:
            cr.execute(
                SQL("ALTER TABLE res_partner DROP COLUMN lifecycle_computed_date")
            )
    cr.execute(
        SQL(
            "ALTER TABLE crm_lifecycle_queue"
            " DROP CONSTRAINT IF EXISTS crm_lifecycle_queue_partner_company_uniq"
        )
    )
    # the stages of the previous release are kept (noupdate): dormant and
    # lost count as churn, as on a new install
    cr.execute(
        SQL(
            """
            UPDATE crm_lifecycle_stage SET counts_as_churn = TRUE
             WHERE id IN (SELECT res_id FROM ir_model_data
                           WHERE module = 'crm_lifecycle'
                             AND model = 'crm.lifecycle.stage'
                             AND name IN ('stage_dormant', 'stage_lost'))
            """
        )
    )
