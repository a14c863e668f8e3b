# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from freezegun import freeze_time

from odoo.tests import new_test_user, tagged

from .common import LifecycleCase


@tagged("post_install", "-at_install")
class TestPartnerMerge(LifecycleCase):
    """Merging clients with Odoo's merge wizard: the survivor keeps a stage
    set by hand only if it was its own, and the histories of both."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.merger = new_test_user(
            cls.env,
            login="lifecycle_merger",
            groups="base.group_partner_manager,sales_team.group_sale_manager",
            company_id=cls.company.id,
        )

    def set_stage(self, partner, code):
        partner.with_user(self.sales_manager)._lifecycle_set_stage(
            self.stage[code], "Set by hand"
        )

    def merge(self, source, survivor):
        wizard = (
            self.env["base.partner.merge.automatic.wizard"]
            .with_user(self.merger)
            .create(
                {
                    "partner_ids": [(6, 0, (source | survivor).ids)],
                    "dst_partner_id": survivor.id,
                }
            )
        )
        wizard.action_merge()
        self.assertFalse(source.exists())

    def histories(self, partner):
        return self.env["crm.lifecycle.history"].search(
            [("partner_id", "=", partner.id), ("company_id", "=", self.company.id)]
        )

    @freeze_time("2026-03-01")
    def test_lock_of_the_merged_partner_is_not_inherited(self):
        source = self.create_client("Locked Source")
        self.paid_invoice(source, 1000.0, "2026-01-10")
        self.recompute(source)
        self.set_stage(source, "advocate")
        history = self.histories(source)
        self.assertTrue(history)
        # the survivor has no client row yet: Odoo moves the source's to it
        survivor = self.create_client("Survivor")
        self.paid_invoice(survivor, 700.0, "2026-02-10")
        self.merge(source, survivor)
        self.assertFalse(survivor.lifecycle_stage_locked)
        self.assertEqual(self.stage_of(survivor), "repeat_customer")
        self.assertEqual(survivor.purchase_count, 2)
        self.assertLessEqual(history, self.histories(survivor))
        note = survivor.message_ids.filtered(
            lambda message: "lifecycle histories of both are kept" in message.body
        )
        self.assertEqual(len(note), 1)
        self.assertIn("Locked Source", note.body)
        self.assertIn("removed in", note.body)

    @freeze_time("2026-03-01")
    def test_lock_of_the_survivor_is_kept(self):
        survivor = self.create_client("Locked Survivor")
        self.paid_invoice(survivor, 1000.0, "2026-01-10")
        self.recompute(survivor)
        self.set_stage(survivor, "advocate")
        source = self.create_client("Plain Source")
        self.paid_invoice(source, 700.0, "2026-02-10")
        self.recompute(source)
        histories = self.histories(source) | self.histories(survivor)
        self.merge(source, survivor)
        self.assertTrue(survivor.lifecycle_stage_locked)
        self.assertEqual(self.stage_of(survivor), "advocate")
        # the metrics are those of both
        self.assertEqual(survivor.purchase_count, 2)
        self.assertEqual(self.histories(survivor) & histories, histories)
        note = survivor.message_ids.filtered(
            lambda message: "lifecycle histories of both are kept" in message.body
        )
        self.assertIn("kept in", note.body)
