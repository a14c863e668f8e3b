# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, new_test_user, tagged
from odoo.tools import SQL

from .. import series
from .common import LifecycleCase
from .test_language import load_languages


@tagged("post_install", "-at_install")
class TestPlaybook(LifecycleCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Playbook = cls.env["crm.lifecycle.playbook"]
        cls.Run = cls.env["crm.lifecycle.playbook.run"]
        cls.fallback = new_test_user(
            cls.env,
            login="playbook_fallback",
            groups="sales_team.group_sale_salesman",
            company_id=cls.company.id,
        )
        cls.cars = cls.env["product.category"].create({"name": "Cars"})
        cls.car = cls.env["product.product"].create(
            {"name": "Sedan", "categ_id": cls.cars.id, "list_price": 20000.0}
        )
        # the default playbooks, active, for the clients of these tests only
        # (not the demo clients)
        last_id = (
            cls.env["res.partner"]
            .with_context(active_test=False)
            .search([], order="id desc", limit=1)
            .id
        )
        cls.car_playbook = cls.env.ref("crm_lifecycle.playbook_car_dealer")
        cls.car_playbook.write(
            {
                "active": True,
                "fallback_user_id": cls.fallback.id,
                "filter_domain": repr([("id", ">", last_id)]),
            }
        )
        cls.car_playbook.step_ids.write({"product_categ_id": cls.cars.id})
        cls.b2b_playbook = cls.env.ref("crm_lifecycle.playbook_b2b_retention")
        cls.b2b_playbook.write(
            {
                "active": True,
                "fallback_user_id": cls.fallback.id,
                "filter_domain": repr(
                    [("is_company", "=", True), ("id", ">", last_id)]
                ),
            }
        )

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    @classmethod
    def car_sale(cls, partner, date):
        move = cls.init_invoice(
            "out_invoice",
            partner=partner,
            invoice_date=fields.Date.to_date(date),
            post=True,
            products=[cls.car],
            taxes=[],
        )
        cls.pay(move)
        return move

    def create_playbook(self, name, *steps, **values):
        """A playbook with ``steps`` (values of each step; the activity type
        is a call unless given)."""
        call = self.env.ref("mail.mail_activity_data_call")
        return self.Playbook.create(
            {
                "name": name,
                **values,
                "step_ids": [
                    fields.Command.create({"activity_type_id": call.id, **step})
                    for step in steps
                ],
            }
        )

    def run_cron(self):
        return self.Playbook._run_playbooks()

    def activities(self, partner):
        return self.env["mail.activity"].search(
            [("res_model", "=", "res.partner"), ("res_id", "=", partner.id)],
            order="id",
        )

    def step(self, xmlid):
        return self.env.ref(f"crm_lifecycle.{xmlid}")

    def runs(self, partner, step=None):
        domain = [("partner_id", "=", partner.id)]
        if step:
            domain.append(("step_id", "=", step.id))
        return self.Run.search(domain)

    # ------------------------------------------------------------------
    # Tests
    # ------------------------------------------------------------------
    # Car buyers are people (not companies): the B2B playbook, active in these
    # tests, leaves them alone once they are computed (new clients are
    # computed when their transaction ends, or at a savepoint).
    def test_car_sale_through_the_whole_playbook(self):
        client = self.create_client("Car buyer", is_company=False)
        sale_date = fields.Date.to_date("2026-01-10")
        with freeze_time(sale_date):
            sale = self.car_sale(client, sale_date)
            self.run_cron()
            self.assertFalse(self.activities(client), "nothing is due on the sale day")
        expected = [
            ("playbook_car_dealer_step_courtesy", "Courtesy call"),
            ("playbook_car_dealer_step_service", "Service reminder"),
            ("playbook_car_dealer_step_greeting", "Greeting"),
            ("playbook_car_dealer_step_trade_in", "Trade-in offer"),
        ]
        for count, (xmlid, type_name) in enumerate(expected, start=1):
            step = self.step(xmlid)
            due = sale_date + timedelta(days=step.delay_days)
            with freeze_time(due - timedelta(days=1)):
                self.run_cron()
                self.assertEqual(len(self.activities(client)), count - 1, step.name)
            with freeze_time(due):
                self.run_cron()
                self.run_cron()  # twice the same day: still one activity
                activities = self.activities(client)
                self.assertEqual(len(activities), count, step.name)
                activity = activities[-1]
                self.assertEqual(activity.activity_type_id.name, type_name)
                self.assertEqual(activity.user_id, self.salesman)
                self.assertEqual(
                    activity.date_deadline, due + timedelta(days=step.deadline_days)
                )
                run = self.runs(client, step)
                self.assertEqual(len(run), 1)
                self.assertEqual(run.cycle_key, f"invoice:{sale.id}")
                self.assertEqual(run.activity_id, activity)
                self.assertEqual(run.due_date, due)
        # the anniversary step sent its e-mail on the client's chatter
        greeting = client.message_ids.filtered(
            lambda m: m.subject and m.subject.startswith("One year together")
        )
        self.assertEqual(len(greeting), 1)
        self.assertEqual(greeting.author_id, self.salesman.partner_id)
        # the trade-in step opened an opportunity for the salesperson
        trade_in = self.runs(client, self.step("playbook_car_dealer_step_trade_in"))
        self.assertEqual(trade_in.lead_id.type, "opportunity")
        self.assertEqual(trade_in.lead_id.partner_id, client)
        self.assertEqual(trade_in.lead_id.user_id, self.salesman)
        self.assertIn("Trade-in offer", trade_in.lead_id.name)
        self.assertEqual(len(self.runs(client)), 4)

    def test_invoice_without_a_car_is_ignored(self):
        client = self.create_client("Service only", is_company=False)
        with freeze_time("2026-01-10"):
            self.paid_invoice(client, 300.0, "2026-01-08")
            self.run_cron()
        self.assertFalse(self.activities(client))
        self.assertFalse(self.runs(client))

    def test_cancelled_car_sale_is_ignored(self):
        client = self.create_client("Changed his mind")
        with freeze_time("2026-01-10"):
            sale = self.car_sale(client, "2026-01-08")
            # fully reversed by a credit note: the sale does not count
            self.reverse(sale, "2026-01-09", cancel=True)
            self.run_cron()
        courtesy = self.step("playbook_car_dealer_step_courtesy")
        self.assertFalse(self.runs(client, courtesy))
        self.assertFalse(self.activities(client))

    def test_dormant_reactivation_stops_on_purchase(self):
        client = self.create_client("Sleepy")
        call = self.step("playbook_b2b_step_reactivation_call")
        mail = self.step("playbook_b2b_step_reactivation_mail")
        offer = self.step("playbook_b2b_step_reactivation_offer")
        with freeze_time("2025-01-10"):
            self.paid_invoice(client, 1000.0, "2025-01-10")
        with freeze_time("2026-01-01"):
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "dormant")
            self.run_cron()
            self.run_cron()
            activity = self.activities(client)
            self.assertEqual(len(activity), 1)
            self.assertEqual(activity.summary, call.summary)
            self.assertEqual(activity.user_id, self.salesman)
            # leaving the stage and entering it again in the same purchase cycle
            client._lifecycle_set_stage(self.stage["at_risk"], "checking")
            client._lifecycle_set_stage(self.stage["dormant"], "back")
            self.run_cron()
            self.assertEqual(self.activities(client), activity)
            self.assertEqual(len(self.runs(client, call)), 1)
        with freeze_time("2026-01-05"):
            self.paid_invoice(client, 500.0, "2026-01-05")
            self.recompute(client)
            self.assertEqual(self.stage_of(client), "repeat_customer")
            self.run_cron()
            self.assertFalse(activity.exists(), "the open activity is closed")
            run = self.runs(client, call)
            self.assertEqual(run.state, "cancelled")
            self.assertIn("2026-01-05", run.note)
            self.assertTrue(
                client.message_ids.filtered(
                    lambda m: "purchased again" in (m.body or "")
                )
            )
        for day in ("2026-01-15", "2026-01-31"):
            with freeze_time(day):
                self.run_cron()
        self.assertFalse(self.runs(client, mail) | self.runs(client, offer))
        self.assertFalse(self.activities(client))

    def test_texts_in_the_language_of_their_reader(self):
        """The activity and the run's note in the salesperson's language, the
        note on the client's chatter in the client's: the cron reads English."""
        load_languages(self.env, "ru_RU", "es_ES")
        self.env.user.lang = "en_US"
        self.salesman.lang = "es_ES"
        client = self.create_client("Ромашка", lang="ru_RU")
        with freeze_time("2025-01-10"):
            self.paid_invoice(client, 1000.0, "2025-01-10")
        with freeze_time("2026-01-01"):
            self.recompute(client)
            self.run_cron()
            activity = self.activities(client)
            self.assertEqual(
                activity.summary, "Llamada: ¿por qué dejaron de llegar los pedidos?"
            )
        with freeze_time("2026-01-05"):
            self.paid_invoice(client, 500.0, "2026-01-05")
            self.recompute(client)
            self.run_cron()
        run = self.runs(client, self.step("playbook_b2b_step_reactivation_call"))
        self.assertEqual(run.note, "Detenido por la compra del 2026-01-05.")
        note = self.env["mail.message"].search(
            [("model", "=", "res.partner"), ("res_id", "=", client.id)],
            order="id desc",
            limit=1,
        )
        self.assertIn(
            "Сценарий Удержание B2B-клиентов: активность «Llamada: ¿por qué "
            "dejaron de llegar los pedidos?» закрыта, клиент снова совершил "
            "покупку 2026-01-05.",
            str(note.body),
        )

    def test_reactivation_sequence_goes_on_without_purchase(self):
        client = self.create_client("Still sleepy")
        offer = self.step("playbook_b2b_step_reactivation_offer")
        with freeze_time("2025-01-10"):
            self.paid_invoice(client, 1000.0, "2025-01-10")
        with freeze_time("2026-01-01"):
            self.recompute(client)
            self.run_cron()
        with freeze_time("2026-01-15"):
            self.run_cron()
            mail_sent = client.message_ids.filtered(
                lambda m: m.subject and m.subject.startswith("We miss you")
            )
            self.assertEqual(len(mail_sent), 1)
        with freeze_time("2026-01-31"):
            self.run_cron()
        self.assertEqual(len(self.activities(client)), 3)
        lead = self.runs(client, offer).lead_id
        self.assertEqual(lead.type, "opportunity")
        self.assertEqual(lead.user_id, self.salesman)

    def test_archived_salesperson_falls_back(self):
        seller = new_test_user(
            self.env,
            login="playbook_leaving_seller",
            groups="sales_team.group_sale_salesman",
            company_id=self.company.id,
        )
        client = self.create_client("Orphan", user_id=seller.id, is_company=False)
        with freeze_time("2026-02-01"):
            self.car_sale(client, "2026-02-01")
        seller.action_archive()
        with freeze_time("2026-02-03"):
            self.run_cron()
        activity = self.activities(client)
        self.assertEqual(activity.user_id, self.fallback)
        # without a fallback user, the user who last saved the playbook
        other = self.create_client("Orphan 2", user_id=seller.id, is_company=False)
        manager = self.sales_manager
        self.car_playbook.with_user(manager).write({"fallback_user_id": False})
        with freeze_time("2026-02-01"):
            self.car_sale(other, "2026-02-01")
        with freeze_time("2026-02-03"):
            self.run_cron()
        self.assertEqual(self.activities(other).user_id, manager)

    def test_preview_lists_due_clients_and_does_nothing(self):
        due_client = self.create_client("Due today", is_company=False)
        early_client = self.create_client("Due tomorrow", is_company=False)
        other_client = self.create_client("No car", is_company=False)
        with freeze_time("2026-03-10"):
            self.car_sale(due_client, "2026-03-08")
            self.car_sale(early_client, "2026-03-09")
            self.paid_invoice(other_client, 100.0, "2026-03-08")
            counts = (
                self.env["mail.activity"].search_count([]),
                self.Run.search_count([]),
                self.env["crm.lead"].search_count([]),
            )
            action = self.car_playbook.with_user(self.sales_manager).action_preview()
            preview = self.env[action["res_model"]].browse(action["res_id"])
            self.assertEqual(preview.line_ids.partner_id, due_client)
            self.assertEqual(
                preview.line_ids.step_id,
                self.step("playbook_car_dealer_step_courtesy"),
            )
            self.assertEqual(
                preview.line_ids.due_date, fields.Date.to_date("2026-03-10")
            )
            self.assertEqual(preview.line_ids.user_id, self.salesman)
            self.assertEqual(
                counts,
                (
                    self.env["mail.activity"].search_count([]),
                    self.Run.search_count([]),
                    self.env["crm.lead"].search_count([]),
                ),
            )
            # the cron then does exactly what the preview showed
            runs = self.run_cron()
            self.assertEqual(runs.partner_id, due_client)

    def test_deleted_activity_type_deactivates_the_step(self):
        doomed = self.env["mail.activity.type"].create({"name": "Doomed"})
        car_invoice = {
            "trigger": "after_event",
            "event": "product_category_invoice",
            "product_categ_id": self.cars.id,
        }
        playbook = self.create_playbook(
            "Fragile",
            {"name": "Doomed step", **car_invoice, "activity_type_id": doomed.id},
            {"name": "Sound step", **car_invoice},
            fallback_user_id=self.fallback.id,
        )
        doomed_step, sound_step = playbook.step_ids
        doomed.unlink()
        self.assertFalse(doomed_step.active)
        self.assertIn("Doomed step", playbook.message_ids[0].body)
        self.assertIn("activity type was deleted", playbook.message_ids[0].body)
        client = self.create_client("Robust")
        with freeze_time("2026-04-01"):
            self.car_sale(client, "2026-04-01")
            self.run_cron()
        self.assertEqual(
            self.runs(client, sound_step).activity_id.user_id, self.salesman
        )
        self.assertFalse(self.runs(client, doomed_step))

    def test_activity_type_lost_outside_the_orm_deactivates_in_cron(self):
        # e.g. the module that defined the type was uninstalled
        lost = self.env["mail.activity.type"].create({"name": "Lost"})
        playbook = self.create_playbook(
            "Orphaned",
            {
                "name": "Orphaned step",
                "trigger": "stage_entered",
                "stage_id": self.stage["loyal"].id,
                "activity_type_id": lost.id,
            },
        )
        step = playbook.step_ids
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lifecycle_playbook_step SET activity_type_id = NULL"
                " WHERE id = %s",
                step.id,
            )
        )
        self.env.invalidate_all()
        self.run_cron()
        self.assertFalse(step.active)
        self.assertIn("no longer exists", playbook.message_ids[0].body)

    def test_delays_are_checked(self):
        step = self.step("playbook_car_dealer_step_courtesy")
        for values in (
            {"delay_days": -1},
            {"delay_days": 3651},
            {"deadline_days": -5},
            {"deadline_days": 10000},
        ):
            with self.subTest(values=values), self.assertRaises(ValidationError):
                step.write(values)
        step.write({"delay_days": 3650})
        self.assertEqual(step.delay_days, 3650)
        with self.assertRaises(ValidationError):
            self.car_playbook.catch_up_days = -1
        # through the form, as a user does: the save is refused
        form = Form(self.car_playbook)
        with form.step_ids.new() as line:
            line.name = "Too late"
            line.trigger = "after_event"
            line.event = "last_purchase"
            line.activity_type_id = self.env.ref("mail.mail_activity_data_call")
            line.delay_days = 4000
        with self.assertRaises(ValidationError):
            form.save()

    def test_quarterly_check_in_of_loyal_clients(self):
        client = self.create_client("Loyal")
        check_in = self.step("playbook_b2b_step_check_in")
        with freeze_time("2026-02-01"):
            client._lifecycle_set_stage(self.stage["loyal"], "long-time client")
            self.run_cron()
        with freeze_time("2026-03-20"):
            self.run_cron()
        with freeze_time("2026-04-02"):
            self.run_cron()
        runs = self.runs(client, check_in)
        self.assertEqual(
            sorted(runs.mapped("cycle_key")), ["period:2026-Q1", "period:2026-Q2"]
        )

    def test_loyalty_level_entered(self):
        playbook = self.create_playbook(
            "Silver welcome",
            {
                "name": "Welcome to silver",
                "trigger": "level_entered",
                "loyalty_level_id": self.level["silver"].id,
                "responsible": "fixed",
                "user_id": self.sales_manager.id,
            },
        )
        client = self.create_client("Rising")
        with freeze_time("2026-06-01"):
            self.paid_invoice(client, 600.0, "2026-05-01")
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["bronze"])
            self.run_cron()
            self.assertFalse(self.runs(client, playbook.step_ids))
            # (the B2B playbook thanked the new customer meanwhile)
            thank_you = self.runs(client, self.step("playbook_b2b_step_thank_you"))
            self.assertEqual(thank_you.cycle_key, "purchase:2026-05-01")
            self.paid_invoice(client, 600.0, "2026-06-01")
            self.recompute(client)
            self.assertEqual(client.loyalty_level_id, self.level["silver"])
            self.run_cron()
            self.run_cron()
        run = self.runs(client, playbook.step_ids)
        self.assertEqual(len(run), 1)
        self.assertEqual(run.cycle_key, "purchase:2026-06-01")
        self.assertEqual(run.activity_id.user_id, self.sales_manager)

    def test_query_count_does_not_depend_on_clients(self):
        playbook = self.create_playbook(
            "Loyal welcome",
            {
                "name": "Welcome to loyal",
                "trigger": "stage_entered",
                "stage_id": self.stage["advocate"].id,
            },
        )

        def make_due(count):
            clients = self.env["res.partner"].create(
                [
                    {
                        "name": f"Advocate {index}",
                        "is_company": True,
                        "user_id": self.salesman.id,
                    }
                    for index in range(count)
                ]
            )
            clients._lifecycle_set_stage(self.stage["advocate"], "fan")
            return clients

        def queries():
            self.env.flush_all()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            runs = self.run_cron()
            self.env.flush_all()
            return self.env.cr.sql_log_count - before, runs

        with freeze_time("2026-05-01"):
            make_due(1)
            queries()  # warm-up: caches of models, views, users
            one = make_due(1)
            count_one, runs = queries()
            self.assertEqual(runs.partner_id, one)
            many = make_due(50)
            count_many, runs = queries()
            self.assertEqual(runs.partner_id, many)
        self.assertEqual(runs.playbook_id, playbook)
        self.assertEqual(count_one, count_many)

    def test_activation_needs_a_real_product_category(self):
        """A product-category step on "All" would fire on every invoice (18.0:
        on 19.0 no category holds every product, Vehicles is a root)."""
        vehicles = self.env.ref("crm_lifecycle.product_category_vehicles")
        all_products = self.env.ref(
            "product.product_category_all", raise_if_not_found=False
        )
        self.assertEqual(vehicles.parent_id, all_products or vehicles.parent_id)
        self.assertEqual(bool(all_products), series.MAJOR < 19)
        if all_products:
            # the car dealer steps follow Vehicles, on databases installed
            # with All too (what the install and every update run)
            self.car_playbook.active = False
            shipped = self.step("playbook_car_dealer_step_courtesy")
            shipped.product_categ_id = all_products
            self.step("playbook_car_dealer_step_service").product_categ_id = self.cars
            self.env["crm.lifecycle.playbook.step"]._use_vehicles_category()
            self.assertEqual(shipped.product_categ_id, vehicles)
            self.assertEqual(
                self.step("playbook_car_dealer_step_service").product_categ_id,
                self.cars,
            )
        playbook = self.create_playbook(
            "Every invoice",
            {
                "name": "Call after the sale",
                "trigger": "after_event",
                "event": "product_category_invoice",
                "product_categ_id": (all_products or vehicles).id,
            },
            active=False,
        ).with_user(self.sales_manager)
        if all_products:
            with self.assertRaises(ValidationError) as error:
                playbook.action_activate()
            self.assertIn("every invoice", str(error.exception))
            self.assertFalse(playbook.active)
        # nor on an active playbook
        playbook.step_ids.product_categ_id = vehicles
        playbook.action_activate()
        self.assertTrue(playbook.active)
        if all_products:
            with self.assertRaises(ValidationError) as error:
                playbook.step_ids.product_categ_id = all_products
            self.assertIn("every invoice", str(error.exception))
        with self.assertRaises(ValidationError) as error:
            playbook.step_ids.product_categ_id = False
        self.assertIn("needs a product category", str(error.exception))
        self.assertEqual(playbook.step_ids.product_categ_id, vehicles)
        playbook.action_deactivate()
        self.assertFalse(playbook.active)
        # the buttons are on the form, for managers only
        arch = playbook.get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="action_activate"', arch)
        self.assertIn('name="action_deactivate"', arch)
        with self.assertRaises(AccessError):
            playbook.with_user(self.salesman).action_activate()
