from . import crm_lifecycle_stage_wizard
from . import base_partner_merge
from . import crm_lifecycle_handover_wizard
