"""API writes: ETags, preconditions, permissions, Sigma and test edits, workflow and history."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from detections import editing
from detections.models import Detection, Render, StatusTransition, ValidationRun
from playbooks.models import Playbook

from .conftest import SEED_SLUG

DETAIL = f"/api/v1/detections/{SEED_SLUG}/"
PLAYBOOK_DETAIL = "/api/v1/playbooks/archive-via-library-response/"
ETAG_1 = f'"{SEED_SLUG}.1"'


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def patch(client, url, body, etag=ETAG_1):
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.patch(url, body, format="json", **headers)


def first_rule(detection: Detection):
    return detection.sigma_rules.order_by("position").first()


def rule_url(rule) -> str:
    return f"{DETAIL}sigma/{rule.rule_id}/"


# --- ETag and conditional GET -------------------------------------------------------


def test_detail_has_revision_etag(seed_detection):
    response = api().get(DETAIL)

    assert response.status_code == 200
    assert response["ETag"] == ETAG_1
    assert response.json()["revision"] == 1


def test_matching_if_none_match_is_304(seed_detection):
    response = api().get(DETAIL, HTTP_IF_NONE_MATCH=ETAG_1)

    assert response.status_code == 304
    assert response["ETag"] == ETAG_1
    assert response.content == b""


def test_finished_render_keeps_etag(seed_detection):
    Render.objects.filter(sigma_rule__detection=seed_detection).update(
        status=Render.Status.RENDERED, query="x"
    )

    assert api().get(DETAIL, HTTP_IF_NONE_MATCH=ETAG_1).status_code == 304


def test_stale_if_none_match_gets_body(seed_detection, author):
    patch(api(author), DETAIL, {"tuning_notes": "new"})

    response = api().get(DETAIL, HTTP_IF_NONE_MATCH=ETAG_1)

    assert response.status_code == 200
    assert response["ETag"] == f'"{SEED_SLUG}.2"'


# --- Refusals and their order -------------------------------------------------------


def test_write_without_if_match_is_428(seed_detection, author):
    response = patch(api(author), DETAIL, {"tuning_notes": "x"}, etag=None)

    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


def test_anonymous_write_is_401_before_428(seed_detection):
    response = patch(api(), DETAIL, {"tuning_notes": "x"}, etag=None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_viewer_write_is_403_before_428(seed_detection, viewer):
    response = patch(api(viewer), DETAIL, {"tuning_notes": "x"}, etag=None)

    assert response.status_code == 403


def test_outsider_write_is_403(seed_detection, outsider):
    response = patch(api(outsider), DETAIL, {"tuning_notes": "x"})

    assert response.status_code == 403


def test_draft_hidden_from_anonymous_and_outsider(seed_detection, outsider, viewer):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    assert api().get(DETAIL).status_code == 404
    assert api(outsider).get(DETAIL).status_code == 404
    assert api().get("/api/v1/detections/").json()["count"] == 0
    assert api(viewer).get(DETAIL).status_code == 200


def test_author_cannot_write_invisible_detection(seed_detection, outsider):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    response = patch(api(outsider), DETAIL, {"tuning_notes": "x"})

    assert response.status_code == 403


# --- PATCH of fields ----------------------------------------------------------------


def test_patch_stores_new_revision(seed_detection, author):
    response = patch(
        api(author), DETAIL, {"tuning_notes": "Exclude backups.", "comment": "Tune backups"}
    )

    assert response.status_code == 200
    assert response["ETag"] == f'"{SEED_SLUG}.2"'
    assert response.json()["tuning_notes"] == "Exclude backups."
    assert response.json()["revision"] == 2
    latest = editing.history(seed_detection)[0]
    assert (latest.user, latest.comment, latest.revision) == ("author", "Tune backups", 2)


def test_patch_default_comment_names_fields(seed_detection, author):
    patch(api(author), DETAIL, {"severity": "low", "confidence": "low"})

    assert editing.history(seed_detection)[0].comment == "Changed confidence, severity"


def test_patch_replaces_false_positives(seed_detection, author):
    response = patch(api(author), DETAIL, {"false_positives": ["Backup agent", "Updater"]})

    assert response.status_code == 200
    assert response.json()["false_positives"] == ["Backup agent", "Updater"]


def test_second_patch_from_same_etag_is_412(seed_detection, author, reviewer):
    original = seed_detection.tuning_notes
    first = patch(api(author), DETAIL, {"tuning_notes": "first"})

    second = patch(api(reviewer), DETAIL, {"tuning_notes": "second"})

    assert first.status_code == 200
    assert second.status_code == 412
    body = second.json()
    assert body["current_revision"] == 2
    assert body["expected_revision"] == 1
    assert second["ETag"] == f'"{SEED_SLUG}.2"'
    changes = {change["field"]: change for change in body["changes"]}
    assert changes["tuning_notes"]["before"] == original
    assert changes["tuning_notes"]["after"] == "first"
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "first"


def test_foreign_etag_is_412(seed_detection, author):
    response = patch(api(author), DETAIL, {"tuning_notes": "x"}, etag='"other-slug.1"')

    assert response.status_code == 412
    assert response.json()["changes"] == []


def test_patch_rejects_status(seed_detection, author):
    response = patch(api(author), DETAIL, {"status": "draft"})

    assert response.status_code == 400
    assert "transitions" in response.json()["status"][0]


def test_patch_rejects_invalid_severity(seed_detection, author):
    response = patch(api(author), DETAIL, {"severity": "urgent"})

    assert response.status_code == 400
    assert "severity" in response.json()


def test_patch_with_empty_body_is_400(seed_detection, author):
    assert patch(api(author), DETAIL, {}).status_code == 400


# --- Sigma rules --------------------------------------------------------------------


def test_sigma_put_invalid_yaml_keeps_rule(seed_detection, author):
    rule = first_rule(seed_detection)
    text = rule.yaml_text

    response = api(author).put(
        rule_url(rule), {"yaml": "title: x\nid: [\n"}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 400
    assert response.json()["line"] == 3
    assert "line 3" in response.json()["yaml"][0]
    rule.refresh_from_db()
    assert rule.yaml_text == text
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


def test_sigma_put_invalid_condition_names_line(seed_detection, author):
    rule = first_rule(seed_detection)
    broken = rule.yaml_text.replace("condition: ", "condition: missing_selection and ", 1)

    response = api(author).put(
        rule_url(rule), {"yaml": broken}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 400
    assert "missing_selection" in response.json()["yaml"][0]
    condition_line = broken.splitlines().index(
        next(line for line in broken.splitlines() if "condition:" in line)
    )
    assert response.json()["line"] == condition_line + 1
    rule.refresh_from_db()
    assert "missing_selection" not in rule.yaml_text


def test_sigma_put_rejects_changed_id(seed_detection, author):
    rule = first_rule(seed_detection)
    other = rule.yaml_text.replace(str(rule.rule_id), "0b4a1b52-1d4e-4a44-8d0e-000000000001")

    response = api(author).put(rule_url(rule), {"yaml": other}, format="json", HTTP_IF_MATCH=ETAG_1)

    assert response.status_code == 400
    assert "keep the id" in response.json()["yaml"][0]


def test_sigma_put_stores_and_queues_work(seed_detection, author):
    rule = first_rule(seed_detection)
    Render.objects.filter(sigma_rule=rule).update(status=Render.Status.RENDERED)
    runs = ValidationRun.objects.count()
    text = rule.yaml_text.replace("level: medium", "level: high")

    response = api(author).put(rule_url(rule), {"yaml": text}, format="json", HTTP_IF_MATCH=ETAG_1)

    assert response.status_code == 200
    rule.refresh_from_db()
    assert rule.yaml_text == text
    assert rule.level == "high"
    statuses = set(Render.objects.filter(sigma_rule=rule).values_list("status", flat=True))
    assert statuses == {Render.Status.QUEUED}
    assert ValidationRun.objects.count() == runs + 1
    assert ValidationRun.objects.first().trigger == ValidationRun.Trigger.API


def test_sigma_get_returns_rule_and_etag(seed_detection):
    rule = first_rule(seed_detection)

    response = api().get(rule_url(rule))

    assert response.status_code == 200
    assert response.json()["yaml"] == rule.yaml_text
    assert response["ETag"] == ETAG_1


def test_sigma_put_by_viewer_is_403(seed_detection, viewer):
    rule = first_rule(seed_detection)

    response = api(viewer).put(
        rule_url(rule), {"yaml": rule.yaml_text}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 403


# --- Tests of the detection ---------------------------------------------------------


def test_test_expectation_patch(seed_detection, author):
    test = seed_detection.tests.get(position=0)

    response = patch(api(author), f"{DETAIL}tests/0/", {"expect": "silent", "min_matches": 2})

    assert response.status_code == 200
    test.refresh_from_db()
    assert (test.expect, test.min_matches) == ("silent", 2)
    assert editing.history(seed_detection)[0].comment.startswith(f"Changed test {test.name}")


def test_test_patch_rejects_bad_expectation(seed_detection, author):
    response = patch(api(author), f"{DETAIL}tests/0/", {"expect": "maybe"})

    assert response.status_code == 400


# --- Workflow -----------------------------------------------------------------------


def transition(client, target, etag=ETAG_1, comment=""):
    return client.post(
        f"{DETAIL}transitions/",
        {"to": target, "comment": comment},
        format="json",
        HTTP_IF_MATCH=etag,
    )


def test_author_submits_reviewer_publishes(seed_detection, author, reviewer):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    submitted = transition(api(author), "review", comment="Ready")
    published = transition(api(reviewer), "published", etag=submitted["ETag"], comment="OK")

    assert submitted.status_code == 200
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    rows = api(author).get(f"{DETAIL}transitions/").json()
    assert [(row["from_status"], row["to_status"], row["user"]) for row in rows] == [
        ("review", "published", "reviewer"),
        ("draft", "review", "author"),
    ]


def test_author_publish_is_403_before_412(seed_detection, author):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.REVIEW)

    response = transition(api(author), "published", etag=f'"{SEED_SLUG}.9"')

    assert response.status_code == 403
    assert not StatusTransition.objects.exists()


def test_transition_outside_graph_is_400(seed_detection, reviewer):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    response = transition(api(reviewer), "published")

    assert response.status_code == 400
    assert "allowed from draft: review" in response.json()["to"][0]


def test_transition_without_if_match_is_428(seed_detection, reviewer):
    response = transition(api(reviewer), "review", etag="")

    assert response.status_code == 428


# --- History, diff and restore ------------------------------------------------------


def test_history_and_diff(seed_detection, author):
    patch(api(author), DETAIL, {"tuning_notes": "line one\nline two\n"})

    entries = api().get(f"{DETAIL}history/").json()
    diff = api().get(
        f"{DETAIL}history/diff/",
        {"from": entries[1]["version_id"], "to": entries[0]["version_id"]},
    )

    assert [entry["revision"] for entry in entries] == [2, 1]
    assert entries[0]["user"] == "author"
    assert diff.status_code == 200
    change = next(item for item in diff.json() if item["field"] == "tuning_notes")
    assert "+line one\n" in change["diff"]


def test_diff_of_unknown_version_is_404(seed_detection):
    response = api().get(f"{DETAIL}history/diff/", {"from": 999999, "to": 999998})

    assert response.status_code == 404


def test_diff_needs_both_versions(seed_detection):
    response = api().get(f"{DETAIL}history/diff/", {"from": 1})

    assert response.status_code == 400


def test_restore_brings_back_rule_and_false_positive(seed_detection, author):
    client = api(author)
    rule = first_rule(seed_detection)
    original_text = rule.yaml_text
    false_positives = list(seed_detection.false_positives.values_list("description", flat=True))
    first_version = editing.history(seed_detection)[0].version_id
    patch(client, DETAIL, {"false_positives": false_positives[1:]})
    client.put(
        rule_url(rule),
        {"yaml": original_text.replace("level: medium", "level: low")},
        format="json",
        HTTP_IF_MATCH=f'"{SEED_SLUG}.2"',
    )

    response = client.post(
        f"{DETAIL}history/{first_version}/restore/",
        {"comment": "Undo"},
        format="json",
        HTTP_IF_MATCH=f'"{SEED_SLUG}.3"',
    )

    assert response.status_code == 200
    assert response.json()["revision"] == 4
    assert response.json()["false_positives"] == false_positives
    rule.refresh_from_db()
    assert rule.yaml_text == original_text
    assert [entry.revision for entry in editing.history(seed_detection)] == [4, 3, 2, 1]


def test_restore_unknown_version_is_404(seed_detection, author):
    response = api(author).post(
        f"{DETAIL}history/999999/restore/", {}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 404


def test_restore_by_viewer_is_403(seed_detection, viewer):
    version_id = editing.history(seed_detection)[0].version_id

    response = api(viewer).post(
        f"{DETAIL}history/{version_id}/restore/", {}, format="json", HTTP_IF_MATCH=ETAG_1
    )

    assert response.status_code == 403


# --- Playbooks ----------------------------------------------------------------------


def test_playbook_patch_and_conflict(seed_detection, author):
    etag = api().get(PLAYBOOK_DETAIL)["ETag"]

    first = patch(api(author), PLAYBOOK_DETAIL, {"summary": "New summary."}, etag=etag)
    second = patch(api(author), PLAYBOOK_DETAIL, {"summary": "Other."}, etag=etag)
    missing = patch(api(author), PLAYBOOK_DETAIL, {"summary": "Other."}, etag=None)

    assert first.status_code == 200
    assert first.json()["summary"] == "New summary."
    assert second.status_code == 412
    assert missing.status_code == 428
    assert Playbook.objects.get().summary == "New summary."


def test_playbook_publish_needs_reviewer(seed_detection, author, reviewer):
    Playbook.objects.update(status=Detection.Status.REVIEW)
    etag = api(author).get(PLAYBOOK_DETAIL)["ETag"]
    url = f"{PLAYBOOK_DETAIL}transitions/"

    refused = api(author).post(url, {"to": "published"}, format="json", HTTP_IF_MATCH=etag)
    accepted = api(reviewer).post(url, {"to": "published"}, format="json", HTTP_IF_MATCH=etag)

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "published"


def test_playbook_history(seed_detection):
    entries = api().get(f"{PLAYBOOK_DETAIL}history/").json()

    assert len(entries) == 1
    assert entries[0]["comment"].startswith("load_content: ")


def test_draft_playbook_404_to_outsider(seed_detection, outsider):
    Playbook.objects.update(status=Detection.Status.DRAFT)

    assert api(outsider).get(PLAYBOOK_DETAIL).status_code == 404


# --- Session clients ----------------------------------------------------------------


def test_session_write_needs_csrf(seed_detection, author):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(author)

    response = patch(client, DETAIL, {"tuning_notes": "x"})

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_schema_has_no_warnings(db, tmp_path):
    call_command(
        "spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml")
    )

    assert "/api/v1/detections/{slug}/history/diff/" in (tmp_path / "schema.yml").read_text()


def test_restore_with_missing_reference_is_409(seed_detection, author):
    from detections.models import Technique

    client = api(author)
    first_version = editing.history(seed_detection)[0].version_id
    subtechnique = seed_detection.mappings.exclude(subtechnique=None).first().subtechnique
    editing.edit(
        seed_detection,
        user=author,
        expected_revision=1,
        mutate=lambda detection: detection.mappings.all().delete(),
    )
    Technique.objects.filter(pk=subtechnique.pk).delete()

    response = client.post(
        f"{DETAIL}history/{first_version}/restore/",
        {},
        format="json",
        HTTP_IF_MATCH=f'"{SEED_SLUG}.2"',
    )

    assert response.status_code == 409
    assert "no longer exists" in response.json()["detail"]
