"""Settings of the fault tests: short time limits so that recovery happens within seconds.

With KILL_VALIDATION_POOL=1 in the environment, every validation run kills the
worker pool process that executes it, as an out-of-memory kill would.
"""

import os

from portal.settings import *  # noqa: F403

# A render or validation run counts as abandoned 6 s after its claim, and the
# worker's recovery sweep runs every 6 s.
RENDER_SOFT_TIME_LIMIT = 4
RENDER_HARD_TIME_LIMIT = 5
RENDER_ABANDONED_MARGIN = 1
VALIDATION_SOFT_TIME_LIMIT = 4
VALIDATION_HARD_TIME_LIMIT = 5
VALIDATION_ABANDONED_MARGIN = 1

if os.environ.get("KILL_VALIDATION_POOL") == "1":
    from tests import fault_hooks  # noqa: F401 - connects the worker signal
