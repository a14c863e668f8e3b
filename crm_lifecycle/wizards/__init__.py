from . import crm_lifecycle_stage_wizard
from . import base_partner_merge
