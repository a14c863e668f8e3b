from . import test_install
from . import test_lifecycle_stages
from . import test_lifecycle_override
from . import test_lifecycle_engine
from . import test_loyalty
from . import test_value
from . import test_handover
from . import test_playbook
