# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.tools import SQL


def post_init_hook(env):
    """Give every company the default loyalty levels and queue every existing
    client: the cron computes them after the install, in batches, instead of
    the install doing it all at once. The monthly history is rebuilt from
    accounting in the background too: a company sees its past the day it
    installs."""
    companies = env["res.company"].search([])
    env["crm.loyalty.level"]._create_company_defaults(companies)
    env["crm.lifecycle.engine"]._enqueue_all_clients()
    companies.lifecycle_snapshot_rebuild = True
    env.ref("crm_lifecycle.ir_cron_lifecycle_rebuild_snapshots")._trigger()


def uninstall_hook(env):
    """Drop the index the module added to account_move."""
    env.cr.execute(
        SQL("DROP INDEX IF EXISTS account_move_lifecycle_commercial_partner_index")
    )
