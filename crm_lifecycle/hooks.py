# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


def post_init_hook(env):
    """Give every company the default loyalty levels and queue every existing
    client: the cron computes them after the install, in batches, instead of
    the install doing it all at once."""
    env["crm.loyalty.level"]._create_company_defaults(env["res.company"].search([]))
    env["crm.lifecycle.engine"].enqueue_all()
