from . import crm_lifecycle_stage_wizard
from . import base_partner_merge
from . import crm_lifecycle_handover_wizard
from . import crm_lifecycle_playbook_preview
