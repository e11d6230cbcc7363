"""Live previews of edited Sigma rules: queued by the page, converted by a worker."""

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from django.urls import reverse

from detections.models import Preview
from detections.previews import preview_request, preview_run
from tests.test_render_worker import Portal, portal_factory, template_db  # noqa: F401

from .conftest import CONTENT_DIR, REPO_ROOT

RULE_FILE = CONTENT_DIR / "detections/archive-via-library-splunk/sigma/compression_dll_load.yml"
PREVIEW_TIMEOUT = 60


def level_broken(text: str) -> tuple[str, int]:
    lines = text.split("\n")
    number = next(index for index, line in enumerate(lines, 1) if line.startswith("level:"))
    lines[number - 1] = "level: apocalyptic"
    return "\n".join(lines), number


@pytest.mark.django_db
def test_preview_run_converts_rule_to_spl():
    preview = preview_request(RULE_FILE.read_text(), user=None, target="splunk")

    preview_run(preview.pk)

    preview.refresh_from_db()
    assert preview.status == Preview.Status.RENDERED, preview.error
    assert "ImageLoaded" in preview.query
    assert preview.error == ""
    assert preview.finished_at is not None


@pytest.mark.django_db
def test_preview_run_reports_pysigma_error_line():
    text, line = level_broken(RULE_FILE.read_text())
    preview = preview_request(text, user=None)

    preview_run(preview.pk)

    preview.refresh_from_db()
    assert preview.status == Preview.Status.FAILED
    assert "'apocalyptic' is not a valid Sigma rule level" in preview.error
    assert preview.error_line == line
    assert preview.query == ""


@pytest.mark.django_db
def test_preview_run_twice_changes_nothing():
    preview = preview_request(RULE_FILE.read_text(), user=None)
    preview_run(preview.pk)
    preview.refresh_from_db()
    finished_at = preview.finished_at

    preview_run(preview.pk)

    preview.refresh_from_db()
    assert preview.finished_at == finished_at


@pytest.mark.django_db
def test_preview_endpoint_queues_and_status_reads(client, author, seed_detection):
    client.force_login(author)
    rule = seed_detection.sigma_rules.first()
    url = reverse("detections:preview_sigma", args=[seed_detection.slug, rule.rule_id])

    response = client.post(url, {"text": rule.yaml_text})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["finished"] is False
    preview_run(body["id"])
    status = client.get(body["url"]).json()
    assert status["status"] == "rendered", status["error"]
    assert status["query"]


@pytest.mark.django_db
def test_preview_status_hidden_from_other_users(client, author, reviewer):
    preview = preview_request(RULE_FILE.read_text(), user=author)
    client.force_login(reviewer)

    response = client.get(reverse("detections:preview_status", args=[preview.pk]))

    assert response.status_code == 404


def _preview_row(portal: Portal, preview_id: str) -> dict | None:
    connection = sqlite3.connect(f"file:{portal.db_path}?mode=ro", uri=True, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        row = connection.execute(
            "SELECT status, query, error, error_line FROM detections_preview WHERE id = ?",
            (preview_id.replace("-", ""),),
        ).fetchone()
    finally:
        connection.close()
    return dict(row) if row else None


def _wait_finished(portal: Portal, preview_id: str) -> dict:
    deadline = time.monotonic() + PREVIEW_TIMEOUT
    while time.monotonic() < deadline:
        row = _preview_row(portal, preview_id)
        if row and row["status"] in {"rendered", "failed"}:
            return row
        time.sleep(0.3)
    pytest.fail(
        f"preview {preview_id} not finished after {PREVIEW_TIMEOUT} s\n{portal.worker_log_tail()}"
    )


REQUEST_SCRIPT = """
import json, sys
from detections.previews import preview_request
texts = json.load(sys.stdin)
print(json.dumps([str(preview_request(text, user=None).pk) for text in texts]))
"""


def test_worker_converts_previews(portal_factory):  # noqa: F811
    portal = portal_factory()
    portal.start_worker()
    valid = RULE_FILE.read_text()
    broken, line = level_broken(valid)

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", REQUEST_SCRIPT],
        cwd=REPO_ROOT,
        env=portal.env,
        input=json.dumps([valid, broken]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    valid_id, broken_id = json.loads(result.stdout.strip().splitlines()[-1])

    rendered = _wait_finished(portal, valid_id)
    failed = _wait_finished(portal, broken_id)

    assert rendered["status"] == "rendered", rendered["error"]
    assert "ImageLoaded" in rendered["query"]
    assert failed["status"] == "failed"
    assert failed["error_line"] == line
    assert "apocalyptic" in failed["error"]
