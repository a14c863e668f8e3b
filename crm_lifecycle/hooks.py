# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.tools import SQL


def post_init_hook(env):
    """Give every company the default loyalty levels and queue every existing
    client: the cron computes them after the install, in batches, instead of
    the install doing it all at once."""
    env["crm.loyalty.level"]._create_company_defaults(env["res.company"].search([]))
    env["crm.lifecycle.engine"]._enqueue_all_clients()


def uninstall_hook(env):
    """Drop the index the module added to account_move."""
    env.cr.execute(
        SQL("DROP INDEX IF EXISTS account_move_lifecycle_commercial_partner_index")
    )
