"""Validation runs on the Splunk engine, against the local stand-in over loopback HTTP."""

import json

import pytest
from django.core.management import call_command

from detections.models import ValidationRun
from detections.validation.runs import validation_execute, validation_request

from .splunk_standin import SplunkStandIn

KNOWN_FAILURE = "PowerShell GZipStream Decompression of a Downloaded File"
LINUX_TESTS = 5


@pytest.fixture
def splunk(settings):
    with SplunkStandIn(index="portal_validation") as standin:
        settings.SPLUNK_URL = standin.url
        settings.SPLUNK_TOKEN = standin.token
        settings.SPLUNK_HEC_URL = standin.hec_url
        settings.SPLUNK_HEC_TOKEN = standin.hec_token
        settings.SPLUNK_TEST_INDEX = standin.index
        settings.SPLUNK_TIMEOUT = 5.0
        settings.SPLUNK_SEARCH_TIMEOUT = 5.0
        settings.SPLUNK_POLL_INTERVAL = 0.01
        yield standin


def run_on_splunk(detection) -> ValidationRun:
    run = validation_request(detection, engine=ValidationRun.Engine.SPLUNK, enqueue=False)
    return validation_execute(run.pk, task_id="test")


def comparison(result) -> list[dict]:
    return next(detail for detail in result.details if detail["engine"] == "comparison")["branches"]


def test_splunk_run_of_shipped_tests(seed_detection, splunk):
    run = run_on_splunk(seed_detection)

    results = {result.name: result for result in run.results.all()}
    assert run.status == ValidationRun.Status.FAILED
    assert run.target == f"splunk:{splunk.url.split('//')[1]}"
    assert all(result.error == "" for result in results.values())
    linux = [r for r in results.values() if r.test.platform == "linux"]
    assert len(linux) == LINUX_TESTS
    # The authored SPL reads only the Windows Sysmon sourcetype.
    assert all(result.matches == 0 and not result.passed for result in linux)
    windows_failures = {
        name for name, r in results.items() if not r.passed and r.test.platform == "windows"
    }
    assert windows_failures == {KNOWN_FAILURE}


def test_splunk_branches_agree_with_sigma(seed_detection, splunk):
    run = run_on_splunk(seed_detection)

    for result in run.results.filter(test__platform="windows"):
        rows = comparison(result)
        assert [row["branch"] for row in rows] == [
            "CompressionDllLoad",
            "PowerShellLibraryCompression",
            "PythonLibraryCompression",
            "StagedCompressedFileCreation",
        ]
        disagreements = [row for row in rows if not row["agree"]]
        assert disagreements == [], result.name


def test_splunk_first_test_rows(seed_detection, splunk):
    run = run_on_splunk(seed_detection)

    result = run.results.get(position=0)
    authored = next(d for d in result.details if d["engine"] == "splunk" and d["name"].startswith("Authored"))
    assert authored["matches"] == 2
    assert authored["branches"] == {"PythonLibraryCompression": 1, "StagedCompressedFileCreation": 1}
    assert 'index="portal_validation" portal_scope::run' in authored["text"]


def test_splunk_rendered_queries_recorded(seed_detection, splunk):
    run = run_on_splunk(seed_detection)

    rendered = [query for query in run.queries if query.get("rule_id")]
    assert len(rendered) == 5
    assert all(query["language"] == "spl" for query in rendered)
    # The shipped tuning entries make the authored query run raw and tuned.
    assert run.queries[0]["name"] == "Authored Splunk query without tuning"
    assert run.queries[1]["name"] == "Authored Splunk query with tuning"
    assert "| search NOT ((DetectionSource=" in run.queries[1]["text"]


def test_splunk_rendered_source_differs(seed_detection, splunk):
    # pySigma's Splunk Windows pipeline filters on the classic WinEventLog source,
    # while the events come in as XmlWinEventLog: the rendered SPL finds nothing.
    run = run_on_splunk(seed_detection)

    result = run.results.get(position=0)
    rendered = [d for d in result.details if d["engine"] == "splunk" and d.get("rule_id")]
    python_rule = next(d for d in rendered if d["name"] == "Python Command Line Imports a Compression Module")
    assert 'source="WinEventLog:Microsoft-Windows-Sysmon/Operational"' in python_rule["text"]
    assert python_rule["matches"] == 0


@pytest.mark.parametrize(
    ("fault", "kind", "text"),
    [
        (lambda s: s.fail_auth(401), "auth", "call not properly authenticated"),
        (lambda s: s.fail_auth(403), "forbidden", "Permission denied"),
        (lambda s: s.fail_jobs("Search process crashed"), "job_failed", "Search process crashed"),
        (lambda s: s.reject_hec(6), "hec_rejected", "Invalid data format"),
        (lambda s: s.fail_next(50, status=503), "server", "503"),
    ],
)
def test_splunk_fault_ends_run_with_message(seed_detection, splunk, fault, kind, text):
    fault(splunk)

    run = run_on_splunk(seed_detection)

    assert run.status == ValidationRun.Status.ERROR
    assert text in run.error
    assert run.finished_at is not None
    assert run.results.count() == 0


def test_splunk_timeout_ends_run(seed_detection, splunk, settings):
    settings.SPLUNK_SEARCH_TIMEOUT = 0.5
    splunk.hang_jobs()

    run = run_on_splunk(seed_detection)

    assert run.status == ValidationRun.Status.ERROR
    assert "timeout" in run.error.lower() or "timed out" in run.error.lower()


def test_splunk_unreachable_ends_run(seed_detection, settings):
    settings.SPLUNK_URL = "http://127.0.0.1:1"
    settings.SPLUNK_TOKEN = "token"
    settings.SPLUNK_HEC_URL = "http://127.0.0.1:1"
    settings.SPLUNK_HEC_TOKEN = "token"
    settings.SPLUNK_TIMEOUT = 1.0

    run = run_on_splunk(seed_detection)

    assert run.status == ValidationRun.Status.ERROR
    assert "127.0.0.1:1" in run.error


def test_splunk_syntax_error_per_query(seed_detection, splunk):
    query = seed_detection.queries.get()
    query.text = query.text + "\n| frobnicate"
    query.save()

    run = run_on_splunk(seed_detection)

    result = run.results.get(position=0)
    assert run.status == ValidationRun.Status.ERROR
    assert "Unknown search command 'frobnicate'" in result.error


def test_validate_command_splunk_json(seed_detection, splunk, capsys):
    capsys.readouterr()

    with pytest.raises(SystemExit):
        call_command(
            "validate_detection", seed_detection.slug, "--inline", "--engine", "splunk", "--format", "json"
        )

    output = json.loads(capsys.readouterr().out)
    assert output["engine"] == "splunk"
    tests = output["detections"][0]["tests"]
    assert len(tests) == 16
    assert tests[0]["matches"] == 2


def test_splunk_macro_silences_false_positives(seed_detection, splunk):
    run = run_on_splunk(seed_detection)

    noisy = list(run.results.filter(known_false_positive=True))
    assert len(noisy) == 5
    for result in noisy:
        assert result.passed, result.name
        assert result.raw_matches >= 1, result.name
        assert result.matches == 0, result.name
        tuned = next(
            d for d in result.details if d.get("name") == "Authored Splunk query with tuning"
        )
        assert tuned["matches"] == 0, result.name
        assert "| search NOT ((DetectionSource=" in tuned["text"]


def test_splunk_entry_silencing_attack_fails(seed_detection, splunk):
    from detections.models import TuningEntry

    TuningEntry(
        detection=seed_detection,
        condition={"Image|endswith": "\\python.exe"},
        branches=["PythonLibraryCompression", "StagedCompressedFileCreation"],
        reason="Too broad on purpose.",
        owner="SOC Tuning",
    ).save()

    run = run_on_splunk(seed_detection)

    result = run.results.get(position=0)
    assert result.raw_matches == 2
    assert result.matches == 0
    assert result.passed is False
    assert any("of this attack test" in row.get("problem", "") for row in result.tuning)
