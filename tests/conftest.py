import os
from pathlib import Path

import pytest
from django.core.management import call_command

from detections.models import Detection

from .personas import admin_user, author, outsider, reviewer, viewer  # noqa: F401  (fixtures)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTENT_DIR = REPO_ROOT / "content"
FILES_DIR = Path(__file__).resolve().parent / "files"
SEED_SLUG = "archive-via-library-splunk"


@pytest.fixture
def seed_detection(db) -> Detection:
    """The shipped T1560.002 detection, loaded from the repository's content folder."""
    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    return Detection.objects.get(slug=SEED_SLUG)


@pytest.fixture(autouse=True)
def clear_cache():
    """Start every test with an empty cache, so API throttle counts do not carry over."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def throttle_clock(monkeypatch):
    """Hold the throttles' clock 20 s into a window, so counts never straddle two windows."""
    from portal.throttling import WindowRateThrottle

    monkeypatch.setattr(WindowRateThrottle, "timer", lambda self: 1_800_000_020.0)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """Give each PostgreSQL test run its own database, so parallel runs cannot collide."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "postgresql" in database["ENGINE"]:
        database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


@pytest.fixture(autouse=True, scope="session")
def celery_memory_broker() -> None:
    """Keep messages that in-process tests publish in memory, not in the repository's var/."""
    from portal.celery import app

    app.conf.broker_url = "memory://"
    app.conf.broker_transport_options = {}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Close stray PostgreSQL sessions before the test database is dropped.

    Live-server threads can leave a connection open, and PostgreSQL refuses to drop
    a database that has sessions, which would leave the test database behind.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
