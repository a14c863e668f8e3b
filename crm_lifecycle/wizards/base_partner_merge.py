# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
from collections import defaultdict

from odoo import models
from odoo.tools import SQL


class BasePartnerMergeAutomaticWizard(models.TransientModel):
    _inherit = "base.partner.merge.automatic.wizard"

    def _merge(self, partner_ids, dst_partner=None, extra_checks=True):
        partners = self.env["res.partner"].browse(
            getattr(partner_ids, "ids", partner_ids)
        )
        names = {partner.id: partner.display_name for partner in partners.sudo()}
        # the stage of the clients created in this transaction, due when it
        # ends, first: the first savepoint of the merge would compute them
        # half-merged (some documents moved, the client rows not yet)
        self.env["res.partner"]._lifecycle_compute_pending()
        rows = self._lifecycle_client_rows(partners.ids)
        Snapshot = self.env["crm.lifecycle.snapshot"].sudo()
        counted = Snapshot._counted_companies(partners.ids)
        result = super()._merge(partner_ids, dst_partner, extra_checks)
        # Odoo moved the merged partners' snapshots to the survivor, or
        # deleted them where it had its own at the same month end
        for company in counted:
            Snapshot._refresh_totals(company)
        survivors = partners.exists()
        # invoices and leads of the merged partners now belong to the survivor
        self.env["crm.lifecycle.queue"].sudo()._enqueue(survivors.ids)
        if len(survivors) == 1 and len(names) > 1:
            self._lifecycle_after_merge(survivors, names, rows)
        return result

    def _lifecycle_client_rows(self, partner_ids):
        """{partner id: {company id: (stage locked, paid purchases)}} of the
        client rows of ``partner_ids``, whatever the user may read."""
        self.env["crm.lifecycle.client"].flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT partner_id, company_id, stage_locked, purchase_count"
                " FROM crm_lifecycle_client WHERE partner_id = ANY(%s)",
                list(partner_ids),
            )
        )
        rows = defaultdict(dict)
        for partner_id, company_id, locked, purchases in self.env.cr.fetchall():
            rows[partner_id][company_id] = (bool(locked), purchases or 0)
        return rows

    def _lifecycle_after_merge(self, survivor, names, rows):
        """Odoo moved the merged partners' client rows, with their stage lock,
        to the survivor where it had none (and dropped them where it had one):
        a stage set by hand stays only where the survivor itself was locked,
        then the survivor is recomputed in every company where one of them
        was a client. The history rows of both were moved by Odoo too."""
        own = rows.get(survivor.id, {})
        locked = sorted(company for company, (is_locked, _) in own.items() if is_locked)
        companies = sorted({company for row in rows.values() for company in row})
        if not companies:
            return
        # the merged partners' purchases are not new purchases of the
        # survivor: they must not end a lock it keeps ("unlock on purchase")
        merged_purchases = defaultdict(int)
        for partner_id, row in rows.items():
            if partner_id != survivor.id:
                for company, (_, purchases) in row.items():
                    merged_purchases[company] += purchases
        self.env["crm.lifecycle.client"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                UPDATE crm_lifecycle_client AS c
                   SET stage_locked = c.company_id = ANY(%(locked)s),
                       lock_purchase_count = CASE
                           WHEN c.company_id = ANY(%(locked)s)
                           THEN c.lock_purchase_count + COALESCE(
                               (%(merged)s::jsonb ->> c.company_id::text)::int, 0)
                           ELSE 0 END
                 WHERE c.partner_id = %(survivor)s
                """,
                locked=locked,
                merged=json.dumps(merged_purchases),
                survivor=survivor.id,
            )
        )
        self.env["crm.lifecycle.client"].invalidate_model(
            ["stage_locked", "lock_purchase_count"]
        )
        self.env["res.partner"].invalidate_model(
            ["lifecycle_stage_locked", "lifecycle_lock_purchase_count"]
        )
        Company = self.env["res.company"].sudo()
        removed = Company.browse(
            sorted(
                {
                    company
                    for partner_id, row in rows.items()
                    if partner_id != survivor.id
                    for company, (is_locked, _) in row.items()
                    if is_locked and company not in locked
                }
            )
        )
        merged = ", ".join(
            name for partner_id, name in names.items() if partner_id != survivor.id
        )
        lines = [
            self.env._(
                "Merged with %(partners)s: the lifecycle histories of both are kept.",
                partners=merged,
            )
        ]
        if locked:
            lines.append(
                self.env._(
                    "Stage set by hand kept in %(companies)s.",
                    companies=", ".join(Company.browse(locked).mapped("name")),
                )
            )
        if removed:
            lines.append(
                self.env._(
                    "Stage set by hand of the merged contact removed in "
                    "%(companies)s: the rules decide the stage.",
                    companies=", ".join(removed.mapped("name")),
                )
            )
        survivor.message_post(
            body=" ".join(lines), message_type="comment", subtype_xmlid="mail.mt_note"
        )
        self.env["crm.lifecycle.engine"].sudo()._recompute(
            survivor.sudo(), Company.browse(companies), force=True
        )
