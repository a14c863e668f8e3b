# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from freezegun import freeze_time

from odoo.tests import new_test_user, tagged

from .common import LifecycleCase


def load_languages(env, *langs):
    """Activate ``langs`` and load the module's translations (i18n/*.po)."""
    for lang in langs:
        env["res.lang"]._activate_lang(lang)
    env["ir.module.module"].search([("name", "=", "crm_lifecycle")])._load_module_terms(
        ["crm_lifecycle"], list(langs), overwrite=True
    )


@tagged("post_install", "-at_install")
class TestLanguage(LifecycleCase):
    """The notes the engine writes on a client (no reader is there to
    translate for: the queue's cron) read in the client's language."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_languages(cls.env, "ru_RU", "es_ES")
        cls.level["bronze"].update_field_translations(
            "name", {"ru_RU": "Бронза", "es_ES": "Bronce"}
        )
        # the cron's user reads English
        cls.env.user.lang = "en_US"
        cls.russian_salesman = new_test_user(
            cls.env,
            login="lifecycle_salesman_ru",
            groups="sales_team.group_sale_salesman",
            company_id=cls.company.id,
            lang="ru_RU",
        )

    def last_note(self, partner):
        return self.env["mail.message"].search(
            [("model", "=", "res.partner"), ("res_id", "=", partner.id)],
            order="id desc",
            limit=1,
        )

    @freeze_time("2026-03-01")
    def test_engine_notes_in_the_clients_language(self):
        russian = self.create_client("Ромашка", lang="ru_RU")
        spanish = self.create_client("Margarita", lang="es_ES")
        english = self.create_client("Daisy", lang="en_US")
        # the company's language for a client without one
        self.company.partner_id.lang = "es_ES"
        no_language = self.create_client("Nadie")
        no_language.lang = False
        self.paid_invoice(russian, 1000.0, "2026-02-01")
        self.paid_invoice(spanish, 1000.0, "2026-02-01")
        # as the queue's cron, in English
        self.recompute(russian | spanish | english | no_language)

        company = self.company.name
        body = str(self.last_note(russian).body)
        self.assertIn(
            f"Этап жизненного цикла ({company}): нет → Новый клиент (Правило)", body
        )
        self.assertIn(f"Уровень лояльности ({company}): нет → Бронза", body)
        body = str(self.last_note(spanish).body)
        self.assertIn(
            f"Etapa del ciclo de vida ({company}): ninguna → Cliente nuevo (Regla)",
            body,
        )
        self.assertIn(f"Nivel de fidelización ({company}): ninguna → Bronce", body)
        self.assertIn(
            f"Lifecycle stage ({company}): none → Target (Rule)",
            str(self.last_note(english).body),
        )
        self.assertIn(
            f"Etapa del ciclo de vida ({company}): ninguna → Objetivo (Regla)",
            str(self.last_note(no_language).body),
        )
        # the salesperson reads the client's note on its chatter
        messages = russian.with_user(self.russian_salesman).message_ids
        self.assertIn("Новый клиент", str(messages[0].body))

    @freeze_time("2026-03-01")
    def test_manual_notes_stay_in_the_users_language(self):
        self.company.lifecycle_salesperson_override = True
        client = self.create_client(
            "Margarita", lang="es_ES", user_id=self.russian_salesman.id
        )
        self.recompute(client)
        # the web client sends its user's language
        as_salesman = client.with_user(self.russian_salesman).with_context(
            lang=self.russian_salesman.lang
        )
        as_salesman._lifecycle_set_stage(
            self.stage["prospect"].with_env(as_salesman.env), "звонок"
        )
        self.assertIn(
            f"Этап жизненного цикла ({self.company.name}) установлен вручную",
            str(self.last_note(client).body),
        )
        self.assertIn("Потенциальный клиент", str(self.last_note(client).body))

    @freeze_time("2026-03-01")
    def test_kept_pricelist_note_in_the_clients_language(self):
        Pricelist = self.env["product.pricelist"]
        gold = self.level["gold"]
        gold.pricelist_id = Pricelist.create({"name": "Gold prices"})
        gold.update_field_translations("name", {"ru_RU": "Золото"})
        self.company.lifecycle_loyalty_pricelist = True
        chosen = Pricelist.create({"name": "Negotiated"})
        client = self.create_client(
            "Ромашка", lang="ru_RU", property_product_pricelist=chosen.id
        )
        for date in ("2025-12-01", "2026-01-05", "2026-02-05"):
            self.paid_invoice(client, 2000.0, date)
        self.recompute(client)
        self.assertEqual(client.loyalty_level_id, gold)
        self.assertIn(
            "Прайс-лист Negotiated (USD) сохранён: его выбрал человек, уровень "
            "Золото назначил бы Gold prices (USD).",
            str(self.last_note(client).body),
        )
