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
    "depends": ["crm", "account"],
    "data": [],
    "installable": True,
    "application": False,
}
