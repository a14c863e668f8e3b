# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import inspect
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from .. import series
from ..models.res_partner import ENGINE_FIELDS, MONEY_FIELDS
from .common import LifecycleCase

# The ORM's own API (create, read, search, ...), guarded by the access rights
# and rules of each model, is not listed here.
ORM_METHODS = {"create", "write", "unlink", "copy", "default_get"}

# Public methods of the module reachable by RPC that do something without any
# check of their own, with the reason it is harmless.
ALLOWED = {
    ("account.move", "init"): "Odoo's schema hook, public on every model: it "
    "creates the module's index if missing (idempotent, no data).",
    ("account.move.line", "init"): "Odoo's schema hook, as above: it creates "
    "the index of payment term lines if missing (idempotent, no data).",
    ("account.partial.reconcile", "init"): "Odoo's schema hook, as above: it "
    "creates the index of reconciliations by date if missing (idempotent, no "
    "data).",
    ("crm.lifecycle.snapshot", "init"): "Odoo's schema hook, as above: it "
    "creates the snapshots' index if missing (idempotent, no data).",
    ("crm.lifecycle.snapshot.total", "init"): "Odoo's schema hook, as above: "
    "it creates the totals' index if missing and counts the snapshots of the "
    "companies that have none (idempotent, derived data only).",
}

# Every other public method: refused to a portal user with no effect. Those
# marked "manager" are also refused to a salesperson; "own" ones are refused
# to a salesperson ("own documents only") on a colleague's client.
GUARDED = {
    ("res.partner", "action_lifecycle_recompute"): "user",
    ("res.partner", "action_lifecycle_unlock"): "own",
    ("res.partner", "action_lifecycle_change_stage"): "user",
    ("res.partner", "action_view_lifecycle_history"): "user",
    ("res.config.settings", "action_lifecycle_recompute_all"): "manager",
    ("res.config.settings", "action_lifecycle_rebuild_snapshots"): "manager",
    ("crm.lifecycle.queue", "action_retry_now"): "manager",
    ("crm.lifecycle.playbook", "action_activate"): "manager",
    ("crm.lifecycle.playbook", "action_deactivate"): "manager",
    ("crm.lifecycle.playbook", "action_preview"): "manager",
    ("crm.lifecycle.playbook", "action_view_runs"): "user",
    ("crm.lifecycle.stage", "action_view_partners"): "user",
    ("crm.loyalty.level", "action_view_partners"): "user",
    ("crm.lifecycle.stage.wizard", "action_apply"): "own",
    ("crm.lifecycle.handover.wizard", "action_dry_run"): "manager",
    ("crm.lifecycle.handover.wizard", "action_hand_over"): "manager",
}


def module_public_methods(env):
    """{(model, method)} of the public methods the module's classes define."""
    found = set()
    for name in env.registry:
        for cls in type(env[name]).__mro__:
            if not cls.__module__.startswith("odoo.addons.crm_lifecycle."):
                continue
            for attr, value in vars(cls).items():
                if (
                    not attr.startswith("_")
                    and inspect.isfunction(value)
                    and attr not in ORM_METHODS
                ):
                    found.add((name, attr))
    return found


@tagged("post_install", "-at_install")
class TestSecurity(LifecycleCase):
    """Issue 12: entry points, engine fields and the money, as real users
    with the lowest groups."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.colleague = new_test_user(
            cls.env,
            login="lifecycle_colleague",
            groups="sales_team.group_sale_salesman",
            company_id=cls.company.id,
        )
        cls.all_docs = new_test_user(
            cls.env,
            login="lifecycle_all_docs",
            groups="sales_team.group_sale_salesman_all_leads",
            company_id=cls.company.id,
        )
        cls.portal = new_test_user(
            cls.env,
            login="lifecycle_portal",
            groups="base.group_portal",
            company_id=cls.company.id,
        )
        cls.own_client = cls.create_client("Own Client")
        cls.own_contact = cls.env["res.partner"].create(
            {"name": "Own Contact", "parent_id": cls.own_client.id}
        )
        cls.other_client = cls.create_client(
            "Colleague's Client", user_id=cls.colleague.id
        )
        today = fields.Date.context_today(cls.env["res.partner"])
        cls.paid_invoice(cls.own_client, 1000.0, today - timedelta(days=20))
        cls.paid_invoice(cls.other_client, 3000.0, today - timedelta(days=20))
        cls.invoice(cls.other_client, 500.0, today - timedelta(days=10))
        cls.engine._recompute(cls.own_client | cls.other_client, cls.company)
        cls.env.flush_all()

    def effects(self):
        """What the engine, the queue and the playbooks write, once the
        transaction's end hooks have run (as its commit would run them)."""
        self.env["crm.lifecycle.queue"].sudo()._flush_pending()
        self.env.cr.flush()
        self.env.cr.execute(
            SQL(
                """
                SELECT (SELECT array_agg(row_to_json(c)::text ORDER BY c.id)
                          FROM crm_lifecycle_client c),
                       (SELECT array_agg(row_to_json(q)::text ORDER BY q.id)
                          FROM crm_lifecycle_queue q),
                       (SELECT count(*) FROM crm_lifecycle_history),
                       (SELECT count(*) FROM mail_activity),
                       (SELECT count(*) FROM mail_message
                         WHERE model = 'res.partner')
                """
            )
        )
        return self.env.cr.fetchone()

    def stale(self):
        # a recomputation would be seen: the stored results are wrong, and
        # not what the engine computed them from
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lifecycle_client"
                " SET paid_revenue = 1, stage_id = NULL, facts_key = NULL"
            )
        )
        self.env.invalidate_all()

    def call_as(self, user, model, method, ids, context=None):
        """Call ``method`` as XML-RPC does."""
        records = self.env[model].with_user(user)
        kwargs = {"context": context} if context else {}
        return series.call_kw(records, method, [ids], kwargs)

    def assert_refused(self, user, model, method, ids, context=None):
        self.stale()
        before = self.effects()
        # no savepoint: what the method did before refusing stays visible
        # (an AccessError is a UserError)
        refused = False
        try:
            self.call_as(user, model, method, ids, context)
        except UserError:
            refused = True
        self.assertTrue(refused, f"{model}.{method} not refused to {user.login}")
        self.env.invalidate_all()
        self.assertEqual(self.effects(), before, f"{model}.{method} did something")

    def sample_ids(self):
        """A record of each model to call the methods on; for a salesperson,
        the colleague's client and a stage change of it."""
        env = self.env
        queue = env["crm.lifecycle.queue"].sudo()
        queue._enqueue(self.other_client.ids, self.company.ids)
        queue._flush_pending()
        stage_wizard = (
            env["crm.lifecycle.stage.wizard"]
            .with_user(self.salesman)
            .create(
                {
                    "partner_ids": [(6, 0, self.other_client.ids)],
                    "stage_id": self.stage["lost"].id,
                    "reason": "Moved",
                }
            )
        )
        return {
            "res.partner": self.other_client.ids,
            "res.config.settings": env["res.config.settings"].create({}).ids,
            "crm.lifecycle.queue": queue.search([]).ids,
            "crm.lifecycle.playbook": env["crm.lifecycle.playbook"]
            .create({"name": "Welcome"})
            .ids,
            "crm.lifecycle.stage": self.stage["lost"].ids,
            "crm.loyalty.level": self.level["gold"].ids,
            "crm.lifecycle.stage.wizard": stage_wizard.ids,
            "crm.lifecycle.handover.wizard": env["crm.lifecycle.handover.wizard"]
            .create({"from_user_id": self.colleague.id, "to_user_id": self.salesman.id})
            .ids,
        }

    # ------------------------------------------------------------------
    # 1. Entry points
    # ------------------------------------------------------------------
    def test_every_public_method_is_classified(self):
        found = module_public_methods(self.env)
        unclassified = found - set(ALLOWED) - set(GUARDED)
        self.assertFalse(
            unclassified,
            "New public methods: refuse portal users and list them in GUARDED, "
            "or explain in ALLOWED why they are harmless.",
        )
        self.assertFalse((set(ALLOWED) | set(GUARDED)) - found, "stale entries")

    def test_portal_reaches_nothing(self):
        self.company.lifecycle_salesperson_override = True
        samples = self.sample_ids()
        for model, method in GUARDED:
            with self.subTest(model=model, method=method):
                self.assert_refused(self.portal, model, method, samples[model])
        # nothing of the lifecycle is readable, not even on its own company
        self.portal.partner_id.parent_id = self.own_client
        own_company = self.portal.partner_id.with_user(self.portal)
        own_company.check_access("read")
        for name in ("paid_revenue", "lifecycle_stage_id", "relationship_notes"):
            with self.subTest(field=name), self.assertRaises(AccessError):
                own_company.read([name])

    def test_salesperson_refused_on_engine_and_colleagues(self):
        self.company.lifecycle_salesperson_override = True
        samples = self.sample_ids()
        for (model, method), kind in GUARDED.items():
            if kind not in ("manager", "own"):
                continue
            with self.subTest(model=model, method=method):
                self.assert_refused(self.salesman, model, method, samples[model])

    def test_private_entry_points_are_not_rpc(self):
        for model, method in [
            ("crm.lifecycle.engine", "_recompute"),
            ("crm.lifecycle.engine", "_enqueue_all_clients"),
            ("crm.lifecycle.engine", "_cron_enqueue_all_clients"),
            ("crm.lifecycle.engine", "_process_queue"),
            ("crm.lifecycle.snapshot", "_cron_take_month_end"),
            ("crm.lifecycle.playbook", "_run_playbooks"),
        ]:
            # what the RPC dispatcher checks before calling
            with self.subTest(method=method), self.assertRaises(AccessError):
                series.check_public_method(self.env[model], method)
            self.assertTrue(hasattr(self.env[model], method))

    def test_recompute_now_tells_what_happened(self):
        self.stale()
        action = self.own_client.with_user(self.salesman).action_lifecycle_recompute()
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("Own Client", action["params"]["message"])
        self.assertIn(self.stage["new_customer"].name, action["params"]["message"])
        self.assertEqual(self.stage_of(self.own_client), "new_customer")
        # a contact is its commercial entity
        both = self.own_client | self.own_contact
        action = both.with_user(self.salesman).action_lifecycle_recompute()
        self.assertIn("Own Client", action["params"]["message"])
        action = (
            (self.own_client | self.other_client)
            .with_user(self.sales_manager)
            .action_lifecycle_recompute()
        )
        self.assertEqual(action["params"]["message"], "2 clients recomputed.")

    # ------------------------------------------------------------------
    # 2. Only the engine writes what it computes
    # ------------------------------------------------------------------
    def test_engine_fields_not_writable(self):
        Partner = self.env["res.partner"]
        for user in (
            self.salesman,
            self.sales_manager,
            self.env.ref("base.user_admin"),
        ):
            for name in ENGINE_FIELDS:
                field = Partner._fields[name]
                value = {
                    "boolean": True,
                    "many2one": False,
                    "char": "X",
                    "date": "2026-01-01",
                    "datetime": "2026-01-01 00:00:00",
                }.get(field.type, 42)
                with self.subTest(user=user.login, field=name):
                    with self.assertRaisesRegex(UserError, name):
                        self.own_client.with_user(user).write({name: value})
                    with self.assertRaisesRegex(UserError, name):
                        Partner.with_user(user).create({"name": "New", name: value})
        # not even the superuser, nor with an import
        with self.assertRaises(UserError):
            self.own_client.write({"paid_revenue": 999999})
        result = Partner.with_user(self.sales_manager).load(
            ["name", "purchase_count"], [["Imported", "42"]]
        )
        self.assertFalse(result["ids"])
        self.assertIn("purchase_count", result["messages"][0]["message"])
        self.env.invalidate_all()
        self.assertEqual(self.own_client.paid_revenue, 1000.0)
        self.assertEqual(self.own_client.purchase_count, 1)
        # the related fields of a lead are read-only: nothing reaches the client
        lead = self.lead(self.own_client).with_user(self.salesman)
        level = self.own_client.loyalty_level_id
        lead.write({"partner_loyalty_level_id": self.level["gold"].id})
        self.env.invalidate_all()
        self.assertEqual(self.own_client.loyalty_level_id, level)

    def test_client_rows_only_written_by_engine(self):
        Client = self.env["crm.lifecycle.client"]
        row = Client.search([("partner_id", "=", self.own_client.id)])
        for user in (self.salesman, self.all_docs, self.sales_manager):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    row.with_user(user).write({"paid_revenue": 999999})
                with self.assertRaises(AccessError):
                    Client.with_user(user).create(
                        {"partner_id": self.other_client.id, "company_id": 1}
                    )
                with self.assertRaises(AccessError):
                    row.with_user(user).unlink()

    def test_history_only_written_by_engine(self):
        """The history is the audit trail of the stages and levels (and the
        past the snapshots and conversion rates are rebuilt from): written
        by the engine and the stage change, edited or deleted by nobody."""
        history = self.env["crm.lifecycle.history"].search(
            [("partner_id", "=", self.own_client.id)]
        )
        self.assertTrue(history)
        for user in (self.salesman, self.all_docs, self.sales_manager):
            with self.subTest(user=user.login):
                self.assertEqual(
                    len(history.with_user(user).read(["reason"])), len(history)
                )
                with self.assertRaises(AccessError):
                    history.with_user(user).write({"note": "rewritten"})
                with self.assertRaises(AccessError):
                    history.with_user(user).unlink()
        self.assertFalse(any(history.mapped("note")))

    def test_context_key_grants_nothing(self):
        self.company.lifecycle_salesperson_override = True
        self.recompute(self.other_client)
        context = {"lifecycle_engine": True, "lifecycle_engine_write": True}
        before = self.effects()
        # a colleague's client: no stage change, whatever the context says
        with self.assertRaises(AccessError):
            self.other_client.with_user(self.salesman).with_context(**context).write(
                {"lifecycle_stage_id": self.stage["lost"].id}
            )
        with self.assertRaises(UserError):
            self.own_client.with_user(self.salesman).with_context(**context).write(
                {"lifecycle_stage_locked": True, "paid_revenue": 999999}
            )
        self.assertEqual(self.effects(), before)
        self.assertEqual(self.stage_of(self.other_client), "new_customer")

    def test_stage_moved_by_hand_through_override(self):
        self.company.lifecycle_salesperson_override = True
        self.own_client.with_user(self.salesman).write(
            {"lifecycle_stage_id": self.stage["lost"].id}
        )
        self.assertEqual(self.stage_of(self.own_client), "lost")
        self.assertTrue(self.own_client.lifecycle_stage_locked)
        history = self.last_history(self.own_client)
        self.assertEqual((history.reason, history.user_id), ("manual", self.salesman))
        # the setting off: a salesperson cannot, even on an own client
        self.company.lifecycle_salesperson_override = False
        with self.assertRaises(AccessError):
            self.own_client.with_user(self.salesman).write(
                {"lifecycle_stage_id": self.stage["prospect"].id}
            )

    # ------------------------------------------------------------------
    # 3. Who sees the money
    # ------------------------------------------------------------------
    def test_own_documents_salesperson_sees_own_money_only(self):
        money = sorted(MONEY_FIELDS)
        partners = self.own_client | self.own_contact | self.other_client
        own, contact, other = partners.with_user(self.salesman).read(
            ["lifecycle_stage_id", "purchase_count", *money]
        )
        self.assertEqual(own["paid_revenue"], 1000.0)
        self.assertEqual(contact["paid_revenue"], 1000.0)
        self.assertTrue(all(other[name] == 0 for name in money), other)
        # the stage and the counts stay visible
        self.assertEqual(other["lifecycle_stage_id"][0], self.stage["new_customer"].id)
        self.assertEqual(other["purchase_count"], 1)
        for user in (self.all_docs, self.sales_manager):
            with self.subTest(user=user.login):
                other = self.other_client.with_user(user)
                self.assertEqual(other.paid_revenue, 3000.0)
                self.assertEqual(other.receivable_open, 500.0)

    def test_money_does_not_leak_through_search_sort_group(self):
        Partner = self.env["res.partner"].with_user(self.salesman)
        clients = self.own_client | self.other_client
        domain = [("id", "in", clients.ids)]
        self.assertEqual(
            Partner.search([*domain, ("paid_revenue", ">", 2000)]), Partner
        )
        self.assertEqual(
            Partner.search([*domain, ("paid_revenue", "=", 0)]).ids,
            self.other_client.ids,
        )
        self.assertEqual(
            Partner.search(domain, order="paid_revenue desc").ids,
            [self.own_client.id, self.other_client.id],
        )
        [(total,)] = Partner._read_group(domain, [], ["paid_revenue:sum"])
        self.assertEqual(total, 1000.0)
        groups = Partner._read_group(domain, ["user_id"], ["receivable_open:sum"])
        self.assertEqual(dict(groups)[self.colleague], 0.0)
        # all documents: everything
        Partner = Partner.with_user(self.all_docs)
        self.assertEqual(
            Partner.search([*domain, ("paid_revenue", ">", 2000)]), self.other_client
        )
        [(total,)] = Partner._read_group(domain, [], ["paid_revenue:sum"])
        self.assertEqual(total, 4000.0)

    def test_customer_capital_and_client_rows_own_only(self):
        Report = self.env["crm.lifecycle.report"]
        clients = (self.own_client | self.other_client).ids
        domain = [("partner_id", "in", clients)]
        self.assertEqual(
            Report.with_user(self.salesman).search(domain).partner_id, self.own_client
        )
        [(revenue,)] = Report.with_user(self.salesman)._read_group(
            domain, [], ["paid_revenue:sum"]
        )
        self.assertEqual(revenue, 1000.0)
        for user in (self.all_docs, self.sales_manager):
            [(revenue,)] = Report.with_user(user)._read_group(
                domain, [], ["paid_revenue:sum"]
            )
            self.assertEqual(revenue, 4000.0)
        Client = self.env["crm.lifecycle.client"]
        self.assertEqual(
            Client.with_user(self.salesman).search(domain).partner_id, self.own_client
        )
        self.assertEqual(len(Client.with_user(self.all_docs).search(domain)), 2)

    def test_multi_company_rule_on_every_model(self):
        for name in self.env.registry:
            model = self.env[name]
            if (
                (
                    not type(model).__module__.startswith("odoo.addons.crm_lifecycle")
                    and not name.startswith(("crm.lifecycle", "crm.loyalty", "crm.rfm"))
                )
                or model._transient
                or model._abstract
            ):
                continue
            field = model._fields.get("company_id")
            if not field or not (field.store or model._table_query):
                continue
            with self.subTest(model=name):
                rules = self.env["ir.rule"].search(
                    [("model_id.model", "=", name), ("global", "=", True)]
                )
                self.assertTrue(
                    any("company_ids" in rule.domain_force for rule in rules), name
                )
