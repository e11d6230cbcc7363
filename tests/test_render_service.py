"""The render service: scheduling, running, recovering and the render_queries command."""

import logging
from datetime import timedelta
from importlib import metadata
from io import StringIO

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from detections import rendering
from detections.models import Render, SigmaRule
from detections.pysigma.convert import render_targets, target_versions
from detections.tuning import filters_by_rule
from detections.rendering import (
    render_input_hash,
    renders_enqueue,
    renders_recover,
    renders_run,
    renders_schedule,
)
from portal.celery import app as celery_app

from .conftest import CONTENT_DIR

DEAD_BROKER_URL = "redis://127.0.0.1:1/0"


def _test_target(backend: str, *, packages=("pySigma",), output_format="default") -> dict:
    return {
        "label": f"Test {backend.rsplit(':', 1)[-1]}",
        "backend": backend,
        "pipelines": [],
        "format": output_format,
        "packages": list(packages),
        "extension": "txt",
        "lexer": "text",
        "cli": None,
    }


ECHO_TARGET = _test_target("tests.render_backends:EchoBackend")


@pytest.fixture
def rules(seed_detection) -> list[SigmaRule]:
    """The shipped Sigma rules with no render rows, so each test schedules its own."""
    Render.objects.all().delete()
    return list(SigmaRule.objects.filter(detection=seed_detection).order_by("position"))


@pytest.fixture
def fast_targets(settings):
    """The real Splunk target next to an echo target, to keep rendering tests short."""
    settings.RENDER_TARGETS = {
        "splunk": django_settings.RENDER_TARGETS["splunk"],
        "echo": ECHO_TARGET,
    }
    return settings.RENDER_TARGETS


@pytest.fixture
def sent_batches(monkeypatch) -> list[list[int]]:
    """Record what renders_enqueue would send, so no test publishes to a broker."""
    sent: list[list[int]] = []

    def record(render_ids: list[int]) -> int:
        sent.append(list(render_ids))
        return 1

    monkeypatch.setattr(rendering, "renders_enqueue", record)
    return sent


@pytest.fixture
def dead_broker():
    """Point the Celery app at a closed port on 127.0.0.1, as if Redis were down."""
    configured_url = celery_app.conf.broker_url
    celery_app.conf.broker_url = DEAD_BROKER_URL
    _celery_pools_reset()
    yield DEAD_BROKER_URL
    celery_app.conf.broker_url = configured_url
    _celery_pools_reset()


def _celery_pools_reset() -> None:
    # The app caches its connection and producer pools on first use, for the old URL.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _render_state(render_ids) -> list[dict]:
    return list(Render.objects.filter(pk__in=render_ids).order_by("pk").values())


def _rule_ids(rules) -> list[int]:
    return [rule.pk for rule in rules]


def test_schedule_queues_each_rule_target(rules, django_capture_on_commit_callbacks):
    targets = render_targets()

    with django_capture_on_commit_callbacks() as callbacks:
        queued = renders_schedule(rule_ids=_rule_ids(rules))

    renders = Render.objects.filter(pk__in=queued)
    assert len(queued) == len(rules) * len(targets)
    pairs = set(renders.values_list("sigma_rule_id", "target"))
    assert pairs == {(rule.pk, key) for rule in rules for key in targets}
    statuses = set(renders.values_list("status", flat=True))
    assert statuses == {Render.Status.QUEUED}
    assert len(callbacks) == 1


def test_schedule_without_enqueue_sends_nothing(rules, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        queued = renders_schedule(rule_ids=_rule_ids(rules), enqueue=False)

    assert len(queued) == len(rules) * len(render_targets())
    assert callbacks == []


def test_schedule_unchanged_input_queues_nothing(rules):
    renders_schedule(rule_ids=_rule_ids(rules))

    queued = renders_schedule(rule_ids=_rule_ids(rules))

    assert queued == []


def test_schedule_unchanged_after_render_queues_nothing(rules, fast_targets):
    first = renders_schedule(rule_ids=_rule_ids(rules))
    renders_run(render_ids=first, task_id="task-1")

    queued = renders_schedule(rule_ids=_rule_ids(rules))

    assert queued == []


def test_schedule_force_requeues_everything(rules, fast_targets):
    first = renders_schedule(rule_ids=_rule_ids(rules))
    renders_run(render_ids=first, task_id="task-1")

    queued = renders_schedule(rule_ids=_rule_ids(rules), force=True)

    assert sorted(queued) == sorted(first)
    statuses = set(Render.objects.values_list("status", flat=True))
    assert statuses == {Render.Status.QUEUED}


def test_schedule_changed_rule_requeues_only_it(rules, fast_targets):
    first = renders_schedule(rule_ids=_rule_ids(rules))
    renders_run(render_ids=first, task_id="task-1")
    changed = rules[0]
    changed.yaml_text += "\n# tuned by the detection team\n"
    changed.save()

    queued = renders_schedule(rule_ids=_rule_ids(rules))

    queued_rules = set(Render.objects.filter(pk__in=queued).values_list("sigma_rule_id", flat=True))
    assert queued_rules == {changed.pk}
    assert len(queued) == len(fast_targets)


def test_schedule_unknown_target_raises(rules):
    with pytest.raises(ValueError, match="unknown render target"):
        renders_schedule(rule_ids=_rule_ids(rules), targets=["splunk", "no_such_target"])


def test_run_missing_packages_marks_unavailable(rules, settings):
    settings.RENDER_TARGETS = {
        "splunk": django_settings.RENDER_TARGETS["splunk"],
        "missing_package": _test_target(
            "sigma.backends.splunk:SplunkBackend", packages=("pysigma-backend-not-installed",)
        ),
        "broken_import": _test_target("sigma.backends.no_such_module:Backend"),
    }

    queued = renders_schedule(rule_ids=_rule_ids(rules))
    renders_run(render_ids=queued, task_id="task-1")

    missing = Render.objects.filter(target="missing_package")
    assert set(missing.values_list("status", flat=True)) == {Render.Status.UNAVAILABLE}
    missing_error = missing.first().error
    assert "package pysigma-backend-not-installed is not installed" in missing_error
    broken = Render.objects.filter(target="broken_import")
    assert set(broken.values_list("status", flat=True)) == {Render.Status.UNAVAILABLE}
    broken_error = broken.first().error
    assert "sigma.backends.no_such_module:Backend cannot be imported" in broken_error
    assert "No module named 'sigma.backends.no_such_module'" in broken_error
    splunk = Render.objects.filter(target="splunk")
    assert set(splunk.values_list("status", flat=True)) == {Render.Status.RENDERED}


def test_run_backend_setup_error_marks_unavailable(rules, settings):
    settings.RENDER_TARGETS = {
        "setup_error": _test_target("tests.render_backends:SetupErrorBackend")
    }
    queued = renders_schedule(rule_ids=_rule_ids(rules))

    renders_run(render_ids=queued, task_id="task-1")

    renders = Render.objects.filter(pk__in=queued)
    assert set(renders.values_list("status", flat=True)) == {Render.Status.UNAVAILABLE}
    assert renders.first().error == (
        "tests.render_backends:SetupErrorBackend cannot be set up for Test SetupErrorBackend: "
        "RuntimeError: the backend's field mapping file is missing"
    )


def test_run_twice_changes_nothing(rules, fast_targets):
    queued = renders_schedule(rule_ids=_rule_ids(rules))
    renders_run(render_ids=queued, task_id="task-1")
    after_first = _render_state(queued)

    renders_run(render_ids=queued, task_id="task-2")
    renders_run(render_ids=queued, task_id="task-1")

    assert _render_state(queued) == after_first
    statuses = {row["status"] for row in after_first}
    assert statuses == {Render.Status.RENDERED}


def test_run_redelivered_task_resumes_render(rules, fast_targets):
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:1], targets=["splunk"])
    # A worker claimed the render and was killed before it finished.
    Render.objects.filter(pk__in=queued).update(
        status=Render.Status.RUNNING, task_id="task-1", attempts=1, started_at=timezone.now()
    )

    renders_run(render_ids=queued, task_id="task-other")
    left_to_its_task = Render.objects.get(pk=queued[0])
    renders_run(render_ids=queued, task_id="task-1")
    resumed = Render.objects.get(pk=queued[0])

    assert left_to_its_task.status == Render.Status.RUNNING
    assert resumed.status == Render.Status.RENDERED
    assert resumed.attempts == 2
    assert resumed.query != ""


def test_run_claims_retried_render_alone(rules, fast_targets):
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:2])
    retried_pk = min(queued)
    # The first delivery of task-1 claimed one render and was killed. The others are
    # still queued.
    Render.objects.filter(pk=retried_pk).update(
        status=Render.Status.RUNNING, task_id="task-1", attempts=1, started_at=timezone.now()
    )

    renders_run(render_ids=queued, task_id="task-1")

    renders = {render.pk: render for render in Render.objects.filter(pk__in=queued)}
    assert {render.status for render in renders.values()} == {Render.Status.RENDERED}
    assert renders[retried_pk].attempts == 2
    assert {renders[pk].attempts for pk in queued if pk != retried_pk} == {1}
    assert {render.task_id for render in renders.values()} == {"task-1"}


def test_run_stores_outcomes_in_several_flushes(rules, fast_targets, monkeypatch):
    monkeypatch.setattr(rendering, "FLUSH_RENDERS", 3)
    queued = renders_schedule(rule_ids=_rule_ids(rules))
    seen: list[int] = []

    renders_run(render_ids=queued, task_id="task-1", progress=lambda render: seen.append(render.pk))

    assert sorted(seen) == sorted(queued)
    statuses = set(Render.objects.filter(pk__in=queued).values_list("status", flat=True))
    assert statuses == {Render.Status.RENDERED}
    assert not Render.objects.filter(pk__in=queued, finished_at__isnull=True).exists()


def test_run_max_attempts_fails_render(rules, fast_targets):
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:1], targets=["splunk"])
    Render.objects.filter(pk__in=queued).update(
        status=Render.Status.RUNNING,
        task_id="task-1",
        attempts=django_settings.RENDER_MAX_ATTEMPTS,
        started_at=timezone.now(),
    )

    renders_run(render_ids=queued, task_id="task-1")

    render = Render.objects.get(pk=queued[0])
    assert render.status == Render.Status.FAILED
    assert render.error == (
        f"The worker stopped while rendering {django_settings.RENDER_MAX_ATTEMPTS} times "
        "(killed, out of memory or over the hard time limit); not retried."
    )
    assert render.query == ""


@pytest.mark.parametrize(
    ("output_format", "expected_error"),
    [
        (
            "sigma_error",
            "pySigma rejected the rule for this target (SigmaValueError): "
            "the cased modifier is not supported by this backend",
        ),
        (
            "not_implemented",
            "The backend does not support a feature this rule uses: "
            "regular expressions are not supported",
        ),
        ("recursion", "The rule is nested too deeply for the backend (recursion limit)."),
        ("key_error", "The backend failed with KeyError: 'ImageLoaded'"),
    ],
)
def test_run_backend_exception_fails_render(rules, settings, output_format, expected_error):
    settings.RENDER_TARGETS = {
        "broken": _test_target("tests.render_backends:ErrorBackend", output_format=output_format),
        "echo": ECHO_TARGET,
    }
    queued = renders_schedule(rule_ids=_rule_ids(rules))

    renders_run(render_ids=queued, task_id="task-1")

    broken = Render.objects.filter(target="broken")
    assert set(broken.values_list("status", flat=True)) == {Render.Status.FAILED}
    assert set(broken.values_list("error", flat=True)) == {expected_error}
    assert set(broken.values_list("query", flat=True)) == {""}
    echo = Render.objects.filter(target="echo")
    assert set(echo.values_list("status", flat=True)) == {Render.Status.RENDERED}


def test_run_unexpected_error_fails_render(rules, fast_targets, monkeypatch):
    def load_rule_broken(text, filters=None):
        raise RuntimeError("the YAML parser ran out of memory")

    monkeypatch.setattr(rendering, "load_rule", load_rule_broken)
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:1], targets=["echo"])

    renders_run(render_ids=queued, task_id="task-1")

    render = Render.objects.get(pk=queued[0])
    assert render.status == Render.Status.FAILED
    assert render.error == "Rendering failed with RuntimeError: the YAML parser ran out of memory"


def test_run_soft_time_limit_sends_rest_again(rules, settings, sent_batches):
    settings.RENDER_TARGETS = {
        "timeout": _test_target("tests.render_backends:ErrorBackend", output_format="timeout"),
    }
    queued = renders_schedule(rule_ids=_rule_ids(rules))
    first, *rest = sorted(queued)

    renders_run(render_ids=queued, task_id="task-1", timeout_errors=(SoftTimeLimitExceeded,))

    timed_out = Render.objects.get(pk=first)
    assert timed_out.status == Render.Status.FAILED
    assert timed_out.error == f"Timed out after {settings.RENDER_SOFT_TIME_LIMIT} s."
    assert sent_batches == [rest]
    statuses = set(Render.objects.filter(pk__in=rest).values_list("status", flat=True))
    assert statuses == {Render.Status.QUEUED}


def test_run_stores_query_and_provenance(rules, fast_targets):
    rule = next(rule for rule in rules if rule.filename.endswith("compression_dll_load.yml"))
    splunk = render_targets()["splunk"]
    queued = renders_schedule(rule_ids=[rule.pk], targets=["splunk"])

    renders_run(render_ids=queued, task_id="task-1")

    render = Render.objects.get(pk=queued[0])
    assert render.status == Render.Status.RENDERED
    assert render.query.startswith(
        'source="WinEventLog:Microsoft-Windows-Sysmon/Operational" EventCode=7 ImageLoaded IN '
    )
    assert render.error == ""
    assert render.versions == {
        "pySigma": metadata.version("pySigma"),
        "pysigma-backend-splunk": metadata.version("pysigma-backend-splunk"),
        "pysigma-pipeline-sysmon": metadata.version("pysigma-pipeline-sysmon"),
    }
    assert render.versions == target_versions(splunk)
    assert render.pipelines == ["sysmon_pipeline", "splunk_windows_pipeline"]
    assert render.output_format == "default"
    # The shipped detection's tuning entries filter this rule, so they are hashed too.
    filters = filters_by_rule([rule])[rule.pk]
    assert render.input_hash == render_input_hash(rule.yaml_text, splunk, render.versions, filters)
    assert 'NOT (Image="C:\\\\opt\\\\fluent\\\\bin\\\\ruby.exe"' in render.query
    assert len(render.input_hash) == 64
    assert render.duration_ms > 0
    assert render.attempts == 1
    assert render.task_id == "task-1"
    assert render.started_at <= render.finished_at


def test_recover_requeues_abandoned_renders(rules, fast_targets, sent_batches):
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:1])
    abandoned_id, recent_id = sorted(queued)
    long_ago = timezone.now() - timedelta(seconds=rendering.abandoned_after_seconds() + 5)
    Render.objects.filter(pk=abandoned_id).update(
        status=Render.Status.RUNNING, task_id="task-dead", attempts=1, started_at=long_ago
    )
    Render.objects.filter(pk=recent_id).update(
        status=Render.Status.RUNNING, task_id="task-alive", attempts=1, started_at=timezone.now()
    )

    recovered = renders_recover()

    abandoned = Render.objects.get(pk=abandoned_id)
    assert abandoned.status == Render.Status.QUEUED
    assert abandoned.task_id == ""
    assert abandoned.attempts == 1
    assert recovered == [abandoned_id]
    assert sent_batches == [[abandoned_id]]
    recent = Render.objects.get(pk=recent_id)
    assert recent.status == Render.Status.RUNNING
    assert recent.task_id == "task-alive"


def test_recover_fails_exhausted_renders(rules, fast_targets, sent_batches):
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:1], targets=["splunk"])
    long_ago = timezone.now() - timedelta(seconds=rendering.abandoned_after_seconds() + 5)
    Render.objects.filter(pk__in=queued).update(
        status=Render.Status.RUNNING,
        task_id="task-dead",
        attempts=django_settings.RENDER_MAX_ATTEMPTS,
        started_at=long_ago,
    )

    recovered = renders_recover()

    render = Render.objects.get(pk=queued[0])
    assert render.status == Render.Status.FAILED
    assert "The worker stopped while rendering 3 times" in render.error
    assert render.finished_at is not None
    assert recovered == []
    assert sent_batches == []


def test_recover_sweep_skips_recently_queued(rules, fast_targets, sent_batches):
    queued = renders_schedule(rule_ids=_rule_ids(rules)[:1])
    old_id, recent_id = sorted(queued)
    long_ago = timezone.now() - timedelta(seconds=rendering.abandoned_after_seconds() + 5)
    Render.objects.filter(pk=old_id).update(queued_at=long_ago)

    swept = renders_recover(sweep=True)
    started = renders_recover()

    assert swept == [old_id]
    assert sorted(started) == [old_id, recent_id]


def test_render_queries_inline_summary_and_progress(rules, settings):
    settings.RENDER_TARGETS = {
        "echo": ECHO_TARGET,
        "broken": _test_target("tests.render_backends:ErrorBackend", output_format="key_error"),
    }
    stdout = StringIO()
    stderr = StringIO()

    call_command("render_queries", "--inline", stdout=stdout, stderr=stderr)

    summary = stdout.getvalue().splitlines()
    assert summary[0] == "0 queued, 0 running, 5 rendered, 5 failed, 0 unavailable"
    failure_lines = [line for line in summary[1:] if line.startswith("failed: ")]
    assert len(failure_lines) == 5
    assert all(
        line.endswith("for broken: The backend failed with KeyError: 'ImageLoaded'")
        for line in failure_lines
    )
    progress = stderr.getvalue()
    assert "10 renders queued for 5 Sigma rules" in progress
    assert "10/10 renders" in progress
    assert "10/10 renders" not in stdout.getvalue()


def test_render_queries_inline_runs_earlier_queued(rules, fast_targets):
    earlier = renders_schedule(rule_ids=_rule_ids(rules), targets=["echo"])
    stdout = StringIO()

    call_command("render_queries", "--inline", "--target", "echo", stdout=stdout, stderr=StringIO())

    statuses = set(Render.objects.filter(pk__in=earlier).values_list("status", flat=True))
    assert statuses == {Render.Status.RENDERED}
    assert stdout.getvalue().splitlines()[0] == (
        "0 queued, 0 running, 5 rendered, 0 failed, 0 unavailable"
    )


def test_render_queries_unknown_target_fails(rules):
    with pytest.raises(CommandError) as raised:
        call_command("render_queries", "--inline", "--target", "splunk_cloud", stdout=StringIO())

    message = str(raised.value)
    assert message.startswith("unknown render target: splunk_cloud; configured targets: ")
    assert "splunk_savedsearches" in message
    assert Render.objects.count() == 0


def test_enqueue_dead_broker_logs_warning(rules, dead_broker, caplog):
    queued = renders_schedule(rule_ids=_rule_ids(rules), enqueue=False)

    with caplog.at_level(logging.WARNING, logger="detections.rendering"):
        sent = renders_enqueue(queued)

    assert sent == 0
    messages = [
        record.getMessage() for record in caplog.records if record.name == "detections.rendering"
    ]
    assert any(
        message.startswith(f"broker unreachable, {len(queued)} renders stay queued")
        for message in messages
    )


def test_load_content_dead_broker_keeps_renders(
    db, dead_broker, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.WARNING, logger="detections.rendering"):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            call_command("load_content", str(CONTENT_DIR), verbosity=0)

    # One callback sends the renders, one the validation run of the detection's tests,
    # and one schedules the renders again after the tuning entries were saved, which
    # finds their input unchanged. The response cache's stamp replacement is left out.
    work = [callback for callback in callbacks if not hasattr(callback, "content_stamp_alias")]
    assert len(work) == 3
    expected = SigmaRule.objects.count() * len(render_targets())
    assert Render.objects.count() == expected
    statuses = set(Render.objects.values_list("status", flat=True))
    assert statuses == {Render.Status.QUEUED}
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "detections.rendering" and record.levelno == logging.WARNING
    ]
    assert warnings == [
        f"broker unreachable, {expected} renders stay queued until a worker starts: "
        "Error 111 connecting to 127.0.0.1:1. Connection refused."
    ]


@pytest.mark.parametrize(
    "rule_text, filters",
    [
        ("title: plain\n", None),
        ('title: "quotes \\" and \\\\ backslash"\nnote: Ünïcode – ✓\n', []),
        ("title: tuned\n", [{"rule": "b", "filter": {"sel": {"Image|endswith": ["\\x.exe"]}}}]),
    ],
)
def test_input_hash_of_whole_material(rule_text, filters):
    import hashlib
    import json

    target = render_targets()["splunk"]
    versions = {"pySigma": "1.5.1", "pysigma-backend-splunk": "2.1.0"}
    material = {
        "rule": rule_text,
        "target": target.key,
        "backend": target.backend,
        "pipelines": list(target.pipelines),
        "format": target.output_format,
        "versions": versions,
    }
    if filters:
        material["filters"] = filters
    text = json.dumps(material, sort_keys=True, default=str)
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert render_input_hash(rule_text, target, versions, filters) == expected
