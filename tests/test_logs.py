"""Structured logs: the request line, task lines, and secrets kept out of every line."""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings
from django.db import OperationalError

from detections.models import Render, ValidationRun
from detections.tasks import render_batch, validate_run
from portal.logs import RedactFilter

from .conftest import SEED_SLUG

SECRETS = {
    "authorization": "Zm9vYmFyLXNlY3JldC1hdXRoLXRva2Vu",
    "cookie": "sessioncookievalue1234",
    "query_token": "querytokenvalue5678",
    "api_key": "apikeyvalue9012abcd",
    "password": "hunter2-password-value",
    "url_password": "urlpasswordvalue3456",
}


@pytest.fixture
def log_output():
    """Capture the configured console handler's output, formatted as in production (JSON)."""
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(item, RedactFilter) for item in handler.filters)
    ]
    assert len(handlers) == 1, "settings.LOGGING configures no console handler with RedactFilter"
    handler = handlers[0]
    config = dict(settings.LOGGING["formatters"]["json"])
    formatter = logging.config.DictConfigurator({}).configure_formatter(config)
    stream = io.StringIO()
    saved_stream, saved_formatter = handler.stream, handler.formatter
    handler.setStream(stream)
    handler.setFormatter(formatter)
    yield stream
    handler.setStream(saved_stream)
    handler.setFormatter(saved_formatter)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_request_line_fields(client, log_output, django_user_model):
    user = django_user_model.objects.create(username="reader")
    client.force_login(user)

    client.get("/api/v1/detections/")

    lines = [line for line in json_lines(log_output) if line["logger"] == "portal.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/detections/"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["user_id"] == user.pk
    assert line["level"] == "INFO"
    assert "time" in line


@pytest.mark.django_db
def test_secrets_never_reach_the_log(client, log_output, monkeypatch, django_user_model):
    from accounts.models import ApiToken
    from detections.api.views import DetectionViewSet

    # A valid API token, so the request passes authentication and reaches the view.
    user = django_user_model.objects.create_user("log-reader")
    _, key = ApiToken.issue(user, name="log test")
    secrets = {**SECRETS, "authorization": key}

    def failing_list(*args, **kwargs):
        raise RuntimeError(
            f"login failed with password={secrets['password']} against "
            f"redis://:{secrets['url_password']}@cache.internal:6379/0"
        )

    monkeypatch.setattr(DetectionViewSet, "list", failing_list)
    client.raise_request_exception = False
    client.cookies["sessionid"] = secrets["cookie"]

    response = client.get(
        f"/api/v1/detections/?token={secrets['query_token']}",
        HTTP_AUTHORIZATION=f"Token {secrets['authorization']}",
        HTTP_X_API_KEY=secrets["api_key"],
    )
    logging.getLogger("portal.test").info(
        "client sent Authorization: Bearer %s and Cookie: sessionid=%s",
        secrets["authorization"],
        secrets["cookie"],
    )

    output = log_output.getvalue()
    assert response.status_code == 500
    lines = json_lines(log_output)
    assert any(line["logger"] == "django.request" and "exc_info" in line for line in lines)
    assert any(line["logger"] == "portal.request" and line["status"] == 500 for line in lines)
    for name, secret in secrets.items():
        assert secret not in output, f"{name} leaked into the log"
    assert "[redacted]" in output


@pytest.fixture
def queued_render(seed_detection) -> Render:
    render = Render.objects.filter(sigma_rule__detection=seed_detection).first()
    assert render is not None, "load_content queued no render"
    Render.objects.filter(pk=render.pk).update(status=Render.Status.QUEUED, task_id="")
    return render


def task_lines(stream, task_name: str) -> list[dict]:
    return [
        line
        for line in json_lines(stream)
        if line["logger"] == "portal.tasks" and line["task_name"] == task_name
    ]


@pytest.mark.django_db
def test_task_start_and_end_lines(log_output, queued_render):
    result = render_batch.apply(args=[[queued_render.pk]])

    lines = task_lines(log_output, "detections.render_batch")
    assert [line["event"] for line in lines] == ["started", "ended"]
    for line in lines:
        assert line["task_id"] == result.id
        assert line["detections"] == [SEED_SLUG]
    assert lines[1]["state"] == "SUCCESS"


@pytest.mark.django_db
def test_task_failure_line(log_output, seed_detection, monkeypatch):
    from detections.validation import runs

    run = ValidationRun.objects.create(detection=seed_detection, target="sqlite")

    def broken(run_id, **kwargs):
        raise ValueError("engine broke")

    monkeypatch.setattr(runs, "validation_execute", broken)
    validate_run.apply(args=[run.pk])

    lines = task_lines(log_output, "detections.validate_run")
    assert [line["event"] for line in lines] == ["started", "failed", "ended"]
    assert lines[1]["level"] == "ERROR"
    assert lines[1]["error"] == "ValueError"
    assert lines[1]["detections"] == [SEED_SLUG]


@pytest.mark.django_db
def test_task_retry_line(log_output, queued_render, monkeypatch):
    from detections import rendering

    def lost_database(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(rendering, "renders_run", lost_database)
    render_batch.apply(args=[[queued_render.pk]])

    lines = task_lines(log_output, "detections.render_batch")
    events = [line["event"] for line in lines]
    assert "retry" in events
    retry = lines[events.index("retry")]
    assert retry["level"] == "WARNING"
    assert retry["detections"] == [SEED_SLUG]
    assert "server closed the connection" in retry["reason"]


@pytest.mark.django_db
def test_task_lines_name_each_detection_once(log_output, seed_detection):
    renders = list(
        Render.objects.filter(sigma_rule__detection=seed_detection).values_list("pk", flat=True)[:5]
    )
    assert len(renders) == 5

    render_batch.apply(args=[renders])

    lines = task_lines(log_output, "detections.render_batch")
    assert lines[0]["detections"] == [SEED_SLUG]
