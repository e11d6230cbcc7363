"""API of a detection's tuning entries: reads, writes, preconditions, permissions, schema."""

import uuid

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken
from detections import editing
from detections.models import Detection, TuningEntry, ValidationRun
from detections.tuning import detection_macro

from .conftest import SEED_SLUG

TUNING = f"/api/v1/detections/{SEED_SLUG}/tuning/"
ETAG_1 = f'"{SEED_SLUG}.1"'
ETAG_2 = f'"{SEED_SLUG}.2"'
NEW_ENTRY = {
    "condition": {"Image|endswith": "\\backup-agent.exe"},
    "reason": "The nightly backup agent compresses user files.",
    "owner": "SOC Tuning",
    "ticket": "SOC-4711",
    "comment": "Exclude the backup agent",
}


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def post(client, body, etag=ETAG_1):
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.post(TUNING, body, format="json", **headers)


def entry_url(entry) -> str:
    return f"{TUNING}{entry.uuid}/"


def first_entry(detection: Detection) -> TuningEntry:
    return detection.tuning_entries.order_by("position").first()


def revision_of(detection: Detection) -> int:
    detection.refresh_from_db()
    return detection.revision


# Reads


def test_list_returns_entries_and_etag(seed_detection):
    response = api().get(TUNING)

    assert response.status_code == 200
    assert response["ETag"] == ETAG_1
    ids = [item["id"] for item in response.json()]
    assert ids == [str(entry.uuid) for entry in seed_detection.tuning_entries.all()]


def test_get_one_entry(seed_detection):
    entry = first_entry(seed_detection)

    response = api().get(entry_url(entry))

    assert response.status_code == 200
    assert response["ETag"] == ETAG_1
    assert response.json()["condition"] == entry.condition


def test_unknown_entry_is_404(seed_detection):
    assert api().get(f"{TUNING}{uuid.uuid4()}/").status_code == 404


# Writes


def test_post_adds_entry_and_changes_macro(seed_detection, author):
    before = detection_macro(seed_detection).definition

    response = post(api(author), NEW_ENTRY)

    assert response.status_code == 201
    assert response["ETag"] == ETAG_2
    body = response.json()
    assert body["condition"] == NEW_ENTRY["condition"]
    assert body["created_by"] == "author"
    stored = seed_detection.tuning_entries.get(uuid=body["id"])
    assert stored.ticket == "SOC-4711"
    after = detection_macro(Detection.objects.get(pk=seed_detection.pk)).definition
    assert after != before
    assert 'Image="*\\\\backup-agent.exe"' in after
    assert editing.history(seed_detection)[0].comment == "Exclude the backup agent"


def test_post_queues_validation_run(seed_detection, author):
    post(api(author), NEW_ENTRY)

    run = ValidationRun.objects.filter(detection=seed_detection).latest("pk")
    assert run.trigger == ValidationRun.Trigger.API


def test_post_accepts_yaml_condition(seed_detection, author):
    body = NEW_ENTRY | {"condition": "Image|endswith:\n  - '\\a.exe'\n  - '\\b.exe'\n"}

    response = post(api(author), body)

    assert response.status_code == 201
    assert response.json()["condition"] == {"Image|endswith": ["\\a.exe", "\\b.exe"]}


def test_post_invalid_modifier_is_400(seed_detection, author):
    count = seed_detection.tuning_entries.count()
    body = NEW_ENTRY | {"condition": {"Image|endwith": "\\pip.exe"}}

    response = post(api(author), body)

    assert response.status_code == 400
    assert "endwith" in response.json()["condition"][0]
    assert seed_detection.tuning_entries.count() == count
    assert revision_of(seed_detection) == 1


def test_post_invalid_yaml_is_400(seed_detection, author):
    response = post(api(author), NEW_ENTRY | {"condition": "Image: [unclosed\n"})

    assert response.status_code == 400
    assert "invalid YAML" in response.json()["condition"][0]


def test_post_unknown_branch_is_400(seed_detection, author):
    response = post(api(author), NEW_ENTRY | {"branches": ["NoSuchBranch"]})

    assert response.status_code == 400
    assert "NoSuchBranch" in response.json()["branches"][0]


def test_post_unknown_field_is_400(seed_detection, author):
    response = post(api(author), NEW_ENTRY | {"spl": "index=*"})

    assert response.status_code == 400
    assert "spl" in response.json()


def test_patch_disables_entry(seed_detection, author):
    entry = first_entry(seed_detection)

    response = api(author).patch(
        entry_url(entry), {"enabled": False}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 200
    assert response["ETag"] == ETAG_2
    assert response.json()["enabled"] is False
    entry.refresh_from_db()
    assert entry.enabled is False
    assert editing.history(seed_detection)[0].comment.startswith("Changed the tuning entry")


def test_invalid_patch_keeps_entry(seed_detection, author):
    entry = first_entry(seed_detection)
    stored = entry.condition

    response = api(author).patch(
        entry_url(entry),
        {"condition": {"Image|notamodifier": "x"}},
        format="json",
        HTTP_IF_MATCH=ETAG_1,
    )

    assert response.status_code == 400
    assert "notamodifier" in response.json()["condition"][0]
    entry.refresh_from_db()
    assert entry.condition == stored
    assert revision_of(seed_detection) == 1


def test_patch_without_fields_is_400(seed_detection, author):
    entry = first_entry(seed_detection)

    response = api(author).patch(
        entry_url(entry), {"comment": "only"}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 400


def test_delete_removes_entry(seed_detection, author):
    entry = first_entry(seed_detection)

    response = api(author).delete(entry_url(entry), HTTP_IF_MATCH=ETAG_1)

    assert response.status_code == 204
    assert response["ETag"] == ETAG_2
    assert not TuningEntry.objects.filter(pk=entry.pk).exists()
    assert editing.history(seed_detection)[0].comment.startswith("Deleted the tuning entry")


def test_delete_takes_comment(seed_detection, author):
    entry = first_entry(seed_detection)

    response = api(author).delete(
        entry_url(entry), {"comment": "Job retired"}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 204
    assert editing.history(seed_detection)[0].comment == "Job retired"


# Preconditions and permissions


def test_write_without_if_match_is_428(seed_detection, author):
    assert post(api(author), NEW_ENTRY, etag=None).status_code == 428
    entry = first_entry(seed_detection)
    assert api(author).delete(entry_url(entry)).status_code == 428


def test_stale_if_match_is_412(seed_detection, author):
    assert post(api(author), NEW_ENTRY).status_code == 201
    entry = first_entry(seed_detection)

    response = api(author).patch(
        entry_url(entry), {"owner": "Other"}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 412
    assert response["ETag"] == ETAG_2
    fields = [change["field"] for change in response.json()["changes"]]
    assert any(field.startswith("tuning_entries[") for field in fields)
    entry.refresh_from_db()
    assert entry.owner != "Other"


def test_anonymous_write_is_401_before_428(seed_detection):
    assert post(api(), NEW_ENTRY, etag=None).status_code == 401


def test_viewer_write_is_403_before_428(seed_detection, viewer):
    assert post(api(viewer), NEW_ENTRY, etag=None).status_code == 403
    entry = first_entry(seed_detection)
    assert api(viewer).delete(entry_url(entry)).status_code == 403


def test_read_only_token_cannot_write(seed_detection, author):
    _, key = ApiToken.issue(author, name="siem", read_only=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert client.get(TUNING).status_code == 200
    response = post(client, NEW_ENTRY)

    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert revision_of(seed_detection) == 1


def test_token_adds_entry(seed_detection, author):
    _, key = ApiToken.issue(author, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert post(client, NEW_ENTRY).status_code == 201


def test_schema_documents_tuning_paths(db, tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(schema))

    text = schema.read_text()
    assert "/api/v1/detections/{slug}/tuning/:" in text
    assert "/api/v1/detections/{slug}/tuning/{entry_id}/:" in text
    assert "v1_detections_tuning_destroy" in text


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_writes_need_if_match_in_schema(db, tmp_path, method):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(schema))
    paths = yaml.safe_load(schema.read_text())["paths"]
    path = "/api/v1/detections/{slug}/tuning/"
    if method != "post":
        path += "{entry_id}/"
    names = [parameter["name"] for parameter in paths[path][method].get("parameters", [])]
    assert "If-Match" in names
