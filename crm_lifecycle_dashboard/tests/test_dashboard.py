# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
from pathlib import Path

import polib

from odoo.modules.module import get_module_path
from odoo.tests import new_test_user, tagged
from odoo.tools import file_open
from odoo.tools.translate import extract_spreadsheet_terms

from odoo.addons.crm_lifecycle import series
from odoo.addons.crm_lifecycle.tests.common import LifecycleCase
from odoo.addons.spreadsheet.utils.validate_data import (
    fields_in_spreadsheet,
    menus_xml_ids_in_spreadsheet,
    odoo_charts,
)

DASHBOARD_FILE = "crm_lifecycle_dashboard/data/files/lifecycle_dashboard.json"


def field_of_chain(env, model, chain):
    """The field at the end of ``chain`` ("stage_id.code") from ``model``."""
    field = None
    for name in chain.split("."):
        field = env[model]._fields[name]
        model = field.comodel_name
    return field


@tagged("post_install", "-at_install")
class TestDashboard(LifecycleCase):
    """The spreadsheet of the dashboard: where it is, who sees it, and its
    data sources query fields that exist, with the aggregates a pivot needs,
    as the users who see it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dashboard = cls.env.ref(
            "crm_lifecycle_dashboard.spreadsheet_dashboard_lifecycle"
        )
        with file_open(DASHBOARD_FILE) as file:
            cls.data = json.load(file)
        cls.all_docs = new_test_user(
            cls.env,
            login="dashboard_all_docs",
            groups="sales_team.group_sale_salesman_all_leads",
            company_id=cls.company.id,
        )

    def test_in_the_sales_dashboards(self):
        self.assertEqual(
            self.dashboard.dashboard_group_id,
            self.env.ref("spreadsheet_dashboard.spreadsheet_dashboard_group_sales"),
        )
        self.assertTrue(self.dashboard.is_published)
        # what the web client loads is the file, as is
        self.assertEqual(json.loads(self.dashboard.spreadsheet_data), self.data)
        self.assertEqual(self.data["version"], 21)
        self.assertEqual(
            [sheet["name"] for sheet in self.data["sheets"]], ["Dashboard", "Data"]
        )

    def test_seen_by_who_sees_every_client(self):
        """Company-wide figures: the sales manager and the salesperson who sees
        all documents have the dashboard, the salesperson of his own clients
        has not."""
        Dashboard = self.env["spreadsheet.dashboard"]
        for user in (self.sales_manager, self.all_docs):
            with self.subTest(user=user.login):
                self.assertIn(self.dashboard, Dashboard.with_user(user).search([]))
                data = series.readonly_dashboard(self.dashboard.with_user(user))
                self.assertEqual(data["snapshot"]["pivots"], self.data["pivots"])
        self.assertNotIn(self.dashboard, Dashboard.with_user(self.salesman).search([]))

    def test_fields_and_menus_exist(self):
        """Odoo's own check of a spreadsheet file (run when it is saved in a
        test), and the global filters' field chains, which that check skips."""
        for model, chains in fields_in_spreadsheet(self.data).items():
            for chain in chains:
                with self.subTest(model=model, chain=chain):
                    self.assertTrue(field_of_chain(self.env, model, chain))
        sources = [
            *(pivot for pivot in self.data["pivots"].values()),
            *self.data["lists"].values(),
        ]
        models = [source["model"] for source in sources]
        matchings = [source["fieldMatching"] for source in sources]
        for chart in odoo_charts(self.data):
            models.append(chart["metaData"]["resModel"])
            matchings.append(chart["fieldMatching"])
        filters = {item["id"]: item for item in self.data["globalFilters"]}
        for model, matching in zip(models, matchings, strict=True):
            for filter_id, match in matching.items():
                with self.subTest(model=model, chain=match["chain"]):
                    field = field_of_chain(self.env, model, match["chain"])
                    self.assertEqual(field.type, match["type"])
                    if filters[filter_id]["type"] == "relation":
                        self.assertEqual(
                            field.comodel_name, filters[filter_id]["modelName"]
                        )
        for xml_id in menus_xml_ids_in_spreadsheet(self.data):
            with self.subTest(menu=xml_id):
                self.assertTrue(self.env.ref(xml_id).action)

    def test_data_sources_run_as_the_manager(self):
        """Every pivot, list and chart queries its model as the web client
        does, as a sales manager: measures that aggregate, group-bys that
        group."""
        for pivot in self.data["pivots"].values():
            with self.subTest(pivot=pivot["name"]):
                Model = self.env[pivot["model"]].with_user(self.sales_manager)
                aggregates = []
                for measure in pivot["measures"]:
                    field = Model._fields[measure["fieldName"]]
                    self.assertTrue(field.aggregator, field)
                    aggregates.append(f"{field.name}:{field.aggregator}")
                groupby = [
                    f"{row['fieldName']}:{row['granularity']}"
                    if row.get("granularity")
                    else row["fieldName"]
                    for row in pivot["rows"]
                ]
                Model._read_group(pivot["domain"], groupby, aggregates)
        for definition in self.data["lists"].values():
            with self.subTest(list=definition["name"]):
                self.env[definition["model"]].with_user(self.sales_manager).search_read(
                    definition["domain"],
                    definition["columns"],
                    order=", ".join(
                        f"{order['name']} {'asc' if order['asc'] else 'desc'}"
                        for order in definition["orderBy"]
                    ),
                    limit=10,
                )
        for chart in odoo_charts(self.data):
            meta = chart["metaData"]
            with self.subTest(chart=meta["resModel"]):
                Model = self.env[meta["resModel"]].with_user(self.sales_manager)
                field = Model._fields[meta["measure"]]
                Model._read_group(
                    chart["searchParams"]["domain"],
                    meta["groupBy"],
                    [f"{field.name}:{field.aggregator}"],
                )

    def test_terms_translated(self):
        """The terms Odoo extracts from the file are in the template and
        translated in every language of the module."""
        with file_open(DASHBOARD_FILE, "rb") as file:
            terms = {
                term
                for _line, _func, term, _comments in extract_spreadsheet_terms(
                    file, [], [], {}
                )
            }
        terms.add(self.dashboard.with_context(lang="en_US").name)
        i18n = Path(get_module_path("crm_lifecycle_dashboard")) / "i18n"
        template = {
            entry.msgid
            for entry in polib.pofile(str(i18n / "crm_lifecycle_dashboard.pot"))
        }
        if series.MAJOR < 19:
            self.assertEqual(template, terms)
        else:
            # 19.0 extracts fewer terms of the file (not those of some chart
            # titles): the template, made on 18.0, holds them all
            self.assertLessEqual(terms, template)
        for lang in ("es", "ru", "uk"):
            with self.subTest(lang=lang):
                catalog = polib.pofile(str(i18n / f"{lang}.po"))
                translated = {entry.msgid for entry in catalog if entry.msgstr}
                self.assertEqual(translated, template)
