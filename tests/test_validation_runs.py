"""Validation runs end to end in one process: add_test, validate_detection, API and pages."""

import json
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from detections.models import Detection, DetectionTest, ValidationRun
from detections.pysigma.embedded import compile_rule
from detections.validation.embedded import run_rules
from detections.validation.events import read_events_file
from detections.validation.runs import validation_execute, validation_request, validations_recover
from tests.test_render_service import dead_broker  # noqa: F401 - pytest fixture

SYSMON = "Microsoft-Windows-Sysmon/Operational"
PYTHON_EVENT = {
    "Channel": SYSMON,
    "Computer": "ws01.corp.example",
    "EventID": 1,
    "Image": "C:\\Python312\\python.exe",
    "CommandLine": 'python.exe -c "import zlib; zlib.compress(b\'x\')"',
    "TimeCreated": "2026-11-30T14:02:11.5123456Z",
}
BENIGN_EVENT = PYTHON_EVENT | {"CommandLine": "python.exe -m http.server"}


@pytest.fixture
def bare_detection(seed_detection) -> Detection:
    """The seed detection without its shipped tests and runs, so each test adds its own."""
    seed_detection.tests.all().delete()
    seed_detection.validation_runs.all().delete()
    return seed_detection


def write_lines(path, events) -> str:
    path.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return str(path)


def add_test(detection_ref, path, expect="fires", *extra):
    call_command("add_test", detection_ref, "--events", path, "--expect", expect, *extra, verbosity=0)


def validate_json(capsys, *args) -> tuple[int, dict]:
    capsys.readouterr()
    try:
        call_command("validate_detection", *args, "--inline", "--format", "json")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(capsys.readouterr().out)


def test_add_test_stores_events(bare_detection, tmp_path):
    path = write_lines(tmp_path / "run.ndjson", [PYTHON_EVENT, BENIGN_EVENT])

    add_test(bare_detection.slug, path, "fires", "--name", "Python one-liner", "--min-matches", "1")

    test = bare_detection.tests.get()
    assert test.name == "Python one-liner"
    assert test.platform == "windows"
    assert test.recorded_events == [PYTHON_EVENT, BENIGN_EVENT]
    assert test.telemetry.get().event_id == 1


def test_add_test_finds_detection_by_uuid_and_rule_id(bare_detection, tmp_path):
    path = write_lines(tmp_path / "run.ndjson", [PYTHON_EVENT])
    rule = bare_detection.sigma_rules.first()

    add_test(str(bare_detection.uuid), path)
    add_test(str(rule.rule_id), path)

    assert bare_detection.tests.count() == 2
    assert list(bare_detection.tests.values_list("position", flat=True)) == [0, 1]


def test_add_test_names_repeat(bare_detection, tmp_path):
    path = write_lines(tmp_path / "same.ndjson", [PYTHON_EVENT])

    add_test(bare_detection.slug, path)
    add_test(bare_detection.slug, path)

    assert list(bare_detection.tests.values_list("name", flat=True)) == ["same.ndjson"] * 2


def test_add_test_reads_json_array(bare_detection, tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([PYTHON_EVENT]), encoding="utf-8")

    add_test(bare_detection.slug, str(path))

    assert bare_detection.tests.get().recorded_events == [PYTHON_EVENT]


def test_add_test_flattens_evtx_json(bare_detection, tmp_path):
    nested = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 1,
                "Channel": SYSMON,
                "Computer": "ws01",
                "TimeCreated": {"#attributes": {"SystemTime": "2026-11-30T14:02:11.512345Z"}},
                "Execution": {"#attributes": {"ProcessID": 3000, "ThreadID": 4000}},
            },
            "EventData": {"Image": "C:\\Python312\\python.exe", "CommandLine": "python -c 1"},
        }
    }
    path = write_lines(tmp_path / "nested.ndjson", [nested])

    add_test(bare_detection.slug, path)

    event = bare_detection.tests.get().recorded_events[0]
    assert event["Provider_Name"] == "Microsoft-Windows-Sysmon"
    assert event["Execution_ProcessID"] == 3000
    assert event["TimeCreated"] == "2026-11-30T14:02:11.512345Z"
    assert event["Image"] == "C:\\Python312\\python.exe"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        ("[]".encode(), "contains no events"),
        ('{"a": 1}\n[1]\n'.encode(), "line 2: expected a JSON object"),
        ('{"a": {"b": 1}}\n'.encode(), "field 'a' holds a nested dict"),
        ('{"a": 1}\n{"a": \n'.encode(), "line 2: invalid JSON"),
        ('{"a": NaN}\n'.encode(), "NaN is not a valid JSON number"),
        ('{"Image": 1, "image": 2}\n'.encode(), "differ only in case"),
        ("\ufeffnot json".encode("utf-16"), "UTF-16"),
        (b"\x00\x01binary", "not an .evtx file, a JSON array or JSON lines"),
        (b"ElfFile\x00" + b"\x00" * 64, "invalid .evtx file"),
        (b"\xc3\x28 bad utf-8", "not UTF-8 text"),
    ],
)
def test_add_test_rejects_bad_file(bare_detection, tmp_path, content, message):
    path = tmp_path / "bad.ndjson"
    path.write_bytes(content)

    with pytest.raises(CommandError) as error:
        add_test(bare_detection.slug, str(path))

    assert message in str(error.value)
    assert str(path) in str(error.value)
    assert bare_detection.tests.count() == 0


def test_add_test_unknown_detection(db, tmp_path):
    path = write_lines(tmp_path / "run.ndjson", [PYTHON_EVENT])

    with pytest.raises(CommandError, match="No detection has the slug, UUID or Sigma rule id"):
        add_test("no-such-detection", path)


def test_validate_json_passes(bare_detection, tmp_path, capsys):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]), "fires")
    add_test(bare_detection.slug, write_lines(tmp_path / "benign.ndjson", [BENIGN_EVENT]), "silent")

    code, output = validate_json(capsys, bare_detection.slug)

    assert code == 0
    assert output["passed"] is True
    report = output["detections"][0]
    assert report["slug"] == bare_detection.slug
    assert report["passed"] is True
    assert report["tests"] == [
        {"name": "attack.ndjson", "expect": "fires", "min_matches": 1, "matches": 1,
         "passed": True, "error": None, "known_false_positive": False,
         "raw_matches": 1, "tuning": []},
        {"name": "benign.ndjson", "expect": "silent", "min_matches": 1, "matches": 0,
         "passed": True, "error": None, "known_false_positive": False,
         "raw_matches": 0, "tuning": []},
    ]


def test_validate_fails_below_min_matches(bare_detection, tmp_path, capsys):
    add_test(
        bare_detection.slug,
        write_lines(tmp_path / "one.ndjson", [PYTHON_EVENT, BENIGN_EVENT]),
        "fires", "--min-matches", "2",
    )

    code, output = validate_json(capsys, bare_detection.slug)

    assert code == 1
    test = output["detections"][0]["tests"][0]
    assert test["matches"] == 1
    assert test["passed"] is False


def test_validate_silent_test_that_fires_fails(bare_detection, tmp_path, capsys):
    add_test(bare_detection.slug, write_lines(tmp_path / "noise.ndjson", [PYTHON_EVENT]), "silent")

    code, output = validate_json(capsys, bare_detection.slug)

    assert code == 1
    assert output["detections"][0]["tests"][0]["matches"] == 1


def test_validate_reports_missing_field(bare_detection, tmp_path, capsys):
    event = {"Channel": SYSMON, "EventID": 1, "Image": "C:\\Python312\\python.exe"}
    add_test(bare_detection.slug, write_lines(tmp_path / "short.ndjson", [event]), "silent")

    code, output = validate_json(capsys, bare_detection.slug)

    test = output["detections"][0]["tests"][0]
    assert code == 1
    assert test["passed"] is False
    assert "reads field 'CommandLine', which none of the 1" in test["error"]


def test_validate_all_includes_drafts(bare_detection, tmp_path, capsys):
    Detection.objects.filter(pk=bare_detection.pk).update(status=Detection.Status.DRAFT)
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))

    code, output = validate_json(capsys, "--all")

    assert code == 0
    assert [report["slug"] for report in output["detections"]] == [bare_detection.slug]


def test_validate_junit(bare_detection, tmp_path, capsys):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))
    add_test(bare_detection.slug, write_lines(tmp_path / "noise.ndjson", [PYTHON_EVENT]), "silent")
    capsys.readouterr()

    with pytest.raises(SystemExit):
        call_command("validate_detection", bare_detection.slug, "--inline", "--format", "junit")

    root = ElementTree.fromstring(capsys.readouterr().out)
    suite = root.find("testsuite")
    assert suite.get("tests") == "2"
    assert suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == "expected no match, matched 1 events"


def test_validate_splunk_unconfigured_names_setting(bare_detection, tmp_path, settings):
    settings.SPLUNK_URL = ""
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))

    with pytest.raises(CommandError, match="SPLUNK_URL is not set"):
        call_command("validate_detection", bare_detection.slug, "--inline", "--engine", "splunk")


def test_validate_without_slugs(db):
    with pytest.raises(CommandError, match="Give one or more detection slugs, or --all"):
        call_command("validate_detection", "--inline")


def test_validate_unknown_slug(db):
    with pytest.raises(CommandError, match="No detection with the slug 'nope'"):
        call_command("validate_detection", "nope", "--inline")


def test_run_executes_once(bare_detection, tmp_path):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))
    run = validation_request(bare_detection, enqueue=False)

    first = validation_execute(run.pk, task_id="task-1")
    second = validation_execute(run.pk, task_id="task-2")

    assert first.status == ValidationRun.Status.PASSED
    assert second is None
    assert run.results.count() == 1


def test_redelivered_run_resumes(bare_detection, tmp_path):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))
    run = validation_request(bare_detection, enqueue=False)
    ValidationRun.objects.filter(pk=run.pk).update(
        status=ValidationRun.Status.RUNNING, task_id="task-1", started_at=timezone.now()
    )

    resumed = validation_execute(run.pk, task_id="task-1")

    assert resumed.status == ValidationRun.Status.PASSED
    assert resumed.results.count() == 1


def test_abandoned_run_failed_with_reason(bare_detection, settings):
    run = validation_request(bare_detection, enqueue=False)
    long_ago = timezone.now() - timedelta(
        seconds=settings.VALIDATION_HARD_TIME_LIMIT + settings.VALIDATION_ABANDONED_MARGIN + 1
    )
    ValidationRun.objects.filter(pk=run.pk).update(
        status=ValidationRun.Status.RUNNING, task_id="dead", started_at=long_ago
    )

    abandoned = validations_recover()

    run.refresh_from_db()
    assert abandoned == [run.pk]
    assert run.status == ValidationRun.Status.ERROR
    assert "worker running this validation stopped" in run.error
    assert run.finished_at is not None


def test_running_run_within_limit_left_alone(bare_detection):
    run = validation_request(bare_detection, enqueue=False)
    ValidationRun.objects.filter(pk=run.pk).update(
        status=ValidationRun.Status.RUNNING, task_id="alive", started_at=timezone.now()
    )

    assert validations_recover() == []
    run.refresh_from_db()
    assert run.status == ValidationRun.Status.RUNNING


def test_run_without_tests_is_error(bare_detection):
    run = validation_request(bare_detection, enqueue=False)

    finished = validation_execute(run.pk, task_id="t")

    assert finished.status == ValidationRun.Status.ERROR
    assert "has no tests with recorded events" in finished.error


def test_run_records_queries(bare_detection, tmp_path):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))
    run = validation_request(bare_detection, enqueue=False)

    finished = validation_execute(run.pk, task_id="t")

    names = [query["name"] for query in finished.queries]
    assert "Python Command Line Imports a Compression Module" in names
    assert all(query["text"].startswith("SELECT _event FROM logs WHERE ") for query in finished.queries)
    assert finished.versions["pySigma-backend-sqlite"] == "2.0.0"
    result = finished.results.get()
    assert result.matched_events == [0]
    python_rule = next(d for d in result.details if d["branch"] == "PythonLibraryCompression")
    assert python_rule["matched_events"] == [0]


def test_load_content_queues_validation(db, django_capture_on_commit_callbacks):
    from tests.conftest import CONTENT_DIR

    with django_capture_on_commit_callbacks(execute=False):
        call_command("load_content", str(CONTENT_DIR), verbosity=0)

    detection = Detection.objects.get()
    if detection.tests.exists():
        run = detection.validation_runs.get()
        assert run.trigger == ValidationRun.Trigger.CONTENT
        assert run.status == ValidationRun.Status.QUEUED


# --- API ---------------------------------------------------------------------------


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("analyst", password="a-long-password-1")


def test_api_post_requires_sign_in(client, bare_detection):
    response = client.post(f"/api/v1/detections/{bare_detection.slug}/validations/", {})

    assert response.status_code == 401
    assert bare_detection.validation_runs.count() == 0


def test_api_post_queues_run(client, user, bare_detection, django_capture_on_commit_callbacks):
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            f"/api/v1/detections/{bare_detection.slug}/validations/",
            {"engine": "embedded"},
            content_type="application/json",
        )

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["trigger"] == "api"
    assert body["requested_by"] == "analyst"
    assert response["Location"].endswith(f"/api/v1/validations/{body['id']}/")
    assert len(callbacks) == 1


def test_api_post_unknown_engine(client, user, bare_detection):
    client.force_login(user)

    response = client.post(
        f"/api/v1/detections/{bare_detection.slug}/validations/",
        {"engine": "elastic"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "engine" in response.json()


def test_api_post_splunk_unconfigured(client, user, bare_detection, settings):
    settings.SPLUNK_URL = ""
    client.force_login(user)

    response = client.post(
        f"/api/v1/detections/{bare_detection.slug}/validations/",
        {"engine": "splunk"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "SPLUNK_URL is not set" in response.json()["detail"]


def test_api_history_and_run_detail(client, bare_detection, tmp_path):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))
    run = validation_request(bare_detection, enqueue=False)
    validation_execute(run.pk, task_id="t")

    history = client.get(f"/api/v1/detections/{bare_detection.slug}/validations/").json()
    detail = client.get(f"/api/v1/validations/{run.pk}/").json()
    listed = client.get("/api/v1/detections/").json()["results"][0]

    assert history["count"] == 1
    assert history["results"][0]["status"] == "passed"
    assert detail["results"][0]["matches"] == 1
    assert detail["results"][0]["passed"] is True
    assert detail["queries"][0]["language"] == "sqlite"
    assert listed["validation"]["id"] == run.pk
    assert listed["validation"]["status"] == "passed"


def test_api_run_of_draft_hidden(client, bare_detection):
    run = validation_request(bare_detection, enqueue=False)
    Detection.objects.filter(pk=bare_detection.pk).update(status=Detection.Status.DRAFT)

    assert client.get(f"/api/v1/validations/{run.pk}/").status_code == 404


# --- Pages -------------------------------------------------------------------------


def test_pages_show_results(client, bare_detection, tmp_path):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))
    run = validation_request(bare_detection, enqueue=False)
    validation_execute(run.pk, task_id="t")

    listing = client.get("/").content.decode()
    detail = client.get(f"/detections/{bare_detection.slug}/").content.decode()
    history = client.get(f"/detections/{bare_detection.slug}/validations/").content.decode()
    run_page = client.get(f"/detections/{bare_detection.slug}/validations/{run.pk}/").content.decode()

    assert "validated 1/1" in listing
    assert "validated 1/1" in detail
    assert "1 of 1 recorded events matched" in detail
    assert f"#{run.pk}" in history
    assert "Python Command Line Imports a Compression Module" in run_page
    assert "import zlib" in run_page


def test_page_not_run_badge(client, bare_detection):
    assert "not run" in client.get("/").content.decode()


def test_web_start_requires_sign_in(client, bare_detection):
    response = client.post(f"/detections/{bare_detection.slug}/validations/run", {"engine": "embedded"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert bare_detection.validation_runs.count() == 0


def test_web_start_creates_run(client, user, bare_detection, django_capture_on_commit_callbacks):
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/detections/{bare_detection.slug}/validations/run", {"engine": "embedded"})

    run = bare_detection.validation_runs.get()
    assert response.status_code == 302
    assert response["Location"] == f"/detections/{bare_detection.slug}/validations/{run.pk}/"
    assert run.trigger == ValidationRun.Trigger.WEB


def test_known_false_positive_flag(bare_detection, tmp_path, capsys):
    add_test(
        bare_detection.slug,
        write_lines(tmp_path / "etl.ndjson", [PYTHON_EVENT]),
        "fires",
        "--known-false-positive",
    )

    code, output = validate_json(capsys, bare_detection.slug)

    assert code == 0
    assert output["detections"][0]["tests"][0]["known_false_positive"] is True
    assert DetectionTest.objects.get().known_false_positive is True


# Committed transactions, so the run is sent to the broker as soon as it is saved.
@pytest.mark.django_db(transaction=True)
def test_dead_broker_keeps_run_queued(bare_detection, tmp_path, dead_broker):
    add_test(bare_detection.slug, write_lines(tmp_path / "attack.ndjson", [PYTHON_EVENT]))

    with pytest.raises(CommandError) as error:
        call_command("validate_detection", bare_detection.slug, "--wait", "1")

    run = bare_detection.validation_runs.get()
    assert run.status == ValidationRun.Status.QUEUED
    assert "could not be sent to a worker" in run.error
    assert "Connection refused" in str(error.value)
    assert "--inline" in str(error.value)


EVTX_SAMPLE = Path(__file__).parent / "files" / "evtx" / "new-user-security.evtx"


def test_evtx_file_flattened():
    events = read_events_file(EVTX_SAMPLE)

    # Records come in the file's order, which is not the order of their IDs.
    assert [event["EventID"] for event in events] == [4728, 4720, 4732, 4732]
    first = events[1]
    assert first["Channel"] == "Security"
    assert first["Provider_Name"] == "Microsoft-Windows-Security-Auditing"
    assert first["TargetUserName"]
    assert isinstance(first["Execution_ProcessID"], int)
    assert first["TimeCreated"].endswith("Z")


def test_evtx_rule_matches_user_creation():
    rule = compile_rule(
        "title: User account created\n"
        "id: 9d0c6ab1-3f6c-4a58-8a4f-6f7d7c0c1e21\n"
        "logsource:\n    product: windows\n    service: security\n"
        "detection:\n    selection:\n        EventID: 4720\n    condition: selection\n",
        source="user_created.yml",
    )

    result = run_rules([rule], read_events_file(EVTX_SAMPLE))

    assert result.matched == {1}
    assert result.errors == []


def test_add_test_evtx_unread_by_rules(bare_detection, capsys):
    add_test(bare_detection.slug, str(EVTX_SAMPLE), "silent")

    code, output = validate_json(capsys, bare_detection.slug)

    test = output["detections"][0]["tests"][0]
    assert bare_detection.tests.get().platform == "windows"
    assert code == 1
    assert "No rule of the detection reads these events (4 windows/security)" in test["error"]


def test_add_test_records_history(bare_detection, tmp_path):
    from detections import editing

    path = write_lines(tmp_path / "run.ndjson", [PYTHON_EVENT])
    revision = bare_detection.revision

    add_test(bare_detection.slug, path, "fires", "--name", "Python one-liner")

    bare_detection.refresh_from_db()
    assert bare_detection.revision == revision + 1
    assert editing.history(bare_detection)[0].comment == "add_test: Python one-liner"
