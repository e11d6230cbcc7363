"""Settings for the worker tests: a slow render target and short time limits.

The worker tests pass DJANGO_SETTINGS_MODULE=tests.render_settings to every
subprocess, so the worker, load_content and migrate share these values.
"""

from portal.settings import *  # noqa: F403
from portal.settings import RENDER_TARGETS as PORTAL_RENDER_TARGETS

# The SQLite target renders in milliseconds, next to a target whose backend sleeps for
# SLOW_BACKEND_SECONDS (2 s by default) in convert.
RENDER_TARGETS = {
    "sqlite": PORTAL_RENDER_TARGETS["sqlite"],
    "slow": {
        "label": "Slow test backend",
        "backend": "tests.render_backends:SlowBackend",
        "pipelines": [],
        "format": "default",
        "packages": ["pySigma"],
        "extension": "txt",
        "lexer": "text",
        "cli": None,
    },
}

# One render a task, so a killed pool process loses one render and not a batch.
RENDER_BATCH_SIZE = 1
# A render counts as abandoned 6 s after its claim (hard limit plus margin) instead
# of 180 s, so a test can wait for the cutoff. The slow backend's 2 s stay under the
# soft limit.
RENDER_SOFT_TIME_LIMIT = 4
RENDER_HARD_TIME_LIMIT = 5
RENDER_ABANDONED_MARGIN = 1
