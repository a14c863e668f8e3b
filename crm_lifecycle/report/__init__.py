from . import crm_lifecycle_report
