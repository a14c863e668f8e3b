# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged

from odoo.addons.crm_lifecycle.tests.common import LifecycleCase

# Runs in the page once the web client is up: opens nothing itself (the URL
# is the dashboard's), waits until the dashboard's spreadsheet is loaded and
# its data sources answered, then compares cells with the expected values.
CHECK = """
(async () => {
    const expected = %(expected)s;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const until = async (predicate, what, timeout = 30000) => {
        const start = Date.now();
        while (Date.now() - start < timeout) {
            const value = predicate();
            if (value) {
                return value;
            }
            await sleep(100);
        }
        throw new Error(`timeout: ${what}`);
    };
    // the open dashboard: the action's state.activeDashboard ({id,
    // displayName}) on 18.0, its loader's active one ({data: {id, name}})
    // on 19.0
    const activeDashboard = (component) =>
        (component.state && component.state.activeDashboard) ||
        (component.loader &&
            component.loader.getActiveDashboard &&
            component.loader.getActiveDashboard());
    const dashboardAction = () => {
        const nodes = [odoo.__WOWL_DEBUG__.root.__owl__];
        while (nodes.length) {
            const node = nodes.pop();
            if (node.component && activeDashboard(node.component)) {
                return node.component;
            }
            nodes.push(...Object.values(node.children));
        }
    };
    const idOf = (dashboard) => (dashboard.data ? dashboard.data.id : dashboard.id);
    const nameOf = (dashboard) =>
        dashboard.data ? dashboard.data.name : dashboard.displayName;
    try {
        const action = await until(dashboardAction, "the dashboards");
        if (idOf(activeDashboard(action)) !== expected.id) {
            // another dashboard comes first in the menu: pick ours in it
            action.openDashboard(expected.id);
        }
        const opened = await until(
            () =>
                idOf(activeDashboard(action)) === expected.id &&
                activeDashboard(action),
            "our dashboard"
        );
        if (nameOf(opened) !== expected.name) {
            throw new Error(`dashboard "${nameOf(opened)}" opened`);
        }
        // 19.0's loader loads the active dashboard when it is asked for it
        const dashboard = await until(
            () =>
                activeDashboard(action).status === "Loaded" && activeDashboard(action),
            "the spreadsheet"
        );
        const model = dashboard.model;
        const provider = model.config.custom.odooDataProvider;
        const toPosition = (xc) => {
            const [, letters, digits] = xc.match(/^([A-Z]+)(\\d+)$/);
            let col = 0;
            for (const letter of letters) {
                col = col * 26 + letter.charCodeAt(0) - 64;
            }
            return { col: col - 1, row: Number(digits) - 1 };
        };
        const cell = (reference) => {
            const [sheetName, xc] = reference.split("!");
            const sheetId = model.getters.getSheetIdByName(sheetName);
            return model.getters.getEvaluatedCell({ sheetId, ...toPosition(xc) });
        };
        // the data sources answered and the cells were evaluated again
        await until(
            () =>
                !provider.pendingPromises.size &&
                Object.keys(expected.cells).every(
                    (ref) => !String(cell(ref).value).startsWith("Loading")
                ),
            "the data"
        );
        await sleep(200);
        for (const [reference, wanted] of Object.entries(expected.cells)) {
            const { value } = cell(reference);
            const same =
                typeof wanted === "number"
                    ? Math.abs(value - wanted) < 0.01
                    : value === wanted;
            if (!same) {
                throw new Error(`${reference} is ${value}, expected ${wanted}`);
            }
        }
        // no cell of the dashboard in error
        const sheetId = model.getters.getSheetIdByName("Dashboard");
        for (let row = 0; row < model.getters.getNumberRows(sheetId); row++) {
            for (let col = 0; col < model.getters.getNumberCols(sheetId); col++) {
                const evaluated = model.getters.getEvaluatedCell({ sheetId, col, row });
                if (evaluated.type === "error") {
                    const where = `row ${row + 1}, column ${col + 1}`;
                    throw new Error(`${where}: ${evaluated.message}`);
                }
            }
        }
        // the stages over 12 months: a bar per month end in the period
        const chart = await until(() => {
            const runtime = model.getters.getChartRuntime(expected.stagesChart);
            const labels = runtime && runtime.chartJsConfig.data.labels;
            return labels && labels.length && runtime;
        }, "the stages chart");
        const labels = chart.chartJsConfig.data.labels;
        if (labels.length < 12) {
            throw new Error(`${labels.length} months in the stages chart`);
        }
        console.log("test successful");
    } catch (error) {
        console.error(`crm_lifecycle_dashboard check failed: ${error.message}`);
    }
})();
"""

STAGES_CHART = "a1f7c3d0-0000-4000-8000-000000000010"


@tagged("post_install", "-at_install")
class TestDashboardUi(LifecycleCase, HttpCase):
    """A sales manager opens the dashboard in the Dashboards app and finds
    the figures of the clients of the test's company: its own invoices, the
    monthly history rebuilt from them, its churn target."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dashboard = cls.env.ref(
            "crm_lifecycle_dashboard.spreadsheet_dashboard_lifecycle"
        )
        today = fields.Date.context_today(cls.env.user)
        days = lambda count: today - timedelta(days=count)  # noqa: E731
        cls.company.write(
            {
                "lifecycle_churn_target_min": 11.0,
                "lifecycle_churn_target_max": 13.0,
                "lifecycle_snapshot_months": 13,
            }
        )
        cls.industry = cls.env["res.partner.industry"].create(
            {"name": "Dashboard Test Industry"}
        )
        # a new customer with an invoice still to be paid
        cls.new_customer = cls.create_client(
            "Dashboard New Customer", industry_id=cls.industry.id
        )
        cls.paid_invoice(cls.new_customer, 5000.0, days(30))
        cls.invoice(cls.new_customer, 2500.0, days(10))
        # customers 12 months ago: one bought again, the other is lost now
        cls.retained = cls.create_client("Dashboard Retained")
        cls.paid_invoice(cls.retained, 1000.0, days(420))
        cls.paid_invoice(cls.retained, 1000.0, days(40))
        cls.churned = cls.create_client("Dashboard Churned")
        cls.paid_invoice(cls.churned, 1000.0, days(420))
        # no purchase for long: at risk, dormant
        cls.at_risk = cls.create_client("Dashboard At Risk")
        cls.paid_invoice(cls.at_risk, 3000.0, days(200))
        cls.dormant = cls.create_client("Dashboard Dormant")
        cls.paid_invoice(cls.dormant, 2000.0, days(300))
        cls.clients = (
            cls.new_customer | cls.retained | cls.churned | cls.at_risk | cls.dormant
        )
        # what the commit runs: the new partners (the users' too) get their
        # stage, as they would before the manager opens the dashboard
        cls.env.cr.precommit.run()
        cls.engine._recompute(cls.clients, cls.company)
        cls.env["crm.lifecycle.snapshot"]._rebuild(cls.company)
        cls.env.flush_all()

    def aggregate(self, model, domain, aggregate):
        Model = self.env[model].with_user(self.sales_manager)
        [(value,)] = Model._read_group(domain, [], [aggregate])
        return value

    def test_manager_finds_the_figures(self):
        stages = {client: client.lifecycle_stage_id.code for client in self.clients}
        self.assertEqual(
            stages,
            {
                self.new_customer: "new_customer",
                self.retained: "repeat_customer",
                self.churned: "lost",
                self.at_risk: "at_risk",
                self.dormant: "dormant",
            },
        )
        report = "crm.lifecycle.report"
        at_risk_value = self.at_risk.with_user(self.sales_manager).clv
        self.assertTrue(at_risk_value)
        expected = {
            "id": self.dashboard.id,
            "name": self.dashboard.name,
            "stagesChart": STAGES_CHART,
            "cells": {
                "Data!B2": self.aggregate(report, [], "client_count:sum"),
                "Data!B3": self.aggregate(
                    report,
                    [("stage_id.is_customer_stage", "=", True)],
                    "client_count:sum",
                ),
                "Data!B4": self.aggregate(report, [], "customer_capital:sum"),
                # of the 2 customers 12 months ago, 1 is lost
                "Data!B6": 0.5,
                "Data!B9": "target 11–13%",
                "Data!B10": 1,
                "Data!B11": at_risk_value,
                "Data!B12": 1,
                # the industries: the clients' only one, with its receivable
                "Dashboard!A67": "Dashboard Test Industry",
                "Dashboard!C67": 2500.0,
                # the at-risk and dormant clients, the most valuable first
                "Dashboard!A54": (
                    self.at_risk
                    if at_risk_value >= self.dormant.with_user(self.sales_manager).clv
                    else self.dormant
                ).name,
            },
        }
        action = self.env.ref("spreadsheet_dashboard.ir_actions_dashboard_action")
        self.browser_js(
            f"/odoo/action-{action.id}?dashboard_id={self.dashboard.id}",
            CHECK % {"expected": json.dumps(expected)},
            ready="!!odoo.__WOWL_DEBUG__",
            login=self.sales_manager.login,
            timeout=120,
        )
