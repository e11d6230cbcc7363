"""The playbook API: list and detail with embedded content, downloads and visibility."""

import json

import pytest
from rest_framework.test import APIClient

from detections.content.loader import content_load
from detections.models import Detection
from playbooks.exports.cacao import cacao_json
from playbooks.exports.markdown import playbook_markdown
from playbooks.exports.validation import cacao_problems
from playbooks.models import Playbook

from .conftest import CONTENT_DIR, SEED_SLUG

LIST_URL = "/api/v1/playbooks/"
SLUG = "archive-via-library-response"
DETAIL_URL = f"{LIST_URL}{SLUG}/"


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client(viewer) -> APIClient:
    """A client signed in as a viewer, who may see drafts."""
    client = APIClient()
    client.force_authenticate(viewer)
    return client


@pytest.fixture
def playbook(db) -> Playbook:
    content_load(root=CONTENT_DIR)
    return Playbook.objects.get(slug=SLUG)


@pytest.fixture
def detail(playbook, client) -> dict:
    response = client.get(DETAIL_URL)
    assert response.status_code == 200
    return response.json()


def test_list_rows_embed_steps_and_queries(playbook, client):
    body = client.get(LIST_URL).json()
    row = body["results"][0]

    assert body["count"] == 1
    assert row["slug"] == SLUG
    assert len(row["response"]) == playbook.steps.count()
    assert row["response"][0]["queries"][0]["language"] == "SPL"
    assert len(row["investigation"]) == playbook.questions.count()
    assert len(row["hunting"]) == playbook.hunts.count()


def test_detail_lists_steps_in_phase_order(detail):
    phases = [step["phase"] for step in detail["response"]]
    numbers = [step["number"] for step in detail["response"]]

    assert list(dict.fromkeys(phases)) == [
        "triage",
        "investigation",
        "containment",
        "eradication",
        "recovery",
        "lessons-learned",
    ]
    assert numbers == list(range(1, len(phases) + 1))


def test_detail_step_fields(detail, playbook):
    step = detail["response"][0]
    stored = playbook.steps.get(position=0)

    assert step["title"] == stored.title
    assert step["role"] == "SOC analyst (tier 1)"
    assert step["automatable"] is True
    assert step["records"] == ["process_guid", "parent_process_guid", "process_sha256"]
    assert step["queries"][0]["text"] == stored.queries.get().text
    assert step["queries"][0]["sigma"] is None


def test_detail_question_and_hunt_fields(detail):
    question = detail["investigation"][0]
    hunt = detail["hunting"][1]
    sigma = hunt["queries"][0]["sigma"]

    assert question["question"].startswith("Which process loaded")
    assert question["benign_answer"]
    assert question["artifacts"][0].startswith("Sysmon event 7")
    assert hunt["hypothesis"]
    assert hunt["expected_noise"]
    assert sigma["id"] == "56680b51-c205-4c31-a9ce-b3d6fe87ee77"
    assert sigma["filename"] == "sigma/compression_library_user_folder.yml"
    assert sigma["yaml"].startswith("title: Compression Library Loaded")


def test_detail_inputs_carry_tokens(detail):
    tokens = {item["name"]: item["token"] for item in detail["inputs"]}

    assert tokens["host"] == "$host$"
    assert tokens["process_guid"] == "$process_guid$"


def test_detail_links_detection(detail):
    assert [item["slug"] for item in detail["detections"]] == [SEED_SLUG]
    assert detail["html_url"] == f"http://testserver/playbooks/{SLUG}/"


def test_detail_by_uuid(playbook, client):
    response = client.get(f"{LIST_URL}{playbook.uuid}/")

    assert response.status_code == 200
    assert response.json()["slug"] == SLUG


def test_detail_unknown_slug(playbook, client):
    assert client.get(f"{LIST_URL}no-such-playbook/").status_code == 404


def test_draft_playbook_hidden_from_anonymous(playbook, client):
    Playbook.objects.filter(pk=playbook.pk).update(status="draft")

    assert client.get(LIST_URL).json()["count"] == 0
    assert client.get(DETAIL_URL).status_code == 404
    assert client.get(f"{DETAIL_URL}download/cacao/").status_code == 404
    assert client.get(f"{DETAIL_URL}download/markdown/").status_code == 404


def test_draft_playbook_shown_to_staff(playbook, staff_client):
    Playbook.objects.filter(pk=playbook.pk).update(status="draft")

    assert staff_client.get(DETAIL_URL).json()["status"] == "draft"


def test_draft_detection_hidden_in_playbook(playbook, client, staff_client):
    Detection.objects.update(status="draft")

    assert client.get(DETAIL_URL).json()["detections"] == []
    assert len(staff_client.get(DETAIL_URL).json()["detections"]) == 1


def test_filter_by_detection(playbook, client):
    detection = Detection.objects.get()

    for value in (SEED_SLUG, str(detection.uuid)):
        assert client.get(LIST_URL, {"detection": value}).json()["count"] == 1
    assert client.get(LIST_URL, {"detection": "other-detection"}).json()["count"] == 0


def test_detection_detail_lists_playbooks(playbook, client):
    body = client.get(f"/api/v1/detections/{SEED_SLUG}/").json()
    link = body["playbooks"][0]

    assert len(body["playbooks"]) == 1
    assert link["slug"] == SLUG
    assert link["id"] == str(playbook.uuid)
    assert link["url"] == f"http://testserver{DETAIL_URL}"
    assert link["cacao_url"] == f"http://testserver{DETAIL_URL}download/cacao/"
    assert link["markdown_url"] == f"http://testserver{DETAIL_URL}download/markdown/"


def test_detection_detail_hides_draft_playbook(playbook, client):
    Playbook.objects.filter(pk=playbook.pk).update(status="draft")

    body = client.get(f"/api/v1/detections/{SEED_SLUG}/").json()

    assert body["playbooks"] == []


def test_cacao_download(detail, client, playbook):
    response = client.get(detail["cacao_url"])
    document = json.loads(response.content)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{SLUG}.cacao.json"'
    assert response.content.decode() == cacao_json(playbook)
    assert cacao_problems(document) == []


def test_markdown_download(detail, client, playbook):
    response = client.get(detail["markdown_url"])

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{SLUG}.md"'
    assert response.content.decode() == playbook_markdown(playbook)


def test_openapi_schema_lists_playbooks(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    detection = schema["components"]["schemas"]["Detection"]["properties"]

    for path in (
        "/api/v1/playbooks/",
        "/api/v1/playbooks/{slug}/",
        "/api/v1/playbooks/{slug}/download/cacao/",
        "/api/v1/playbooks/{slug}/download/markdown/",
    ):
        assert path in schema["paths"]
    assert "playbooks" in detection
    assert "ResponseStep" in schema["components"]["schemas"]
