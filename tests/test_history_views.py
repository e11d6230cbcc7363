"""Workflow buttons, history and restore pages, playbook edit pages, and draft visibility."""

import html

import pytest
from django.test import Client
from django.urls import reverse

from detections import editing
from detections.models import Detection, StatusTransition, ValidationRun
from playbooks.models import Playbook

pytestmark = pytest.mark.django_db


def set_tuning(detection: Detection, user, text: str, comment: str) -> Detection:
    def mutate(locked):
        locked.tuning_notes = text
        locked.save()

    return editing.edit(
        detection, user=user, expected_revision=detection.revision, mutate=mutate, comment=comment
    )


def make_draft(detection: Detection) -> Detection:
    Detection.objects.filter(pk=detection.pk).update(status=Detection.Status.DRAFT)
    detection.refresh_from_db()
    return detection


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_of(response) -> str:
    return html.unescape(response.content.decode())


# Workflow


def test_workflow_buttons_follow_role(author, reviewer, viewer, seed_detection):
    detection = make_draft(seed_detection)
    url = detection.get_absolute_url()

    author_page = logged_in(author).get(url).content.decode()
    viewer_page = logged_in(viewer).get(url).content.decode()
    Detection.objects.filter(pk=detection.pk).update(status=Detection.Status.REVIEW)
    reviewer_page = logged_in(reviewer).get(url).content.decode()

    assert 'data-testid="workflow-review"' in author_page
    assert 'data-testid="workflow-published"' not in author_page
    assert 'data-testid="workflow-form"' not in viewer_page
    assert 'data-testid="workflow-published"' in reviewer_page
    assert 'data-testid="workflow-draft"' in reviewer_page


def test_author_submits_for_review(author, seed_detection):
    detection = make_draft(seed_detection)
    client = logged_in(author)

    response = client.post(
        reverse("detections:transition", args=[detection.slug]),
        {"to_status": "review", "comment": "Ready", "revision": detection.revision},
        follow=True,
    )

    detection.refresh_from_db()
    assert detection.status == Detection.Status.REVIEW
    assert "The status is now review." in page_of(response)
    transition = StatusTransition.objects.get(object_id=detection.pk, to_status="review")
    assert transition.comment == "Ready"
    assert transition.user == author


def test_author_cannot_publish(author, seed_detection):
    detection = make_draft(seed_detection)
    Detection.objects.filter(pk=detection.pk).update(status=Detection.Status.REVIEW)

    response = logged_in(author).post(
        reverse("detections:transition", args=[detection.slug]),
        {"to_status": "published", "comment": "Ship it", "revision": detection.revision},
    )

    assert response.status_code == 403
    detection.refresh_from_db()
    assert detection.status == Detection.Status.REVIEW


def test_reviewer_publishes_with_comment(reviewer, seed_detection):
    detection = make_draft(seed_detection)
    Detection.objects.filter(pk=detection.pk).update(status=Detection.Status.REVIEW)
    client = logged_in(reviewer)
    url = reverse("detections:transition", args=[detection.slug])

    missing = client.post(
        url, {"to_status": "published", "revision": detection.revision}, follow=True
    )
    detection.refresh_from_db()
    assert detection.status == Detection.Status.REVIEW
    assert "Write a comment" in page_of(missing)

    client.post(url, {"to_status": "published", "comment": "Good", "revision": detection.revision})
    detection.refresh_from_db()
    assert detection.status == Detection.Status.PUBLISHED


def test_transition_not_allowed_shows_reason(reviewer, seed_detection):
    detection = make_draft(seed_detection)

    response = logged_in(reviewer).post(
        reverse("detections:transition", args=[detection.slug]),
        {"to_status": "deprecated", "comment": "Old", "revision": detection.revision},
        follow=True,
    )

    assert "cannot move from draft to 'deprecated'" in page_of(response)
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DRAFT


def test_viewer_transition_forbidden(viewer, seed_detection):
    response = logged_in(viewer).post(
        reverse("detections:transition", args=[seed_detection.slug]),
        {"to_status": "review", "comment": "x", "revision": seed_detection.revision},
    )

    assert response.status_code == 403


# History, diff and restore


def test_history_lists_versions_newest_first(author, seed_detection):
    set_tuning(seed_detection, author, "First notes.", "first change")
    detection = set_tuning(Detection.objects.get(pk=seed_detection.pk), author, "Second.", "second")

    response = logged_in(author).get(reverse("detections:history", args=[detection.slug]))

    assert response.status_code == 200
    rows = [entry for entry, _transitions in response.context["page_obj"]]
    revisions = [entry.revision for entry in rows]
    assert revisions == sorted(revisions, reverse=True)
    assert revisions[0] == detection.revision
    assert rows[0].comment == "second"
    assert rows[0].user == "author"
    assert rows[1].comment == "first change"


def test_history_shows_transitions(reviewer, seed_detection):
    detection = make_draft(seed_detection)
    editing.transition(
        detection,
        user=reviewer,
        to_status="review",
        comment="Look",
        expected_revision=detection.revision,
    )

    page = page_of(logged_in(reviewer).get(reverse("detections:history", args=[detection.slug])))

    assert "draft → review" in page
    assert "Look" in page


def test_history_diff_side_by_side_and_unified(author, seed_detection):
    before = set_tuning(seed_detection, author, "line one\nline two\n", "one")
    after = set_tuning(before, author, "line one\n<script>alert(1)</script>\n", "two")
    entries = editing.history(after)
    url = reverse("detections:history", args=[after.slug])
    client = logged_in(author)
    query = {"a": entries[1].version_id, "b": entries[0].version_id}

    side = client.get(url, {**query, "view": "side"})
    unified = client.get(url, {**query, "view": "unified"})

    side_html = side.content.decode()
    assert 'data-testid="diff-side"' in side_html
    assert "tuning_notes" in side_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in side_html
    assert "<script>alert(1)" not in side_html
    unified_html = unified.content.decode()
    assert 'data-testid="diff-unified"' in unified_html
    assert "+&lt;script&gt;alert(1)&lt;/script&gt;" in unified_html
    assert "-line two" in unified_html


def test_history_unknown_version_is_404(author, seed_detection):
    url = reverse("detections:history", args=[seed_detection.slug])

    response = logged_in(author).get(url, {"a": 999999, "b": 999998})

    assert response.status_code == 404


def test_restore_confirms_then_restores_as_new_revision(author, seed_detection):
    old = set_tuning(seed_detection, author, "Old notes.", "old")
    current = set_tuning(old, author, "New notes.", "new")
    old_entry = editing.history(current)[1]
    url = reverse("detections:restore", args=[current.slug, old_entry.version_id])
    client = logged_in(author)

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert 'data-testid="confirm-restore"' in confirm.content.decode()
    assert "Old notes." in page_of(confirm)
    current.refresh_from_db()
    assert current.tuning_notes == "New notes."

    runs_before = ValidationRun.objects.filter(detection=current).count()

    response = client.post(url, {"revision": current.revision, "comment": "Back to old"})

    assert response.status_code == 302
    assert ValidationRun.objects.filter(detection=current).count() == runs_before + 1
    current.refresh_from_db()
    assert current.tuning_notes == "Old notes."
    assert current.revision == old.revision + 2
    newest = editing.history(current)[0]
    assert newest.comment == "Back to old"


def test_restore_stale_revision_refused(author, seed_detection):
    old = set_tuning(seed_detection, author, "Old notes.", "old")
    current = set_tuning(old, author, "New notes.", "new")
    old_entry = editing.history(current)[1]
    url = reverse("detections:restore", args=[current.slug, old_entry.version_id])

    response = logged_in(author).post(url, {"revision": old.revision}, follow=True)

    assert "Nothing was restored" in page_of(response)
    current.refresh_from_db()
    assert current.tuning_notes == "New notes."


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_restore_forbidden_to_readers(request, persona, author, seed_detection):
    detection = set_tuning(seed_detection, author, "Notes.", "x")
    entry = editing.history(detection)[-1]
    client = logged_in(request.getfixturevalue(persona))
    url = reverse("detections:restore", args=[detection.slug, entry.version_id])

    assert client.get(url).status_code == 403
    assert client.post(url, {"revision": detection.revision}).status_code == 403


def test_history_forbidden_to_outsider_and_anonymous(outsider, seed_detection):
    url = reverse("detections:history", args=[seed_detection.slug])

    assert logged_in(outsider).get(url).status_code == 403
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))


# Drafts


@pytest.mark.parametrize("persona", ["outsider", None])
def test_drafts_hidden_from_outsiders_and_anonymous(request, persona, seed_detection):
    detection = make_draft(seed_detection)
    client = logged_in(request.getfixturevalue(persona)) if persona else Client()

    listing = client.get(reverse("detections:detection_list"))
    detail = client.get(detection.get_absolute_url())
    edit = client.get(reverse("detections:tuning_edit", args=[detection.slug]))

    assert detection.title not in page_of(listing)
    assert detail.status_code == 404
    assert edit.status_code in (302, 404)


def test_list_shows_status_badge_to_viewers(viewer, seed_detection):
    make_draft(seed_detection)

    page = logged_in(viewer).get(reverse("detections:detection_list")).content.decode()

    assert 'class="badge status-draft"' in page


# Playbooks


@pytest.fixture
def playbook(seed_detection) -> Playbook:
    return Playbook.objects.get()


def test_playbook_step_edit_saves_text_and_query(author, playbook):
    step = playbook.steps.filter(queries__isnull=False).first()
    query = step.queries.first()
    url = reverse("playbooks:item_edit", args=[playbook.slug, "steps", step.pk])
    client = logged_in(author)
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data[f"query_{query.pk}"] = "index=edr host=$host$ | head 5"
    data["action"] = "Check the **host** first."
    data["comment"] = "Shorter query"

    response = client.post(url, data)

    assert response.status_code == 302
    step.refresh_from_db()
    query.refresh_from_db()
    assert step.action == "Check the **host** first."
    assert query.text == "index=edr host=$host$ | head 5"
    playbook.refresh_from_db()
    assert editing.history(playbook)[0].comment == "Shorter query"


@pytest.mark.parametrize("kind,related", [("questions", "questions"), ("hunts", "hunts")])
def test_playbook_question_and_hunt_pages_load(author, playbook, kind, related):
    item = getattr(playbook, related).first()

    response = logged_in(author).get(
        reverse("playbooks:item_edit", args=[playbook.slug, kind, item.pk])
    )

    assert response.status_code == 200
    assert response.context["form"]["revision"].value() == playbook.revision


def test_playbook_edit_forbidden_to_viewer(viewer, playbook):
    step = playbook.steps.first()
    url = reverse("playbooks:item_edit", args=[playbook.slug, "steps", step.pk])

    assert logged_in(viewer).get(url).status_code == 403


def test_playbook_unknown_item_kind_is_404(author, playbook):
    url = reverse("playbooks:item_edit", args=[playbook.slug, "inputs", 1])

    assert logged_in(author).get(url).status_code == 404


def test_playbook_history_and_restore(author, playbook):
    step = playbook.steps.first()

    def mutate(locked):
        locked_step = locked.steps.get(pk=step.pk)
        locked_step.title = "Renamed step"
        locked_step.save()

    edited = editing.edit(
        playbook, user=author, expected_revision=playbook.revision, mutate=mutate, comment="rename"
    )
    client = logged_in(author)
    history = client.get(reverse("playbooks:history", args=[playbook.slug]))
    entries = editing.history(edited)
    restore_url = reverse("playbooks:restore", args=[playbook.slug, entries[1].version_id])

    response = client.post(restore_url, {"revision": edited.revision})

    assert history.status_code == 200
    assert "rename" in page_of(history)
    assert response.status_code == 302
    step.refresh_from_db()
    assert step.title != "Renamed step"
