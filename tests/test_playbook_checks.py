"""Sigma forms of playbook queries checked on the recorded events of the linked tests."""

import html

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIClient

from detections.content.loader import content_load
from detections.models import Detection, DetectionTest
from playbooks import sigma_checks
from playbooks.models import Playbook, PlaybookSigmaRule
from playbooks.selectors import playbook_queryset_for
from playbooks.sigma_checks import playbook_sigma_checks

from .conftest import CONTENT_DIR, SEED_SLUG
from .test_web_views import element_html, page_text

SLUG = "archive-via-library-response"
PREFIX = f"playbook-{SLUG}"
API_URL = f"/api/v1/playbooks/{SLUG}/"
MISSES = "Finds nothing on the attack's own events"

# The seed detection has 16 tests: 8 attack tests (3 on Windows, 5 on Linux) and 8 benign
# tests on Windows (5 known false positives, 3 that expect silence). Each row: Sigma file,
# numbers of the attack tests hit, attack tests with events of the rule's log source,
# numbers of the benign tests hit, benign tests read, status.
SHIPPED = [
    ("sigma/compression_library_user_folder.yml", [], 3, [], 8, "misses_attack"),
    ("sigma/interpreter_archive_staging.yml", [4], 3, [], 6, "finds_attack"),
    ("sigma/upload_tool_names_archive.yml", [], 3, [], 8, "misses_attack"),
    ("sigma/unusual_parent_compression.yml", [], 3, [], 8, "misses_attack"),
]

# A field that no recorded event has, for the engine to report.
MISSING_FIELD_RULE = """
title: Reads a Field the Events Lack
id: 0f5e29c4-5a38-4d8e-9c35-9d2f3f7c0a11
status: experimental
logsource:
    category: image_load
    product: windows
detection:
    selection:
        ImageLoadedFrom|endswith: '\\zlib.dll'
    condition: selection
level: low
"""


@pytest.fixture
def playbook(db) -> Playbook:
    content_load(root=CONTENT_DIR)
    return Playbook.objects.get(slug=SLUG)


@pytest.fixture
def staff_user(viewer):
    """A user who may see drafts: the viewer role."""
    return viewer


def checks_for(user=None) -> dict:
    """Return the checks by Sigma file name, for a playbook fetched as `user` would."""
    playbook = playbook_queryset_for(user or AnonymousUser()).get(slug=SLUG)
    checks = playbook_sigma_checks(playbook)
    by_file = {}
    for query_id, check in checks.items():
        rule = PlaybookSigmaRule.objects.get(queries__pk=query_id)
        by_file[rule.filename] = check
    return by_file


def rewrite_rule(filename: str, old: str, new: str) -> None:
    rule = PlaybookSigmaRule.objects.get(filename=filename)
    assert old in rule.yaml_text
    rule.yaml_text = rule.yaml_text.replace(old, new)
    rule.save()


def check_html(response, hunt: int) -> str:
    """Return the check element of a hunt's first query, with HTML entities decoded."""
    return html.unescape(element_html(response, f"{PREFIX}-hunt-{hunt}-query-1-check", "div"))


# The service


@pytest.mark.parametrize(
    ("filename", "attack", "attack_read", "benign", "benign_read", "status"), SHIPPED
)
def test_shipped_sigma_form_counts(
    playbook, filename, attack, attack_read, benign, benign_read, status
):
    check = checks_for()[filename]

    assert check.attack.tests == 8
    assert [hit.number for hit in check.attack.hits] == attack
    assert check.attack.read == attack_read
    assert check.benign.tests == 8
    assert [hit.number for hit in check.benign.hits] == benign
    assert check.benign.read == benign_read
    assert check.errors == []
    assert check.without_events == 0
    assert check.status == status


def test_shipped_attack_hit_details(playbook):
    hit = checks_for()["sigma/interpreter_archive_staging.yml"].attack.hits[0]

    assert hit.detection == SEED_SLUG
    assert hit.name == "Python rarfile Library Compression (Third-Party Library)"
    assert hit.matched_events == 1


def test_checks_only_sigma_queries(playbook):
    loaded = playbook_queryset_for(AnonymousUser()).get(slug=SLUG)

    checks = playbook_sigma_checks(loaded)

    with_sigma = set(
        PlaybookSigmaRule.objects.filter(playbook=playbook).values_list("queries__pk", flat=True)
    )
    assert set(checks) == with_sigma
    assert len(checks) == 4


def test_missing_field_reported(playbook):
    rule = PlaybookSigmaRule.objects.get(filename="sigma/compression_library_user_folder.yml")
    rule.yaml_text = MISSING_FIELD_RULE
    rule.save()

    check = checks_for()["sigma/compression_library_user_folder.yml"]

    assert check.status == "error"
    assert check.label == "Engine error"
    assert len(check.errors) == 1
    assert "reads field 'ImageLoadedFrom', which none of the" in check.errors[0]
    assert "windows/sysmon/image_load events has" in check.errors[0]


def test_unconvertible_rule_reported(playbook):
    rewrite_rule(
        "sigma/upload_tool_names_archive.yml",
        "    condition: (selection_curl_upload",
        "    keywords:\n        - 'rclone'\n    condition: keywords or (selection_curl_upload",
    )

    check = checks_for()["sigma/upload_tool_names_archive.yml"]

    assert check.status == "error"
    assert check.errors[0].startswith("cannot be run:")
    assert "keyword (full-text) searches are not supported" in check.errors[0]
    assert check.attack.read == 0


def test_benign_hit_counted(playbook):
    # Conda's default per-user install is C:\Users\<user>\miniconda3, outside AppData.
    rewrite_rule(
        "sigma/compression_library_user_folder.yml",
        "            - '\\Downloads\\'",
        "            - '\\Downloads\\'\n            - '\\miniconda3\\'",
    )

    check = checks_for()["sigma/compression_library_user_folder.yml"]

    assert [hit.number for hit in check.benign.hits] == [10]
    assert check.benign.hits[0].matched_events == 2
    assert check.attack.hit == 0
    assert check.status == "misses_attack"


def test_draft_detection_not_checked(playbook, staff_user):
    Detection.objects.filter(slug=SEED_SLUG).update(status=Detection.Status.DRAFT)

    anonymous = checks_for()["sigma/interpreter_archive_staging.yml"]
    staff = checks_for(staff_user)["sigma/interpreter_archive_staging.yml"]

    assert anonymous.attack.tests == 0
    assert anonymous.benign.tests == 0
    assert anonymous.status == "no_attack_tests"
    assert staff.attack.hit == 1


def test_tests_without_events_left_out(playbook):
    DetectionTest.objects.filter(detection__slug=SEED_SLUG, position=3).update(recorded_events=[])

    check = checks_for()["sigma/interpreter_archive_staging.yml"]

    assert check.without_events == 1
    assert check.attack.tests == 7
    assert check.attack.hit == 0
    assert check.status == "misses_attack"


def test_rules_compiled_once(playbook, monkeypatch):
    calls = []

    def counting_compile(text, *, source):
        calls.append(source)
        return original(text, source=source)

    original = sigma_checks.compile_rule
    sigma_checks._compiled.cache_clear()
    monkeypatch.setattr(sigma_checks, "compile_rule", counting_compile)

    checks_for()
    checks_for()

    assert len(calls) == 4
    assert len(set(calls)) == 4
    sigma_checks._compiled.cache_clear()


# Pages


@pytest.fixture
def page(client, playbook):
    response = client.get(playbook.get_absolute_url())
    assert response.status_code == 200
    return response


@pytest.fixture
def detection_page(client, playbook):
    response = client.get(Detection.objects.get(slug=SEED_SLUG).get_absolute_url())
    assert response.status_code == 200
    return response


def test_page_shows_counts(page):
    finds = check_html(page, 4)

    assert 'data-status="finds_attack"' in finds
    assert "Finds the attack" in finds
    assert "1 of 8 attack tests" in finds
    assert "0 of 8 benign tests" in finds
    assert f'href="/detections/{SEED_SLUG}/#test-4"' in finds
    assert "Python rarfile Library Compression (Third-Party Library)</a>, 1 event" in finds


def test_page_labels_query_finding_nothing(page):
    for hunt in (2, 5, 6):
        misses = check_html(page, hunt)

        assert 'data-status="misses_attack"' in misses
        assert MISSES in misses
        assert "0 of 8 attack tests" in misses
        assert "Only 3 of the 8 attack tests have events of the rule" in misses


def test_page_checks_only_sigma_queries(page):
    content = page.content.decode()

    assert content.count('class="sigma-check ') == 4
    assert f"{PREFIX}-hunt-1-query-1-check" not in content


def test_page_shows_engine_error(client, playbook):
    rule = PlaybookSigmaRule.objects.get(filename="sigma/compression_library_user_folder.yml")
    rule.yaml_text = MISSING_FIELD_RULE
    rule.save()

    response = client.get(playbook.get_absolute_url())

    errors = element_html(response, f"{PREFIX}-hunt-2-query-1-check-errors", "ul")
    assert "Engine error" in check_html(response, 2)
    assert "reads field &#x27;ImageLoadedFrom&#x27;" in errors


def test_page_without_visible_detection(client, playbook):
    Detection.objects.filter(slug=SEED_SLUG).update(status=Detection.Status.DRAFT)

    response = client.get(playbook.get_absolute_url())

    assert "No attack test to check against" in check_html(response, 4)


def test_detection_page_shows_counts(detection_page):
    text = page_text(detection_page)

    assert 'data-status="finds_attack"' in check_html(detection_page, 4)
    assert "1 of 8 attack tests" in check_html(detection_page, 4)
    assert text.count(MISSES) == 3


# API


@pytest.fixture
def api_detail(playbook) -> dict:
    response = APIClient().get(API_URL)
    assert response.status_code == 200
    return response.json()


def test_api_sigma_check_field(api_detail):
    check = api_detail["hunting"][3]["queries"][0]["sigma_check"]

    assert check["status"] == "finds_attack"
    assert check["label"] == "Finds the attack"
    assert check["rule_id"] == "a6d3e913-d20d-4964-b9b4-6fd2923bfbc8"
    assert check["attack"]["tests"] == 8
    assert check["attack"]["read"] == 3
    assert check["attack"]["hit"] == 1
    assert check["attack"]["hits"] == [
        {
            "detection": SEED_SLUG,
            "number": 4,
            "name": "Python rarfile Library Compression (Third-Party Library)",
            "matched_events": 1,
        }
    ]
    assert check["benign"] == {"tests": 8, "read": 6, "hit": 0, "hits": []}
    assert check["errors"] == []
    assert check["without_events"] == 0


def test_api_sigma_check_misses(api_detail):
    hunts = api_detail["hunting"][4:6]

    statuses = [hunt["queries"][0]["sigma_check"]["status"] for hunt in hunts]

    assert statuses == ["misses_attack", "misses_attack"]
    assert api_detail["hunting"][1]["queries"][0]["sigma_check"]["label"] == MISSES


def test_api_sigma_check_null_without_sigma(api_detail):
    step_checks = [
        query["sigma_check"] for step in api_detail["response"] for query in step["queries"]
    ]

    assert step_checks
    assert all(check is None for check in step_checks)
    assert api_detail["hunting"][0]["queries"][0]["sigma_check"] is None


def test_api_list_has_sigma_check(playbook):
    row = APIClient().get("/api/v1/playbooks/").json()["results"][0]

    assert row["hunting"][3]["queries"][0]["sigma_check"]["attack"]["hit"] == 1


def test_api_hides_draft_detection_tests(playbook):
    Detection.objects.filter(slug=SEED_SLUG).update(status=Detection.Status.DRAFT)

    body = APIClient().get(API_URL).json()

    check = body["hunting"][3]["queries"][0]["sigma_check"]
    assert check["status"] == "no_attack_tests"
    assert check["attack"]["tests"] == 0


def test_openapi_documents_sigma_check(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]

    query = components["PlaybookQuery"]["properties"]["sigma_check"]
    assert "embedded engine" in query["description"]
    assert query["nullable"] is True
    assert "SigmaCheck" in str(query)
    check = components["SigmaCheck"]["properties"]
    assert set(check) == {
        "rule_id",
        "status",
        "label",
        "attack",
        "benign",
        "errors",
        "without_events",
    }
    group = components["TestGroup"]["properties"]
    assert set(group) == {"tests", "read", "hit", "hits"}
