"""Server-rendered playbook pages, their downloads and the section on the detection page."""

import html
import re

import pytest
from django.urls import reverse

from detections.content.loader import content_load
from detections.models import Detection
from playbooks.exports.cacao import cacao_json
from playbooks.exports.markdown import playbook_markdown
from playbooks.models import Playbook

from .conftest import CONTENT_DIR, SEED_SLUG
from .test_web_views import code_block_text, element_html, page_text

SLUG = "archive-via-library-response"
PREFIX = f"playbook-{SLUG}"


@pytest.fixture
def playbook(db) -> Playbook:
    content_load(root=CONTENT_DIR)
    return Playbook.objects.get(slug=SLUG)


@pytest.fixture
def staff_client(client, viewer):
    """A client signed in as a viewer, who may see drafts."""
    client.force_login(viewer)
    return client


@pytest.fixture
def page(client, playbook):
    response = client.get(playbook.get_absolute_url())
    assert response.status_code == 200
    return response


@pytest.fixture
def detection_page(client, playbook):
    detection = Detection.objects.get(slug=SEED_SLUG)
    response = client.get(detection.get_absolute_url())
    assert response.status_code == 200
    return response


# Playbook page


def test_playbook_page_shows_title_and_downloads(page, playbook):
    content = page.content.decode()

    assert playbook.title in page_text(page)
    assert f'href="{reverse("playbooks:markdown_download", args=[SLUG])}"' in content
    assert f'href="{reverse("playbooks:cacao_download", args=[SLUG])}"' in content


def test_playbook_page_groups_steps_by_phase(page, playbook):
    content = page.content.decode()
    phases = re.findall(r'data-testid="phase-([a-z-]+)"', content)
    steps = re.findall(r'data-testid="playbook-step"', content)

    assert phases == [
        "triage",
        "investigation",
        "containment",
        "eradication",
        "recovery",
        "lessons-learned",
    ]
    assert len(steps) == playbook.steps.count()


def test_playbook_page_highlights_queries(page, playbook):
    step = playbook.steps.get(position=0)
    block_id = f"{PREFIX}-step-1-query-1"

    assert code_block_text(page, block_id) == step.queries.get().text
    assert f'data-copy-target="{block_id}"' in page.content.decode()
    assert 'class="highlight"' in element_html(page, block_id, "pre")


def test_playbook_page_shows_sigma_form(page, playbook):
    rule = playbook.sigma_rules.get(filename="sigma/upload_tool_names_archive.yml")
    block_id = f"{PREFIX}-hunt-5-query-1-sigma"

    assert code_block_text(page, block_id) == rule.yaml_text
    assert f'data-copy-target="{block_id}"' in page.content.decode()


def test_playbook_page_shows_guide_and_hunts(page, playbook):
    text = page_text(page)
    questions = page.content.decode().count('data-testid="investigation-question"')
    hunts = page.content.decode().count('data-testid="hunting-query"')

    assert "Investigation guide" in text
    assert "Hunting queries" in text
    assert questions == playbook.questions.count()
    assert hunts == playbook.hunts.count()
    assert "Benign answer" in text
    assert "Points to an intrusion" in text


def test_playbook_page_lists_inputs_and_detection(page):
    inputs = element_html(page, "playbook-inputs", "table")
    detections = element_html(page, "playbook-detections", "ul")

    assert "<code>$process_guid$</code>" in inputs
    assert "Detect Archive via Library in Splunk" in detections


def test_playbook_list_page(client, playbook):
    response = client.get(reverse("playbooks:playbook_list"))

    assert response.status_code == 200
    assert f'href="{playbook.get_absolute_url()}"' in response.content.decode()
    assert "17 steps, 5 questions, 6 hunts" in page_text(response)


def test_playbook_page_unknown_slug(client, playbook):
    assert client.get("/playbooks/no-such-playbook/").status_code == 404


def test_draft_playbook_hidden_from_anonymous(client, playbook):
    Playbook.objects.filter(pk=playbook.pk).update(status="draft")

    assert client.get(playbook.get_absolute_url()).status_code == 404
    assert client.get(reverse("playbooks:markdown_download", args=[SLUG])).status_code == 404
    assert client.get(reverse("playbooks:cacao_download", args=[SLUG])).status_code == 404
    assert SLUG not in client.get(reverse("playbooks:playbook_list")).content.decode()


def test_draft_playbook_shown_to_staff(staff_client, playbook):
    Playbook.objects.filter(pk=playbook.pk).update(status="draft")

    response = staff_client.get(playbook.get_absolute_url())

    assert response.status_code == 200
    assert "only signed-in viewers, authors and reviewers can see it" in page_text(response)


# Downloads


def test_markdown_download(client, playbook):
    response = client.get(reverse("playbooks:markdown_download", args=[SLUG]))

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{SLUG}.md"'
    assert response.content.decode() == playbook_markdown(playbook)


def test_cacao_download(client, playbook):
    response = client.get(reverse("playbooks:cacao_download", args=[SLUG]))

    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{SLUG}.cacao.json"'
    assert response.content.decode() == cacao_json(playbook)


def test_download_rejects_post(client, playbook):
    response = client.post(reverse("playbooks:cacao_download", args=[SLUG]))

    assert response.status_code == 405


# Detection page


def test_detection_page_has_playbook_section(detection_page, playbook):
    section = element_html(detection_page, "detection-playbooks", "section")
    content = detection_page.content.decode()

    assert f'href="{playbook.get_absolute_url()}"' in section
    assert '<a href="#playbooks">Response playbooks</a>' in content
    assert content.count('data-testid="playbook-step"') == playbook.steps.count()
    assert content.count('data-testid="investigation-question"') == playbook.questions.count()
    assert content.count('data-testid="hunting-query"') == playbook.hunts.count()


def test_detection_page_playbook_queries_copy(detection_page, playbook):
    query = playbook.hunts.get(position=0).queries.get()
    block_id = f"{PREFIX}-hunt-1-query-1"

    assert code_block_text(detection_page, block_id) == query.text
    assert f'data-copy-target="{block_id}"' in detection_page.content.decode()


def test_detection_page_hides_draft_playbook(client, playbook):
    Playbook.objects.filter(pk=playbook.pk).update(status="draft")
    detection = Detection.objects.get(slug=SEED_SLUG)

    response = client.get(detection.get_absolute_url())

    assert "No response playbook yet." in page_text(response)
    assert 'data-testid="playbook-step"' not in response.content.decode()


def test_detection_page_escapes_playbook_text(client, playbook):
    Playbook.objects.filter(pk=playbook.pk).update(title="<script>alert(1)</script>")
    detection = Detection.objects.get(slug=SEED_SLUG)

    response = client.get(detection.get_absolute_url())

    assert "<script>alert(1)</script>" not in response.content.decode()
    assert html.escape("<script>alert(1)</script>") in response.content.decode()
