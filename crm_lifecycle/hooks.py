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
    """Remove what Odoo's uninstall cannot: the module's own demo invoices
    are posted and paid (a posted or reconciled entry is not deleted with the
    module's data, and a reinstall then fails on it), and the engine's rows
    point to the module's stages, which Odoo deletes before the tables. Then
    drop the indexes the module added to account_move and
    account_move_line."""
    _remove_demo_moves(env)
    # the engine's output goes with the module's tables; its rows first, or
    # they keep Odoo from deleting the module's stages before the tables
    env.cr.execute(SQL("DELETE FROM crm_lifecycle_client"))
    for index in (
        "account_move_lifecycle_document_index",
        "account_move_line_lifecycle_payment_term_index",
    ):
        env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(index)))


def _remove_demo_moves(env):
    """Reset to draft and delete the invoices of the module's demo data and
    the payments registered on them, as an accountant would."""
    moves = (
        env["account.move"]
        .browse(
            env["ir.model.data"]
            .search([("module", "=", "crm_lifecycle"), ("model", "=", "account.move")])
            .mapped("res_id")
        )
        .exists()
    )
    if not moves:
        return
    payments = moves._get_reconciled_payments() | moves.matched_payment_ids
    payments.filtered(lambda payment: payment.state != "draft").action_draft()
    payments.unlink()
    moves.filtered(lambda move: move.state != "draft").button_draft()
    # the demo invoices are not the last of their journal's sequence when
    # other entries followed: Odoo asks for force_delete to leave the gap
    moves.with_context(force_delete=True).unlink()
