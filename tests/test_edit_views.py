"""Edit pages of the detection page: saves, Sigma validation, conflicts, permissions and CSRF."""

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from detections import editing
from detections.models import Detection, DetectionTest, Render, ValidationRun

pytestmark = pytest.mark.django_db


def edit_url(name: str, detection: Detection, *args) -> str:
    return reverse(f"detections:{name}", args=[detection.slug, *args])


def form_data(response) -> dict:
    """Return the initial values of the page's edit form, as a browser would submit them."""
    form = response.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value
    extra = response.context.get("false_positive_forms")
    if extra is not None:
        management = extra.management_form
        for name in management.fields:
            data[f"{extra.prefix}-{name}"] = management[name].value()
        for subform in extra.forms:
            data[subform["description"].html_name] = subform["description"].value() or ""
    return data


def textarea_text(response, name: str) -> str:
    match = re.search(
        rf'<textarea name="{re.escape(name)}"[^>]*>(.*?)</textarea>',
        response.content.decode(),
        re.DOTALL,
    )
    assert match, f"no textarea {name!r} in the page"
    # Django writes a newline after the opening tag, which browsers drop.
    return html.unescape(match.group(1)).removeprefix("\n")


@pytest.fixture
def author_client(client, author):
    client.force_login(author)
    return client


@pytest.fixture
def sigma_rule(seed_detection):
    return seed_detection.sigma_rules.order_by("position").first()


# Overview, tuning and tests


def test_overview_edit_saves_and_bumps_revision(author_client, seed_detection):
    url = edit_url("overview_edit", seed_detection)
    response = author_client.get(url)
    assert response.status_code == 200
    data = form_data(response)
    before = seed_detection.revision
    data.update(description="New **description**.", severity="critical", comment="Raise it")

    response = author_client.post(url, data)

    assert response.status_code == 302
    seed_detection.refresh_from_db()
    assert seed_detection.description == "New **description**."
    assert seed_detection.severity == "critical"
    assert seed_detection.revision == before + 1
    newest = editing.history(seed_detection)[0]
    assert newest.comment == "Raise it"


def test_unchanged_save_stores_no_revision(author_client, seed_detection):
    url = edit_url("tuning_edit", seed_detection)
    data = form_data(author_client.get(url))
    data["comment"] = "Only a comment"
    revision = seed_detection.revision
    versions = len(editing.history(seed_detection))

    response = author_client.post(url, data, follow=True)

    assert "Nothing was changed" in response.content.decode()
    seed_detection.refresh_from_db()
    assert seed_detection.revision == revision
    assert len(editing.history(seed_detection)) == versions


def test_crlf_line_breaks_stored_as_lf(author_client, seed_detection):
    url = edit_url("tuning_edit", seed_detection)
    data = form_data(author_client.get(url))
    data["tuning_notes"] = "first line\r\nsecond line"

    assert author_client.post(url, data).status_code == 302

    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "first line\nsecond line"


def test_overview_edit_invalid_choice_keeps_stored(author_client, seed_detection):
    url = edit_url("overview_edit", seed_detection)
    data = form_data(author_client.get(url))
    data["severity"] = "apocalyptic"
    before = seed_detection.severity

    response = author_client.post(url, data)

    assert response.status_code == 400
    assert "apocalyptic is not one of the available choices" in html.unescape(
        response.content.decode()
    )
    seed_detection.refresh_from_db()
    assert seed_detection.severity == before


def test_tuning_edit_saves_notes_and_false_positives(author_client, seed_detection):
    url = edit_url("tuning_edit", seed_detection)
    data = form_data(author_client.get(url))
    stored = list(seed_detection.false_positives.values_list("description", flat=True))
    data["tuning_notes"] = "Exclude `backup.exe` on build hosts."
    data["false_positives-0-description"] = ""
    data["false_positives-1-description"] = "A new *benign* case."
    data["comment"] = "Tune"

    response = author_client.post(url, data)

    assert response.status_code == 302
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "Exclude `backup.exe` on build hosts."
    texts = list(seed_detection.false_positives.values_list("description", flat=True))
    assert texts[0] == "A new *benign* case."
    assert texts[1:] == stored[2:]
    assert len(texts) == len(stored) - 1


def test_tuning_edit_adds_false_positive_in_extra_form(author_client, seed_detection):
    url = edit_url("tuning_edit", seed_detection)
    data = form_data(author_client.get(url))
    count = seed_detection.false_positives.count()
    data[f"false_positives-{count}-description"] = "Added in the empty box."

    response = author_client.post(url, data)

    assert response.status_code == 302
    last = seed_detection.false_positives.order_by("-position").first()
    assert last.description == "Added in the empty box."
    assert seed_detection.false_positives.count() == count + 1


def test_test_expectation_edit_queues_validation(author_client, seed_detection):
    test = seed_detection.tests.filter(origin=DetectionTest.Origin.AUTHORED).first()
    url = edit_url("test_edit", seed_detection, test.pk)
    data = form_data(author_client.get(url))
    data.update(expect="silent", min_matches=3, known_false_positive="on", comment="Benign now")
    runs_before = ValidationRun.objects.count()

    response = author_client.post(url, data)

    assert response.status_code == 302
    test.refresh_from_db()
    assert test.expect == "silent"
    assert test.min_matches == 3
    assert test.known_false_positive is True
    assert ValidationRun.objects.count() == runs_before + 1


def test_test_expectation_rejects_zero_matches(author_client, seed_detection):
    test = seed_detection.tests.first()
    url = edit_url("test_edit", seed_detection, test.pk)
    data = form_data(author_client.get(url))
    data["min_matches"] = 0

    response = author_client.post(url, data)

    assert response.status_code == 400
    test.refresh_from_db()
    assert test.min_matches != 0


# Sigma rules


def test_sigma_edit_valid_rule_saved_and_rerendered(author_client, seed_detection, sigma_rule):
    url = edit_url("sigma_edit", seed_detection, sigma_rule.rule_id)
    data = form_data(author_client.get(url))
    new_text = sigma_rule.yaml_text.replace(
        f"title: {sigma_rule.title}", "title: Renamed In The Portal", 1
    )
    assert new_text != sigma_rule.yaml_text
    data.update(yaml_text=new_text.replace("\n", "\r\n"), comment="Retitle")
    Render.objects.filter(sigma_rule=sigma_rule).update(status=Render.Status.RENDERED)
    revision = seed_detection.revision
    runs_before = ValidationRun.objects.filter(detection=seed_detection).count()

    response = author_client.post(url, data)

    assert response.status_code == 302
    sigma_rule.refresh_from_db()
    assert sigma_rule.yaml_text == new_text
    assert sigma_rule.title == "Renamed In The Portal"
    statuses = set(Render.objects.filter(sigma_rule=sigma_rule).values_list("status", flat=True))
    assert statuses <= {Render.Status.QUEUED, Render.Status.UNAVAILABLE}
    assert Render.Status.QUEUED in statuses
    runs = ValidationRun.objects.filter(detection=seed_detection)
    assert runs.count() == runs_before + 1
    assert runs.first().trigger == ValidationRun.Trigger.WEB
    seed_detection.refresh_from_db()
    assert seed_detection.revision == revision + 1


def test_sigma_edit_invalid_yaml_shows_line(author_client, seed_detection, sigma_rule):
    url = edit_url("sigma_edit", seed_detection, sigma_rule.rule_id)
    data = form_data(author_client.get(url))
    lines = sigma_rule.yaml_text.split("\n")
    bad_line = lines.index("detection:") + 2
    lines.insert(bad_line - 1, "    broken: [unclosed")
    data["yaml_text"] = "\n".join(lines)
    revision = seed_detection.revision

    response = author_client.post(url, data)

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert f"line {bad_line + 1}: invalid YAML" in page or f"line {bad_line}: invalid YAML" in page
    error_line = re.search(r'<li value="(\d+)" class="yaml-error-line"', page)
    assert error_line is not None
    assert "invalid YAML" in page
    assert textarea_text(response, "yaml_text") == data["yaml_text"]
    stored = type(sigma_rule).objects.get(pk=sigma_rule.pk)
    assert stored.yaml_text == sigma_rule.yaml_text
    seed_detection.refresh_from_db()
    assert seed_detection.revision == revision


def test_sigma_edit_pysigma_error_at_level_line(author_client, seed_detection, sigma_rule):
    url = edit_url("sigma_edit", seed_detection, sigma_rule.rule_id)
    data = form_data(author_client.get(url))
    lines = sigma_rule.yaml_text.split("\n")
    level_line = next(index for index, line in enumerate(lines, 1) if line.startswith("level:"))
    lines[level_line - 1] = "level: apocalyptic"
    data["yaml_text"] = "\n".join(lines)

    response = author_client.post(url, data)

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert f"line {level_line}: invalid Sigma rule: 'apocalyptic' is not a valid" in page
    assert f'<li value="{level_line}" class="yaml-error-line"' in page
    sigma_rule.refresh_from_db()
    assert "apocalyptic" not in sigma_rule.yaml_text


def test_sigma_edit_rejects_changed_id(author_client, seed_detection, sigma_rule):
    url = edit_url("sigma_edit", seed_detection, sigma_rule.rule_id)
    data = form_data(author_client.get(url))
    original = sigma_rule.yaml_text
    data["yaml_text"] = original.replace(
        str(sigma_rule.rule_id), "00000000-0000-4000-8000-000000000001"
    )

    response = author_client.post(url, data)

    assert response.status_code == 400
    assert "keep the id, because other rules and renders refer to it" in html.unescape(
        response.content.decode()
    )
    sigma_rule.refresh_from_db()
    assert sigma_rule.yaml_text == original


# Conflicts


def test_second_save_from_same_revision_conflicts(client, author, reviewer, seed_detection):
    other = Client()
    client.force_login(author)
    other.force_login(reviewer)
    url = edit_url("tuning_edit", seed_detection)
    first = form_data(client.get(url))
    second = form_data(other.get(url))
    start = seed_detection.revision
    first.update(tuning_notes="First author's notes.", comment="first")
    second.update(tuning_notes="Second author's notes, typed at length.", comment="second")

    assert client.post(url, first).status_code == 302
    response = other.post(url, second)

    assert response.status_code == 409
    page = html.unescape(response.content.decode())
    assert 'data-testid="conflict"' in page
    assert f"You started from revision {start}; it is now at revision {start + 1}" in page
    assert "tuning_notes" in page
    assert "First author's notes." in page
    assert textarea_text(response, "tuning_notes") == "Second author's notes, typed at length."
    assert response.context["form"]["revision"].value() == str(start + 1)
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "First author's notes."

    second["revision"] = start + 1
    assert other.post(url, second).status_code == 302
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "Second author's notes, typed at length."
    assert seed_detection.revision == start + 2


# Permissions and CSRF

EDIT_PAGES = ["overview_edit", "tuning_edit"]


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
@pytest.mark.parametrize("page", EDIT_PAGES)
def test_edit_pages_forbidden_to_readers(client, request, seed_detection, persona, page):
    client.force_login(request.getfixturevalue(persona))
    url = edit_url(page, seed_detection)

    assert client.get(url).status_code == 403
    assert client.post(url, {"revision": seed_detection.revision}).status_code == 403


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_sigma_and_test_edit_forbidden_to_readers(
    client, request, seed_detection, sigma_rule, persona
):
    client.force_login(request.getfixturevalue(persona))
    test = seed_detection.tests.first()

    assert client.get(edit_url("sigma_edit", seed_detection, sigma_rule.rule_id)).status_code == 403
    assert client.get(edit_url("test_edit", seed_detection, test.pk)).status_code == 403
    preview = reverse("detections:preview_markdown")
    assert client.post(preview, {"text": "x"}).status_code == 403


def test_edit_page_redirects_anonymous_to_login(client, seed_detection):
    url = edit_url("tuning_edit", seed_detection)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.post(url, {"tuning_notes": "x"}).status_code == 302
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes != "x"


def test_edit_post_without_csrf_token_rejected(author, seed_detection):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(author)
    url = edit_url("tuning_edit", seed_detection)
    response = csrf_client.get(url)
    data = form_data(response)
    data["tuning_notes"] = "Forged."

    forged = csrf_client.post(url, data)

    assert forged.status_code == 403
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes != "Forged."
    data["csrfmiddlewaretoken"] = response.context["csrf_token"]
    assert csrf_client.post(url, data).status_code == 302


def test_detail_page_shows_edit_links_to_authors_only(client, author, viewer, seed_detection):
    client.force_login(viewer)
    assert (
        'data-testid="edit-tuning"'
        not in client.get(seed_detection.get_absolute_url()).content.decode()
    )
    client.force_login(author)
    page = client.get(seed_detection.get_absolute_url()).content.decode()
    assert 'data-testid="edit-tuning"' in page
    assert 'data-testid="edit-overview"' in page


# Markdown preview


def test_markdown_preview_returns_sanitised_html(author_client):
    response = author_client.post(
        reverse("detections:preview_markdown"),
        {"text": "**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))"},
    )

    assert response.status_code == 200
    body = response.json()["html"]
    assert "<strong>bold</strong>" in body
    assert "onerror" not in body
    assert "javascript:" not in body


def test_markdown_preview_rejects_oversized_text(author_client):
    response = author_client.post(reverse("detections:preview_markdown"), {"text": "x" * 200_001})

    assert response.status_code == 413
    assert "200001 characters" in response.json()["error"]
