"""Rendering Sigma rules for every target: scheduling render rows and running them.

A render row moves queued -> running -> rendered | failed. Targets whose package
is missing end as unavailable. Only a worker (or `render_queries --inline`) runs
renders; web requests only read them.
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import Error as DatabaseLayerError
from django.db import connections, transaction
from django.db.models import DateTimeField, F, JSONField, Q
from django.utils import timezone

from .models import Render, SigmaRule
from .pysigma.convert import (
    LoadedRule,
    RenderTarget,
    TargetConverter,
    TargetUnavailable,
    load_rule,
    render_targets,
    target_versions,
)
from .response_cache import content_changed
from .tuning import filters_by_rule

logger = logging.getLogger(__name__)


def render_input_hash(
    rule_text: str,
    target: RenderTarget,
    versions: dict[str, str],
    filters: list[dict] | None = None,
) -> str:
    """Hash everything a render's output depends on: rule text, tuning filters, target
    definition, versions.

    The hashed text is `json.dumps` of a dict with the keys backend, filters, format,
    pipelines, rule, target and versions, sorted. The filters count only when there
    are some, so rules without tuning entries keep the hashes they had before tuning
    entries existed and are not rendered again.
    """
    return _input_hash(_json(rule_text), _target_material(target, versions), filters)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _target_material(target: RenderTarget, versions: dict[str, str]) -> dict[str, str]:
    """Return the JSON text of each target-dependent value of the hashed material."""
    return {
        "backend": _json(target.backend),
        "format": _json(target.output_format),
        "pipelines": _json(list(target.pipelines)),
        "target": _json(target.key),
        "versions": _json(versions),
    }


def _input_hash(rule_json: str, target_material: dict[str, str], filters) -> str:
    """Hash the material from values already encoded as JSON.

    A re-render of unchanged content hashes every rule for every target, so each rule
    text and each target is encoded once and the object is joined from the pieces,
    the same text `json.dumps(..., sort_keys=True)` writes for the whole dict.
    """
    encoded = {**target_material, "rule": rule_json}
    if filters:
        encoded["filters"] = _json(filters)
    material = "{" + ", ".join(f'"{key}": {encoded[key]}' for key in sorted(encoded)) + "}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredRender:
    """The columns of an existing render row that scheduling compares."""

    pk: int
    input_hash: str
    status: str
    error: str


def renders_schedule(
    *,
    rule_ids: Iterable[int],
    targets: list[str] | None = None,
    force: bool = False,
    enqueue: bool = True,
) -> list[int]:
    """Queue the renders whose input changed and send them to the workers after commit.

    A render with the same input hash as its last finished run is left alone unless
    `force`. With `enqueue=False` the rows are only queued, for a caller that runs
    them itself. Returns the ids of the render rows that were queued.

    Existing rows are read as a few columns, not as model instances: re-scheduling
    unchanged content reads every render row, and loading each row's query and
    warnings cost most of that time.
    """
    selected = _selected_targets(targets)
    inputs = {key: _target_input_or_reason(target) for key, target in selected.items()}
    ids = list(rule_ids)
    changed: list[Render] = []
    rule_sizes: dict[int, int] = {}
    with transaction.atomic():
        for start in range(0, len(ids), SCHEDULE_CHUNK):
            chunk = ids[start : start + SCHEDULE_CHUNK]
            rules = list(
                SigmaRule.objects.filter(pk__in=chunk).only(
                    "pk", "yaml_text", "rule_id", "detection_id"
                )
            )
            stored: dict[int, dict[str, StoredRender]] = {rule.pk: {} for rule in rules}
            rows = Render.objects.filter(sigma_rule_id__in=chunk, target__in=list(selected))
            for pk, rule_pk, target_key, input_hash, status, error in rows.values_list(
                "pk", "sigma_rule_id", "target", "input_hash", "status", "error"
            ):
                stored[rule_pk][target_key] = StoredRender(pk, input_hash, status, error)
            filters = filters_by_rule(rules)
            for rule in rules:
                rule_sizes[rule.pk] = len(rule.yaml_text)
                rule_json = _json(rule.yaml_text)
                existing = stored[rule.pk]
                for target in selected.values():
                    render = _render_prepare(
                        rule,
                        rule_json,
                        target,
                        inputs[target.key],
                        existing.get(target.key),
                        force,
                        filters.get(rule.pk),
                    )
                    if render is not None:
                        changed.append(render)
        _renders_save(changed)
        queued = [render for render in changed if render.status == Render.Status.QUEUED]
        # Rules with the longest text first: the slowest renders then run while other
        # workers take the rest, instead of at the end. The sort is stable, so a rule's renders
        # stay together.
        queued.sort(key=lambda render: -rule_sizes[render.sigma_rule_id])
        queued = [render.pk for render in queued]
        if queued and enqueue:
            transaction.on_commit(lambda: renders_enqueue(queued))
    return queued


# Rules read per query while scheduling; keeps IN lists well under SQLite's
# limit on query parameters.
SCHEDULE_CHUNK = 500

# The columns that scheduling writes, by the status it sets.
QUEUED_FIELDS = [
    "status",
    "input_hash",
    "versions",
    "pipelines",
    "output_format",
    "queued_at",
    "attempts",
    "task_id",
]
UNAVAILABLE_FIELDS = [
    "status",
    "error",
    "query",
    "warnings",
    "input_hash",
    "pipelines",
    "output_format",
    "finished_at",
]


def _renders_save(renders: list[Render]) -> None:
    """Write scheduled renders in bulk: one INSERT or UPDATE per few hundred rows."""
    # Split before the INSERT: bulk_create sets the primary keys of the new rows, and
    # updating them again would cost more than inserting them.
    new = [render for render in renders if render.pk is None]
    existing = [render for render in renders if render.pk is not None]
    _renders_insert(new)
    queued = [render for render in existing if render.status == Render.Status.QUEUED]
    unavailable = [render for render in existing if render.status != Render.Status.QUEUED]
    Render.objects.bulk_update(queued, QUEUED_FIELDS, batch_size=500)
    Render.objects.bulk_update(unavailable, UNAVAILABLE_FIELDS, batch_size=500)


# Rows per executemany call when inserting renders on SQLite.
INSERT_BATCH = 5000


def _renders_insert(renders: list[Render]) -> None:
    """Insert new render rows in bulk, then read back their primary keys.

    bulk_create compiles every value of every row through the ORM and, on SQLite,
    sends at most 999 parameters per statement. Inserting the 52,556 renders of 3,754
    new rules took 5.2 s that way on SQLite and 5.6 s on PostgreSQL, against 1.7 s
    with executemany on SQLite and 1.6 s with COPY on PostgreSQL (2 cores, PostgreSQL
    15 on the same machine). Only JSON and datetime values need the database's
    adaptation; the other columns of Render take Python's str, int, float and None as
    they are.
    """
    if not renders:
        return
    connection = connections[Render.objects.db]
    fields = [field for field in Render._meta.concrete_fields if not field.primary_key]
    adapted = [isinstance(field, JSONField | DateTimeField) for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    rows = []
    for render in renders:
        row = []
        for model_field, adapt in zip(fields, adapted, strict=True):
            value = getattr(render, model_field.attname)
            row.append(model_field.get_db_prep_save(value, connection) if adapt else value)
        rows.append(row)
    table = Render._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # COPY goes around the execute wrapper that notices writes.
            content_changed(connection.alias)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            for start in range(0, len(rows), INSERT_BATCH):
                cursor.executemany(sql, rows[start : start + INSERT_BATCH])
    rule_ids = sorted({render.sigma_rule_id for render in renders})
    keys = {}
    for start in range(0, len(rule_ids), SCHEDULE_CHUNK):
        chunk = rule_ids[start : start + SCHEDULE_CHUNK]
        rows_read = Render.objects.filter(sigma_rule_id__in=chunk).values_list(
            "pk", "sigma_rule_id", "target"
        )
        for pk, rule_id, target in rows_read:
            keys[(rule_id, target)] = pk
    for render in renders:
        render.pk = keys[(render.sigma_rule_id, render.target)]
        render._state.adding = False


@dataclass(frozen=True)
class TargetInput:
    """A target's package versions and its part of the hashed material."""

    versions: dict[str, str]
    material: dict[str, str]


def _target_input_or_reason(target: RenderTarget) -> TargetInput | str:
    """Return the target's versions and material, or why it is unavailable."""
    try:
        versions = target_versions(target)
    except TargetUnavailable as exc:
        return str(exc)
    return TargetInput(versions, _target_material(target, versions))


def _render_prepare(
    rule: SigmaRule,
    rule_json: str,
    target: RenderTarget,
    target_input: TargetInput | str,
    stored: StoredRender | None,
    force: bool,
    filters: list[dict] | None = None,
) -> Render | None:
    """Return the render set up to be queued or marked unavailable, or None if unchanged.

    An existing row comes back as an instance with only its key and the columns that
    scheduling writes set; _renders_save writes just those.
    """
    if isinstance(target_input, str):
        reason = target_input
        if stored and stored.status == Render.Status.UNAVAILABLE and stored.error == reason:
            return None
        return _mark_unavailable(_render_for(rule, target, stored), target, reason)
    input_hash = _input_hash(rule_json, target_input.material, filters)
    if stored and stored.input_hash == input_hash and not force:
        return None
    render = _render_for(rule, target, stored)
    render.status = Render.Status.QUEUED
    render.input_hash = input_hash
    render.versions = target_input.versions
    render.pipelines = target.pipeline_names
    render.output_format = target.output_format
    render.queued_at = timezone.now()
    render.attempts = 0
    render.task_id = ""
    return render


def _render_for(rule: SigmaRule, target: RenderTarget, stored: StoredRender | None) -> Render:
    """Return a new render row for the rule and target, or a handle on the stored one."""
    if stored is None:
        return Render(sigma_rule=rule, target=target.key)
    render = Render(pk=stored.pk, sigma_rule_id=rule.pk, target=target.key)
    render._state.adding = False
    return render


def _mark_unavailable(render: Render, target: RenderTarget, reason: str) -> Render:
    render.status = Render.Status.UNAVAILABLE
    render.error = reason
    render.query = ""
    render.warnings = []
    render.input_hash = ""
    render.pipelines = target.pipeline_names
    render.output_format = target.output_format
    render.finished_at = timezone.now()
    return render


def renders_enqueue(render_ids: list[int]) -> int:
    """Send render ids to the `render` queue in batches; return how many batches were sent.

    When the broker is unreachable the rows stay queued and are sent again when a
    worker starts or sweeps, or when `render_queries` runs.
    """
    from kombu.exceptions import OperationalError as BrokerError

    from .tasks import render_batch

    size = max(1, settings.RENDER_BATCH_SIZE)
    batches = [render_ids[start : start + size] for start in range(0, len(render_ids), size)]
    for sent, batch in enumerate(batches):
        try:
            render_batch.apply_async(args=[batch])
        except BrokerError as exc:
            logger.warning(
                "broker unreachable, %d renders stay queued until a worker starts: %s",
                sum(len(rest) for rest in batches[sent:]),
                exc,
            )
            return sent
    return len(batches)


def renders_run(
    *,
    render_ids: list[int],
    task_id: str,
    timeout_errors: tuple[type[BaseException], ...] = (),
    progress: Callable[[Render], None] | None = None,
) -> None:
    """Run the given renders in this process; safe to run twice with the same ids.

    Renders are claimed by conditional updates before they are converted, so a
    duplicate delivery skips finished renders, and a redelivery after a killed
    worker resumes the renders that were in progress. The renders that no worker
    has started yet are claimed with one UPDATE, and their outcomes are stored a
    few dozen at a time, because each commit is a round trip and replaces the
    content stamp. A render that was claimed before (its worker died, or the task
    is retried) is claimed and stored on its own, so a render that kills its
    worker uses up its own attempts, and the others of its task lose at most the
    one attempt of the first kill.
    """
    targets = render_targets()
    pending = [
        render
        for render in Render.objects.filter(pk__in=render_ids)
        .only("pk", "sigma_rule_id", "target", "status", "task_id", "attempts")
        .order_by("sigma_rule_id", "target")
        if render.status == Render.Status.QUEUED
        or (render.status == Render.Status.RUNNING and render.task_id == task_id)
    ]
    rules = RuleSources.read(sorted({render.sigma_rule_id for render in pending}))
    fresh = [r for r in pending if r.status == Render.Status.QUEUED and r.attempts == 0]
    fresh_pks = {render.pk for render in fresh}
    retried = [render for render in pending if render.pk not in fresh_pks]
    task = TaskRun(task_id, targets, rules, timeout_errors, progress)
    rest = _run_fresh(fresh, task)
    if rest is not None:
        _send_again([*rest, *(render.pk for render in retried)])
        return
    rest = _run_retried(retried, task)
    if rest is not None:
        _send_again(rest)


def _send_again(render_ids: list[int]) -> None:
    logger.warning("a render timed out; %d renders sent again", len(render_ids))
    renders_enqueue(render_ids)


# Outcomes stored per commit, and the seconds after which they are stored anyway,
# so the pages show progress during a long task.
FLUSH_RENDERS = 50
FLUSH_SECONDS = 1.0


@dataclass
class TaskRun:
    """One call of renders_run: its task id, what it converts with, and its callbacks."""

    task_id: str
    targets: dict[str, RenderTarget]
    rules: "RuleSources"
    timeout_errors: tuple[type[BaseException], ...]
    progress: Callable[[Render], None] | None


def _run_fresh(renders: list[Render], task: TaskRun) -> list[int] | None:
    """Claim never-started renders in one UPDATE, convert them and store the outcomes
    in a few executemany calls.

    Returns None, or after a timeout the ids of the renders to send again.
    """
    claimed = _claim_fresh(renders, task.task_id)
    outcomes: list[tuple[Render, RenderOutcome]] = []
    flushed_at = time.monotonic()
    for index, render in enumerate(claimed):
        try:
            outcome = _render_outcome(render, task)
        except task.timeout_errors:
            logger.warning("render %s for %s timed out", render.pk, render.target)
            outcomes.append((render, _timed_out()))
            _finish_many(outcomes, task.progress)
            unconverted = [item.pk for item in claimed[index + 1 :]]
            # Claimed but never started: they go back to the queue as they were.
            Render.objects.filter(
                pk__in=unconverted, status=Render.Status.RUNNING, task_id=task.task_id
            ).update(status=Render.Status.QUEUED, task_id="", attempts=F("attempts") - 1)
            return unconverted
        outcomes.append((render, outcome))
        if len(outcomes) >= FLUSH_RENDERS or time.monotonic() - flushed_at >= FLUSH_SECONDS:
            _finish_many(outcomes, task.progress)
            outcomes = []
            flushed_at = time.monotonic()
    _finish_many(outcomes, task.progress)
    return None


def _run_retried(renders: list[Render], task: TaskRun) -> list[int] | None:
    """Claim, convert and store renders one at a time. Returns what _run_fresh returns."""
    for index, render in enumerate(renders):
        if not _claim(render, task.task_id):
            continue
        try:
            outcome = _render_outcome(render, task)
        except task.timeout_errors:
            _finish(render, _timed_out())
            logger.warning("render %s for %s timed out", render.pk, render.target)
            return [item.pk for item in renders[index + 1 :]]
        _finish(render, outcome)
        if task.progress:
            task.progress(render)
    return None


def _claim_fresh(renders: list[Render], task_id: str) -> list[Render]:
    """Claim the renders that no worker has started with one UPDATE, and return the
    ones claimed.

    Their started_at is the claim time. A task's hard time limit ends it before the
    abandoned cutoff, so the last render of a task is not taken for abandoned.
    """
    if not renders:
        return []
    pks = [render.pk for render in renders]
    started_at = timezone.now()
    Render.objects.filter(pk__in=pks, status=Render.Status.QUEUED, attempts=0).update(
        status=Render.Status.RUNNING,
        task_id=task_id,
        started_at=started_at,
        attempts=F("attempts") + 1,
    )
    claimed_pks = set(
        Render.objects.filter(
            pk__in=pks, status=Render.Status.RUNNING, task_id=task_id
        ).values_list("pk", flat=True)
    )
    claimed = [render for render in renders if render.pk in claimed_pks]
    for render in claimed:
        render.status = Render.Status.RUNNING
        render.task_id = task_id
        render.started_at = started_at
        render.attempts = 1
    return claimed


def _claim(render: Render, task_id: str) -> bool:
    claimable = Q(status=Render.Status.QUEUED) | Q(status=Render.Status.RUNNING, task_id=task_id)
    updated = (
        Render.objects.filter(pk=render.pk)
        .filter(claimable)
        .update(
            status=Render.Status.RUNNING,
            task_id=task_id,
            started_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
    )
    if not updated:
        return False
    render.refresh_from_db(fields=["attempts", "status", "task_id", "started_at"])
    if render.attempts > settings.RENDER_MAX_ATTEMPTS:
        _finish(
            render,
            RenderOutcome(
                error=(
                    f"The worker stopped while rendering {settings.RENDER_MAX_ATTEMPTS} times "
                    "(killed, out of memory or over the hard time limit); not retried."
                )
            ),
        )
        return False
    return True


# Converters of this process by target. Building one takes up to about 100 ms
# (the pipelines), against a few milliseconds for a conversion, so a worker keeps
# them for its lifetime. A changed target entry is a different key.
_converters: dict[RenderTarget, TargetConverter | str] = {}


def target_converter(target: RenderTarget) -> TargetConverter | str:
    """Return this process's converter for a target, or why the target is unavailable."""
    converter = _converters.get(target)
    if converter is None:
        try:
            converter = TargetConverter(target)
        except TargetUnavailable as exc:
            converter = str(exc)
        _converters[target] = converter
    return converter


@dataclass
class RenderOutcome:
    """The values stored for a finished render. Without `status`, an error means failed."""

    query: str = ""
    error: str = ""
    warnings: list = field(default_factory=list)
    duration_ms: float | None = None
    status: str | None = None


def _timed_out() -> RenderOutcome:
    return RenderOutcome(error=f"Timed out after {settings.RENDER_SOFT_TIME_LIMIT} s.")


def _render_outcome(render: Render, task: TaskRun) -> RenderOutcome:
    """Convert one claimed render. Any error except a timeout or a lost database
    connection becomes the render's outcome."""
    target = task.targets.get(render.target)
    if target is None:
        return RenderOutcome(error=f"Target {render.target!r} is no longer configured.")
    try:
        converter = target_converter(target)
        if isinstance(converter, str):
            return RenderOutcome(error=converter, status=Render.Status.UNAVAILABLE)
        loaded = task.rules.load(render.sigma_rule_id)
        if isinstance(loaded, str):
            return RenderOutcome(error=loaded)
        conversion = converter.convert(loaded, propagate=task.timeout_errors)
    except task.timeout_errors:
        raise
    except DatabaseLayerError:
        # A lost connection: the task retries, and the claim resumes this render.
        raise
    except Exception as exc:
        # Left `running`, the render would wait for the abandoned cutoff and then fail
        # as if its worker had died.
        logger.exception("render %s for %s raised an error", render.pk, render.target)
        return RenderOutcome(error=f"Rendering failed with {type(exc).__name__}: {exc}")
    return RenderOutcome(
        query=conversion.query,
        error=conversion.error,
        warnings=[warning.as_dict() for warning in conversion.warnings],
        duration_ms=conversion.duration_ms,
    )


@dataclass
class RuleSources:
    """The texts and tuning filters of a task's rules, read in bulk, and each rule
    parsed on first use."""

    texts: dict[int, tuple[str, list[dict] | None]]
    parsed: dict[int, LoadedRule | str] = field(default_factory=dict)

    @classmethod
    def read(cls, rule_pks: list[int]) -> "RuleSources":
        fields = ("pk", "yaml_text", "rule_id", "detection_id")
        texts = {}
        for start in range(0, len(rule_pks), SCHEDULE_CHUNK):
            rules = list(
                SigmaRule.objects.filter(pk__in=rule_pks[start : start + SCHEDULE_CHUNK]).only(
                    *fields
                )
            )
            filters = filters_by_rule(rules)
            for rule in rules:
                texts[rule.pk] = (rule.yaml_text, filters.get(rule.pk))
        return cls(texts)

    def load(self, rule_pk: int) -> LoadedRule | str:
        """Return the rule with its detection's active tuning filters applied, or why
        it cannot be rendered."""
        loaded = self.parsed.get(rule_pk)
        if loaded is not None:
            return loaded
        if rule_pk not in self.texts:
            return "The Sigma rule was deleted."
        text, filters = self.texts[rule_pk]
        try:
            loaded = load_rule(text, filters)
        except ValueError as exc:
            loaded = f"The Sigma rule cannot be parsed: {exc}"
        self.parsed[rule_pk] = loaded
        return loaded


# Backend messages can list hundreds of field names, and their start names the problem.
MAX_ERROR_CHARS = 2000


def _final_values(render: Render, outcome: RenderOutcome) -> tuple[str, str]:
    """Return the status and the error text to store, and log a failed outcome."""
    error = outcome.error
    final_status = outcome.status or (Render.Status.FAILED if error else Render.Status.RENDERED)
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + " [truncated]"
    if error:
        first_line = error.splitlines()[0]
        logger.info(
            "render %s for %s ended %s: %s", render.pk, render.target, final_status, first_line
        )
    return final_status, error


def _finish(render: Render, outcome: RenderOutcome) -> None:
    """Store a render's outcome unless it was queued again meanwhile."""
    final_status, error = _final_values(render, outcome)
    Render.objects.filter(
        pk=render.pk, status=Render.Status.RUNNING, task_id=render.task_id
    ).update(
        status=final_status,
        query=outcome.query,
        error=error,
        warnings=outcome.warnings,
        duration_ms=outcome.duration_ms,
        finished_at=timezone.now(),
    )


FINISHED_FIELDS = ("status", "query", "error", "warnings", "duration_ms", "finished_at")


def _finish_many(
    outcomes: list[tuple[Render, RenderOutcome]],
    progress: Callable[[Render], None] | None = None,
) -> None:
    """Store the outcomes of several renders in one transaction, each row under the
    same condition as _finish."""
    if not outcomes:
        return
    connection = connections[Render.objects.db]
    quote = connection.ops.quote_name
    meta = Render._meta
    assignments = ", ".join(
        f"{quote(meta.get_field(name).column)} = %s" for name in FINISHED_FIELDS
    )
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "
        f"WHERE {quote(meta.pk.column)} = %s AND {quote(meta.get_field('status').column)} = %s "
        f"AND {quote(meta.get_field('task_id').column)} = %s"
    )

    warnings_field = meta.get_field("warnings")
    finished_field = meta.get_field("finished_at")
    finished_at = finished_field.get_db_prep_save(timezone.now(), connection)
    rows = []
    for render, outcome in outcomes:
        final_status, error = _final_values(render, outcome)
        warnings = warnings_field.get_db_prep_save(outcome.warnings, connection)
        rows.append(
            [
                str(final_status),
                outcome.query,
                error,
                warnings,
                outcome.duration_ms,
                finished_at,
                render.pk,
                Render.Status.RUNNING.value,
                render.task_id,
            ]
        )

    # One transaction: in autocommit mode each row would be its own commit.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    if progress:
        for render, _ in outcomes:
            progress(render)


def abandoned_after_seconds() -> int:
    """Return the seconds after its claim at which a running render counts as abandoned.

    By then the hard time limit has killed the task that claimed it, so only a dead
    worker can have left it `running`.
    """
    margin = settings.RENDER_ABANDONED_MARGIN
    return settings.RENDER_HARD_TIME_LIMIT + margin


def renders_recover(*, sweep: bool = False) -> list[int]:
    """Re-send queued renders and renders abandoned by a dead worker; return their ids.

    Runs when a worker starts, periodically in every worker, and before
    `render_queries`, so nothing stays queued or running forever, whether or not
    Celery beat runs. A start sends every queued render again, because its message
    may have been lost with the broker or with a killed worker. A periodic `sweep`
    sends again only the renders queued before the abandoned cutoff, so renders
    that are still waiting in a short queue are not sent twice.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=abandoned_after_seconds())
    abandoned = Render.objects.filter(status=Render.Status.RUNNING, started_at__lt=cutoff)
    exhausted = abandoned.filter(attempts__gte=settings.RENDER_MAX_ATTEMPTS)
    failed = exhausted.update(
        status=Render.Status.FAILED,
        error=(
            f"The worker stopped while rendering {settings.RENDER_MAX_ATTEMPTS} times "
            "(killed, out of memory or over the hard time limit); not retried."
        ),
        finished_at=now,
    )
    if failed:
        logger.warning("%d abandoned renders failed after their last attempt", failed)
    abandoned_ids = list(abandoned.values_list("pk", flat=True))
    if abandoned_ids:
        abandoned.filter(pk__in=abandoned_ids).update(
            status=Render.Status.QUEUED, task_id="", queued_at=now
        )
        logger.warning("renders %s were abandoned by a worker; queued again", abandoned_ids)
    queued_renders = Render.objects.filter(status=Render.Status.QUEUED)
    if sweep:
        queued_renders = queued_renders.filter(
            Q(pk__in=abandoned_ids) | Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True)
        )
    queued = list(queued_renders.values_list("pk", flat=True))
    if queued:
        # A new queued_at makes the next sweep wait a full cutoff before sending these
        # again, so a long backlog still waiting in the broker is not re-sent each time.
        Render.objects.filter(pk__in=queued, status=Render.Status.QUEUED).update(queued_at=now)
        logger.info("sending %d queued renders to the workers", len(queued))
        renders_enqueue(queued)
    return queued


def _selected_targets(keys: list[str] | None) -> dict[str, RenderTarget]:
    targets = render_targets()
    if not keys:
        return targets
    unknown = sorted(set(keys) - set(targets))
    if unknown:
        raise ValueError(
            f"unknown render target(s): {', '.join(unknown)}; configured: {', '.join(targets)}"
        )
    return {key: targets[key] for key in keys}
