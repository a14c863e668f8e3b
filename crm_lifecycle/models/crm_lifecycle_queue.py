# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from .crm_lifecycle_client import id_array, visible_in

# Namespace of the advisory locks a worker holds on the clients it computes.
LOCK_NAMESPACE = 0x4C43  # "LC"
PENDING_KEY = "crm_lifecycle.queue.pending"
MOVES_KEY = "account.move"
# Minutes before a client that failed is taken again (doubles each time).
RETRY_MINUTES = 15


class CrmLifecycleQueue(models.Model):
    """Clients waiting to be recomputed, per company.

    A business event adds the client to a set of the transaction; the set is
    written in one ``INSERT`` just before the commit. Rows are never updated
    nor locked by users: a client may have several rows, the worker that
    computes it removes those it saw, in the transaction that writes its
    result, so an event committed meanwhile keeps a row for the next run.
    """

    _name = "crm.lifecycle.queue"
    _description = "Clients to Recompute"
    _order = "id"
    _log_access = False

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", required=True, ondelete="cascade")
    attempts = fields.Integer(readonly=True)
    error = fields.Text(readonly=True)
    retry_date = fields.Datetime(readonly=True, index=True)

    def action_retry_now(self):
        """Take the failed clients again at the next run (managers)."""
        if not self.env.user.has_group("crm_lifecycle.group_lifecycle_manager"):
            raise AccessError(
                self.env._("Only lifecycle managers can retry failed clients.")
            )
        self.check_access("read")
        self.sudo().write({"retry_date": False})
        self.env.ref("crm_lifecycle.ir_cron_lifecycle_queue").sudo()._trigger()
        return True

    @api.model
    def _enqueue(self, partner_ids, company_ids=None, commercial=False):
        """Queue the commercial entities of ``partner_ids`` for ``company_ids``
        (and the companies above these branches; every company when not
        given), at the end of the transaction. With ``commercial``, the ids
        already are commercial entities."""
        partner_ids = {pid for pid in partner_ids if pid}
        if not partner_ids:
            return
        pending = self.env.cr.precommit.data.setdefault(PENDING_KEY, {})
        if not pending:
            self.env.cr.precommit.add(self._flush_pending)
        key = (None if company_ids is None else frozenset(company_ids), commercial)
        pending.setdefault(key, set()).update(partner_ids)

    @api.model
    def _enqueue_moves(self, move_ids):
        """Queue the clients of the customer invoices and credit notes
        ``move_ids``, in their company and the companies above it, at the end
        of the transaction (nothing is read now)."""
        if not move_ids:
            return
        pending = self.env.cr.precommit.data.setdefault(PENDING_KEY, {})
        if not pending:
            self.env.cr.precommit.add(self._flush_pending)
        pending.setdefault(MOVES_KEY, set()).update(move_ids)

    @api.model
    def _flush_pending(self):
        """Write the clients queued by this transaction: one INSERT per kind
        of event. A client is queued in the companies where it is visible
        (its commercial entity has no company, or that company) and, for a
        branch, in the companies above it."""
        pending = self.env.cr.precommit.data.pop(PENDING_KEY, None)
        if not pending:
            return
        self.env["res.partner"].flush_model(["commercial_partner_id", "company_id"])
        move_ids = pending.pop(MOVES_KEY, None)
        if move_ids:
            self.env["account.move"].flush_model(
                ["commercial_partner_id", "company_id", "move_type"]
            )
            self.env.cr.execute(
                SQL(
                    """
                    INSERT INTO crm_lifecycle_queue (partner_id, company_id)
                    SELECT DISTINCT cp.id, a.id
                      FROM account_move m
                      JOIN res_partner cp ON cp.id = m.commercial_partner_id
                      JOIN res_company c ON c.id = m.company_id
                      JOIN res_company a ON starts_with(c.parent_path, a.parent_path)
                     WHERE m.id = ANY(%s)
                       AND m.move_type IN ('out_invoice', 'out_refund')
                       AND %s
                    """,
                    sorted(move_ids),
                    visible_in(SQL("cp.company_id"), SQL("a.id")),
                )
            )
        for (company_ids, commercial), partner_ids in pending.items():
            if company_ids is None:
                companies = SQL("SELECT id FROM res_company")
            else:
                companies = SQL(
                    "SELECT DISTINCT a.id FROM res_company c"
                    " JOIN res_company a ON starts_with(c.parent_path, a.parent_path)"
                    " WHERE c.id = ANY(%s)",
                    sorted(company_ids),
                )
            self.env.cr.execute(
                SQL(
                    """
                    INSERT INTO crm_lifecycle_queue (partner_id, company_id)
                    SELECT DISTINCT cp.id, c.id
                      FROM res_partner p
                      JOIN res_partner cp ON cp.id = %s
                      JOIN (%s) AS c(id) ON %s
                     WHERE p.id = ANY(%s)
                    """,
                    SQL("p.id") if commercial else SQL("p.commercial_partner_id"),
                    companies,
                    visible_in(SQL("cp.company_id"), SQL("c.id")),
                    sorted(partner_ids),
                )
            )

    @api.model
    def _enqueue_all(self, partner_ids):
        """Queue the commercial ``partner_ids`` in every company where they
        are visible, now, leaving out those already waiting there."""
        self.env["res.partner"].flush_model(["company_id"])
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO crm_lifecycle_queue (partner_id, company_id)
                SELECT p.id, c.id
                  FROM res_partner p
                  JOIN res_company c ON %s
                 WHERE p.id = ANY(%s)
                   AND NOT EXISTS (
                       SELECT 1 FROM crm_lifecycle_queue q
                        WHERE q.partner_id = p.id AND q.company_id = c.id)
                """,
                visible_in(SQL("p.company_id"), SQL("c.id")),
                id_array(partner_ids),
            )
        )
        return self.env.cr.rowcount

    def _search(self, domain, *args, **kwargs):
        # what this transaction queued is part of the queue for its readers
        self._flush_pending()
        return super()._search(domain, *args, **kwargs)

    @api.model
    def _pending_count(self):
        self.env.cr.execute(SQL("SELECT count(*) FROM crm_lifecycle_queue"))
        return self.env.cr.fetchone()[0]

    @api.model
    def _take(self, size):
        """Lock up to ``size`` queued clients for this transaction (clients
        another worker holds are skipped) and return {company id: [partner
        ids]}. The lock is released with the transaction."""
        self._flush_pending()
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                WITH candidate AS MATERIALIZED (
                    SELECT id, company_id, partner_id FROM crm_lifecycle_queue
                     WHERE retry_date IS NULL OR retry_date <= %(now)s
                     ORDER BY id LIMIT %(window)s
                )
                SELECT company_id, partner_id FROM candidate
                 WHERE pg_try_advisory_xact_lock(%(namespace)s, partner_id)
                 LIMIT %(size)s
                """,
                now=fields.Datetime.now(),
                window=size * 4,
                namespace=LOCK_NAMESPACE,
                size=size,
            )
        )
        taken = {}
        for company_id, partner_id in self.env.cr.fetchall():
            partners = taken.setdefault(company_id, [])
            if partner_id not in partners:
                partners.append(partner_id)
        return taken

    @api.model
    def _done(self, company, partner_ids):
        """Remove the rows of ``partner_ids`` in ``company`` this transaction
        sees: rows committed after its snapshot stay."""
        if partner_ids:
            self.env.cr.execute(
                SQL(
                    "DELETE FROM crm_lifecycle_queue"
                    " WHERE company_id = %s AND partner_id = ANY(%s)",
                    company.id,
                    id_array(partner_ids),
                ),
                # a concurrent update fails the batch, taken again: not logged
                log_exceptions=False,
            )
            self.invalidate_model()

    @api.model
    def _failed(self, company, errors):
        """Keep the clients of ``errors`` ({partner id: message}) queued with
        their error, to be taken again later (managers see them)."""
        for partner_id, message in errors.items():
            self.env.cr.execute(
                SQL(
                    """
                    UPDATE crm_lifecycle_queue
                       SET attempts = coalesce(attempts, 0) + 1, error = %s,
                           retry_date = %s::timestamp
                               + make_interval(mins => %s * power(2, least(
                                   coalesce(attempts, 0), 6))::int)
                     WHERE company_id = %s AND partner_id = %s
                    """,
                    message,
                    fields.Datetime.now(),
                    RETRY_MINUTES,
                    company.id,
                    partner_id,
                )
            )
        self.invalidate_model()
