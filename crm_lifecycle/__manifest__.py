# Copyright 2026 crm_lifecycle contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "CRM Client Lifecycle",
    "summary": "Client lifecycle stages, loyalty levels, playbooks and handover "
    "computed from invoices, payments and opportunities",
    "version": "18.0.1.0.0",
    "category": "Sales/CRM",
    "website": "https://github.com/crm-lifecycle/crm_lifecycle",
    "author": "crm_lifecycle contributors",
    "maintainers": ["crm-lifecycle"],
    "license": "LGPL-3",
    "development_status": "Beta",
    "depends": ["crm", "account", "mail"],
    "data": [
        "security/crm_lifecycle_security.xml",
        "security/ir.model.access.csv",
        "data/crm_lifecycle_stage_data.xml",
        "data/ir_cron_data.xml",
        "views/crm_lifecycle_stage_views.xml",
        "views/crm_lifecycle_history_views.xml",
        "views/crm_lifecycle_stage_wizard_views.xml",
        "views/res_partner_views.xml",
        "views/crm_lead_views.xml",
        "views/res_config_settings_views.xml",
        "views/crm_lifecycle_playbook_views.xml",
        "views/crm_lifecycle_playbook_preview_views.xml",
        "views/menus.xml",
    ],
    "demo": ["demo/crm_lifecycle_demo.xml"],
    "post_init_hook": "post_init_hook",
    "installable": True,
    "application": False,
}
