"""Cached API responses, keyed by a stamp of the whole catalogue.

The token in the single `ContentStamp` row changes after every committed write to a
table whose rows the API shows: every table of the detections and playbooks apps
except previews, plus `auth_user` (usernames appear in tuning entries). A database
execute wrapper inspects each INSERT, UPDATE and DELETE, including `QuerySet.update()`
and `bulk_create()` calls, which send no signals, so render and validation workers
need no extra calls. PostgreSQL COPY bypasses the wrapper and calls
`content_changed()` itself.

The token changes after the commit, not inside the transaction: a reader that reads
the old token before the bump may store new content under it, which is harmless
because no reader asks for the old token after the bump. A process that dies between
its commit and the bump leaves the old token in place, so cached entries also expire
after settings.API_CACHE_TIMEOUT seconds.
"""

import hashlib
import re
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.backends.signals import connection_created
from django.db.models import Subquery
from django.db.models.signals import post_migrate, pre_migrate

STAMP_ID = 1
# Statements that cannot change rows are skipped by their first word.
READ_ONLY_STATEMENTS = (
    "SELECT",
    "SAVEPOINT",
    "RELEASE",
    "ROLLBACK",
    "BEGIN",
    "COMMIT",
    "SET",
    "SHOW",
    "PRAGMA",
    "EXPLAIN",
)
SHOWN_TABLE = re.compile(r"\b((?:detections|playbooks)_\w+|auth_user)\b")
UNSHOWN_TABLES = frozenset({"detections_contentstamp", "detections_preview"})


def _changes_shown_content(sql: str) -> bool:
    head = sql.lstrip()[:10].upper()
    if head.startswith(READ_ONLY_STATEMENTS):
        return False
    return any(name not in UNSHOWN_TABLES for name in SHOWN_TABLE.findall(sql))


def stamp_replace(using: str = "default") -> None:
    """Store a new random token in the stamp row, creating the row if it is missing."""
    from .models import ContentStamp

    token = uuid.uuid4().hex
    if not ContentStamp.objects.using(using).filter(pk=STAMP_ID).update(token=token):
        ContentStamp.objects.using(using).update_or_create(pk=STAMP_ID, defaults={"token": token})


def _bump_callback(using: str):
    def bump() -> None:
        stamp_replace(using)

    bump.content_stamp_alias = using
    return bump


def content_changed(using: str = "default") -> None:
    """Replace the stamp once the current transaction commits, or now outside one.

    One callback per transaction is registered, however many writes it makes.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        stamp_replace(using)
        return
    for _, callback, _ in connection.run_on_commit:
        if getattr(callback, "content_stamp_alias", None) == using:
            return
    transaction.on_commit(_bump_callback(using), using=using, robust=True)


# True while `migrate` runs: its statements create and fill tables before the stamp
# table exists, so the stamp is replaced once afterwards instead.
_migrating = False


def _watch_writes(execute, sql, params, many, context):
    try:
        return execute(sql, params, many, context)
    finally:
        if not _migrating and _changes_shown_content(sql):
            content_changed(context["connection"].alias)


def _migration_started(sender, **kwargs) -> None:
    global _migrating
    _migrating = True


def _migration_finished(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    global _migrating
    _migrating = False
    try:
        stamp_replace(using)
    except DatabaseError:
        # Migrated back to before the stamp table: nothing is cached without its row.
        pass


def _install(sender, connection, **kwargs) -> None:
    if _watch_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(_watch_writes)


def connect() -> None:
    """Watch every database connection's writes, including those already open."""
    connection_created.connect(_install, dispatch_uid="content-stamp-watch")
    pre_migrate.connect(_migration_started, dispatch_uid="content-stamp-migrate-start")
    post_migrate.connect(_migration_finished, dispatch_uid="content-stamp-migrate-end")
    for connection in connections.all(initialized_only=True):
        _install(None, connection)


def stamp_subquery() -> Subquery:
    """Return the current token as a subquery, so one query reads it with other rows."""
    from .models import ContentStamp

    return Subquery(ContentStamp.objects.filter(pk=STAMP_ID).values("token")[:1])


def current_stamp() -> str | None:
    """Return the current token, or None while the row is missing (nothing is cached).

    The query is plain SQL because anonymous cached reads run it on every request.
    """
    from .models import ContentStamp

    table = connection.ops.quote_name(ContentStamp._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {table} WHERE id = %s", [STAMP_ID])
        row = cursor.fetchone()
    return row[0] if row else None


def cache_key(kind: str, *parts: object) -> str:
    """Return a fixed-length cache key for `kind` made of `parts`."""
    digest = hashlib.sha256("\0".join(str(part) for part in parts).encode("utf-8")).hexdigest()
    return f"api-response:{kind}:{digest}"


def cached_body(key: str) -> bytes | None:
    return cache.get(key)


def body_store(key: str, body: bytes) -> None:
    cache.set(key, body, settings.API_CACHE_TIMEOUT)
