# Copyright 2026 crm_lifecycle contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "CRM Client Lifecycle Dashboard",
    "summary": "Client lifecycle dashboard in the Dashboards app: stages, churn "
    "against its target, conversion, customer capital, clients to win back",
    "version": "1.0.0",
    "category": "Sales/CRM",
    "website": "https://github.com/crm-lifecycle/crm_lifecycle",
    "author": "crm_lifecycle contributors",
    "maintainers": ["crm-lifecycle"],
    "license": "LGPL-3",
    "development_status": "Beta",
    "depends": ["crm_lifecycle", "spreadsheet_dashboard"],
    "data": ["data/dashboards.xml"],
    "demo": ["demo/crm_lifecycle_dashboard_demo.xml"],
    "auto_install": True,
    "installable": True,
}
