# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


def post_init_hook(env):
    """Queue every existing client: the cron computes their stages after the
    install, in batches, instead of the install doing it all at once."""
    env["crm.lifecycle.engine"].enqueue_all()
