"""Small stand-in backends for render tests, registered through settings.RENDER_TARGETS.

TargetConverter only calls `Backend(processing_pipeline=...)` and
`backend.convert(collection, output_format)`, so these classes need no pySigma base.
"""

import os
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from sigma.exceptions import SigmaValueError


class EchoBackend:
    """Returns one query per rule naming its title, with no pySigma processing."""

    def __init__(self, processing_pipeline=None, **options):
        self.processing_pipeline = processing_pipeline

    def convert(self, collection, output_format="default"):
        return [f"title={rule.title}" for rule in collection.rules]


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


class ErrorBackend:
    """Raises the exception that the target's output format names, as a broken backend would."""

    def __init__(self, processing_pipeline=None, **options):
        self.processing_pipeline = processing_pipeline

    def convert(self, collection, output_format="default"):
        if output_format == "sigma_error":
            raise SigmaValueError("the cased modifier is not supported by this backend")
        if output_format == "not_implemented":
            raise NotImplementedError("regular expressions are not supported")
        if output_format == "recursion":
            _recurse(0)
        if output_format == "key_error":
            raise KeyError("ImageLoaded")
        if output_format == "timeout":
            # What Celery raises in a task at its soft time limit, wherever it is.
            raise SoftTimeLimitExceeded()
        raise ValueError(f"unknown test output format {output_format!r}")


class SetupErrorBackend:
    """Raises when it is created, as a backend with a broken dependency does."""

    def __init__(self, processing_pipeline=None, **options):
        raise RuntimeError("the backend's field mapping file is missing")


class SlowBackend:
    """Sleeps in convert, so a test can kill the worker process while a render runs.

    SLOW_BACKEND_SECONDS sets the sleep (default 2). When SLOW_BACKEND_PID_DIR is set,
    convert creates a file named after its process id there while it sleeps, with the
    rule title as content, so a test can find the process that runs a render.
    """

    def __init__(self, processing_pipeline=None, **options):
        self.processing_pipeline = processing_pipeline

    def convert(self, collection, output_format="default"):
        seconds = float(os.environ.get("SLOW_BACKEND_SECONDS", "2"))
        pid_dir = os.environ.get("SLOW_BACKEND_PID_DIR")
        marker = Path(pid_dir) / str(os.getpid()) if pid_dir else None
        titles = [rule.title for rule in collection.rules]
        if marker:
            marker.write_text("\n".join(titles), encoding="utf-8")
        time.sleep(seconds)
        if marker:
            marker.unlink(missing_ok=True)
        return [f"slow title={title}" for title in titles]
