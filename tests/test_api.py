import io
import zipfile

import pytest
from rest_framework.test import APIClient

from detections.models import Detection

from .conftest import FILES_DIR, SEED_SLUG
from .seed_facts import (
    BRANCHES,
    DATA_COMPONENTS,
    EVADED_TOOLS,
    FALSE_POSITIVES,
    MALWARE_FAMILIES,
    OUTPUT_FIELDS,
    SOURCETYPE,
    TEST_ARTIFACTS,
    TEST_NAMES,
    TEST_PLATFORMS,
    TITLE,
)

LIST_URL = "/api/v1/detections/"
DETAIL_URL = f"/api/v1/detections/{SEED_SLUG}/"
SEED_SPL = (FILES_DIR / "T1560.002.spl").read_bytes()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def detail(seed_detection, client) -> dict:
    response = client.get(DETAIL_URL)
    assert response.status_code == 200
    return response.json()


def list_slugs(client: APIClient, **params) -> list[str]:
    response = client.get(LIST_URL, params)
    assert response.status_code == 200, response.content
    return [row["slug"] for row in response.json()["results"]]


def test_detection_list_uses_page_format(seed_detection, client):
    body = client.get(LIST_URL).json()

    assert body["count"] == 1
    assert body["next"] is None
    assert body["previous"] is None
    assert body["results"][0]["slug"] == SEED_SLUG
    assert body["results"][0]["attack_ids"] == ["T1560", "T1560.002"]
    assert body["results"][0]["data_sources"] == DATA_COMPONENTS


def test_detection_list_orders_by_title(seed_detection, client):
    Detection.objects.create(
        slug="aaa",
        title="AAA first",
        platform="Splunk",
        query_language="SPL",
        description="x",
        severity="low",
        confidence="low",
        status="published",
    )

    assert list_slugs(client) == ["aaa", SEED_SLUG]


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"technique": "T1560"}, True),
        ({"technique": "T1560.002"}, True),
        ({"technique": "t1560.002"}, True),
        ({"technique": "T1560.001"}, False),
        ({"technique": "T156"}, False),
        ({"tactic": "TA0009"}, True),
        ({"tactic": "TA0002"}, False),
        ({"severity": "medium"}, True),
        ({"severity": "high"}, False),
        ({"data_source": "DC0016"}, True),
        ({"data_source": "Process Creation"}, True),
        ({"data_source": "Network Traffic Flow"}, False),
        ({"status": "published"}, True),
        ({"status": "draft"}, False),
        ({"search": "zlib.dll"}, True),
        ({"search": "ZipArchive"}, True),
        ({"search": "no-such-term-anywhere"}, False),
    ],
)
def test_detection_list_filter(seed_detection, client, params, found):
    assert (SEED_SLUG in list_slugs(client, **params)) is found


def test_detection_list_hides_drafts_from_anonymous(seed_detection, client):
    Detection.objects.filter(pk=seed_detection.pk).update(status="draft")

    assert list_slugs(client) == []
    assert client.get(DETAIL_URL).status_code == 404


def test_detection_detail_by_uuid(seed_detection, client):
    response = client.get(f"{LIST_URL}{seed_detection.uuid}/")

    assert response.status_code == 200
    assert response.json()["slug"] == SEED_SLUG


def test_detection_detail_unknown_slug(seed_detection, client):
    assert client.get(f"{LIST_URL}no-such-detection/").status_code == 404


def test_detail_spl_matches_page_exactly(detail):
    query = detail["queries"][0]

    assert query["text"].encode("utf-8") == SEED_SPL
    assert query["language"] == "SPL"
    assert query["output_fields"] == OUTPUT_FIELDS
    assert query["required_sourcetypes"] == [SOURCETYPE]
    assert query["branch_field"] == "DetectionSource"


def test_detail_branches(detail):
    branches = detail["queries"][0]["branches"]
    rule_ids = {rule["id"] for rule in detail["sigma_rules"]}

    assert {branch["name"]: branch["event_id"] for branch in branches} == BRANCHES
    assert all(branch["sigma_rule_id"] in rule_ids for branch in branches)
    assert branches[0]["dll_names"] == [
        "zlib.dll",
        "zlib1.dll",
        "zlibwapi.dll",
        "bzip2.dll",
        "libbzip2.dll",
        "libzip.dll",
    ]
    assert branches[0]["excluded_processes"] == ["7z.exe", "7zG.exe", "WinRAR.exe", "msiexec.exe"]
    assert branches[0]["excluded_paths"] == ["\\System32\\", "\\SysWOW64\\"]
    assert branches[3]["file_extensions"] == [".gz", ".bz2", ".zlib", ".lzma", ".xz"]
    assert "\\Users\\Public\\" in branches[3]["staging_paths"]
    assert "import rarfile" in branches[2]["command_line_markers"]


def test_detail_attack_mapping(detail):
    mapping = detail["attack"][0]

    assert mapping["tactic"]["id"] == "TA0009"
    assert mapping["tactic"]["name"] == "Collection"
    assert mapping["technique"]["id"] == "T1560"
    assert mapping["technique"]["name"] == "Archive Collected Data"
    assert mapping["technique"]["url"] == "https://attack.mitre.org/techniques/T1560/"
    assert mapping["subtechnique"]["id"] == "T1560.002"
    assert mapping["subtechnique"]["name"] == "Archive via Library"
    assert mapping["subtechnique"]["url"] == "https://attack.mitre.org/techniques/T1560/002/"
    assert detail["canonical_reference"] == "https://attack.mitre.org/techniques/T1560/002/"


def test_detail_page_facts(detail):
    assert detail["title"] == TITLE
    assert detail["platform"] == "Splunk"
    assert detail["query_language"] == "SPL"
    assert detail["severity"] == "medium"
    assert detail["confidence"] == "medium"
    assert detail["status"] == "published"
    assert detail["malware_families"] == MALWARE_FAMILIES
    assert detail["evaded_tools"] == EVADED_TOOLS
    assert detail["false_positives"] == FALSE_POSITIVES
    assert detail["related"] == []
    assert detail["other_platforms"] == []


def test_detail_libraries(detail):
    libraries = {entry["ecosystem"]: entry for entry in detail["libraries"]}

    assert libraries["Python"]["names"] == ["zlib", "bzip2", "gzip", "zipfile", "rarfile"]
    assert libraries[".NET"]["names"] == ["System.IO.Compression"]
    assert libraries[".NET"]["classes"] == ["GZipStream", "DeflateStream", "ZipArchive"]
    assert libraries["C"]["names"] == ["libzip", "zlib"]


def test_detail_data_sources(detail):
    sources = detail["data_sources"]

    assert [source["component"]["label"] for source in sources] == DATA_COMPONENTS
    assert sorted(source["event_id"] for source in sources) == [1, 7, 11]
    assert {source["log_source"] for source in sources} == {"Sysmon"}


def test_detail_tests_and_expected_signals(detail):
    # The page's four tests come first; the recorded Atomic, false-positive and
    # near-miss tests follow them.
    tests = detail["tests"][: len(TEST_NAMES)]
    artifacts = [
        [signal["artifact_path"] for signal in test["telemetry"] if signal["artifact_path"]]
        for test in tests
    ]

    assert [test["name"] for test in tests] == TEST_NAMES
    assert [test["platform"] for test in tests] == TEST_PLATFORMS
    assert all(test["expected_signal"] for test in detail["tests"])
    assert all(test["atomic_guid"] is None for test in tests)
    for expected, found in zip(TEST_ARTIFACTS, artifacts, strict=True):
        assert expected in found


def test_detail_first_test_telemetry(detail):
    telemetry = detail["tests"][0]["telemetry"]

    assert telemetry[0]["source"] == "Sysmon"
    assert telemetry[0]["event_id"] == 1
    assert telemetry[0]["key_fields"] == {
        "Image": "python.exe",
        "CommandLine": ["import zlib", "zlib.compress"],
    }
    assert telemetry[1]["event_id"] == 11
    assert telemetry[1]["artifact_path"] == "%TEMP%\\stage_df00.zlib"


def test_detail_sigma_rules(detail):
    rules = detail["sigma_rules"]
    categories = [rule["logsource"].get("category") for rule in rules]

    assert len(rules) == 5
    assert categories == ["image_load", "process_creation", "process_creation", "file_event", None]
    assert rules[4]["logsource"] == {"product": "linux", "service": "auditd"}
    assert all(rule["yaml"].startswith("title: ") for rule in rules)
    assert all("attack.t1560.002" in rule["tags"] for rule in rules)


def test_spl_download(seed_detection, client):
    response = client.get(f"{DETAIL_URL}download/spl/")

    assert response.status_code == 200
    assert response.content == SEED_SPL
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{SEED_SLUG}.spl"'


def test_query_download_by_position(seed_detection, client):
    response = client.get(f"{DETAIL_URL}download/query/0/")

    assert response.status_code == 200
    assert response.content == SEED_SPL
    assert client.get(f"{DETAIL_URL}download/query/5/").status_code == 404


def test_sigma_download(detail, client):
    for rule in detail["sigma_rules"]:
        response = client.get(rule["download_url"])

        assert response.status_code == 200
        assert response.content.decode("utf-8") == rule["yaml"]
        assert response["Content-Type"] == "application/yaml; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="{rule["filename"]}"'


def test_sigma_download_unknown_rule(seed_detection, client):
    url = f"{DETAIL_URL}download/sigma/00000000-0000-4000-8000-000000000000/"

    assert client.get(url).status_code == 404


def test_sigma_zip_download(detail, client):
    response = client.get(detail["sigma_zip_url"])
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    expected = {f"{SEED_SLUG}/{rule['filename']}": rule["yaml"] for rule in detail["sigma_rules"]}
    filters = {
        f"{SEED_SLUG}/filters/tuning-{entry['id']}.yml" for entry in detail["tuning_entries"]
    }
    files = {name: archive.read(name).decode() for name in archive.namelist()}

    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{SEED_SLUG}-sigma.zip"'
    assert {name: text for name, text in files.items() if name in expected} == expected
    assert set(files) - set(expected) == filters
    assert len(filters) == 6


def test_openapi_schema(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert "/api/v1/detections/{slug}/" in response.json()["paths"]


def test_api_docs_use_local_assets(client, db):
    response = client.get("/api/docs/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr.net" not in html
