# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""2.0.1: the daily recomputation runs ``_cron_enqueue_all_clients``, which
commits and is done again after a serialization failure. Its scheduled
action is ``noupdate`` data: its code is changed here, from what 2.0.0
(``_enqueue_all_clients``) or 1.0.0 (``enqueue_all``, a method that no
longer exists) wrote, unless an administrator changed it."""

from odoo import SUPERUSER_ID, api

OLD_CODES = ("model._enqueue_all_clients()", "model.enqueue_all()")
NEW_CODE = "model._cron_enqueue_all_clients()"


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    cron = env.ref("crm_lifecycle.ir_cron_lifecycle_daily", raise_if_not_found=False)
    if cron and (cron.code or "").strip() in OLD_CODES:
        cron.code = NEW_CODE
