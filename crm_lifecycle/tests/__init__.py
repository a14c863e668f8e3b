from . import test_install
from . import test_lifecycle_stages
from . import test_lifecycle_override
from . import test_lifecycle_engine
from . import test_playbook
