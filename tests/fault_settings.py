"""Settings of the fault tests: short time limits so that recovery happens within seconds.

With KILL_VALIDATION_POOL=1 in the environment, every validation run kills the
worker pool process that executes it, as an out-of-memory kill would. With
SLOW_RENDER_TARGET=1, the slow test target of tests.render_settings is rendered
next to the configured ones.
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

if os.environ.get("SLOW_RENDER_TARGET") == "1":
    from tests.render_settings import RENDER_TARGETS as WORKER_TEST_TARGETS

    RENDER_TARGETS = {**RENDER_TARGETS, "slow": WORKER_TEST_TARGETS["slow"]}  # noqa: F405
