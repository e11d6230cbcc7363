"""The Splunk client against the local stand-in, over real loopback HTTP."""

import logging
import os
import socket
import subprocess
import sys
import time

import certifi
import pytest
import yaml

from detections.validation.splunk import (
    SplunkClient,
    SplunkError,
    SplunkNotConfigured,
    scope_query,
)

from .conftest import CONTENT_DIR, REPO_ROOT, SEED_SLUG
from .splunk_standin import SplunkStandIn

SYSMON = "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"
INDEX = "portal_validation"
SCOPE_TERMS = f'index="{INDEX}" portal_scope::run-1'


@pytest.fixture
def splunk():
    with SplunkStandIn(index=INDEX) as standin:
        yield standin


def make_client(standin: SplunkStandIn, **options) -> SplunkClient:
    arguments = {
        "url": standin.url,
        "token": standin.token,
        "hec_url": standin.hec_url,
        "hec_token": standin.hec_token,
        "index": standin.index,
        "verify": True,
        "timeout": 2.0,
        "search_timeout": 2.0,
        "poll_interval": 0.02,
        "retry_backoff": 0.01,
        "max_retry_backoff": 0.05,
    }
    arguments.update(options)
    return SplunkClient(**arguments)


@pytest.fixture
def client(splunk):
    with make_client(splunk) as splunk_client:
        yield splunk_client


def hec_event(position: int, **fields) -> dict:
    return {
        "time": 1_700_000_000.0 + position,
        "host": "ws01",
        "source": "WinEventLog:Microsoft-Windows-Sysmon/Operational",
        "sourcetype": SYSMON,
        "event": fields,
    }


def requests_to(splunk: SplunkStandIn, method: str, path: str) -> int:
    return sum(1 for _, seen_method, seen_path in splunk.requests if (seen_method, seen_path) == (method, path))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Sending and searching


def test_send_then_count(client, splunk):
    events = [hec_event(position, EventCode=1, Image=f"C:\\tool{position}.exe") for position in range(3)]

    client.send_events(events, "run-1")
    client.wait_until_searchable("run-1", 3)
    rows = client.search(client.scope_query("EventCode=1 | stats count", "run-1"))

    assert rows == [{"count": "3"}]
    stored = splunk.events(INDEX)
    assert len(stored) == 3
    assert stored[0].indexed_fields == {"portal_scope": "run-1"}
    assert stored[0].sourcetype == SYSMON
    assert stored[0].host == "ws01"
    assert stored[0].time == 1_700_000_000.0


def test_send_in_batches(splunk):
    with make_client(splunk, batch_size=2) as client:
        client.send_events([hec_event(position, n=position) for position in range(5)], "run-1")

    assert requests_to(splunk, "POST", "/services/collector/event") == 3
    assert len(splunk.events(INDEX)) == 5


def test_search_prepends_search(client, splunk):
    client.search('index="portal_validation" | stats count')
    client.search('search index="portal_validation" | stats count')

    assert splunk.searches == [
        'search index="portal_validation" | stats count',
        'search index="portal_validation" | stats count',
    ]


def test_search_keeps_leading_pipe(client, splunk):
    with pytest.raises(SplunkError) as error:
        client.search("| makeresults")

    assert error.value.kind == "syntax"
    assert splunk.searches == []
    assert "generating commands" in error.value.message


def test_results_rows_as_strings(client):
    client.send_events([hec_event(0, EventCode=7, tags=["a", "b"], nested={"k": "v"})], "run-1")
    client.wait_until_searchable("run-1", 1)

    rows = client.search(client.scope_query("* | table _time, EventCode, tags{}, nested.k", "run-1"))

    assert rows == [
        {
            "_time": "2023-11-14T22:13:20.000+00:00",
            "EventCode": "7",
            "tags{}": ["a", "b"],
            "nested.k": "v",
        }
    ]


def test_results_read_in_pages(client, splunk):
    splunk.max_result_rows = 2
    client.send_events([hec_event(position, n=position) for position in range(5)], "run-1")
    client.wait_until_searchable("run-1", 5)

    rows = client.search(client.scope_query("* | table n", "run-1"))

    assert [row["n"] for row in rows] == ["4", "3", "2", "1", "0"]
    assert requests_to(splunk, "GET", "/services/search/jobs/standin.2/results") == 3


def test_scope_isolates_runs(client, splunk):
    client.send_events([hec_event(0, user="a")], "run-a")
    client.send_events([hec_event(1, user="b")], "run-b")
    splunk.index_event({"user": "c"}, index="main")
    client.wait_until_searchable("run-b", 1)

    rows = client.search(client.scope_query("* | table user", "run-a"))
    unscoped = client.search("* | table user")

    assert rows == [{"user": "a"}]
    assert unscoped == [{"user": "c"}]


def shipped_query() -> str:
    path = CONTENT_DIR / "detections" / SEED_SLUG / "detection.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["queries"][0]["text"]


SYSMON_EVENTS = [
    hec_event(
        0,
        EventID=1,
        EventCode=1,
        User="LAB\\alice",
        Image="C:\\Python311\\python.exe",
        CommandLine="python.exe -c \"import zlib; open('o','wb').write(zlib.compress(b'x'))\"",
        ParentImage="C:\\Windows\\System32\\cmd.exe",
        ParentCommandLine="cmd.exe /c run.bat",
    ),
    hec_event(
        1,
        EventID=11,
        EventCode=11,
        User="LAB\\alice",
        Image="C:\\Python311\\python.exe",
        TargetFilename="C:\\Users\\alice\\AppData\\Local\\Temp\\stage_df00.zlib",
    ),
    hec_event(
        2,
        EventID=7,
        EventCode=7,
        User="LAB\\bob",
        Image="C:\\Tools\\backup.exe",
        ImageLoaded="C:\\Tools\\ZLIB1.DLL",
    ),
    hec_event(
        3,
        EventID=7,
        EventCode=7,
        Image="C:\\Tools\\backup.exe",
        ImageLoaded="C:\\Windows\\System32\\zlib1.dll",
    ),
    hec_event(
        4,
        EventID=1,
        EventCode=1,
        Image="C:\\Windows\\System32\\notepad.exe",
        CommandLine="notepad.exe import zlib.txt",
    ),
    hec_event(
        5,
        EventID=1,
        EventCode=1,
        User="LAB\\carol",
        Image="C:\\Program Files\\PowerShell\\7\\pwsh.exe",
        CommandLine="pwsh -c [IO.Compression.ZipFile]::CreateFromDirectory('a','b.zip')",
    ),
]


def test_shipped_query_scoped(client, splunk):
    client.send_events(SYSMON_EVENTS, "run-1")
    client.send_events(SYSMON_EVENTS[:1], "run-2")
    splunk.index_event(SYSMON_EVENTS[0]["event"], index="main", sourcetype=SYSMON)
    client.wait_until_searchable("run-1", len(SYSMON_EVENTS))

    scoped = client.scope_query(shipped_query(), "run-1")
    rows = client.search(scoped)

    assert scoped.startswith(f"{SCOPE_TERMS} (\n")
    assert "index=wineventlog" not in scoped
    assert [row["DetectionSource"] for row in rows] == [
        "PowerShellLibraryCompression",
        "CompressionDllLoad",
        "StagedCompressedFileCreation",
        "PythonLibraryCompression",
    ]
    assert [row["_time"] for row in rows] == sorted((row["_time"] for row in rows), reverse=True)
    python = rows[-1]
    assert python["User"] == "LAB\\alice"
    assert python["ProcessPath"] == "C:\\Python311\\python.exe"
    assert python["CmdLine"].startswith("python.exe -c")
    assert python["Artifact"] == ""
    assert python["ParentCommandLine"] == "cmd.exe /c run.bat"
    assert rows[1]["Artifact"] == "C:\\Tools\\ZLIB1.DLL"
    assert rows[2]["Artifact"].endswith("stage_df00.zlib")
    assert set(rows[0]) <= {
        "_time", "host", "User", "DetectionSource", "ProcessPath", "CmdLine", "Artifact",
        "ParentImage", "ParentCommandLine",
    }  # fmt: skip


# scope_query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "index=wineventlog EventCode=1 | table Image",
            f"{SCOPE_TERMS} EventCode=1 | table Image",
        ),
        ('index="wineventlog" x', f"{SCOPE_TERMS} x"),
        ("index = wineventlog x", f"{SCOPE_TERMS} x"),
        ("index::wineventlog x", f"{SCOPE_TERMS} x"),
        ("index IN (a, b) x", f"{SCOPE_TERMS} x"),
        ("INDEX=win* x", f"{SCOPE_TERMS} x"),
        ("search index=a x | stats count", f"search {SCOPE_TERMS} x | stats count"),
        ("sourcetype=x | table a", f"{SCOPE_TERMS} sourcetype=x | table a"),
        ("search EventCode=1", f"search {SCOPE_TERMS} EventCode=1"),
        ("", SCOPE_TERMS),
        ("search | stats count", f"search {SCOPE_TERMS} | stats count"),
        (
            'CommandLine="a | index=b" | table CommandLine',
            f'{SCOPE_TERMS} CommandLine="a | index=b" | table CommandLine',
        ),
        (
            r'CommandLine="say \"x | y\"" index=a | table CommandLine',
            rf'CommandLine="say \"x | y\"" {SCOPE_TERMS} | table CommandLine',
        ),
        ("myindex=a x", f"{SCOPE_TERMS} myindex=a x"),
        ("index=a (b OR c)", f"{SCOPE_TERMS} (b OR c)"),
        ("index=a OR foo=bar", f"{SCOPE_TERMS} ({SCOPE_TERMS} OR foo=bar)"),
        ("x OR index=a", f"{SCOPE_TERMS} (x OR {SCOPE_TERMS})"),
        ("(index=a x) y | head 1", f"{SCOPE_TERMS} (({SCOPE_TERMS} x) y) | head 1"),
        ("a NOT b index=c", f"a NOT b {SCOPE_TERMS}"),
    ],
)
def test_scope_query_shapes(query, expected):
    assert scope_query(query, "run-1", INDEX) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("NOT index=a x", "negated"),
        ("index!=a x", "negated"),
        ("NOT (index=a OR x)", "negated"),
        ("| makeresults", "generating command"),
        ("x | join id [search index=a]", "subsearch"),
        ('x="open', "unterminated"),
    ],
)
def test_scope_query_rejects(query, message):
    with pytest.raises(ValueError, match=message):
        scope_query(query, "run-1", INDEX)


@pytest.mark.parametrize("scope", ['run"1', "run:1", "run 1", "", "-run"])
def test_scope_query_invalid_scope(scope):
    with pytest.raises(ValueError, match="scope"):
        scope_query("x", scope, INDEX)


def test_scoped_query_runs(client, splunk):
    client.send_events([hec_event(0, kind="x"), hec_event(1, kind="y")], "run-1")
    splunk.index_event({"kind": "x"}, index="main")
    client.wait_until_searchable("run-1", 2)

    rows = client.search(client.scope_query("index=main kind=x OR kind=y | stats count", "run-1"))

    assert rows == [{"count": "2"}]


# Faults


def test_auth_rejected(client, splunk):
    splunk.fail_auth(401)

    with pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "auth"
    assert error.value.status_code == 401
    assert error.value.message == "call not properly authenticated"
    assert "SPLUNK_TOKEN" in str(error.value)


def test_wrong_token_rejected(splunk):
    with make_client(splunk, token="wrong") as client, pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "auth"
    assert "wrong" not in str(error.value)


def test_forbidden(client, splunk):
    splunk.fail_auth(403)

    with pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "forbidden"
    assert error.value.status_code == 403
    assert "Permission denied" in error.value.message


def test_syntax_error_message(client, splunk):
    with pytest.raises(SplunkError) as error:
        client.search("index=x | foo")

    assert error.value.kind == "syntax"
    assert error.value.status_code == 400
    assert error.value.message == "Unknown search command 'foo'."
    assert str(error.value) == "Splunk rejected the search (400): Unknown search command 'foo'."
    assert requests_to(splunk, "POST", "/services/search/jobs") == 1


def test_syntax_error_from_parser(client):
    with pytest.raises(SplunkError) as error:
        client.search('x=1 | eval y=case(x=1, "a"')

    assert error.value.kind == "syntax"
    assert "Error in 'eval' command" in error.value.message


def test_job_failed(client, splunk):
    splunk.fail_jobs("Search process terminated unexpectedly.")

    with pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "job_failed"
    assert error.value.message == "Search process terminated unexpectedly."
    assert "standin.1 failed" in str(error.value)


def test_job_runtime_error_fails(client):
    client.send_events([hec_event(0, name="x")], "run-1")
    client.wait_until_searchable("run-1", 1)

    with pytest.raises(SplunkError) as error:
        client.search(client.scope_query("* | where name AND true()", "run-1"))

    assert error.value.kind == "job_failed"
    assert "boolean arguments" in error.value.message


def test_job_timeout_cancels(splunk):
    splunk.hang_jobs()
    started = time.monotonic()

    with make_client(splunk, search_timeout=0.3) as client, pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "timeout"
    assert "was not done after 0.3 s" in str(error.value)
    assert "the job was cancelled" in str(error.value)
    assert splunk.cancelled == ["standin.1"]
    assert time.monotonic() - started < 1.5


def test_server_error_retried(client, splunk, caplog):
    splunk.fail_next(2)

    with caplog.at_level(logging.WARNING, logger="detections.validation.splunk"):
        rows = client.search("* | stats count")

    assert rows == [{"count": "0"}]
    assert requests_to(splunk, "POST", "/services/search/jobs") == 3
    assert "attempt 1 of 4" in caplog.text
    assert "attempt 2 of 4" in caplog.text
    assert splunk.token not in caplog.text


def test_server_error_exhausted(client, splunk, caplog):
    splunk.fail_next(100, status=502)

    with caplog.at_level(logging.WARNING), pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "server"
    assert error.value.status_code == 502
    assert "to all 4 attempts to create a search job" in str(error.value)
    assert requests_to(splunk, "POST", "/services/search/jobs") == 4
    assert splunk.token not in caplog.text


def test_server_500_not_retried(client, splunk):
    splunk.fail_next(3, status=500)

    with pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "server"
    assert error.value.status_code == 500
    assert requests_to(splunk, "POST", "/services/search/jobs") == 1


def test_hec_data_format_rejected(client, splunk):
    splunk.reject_hec(6)

    with pytest.raises(SplunkError) as error:
        client.send_events([hec_event(0, a=1)], "run-1")

    assert error.value.kind == "hec_rejected"
    assert error.value.status_code == 400
    assert error.value.hec_code == 6
    assert error.value.message == "Invalid data format (code 6)"
    assert requests_to(splunk, "POST", "/services/collector/event") == 1


def test_hec_invalid_token(splunk, caplog):
    with caplog.at_level(logging.DEBUG):
        with make_client(splunk, hec_token="not-the-token") as client:
            with pytest.raises(SplunkError) as error:
                client.send_events([hec_event(0, a=1)], "run-1")

    assert error.value.kind == "hec_rejected"
    assert error.value.status_code == 403
    assert error.value.hec_code == 4
    assert error.value.message == "Invalid token (code 4)"
    assert "not-the-token" not in caplog.text


def test_hec_missing_event_field(client, splunk):
    events = [hec_event(0, a=1), {"time": 1.0, "host": "h"}]

    with pytest.raises(SplunkError) as error:
        client.send_events(events, "run-1")

    assert error.value.hec_code == 12
    assert "the first invalid event is event 1 of 2" in str(error.value)
    assert len(splunk.events(INDEX)) == 1


def test_hec_rejected_batch_reports_position(splunk):
    events = [hec_event(0, a=1), hec_event(1, a=2), {"host": "h"}]

    with make_client(splunk, batch_size=2) as client, pytest.raises(SplunkError) as error:
        client.send_events(events, "run-1")

    assert "event 2 of 3" in str(error.value)
    assert "the 2 events before this batch were accepted" in str(error.value)


def test_hec_incorrect_index(splunk):
    with make_client(splunk, index="not_allowed") as client, pytest.raises(SplunkError) as error:
        client.send_events([hec_event(0, a=1)], "run-1")

    assert error.value.hec_code == 7
    assert error.value.message == "Incorrect index (code 7)"


def test_hec_busy_retried(client, splunk):
    splunk.fail_next(2, service="hec")

    client.send_events([hec_event(position, a=position) for position in range(3)], "run-1")

    assert requests_to(splunk, "POST", "/services/collector/event") == 3
    assert len(splunk.events(INDEX)) == 3


def test_hec_busy_exhausted(client, splunk):
    splunk.fail_next(10, service="hec")

    with pytest.raises(SplunkError) as error:
        client.send_events([hec_event(0, a=1)], "run-1")

    assert error.value.kind == "server"
    assert error.value.status_code == 503
    assert error.value.hec_code == 9
    assert error.value.message == "Server is busy (code 9)"


def test_unreachable_port(splunk, caplog):
    port = free_port()

    with caplog.at_level(logging.WARNING, logger="detections.validation.splunk"):
        with make_client(splunk, url=f"http://127.0.0.1:{port}") as client:
            with pytest.raises(SplunkError) as error:
                client.search("* | stats count")

    assert error.value.kind == "unreachable"
    assert error.value.status_code is None
    assert f"http://127.0.0.1:{port}" in str(error.value)
    assert "after 4 attempts" in str(error.value)
    assert caplog.text.count("retrying") == 3


def test_tls_failure_not_retried(splunk, caplog):
    https_url = splunk.url.replace("http://", "https://")

    with caplog.at_level(logging.WARNING, logger="detections.validation.splunk"):
        with make_client(splunk, url=https_url) as client, pytest.raises(SplunkError) as error:
            client.search("* | stats count")

    assert error.value.kind == "unreachable"
    assert "TLS handshake failed" in str(error.value)
    assert "retrying" not in caplog.text


def test_slow_indexing_waits(client, splunk):
    splunk.indexing_delay = 0.3
    client.send_events([hec_event(0, a=1), hec_event(1, a=2)], "run-1")
    started = time.monotonic()

    client.wait_until_searchable("run-1", 2)

    assert time.monotonic() - started >= 0.25
    assert client.search(client.scope_query("* | stats count", "run-1")) == [{"count": "2"}]


def test_slow_indexing_timeout(splunk):
    splunk.indexing_delay = 30
    with make_client(splunk, search_timeout=0.3) as client:
        client.send_events([hec_event(0, a=1), hec_event(1, a=2)], "run-1")

        with pytest.raises(SplunkError) as error:
            client.wait_until_searchable("run-1", 2)

    assert error.value.kind == "timeout"
    assert str(error.value).startswith("Only 0 of 2 events of scope run-1 were searchable")
    assert "index portal_validation after 0.3 s" in str(error.value)


def test_bad_response(client, splunk):
    splunk.garble_responses()

    with pytest.raises(SplunkError) as error:
        client.search("* | stats count")

    assert error.value.kind == "bad_response"
    assert error.value.status_code == 200
    assert "502 Bad Gateway" in str(error.value)


def test_error_kind_checked():
    with pytest.raises(ValueError, match="unknown SplunkError kind"):
        SplunkError("nope", "description")


def test_invalid_index_rejected(splunk):
    with pytest.raises(ValueError, match="not a valid Splunk index name"):
        make_client(splunk, index="Bad Index")


def test_send_invalid_scope(client):
    with pytest.raises(ValueError, match="scope"):
        client.send_events([hec_event(0, a=1)], "run 1")


def test_send_unencodable_event(client):
    with pytest.raises(ValueError, match="event 0 cannot be encoded"):
        client.send_events([hec_event(0, when=object())], "run-1")


# Settings


@pytest.fixture
def splunk_settings(settings, splunk):
    settings.SPLUNK_URL = splunk.url
    settings.SPLUNK_TOKEN = splunk.token
    settings.SPLUNK_HEC_URL = splunk.hec_url
    settings.SPLUNK_HEC_TOKEN = splunk.hec_token
    settings.SPLUNK_TEST_INDEX = INDEX
    settings.SPLUNK_VERIFY_TLS = "true"
    settings.SPLUNK_TIMEOUT = 2.0
    settings.SPLUNK_SEARCH_TIMEOUT = 2.0
    return settings


def test_settings_missing_url_message(splunk_settings):
    splunk_settings.SPLUNK_URL = ""

    with pytest.raises(SplunkNotConfigured) as error:
        SplunkClient.from_settings()

    assert str(error.value) == (
        "SPLUNK_URL is not set: set it to the Splunk management URL, for example "
        "https://splunk.example:8089"
    )


@pytest.mark.parametrize("name", ["SPLUNK_URL", "SPLUNK_TOKEN", "SPLUNK_HEC_URL", "SPLUNK_HEC_TOKEN"])
def test_settings_missing_each(splunk_settings, name):
    setattr(splunk_settings, name, "")

    with pytest.raises(SplunkNotConfigured) as error:
        SplunkClient.from_settings()

    assert str(error.value).startswith(f"{name} is not set: set it to ")


def test_settings_missing_order(splunk_settings):
    splunk_settings.SPLUNK_TOKEN = ""
    splunk_settings.SPLUNK_HEC_URL = ""

    with pytest.raises(SplunkNotConfigured) as error:
        SplunkClient.from_settings()

    assert str(error.value).startswith("SPLUNK_TOKEN is not set")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SPLUNK_TIMEOUT", "soon", "SPLUNK_TIMEOUT='soon' is not a positive number"),
        ("SPLUNK_SEARCH_TIMEOUT", 0, "SPLUNK_SEARCH_TIMEOUT=0 is not a positive number"),
        ("SPLUNK_VERIFY_TLS", "/missing/ca.pem", "neither true, false nor an existing CA bundle"),
        ("SPLUNK_TEST_INDEX", "Main Index", "is not a valid Splunk index name"),
        ("SPLUNK_URL", "splunk:8089", "SPLUNK_URL='splunk:8089' is not an http or https URL"),
        ("SPLUNK_HEC_URL", "splunk", "SPLUNK_HEC_URL='splunk' is not an http or https URL"),
    ],
)
def test_settings_invalid_values(splunk_settings, name, value, message):
    setattr(splunk_settings, name, value)

    with pytest.raises(SplunkNotConfigured, match=message):
        SplunkClient.from_settings()


@pytest.mark.parametrize("verify", ["true", "false", certifi.where()])
def test_settings_build_client(splunk_settings, verify):
    splunk_settings.SPLUNK_VERIFY_TLS = verify

    with SplunkClient.from_settings(poll_interval=0.02) as client:
        rows = client.search("* | stats count")

    assert rows == [{"count": "0"}]
    assert client.index == INDEX
    assert client.timeout == 2.0


def test_settings_from_environment():
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SPLUNK_")}
    script = (
        "import portal.settings as s; "
        "print(s.SPLUNK_URL, s.SPLUNK_TEST_INDEX, s.SPLUNK_VERIFY_TLS, s.SPLUNK_TIMEOUT, "
        "s.SPLUNK_SEARCH_TIMEOUT)"
    )

    def settings_output(**env) -> str:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env=clean | env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.rstrip("\n")

    assert settings_output() == " portal_validation true 30.0 120.0"
    assert settings_output(
        SPLUNK_URL="https://splunk.example:8089",
        SPLUNK_TEST_INDEX="validation",
        SPLUNK_VERIFY_TLS="false",
        SPLUNK_TIMEOUT="5",
        SPLUNK_SEARCH_TIMEOUT="60",
    ) == "https://splunk.example:8089 validation false 5.0 60.0"
