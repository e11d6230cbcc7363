"""Editing core: roles, revisions, conflicts, workflow, history, restore and diff."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from reversion.models import Version

from detections import editing
from detections.editing import EditConflict, TransitionError
from detections.models import Detection, FalsePositive, StatusTransition
from detections.permissions import (
    can_edit,
    can_publish,
    can_view_unpublished,
    visible_detections,
    visible_playbooks,
)
from playbooks.models import Playbook

from .conftest import CONTENT_DIR

PLAYBOOK_SLUG = "archive-via-library-response"


def set_tuning_notes(text):
    def mutate(detection):
        detection.tuning_notes = text
        detection.save(update_fields=["tuning_notes"])

    return mutate


def test_groups_carry_role_permissions(db):
    viewer = set(Group.objects.get(name="viewer").permissions.values_list("codename", flat=True))
    author = set(Group.objects.get(name="author").permissions.values_list("codename", flat=True))
    reviewer = set(
        Group.objects.get(name="reviewer").permissions.values_list("codename", flat=True)
    )

    assert {"view_detection", "view_playbook"} <= viewer
    assert "change_detection" not in viewer
    assert {"change_detection", "change_playbook", "change_detectiontest"} <= author
    assert {"add_tuningentry", "change_tuningentry", "delete_tuningentry"} <= author
    assert "publish_detection" not in author
    assert author < reviewer
    assert reviewer - author == {"publish_detection", "publish_playbook"}


def test_role_checks(viewer, author, reviewer, outsider, admin_user):
    anonymous = AnonymousUser()

    assert [can_view_unpublished(user) for user in (anonymous, outsider, viewer)] == [
        False,
        False,
        True,
    ]
    assert [can_edit(user) for user in (anonymous, outsider, viewer, author)] == [
        False,
        False,
        False,
        True,
    ]
    assert [can_publish(user) for user in (author, reviewer, admin_user)] == [False, True, True]
    assert can_publish(reviewer, Playbook)
    assert not can_edit(viewer, Playbook)


def test_inactive_user_has_no_role(author):
    author.is_active = False
    author.save()

    assert not can_edit(author)


def test_drafts_visible_to_roles_only(seed_detection, viewer, outsider, settings):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    assert not visible_detections(AnonymousUser()).exists()
    assert not visible_detections(outsider).exists()
    assert list(visible_detections(viewer)) == [seed_detection]
    settings.PORTAL_SHOW_UNPUBLISHED = True
    assert list(visible_detections(AnonymousUser())) == [seed_detection]


def test_draft_playbook_hidden_from_outsider(seed_detection, viewer, outsider):
    Playbook.objects.update(status=Detection.Status.DRAFT)

    assert not visible_playbooks(outsider).exists()
    assert visible_playbooks(viewer).count() == 1


def test_load_content_starts_history(seed_detection):
    entries = editing.history(seed_detection)

    assert len(entries) == 1
    assert entries[0].revision == 1
    assert entries[0].user is None
    assert entries[0].comment.startswith("load_content: ")
    assert "archive-via-library-splunk" in entries[0].comment


def test_load_content_forced_reload_bumps_revision(seed_detection):
    call_command("load_content", str(CONTENT_DIR), force=True, verbosity=0)
    seed_detection.refresh_from_db()

    assert seed_detection.revision == 2
    assert [entry.revision for entry in editing.history(seed_detection)] == [2, 1]


def test_edit_bumps_revision_and_records_history(seed_detection, author):
    stored = editing.edit(
        seed_detection,
        user=author,
        expected_revision=1,
        mutate=set_tuning_notes("Exclude the backup server."),
        comment="Tune for the backup server",
    )

    assert stored.revision == 2
    assert stored.tuning_notes == "Exclude the backup server."
    latest = editing.history(stored)[0]
    assert latest.revision == 2
    assert latest.user == "author"
    assert latest.comment == "Tune for the backup server"


def test_edit_keeps_content_version(seed_detection, author):
    version = seed_detection.version

    stored = editing.edit(
        seed_detection, user=author, expected_revision=1, mutate=set_tuning_notes("x")
    )

    assert stored.version == version


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_edit_rejected_without_permission(seed_detection, persona, request):
    user = request.getfixturevalue(persona)

    with pytest.raises(PermissionDenied):
        editing.edit(seed_detection, user=user, expected_revision=1, mutate=set_tuning_notes("x"))

    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


def test_edit_rejected_for_anonymous(seed_detection):
    with pytest.raises(PermissionDenied):
        editing.edit(
            seed_detection,
            user=AnonymousUser(),
            expected_revision=1,
            mutate=set_tuning_notes("x"),
        )


def test_second_edit_from_same_revision_conflicts(seed_detection, author, reviewer):
    original = seed_detection.tuning_notes
    editing.edit(
        seed_detection, user=author, expected_revision=1, mutate=set_tuning_notes("first")
    )

    with pytest.raises(EditConflict) as raised:
        editing.edit(
            seed_detection, user=reviewer, expected_revision=1, mutate=set_tuning_notes("second")
        )

    conflict = raised.value
    assert conflict.expected_revision == 1
    assert conflict.current_revision == 2
    changed = {change.field: change for change in conflict.changes}
    assert set(changed) == {"tuning_notes"}
    assert changed["tuning_notes"].before == original
    assert changed["tuning_notes"].after == "first"
    assert "+first" in changed["tuning_notes"].diff
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "first"
    assert seed_detection.revision == 2


def test_failed_mutate_stores_nothing(seed_detection, author):
    def mutate(detection):
        detection.tuning_notes = "half"
        detection.save()
        raise ValueError("invalid input")

    with pytest.raises(ValueError):
        editing.edit(seed_detection, user=author, expected_revision=1, mutate=mutate)

    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1
    assert seed_detection.tuning_notes != "half"
    assert len(editing.history(seed_detection)) == 1


def test_author_submits_for_review(seed_detection, author):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    stored = editing.transition(
        seed_detection, user=author, to_status="review", comment="Ready", expected_revision=1
    )

    assert stored.status == "review"
    assert stored.revision == 2
    row = StatusTransition.objects.get()
    assert (row.from_status, row.to_status, row.user, row.comment, row.revision) == (
        "draft",
        "review",
        author,
        "Ready",
        2,
    )
    assert row.content_object == stored
    assert editing.history(stored)[0].comment == "Ready"


def test_author_cannot_publish(seed_detection, author):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.REVIEW)

    with pytest.raises(PermissionDenied, match="reviewer"):
        editing.transition(
            seed_detection, user=author, to_status="published", comment="", expected_revision=1
        )

    seed_detection.refresh_from_db()
    assert seed_detection.status == "review"
    assert not StatusTransition.objects.exists()


def test_author_cannot_deprecate(seed_detection, author):
    with pytest.raises(PermissionDenied):
        editing.transition(
            seed_detection, user=author, to_status="deprecated", comment="", expected_revision=1
        )


def test_reviewer_publishes(seed_detection, reviewer):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.REVIEW)

    stored = editing.transition(
        seed_detection, user=reviewer, to_status="published", comment="LGTM", expected_revision=1
    )

    assert stored.status == "published"


def test_transition_not_in_graph(seed_detection, reviewer):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    with pytest.raises(TransitionError, match="allowed from draft: review"):
        editing.transition(
            seed_detection, user=reviewer, to_status="published", comment="", expected_revision=1
        )


def test_transition_checks_revision(seed_detection, reviewer):
    with pytest.raises(EditConflict):
        editing.transition(
            seed_detection, user=reviewer, to_status="review", comment="", expected_revision=7
        )


def test_viewer_cannot_transition(seed_detection, viewer):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)

    with pytest.raises(PermissionDenied):
        editing.transition(
            seed_detection, user=viewer, to_status="review", comment="", expected_revision=1
        )


def change_rule_and_drop_false_positive(detection):
    rule = detection.sigma_rules.first()
    rule.yaml_text = rule.yaml_text.replace("level: medium", "level: low")
    rule.save(update_fields=["yaml_text"])
    detection.false_positives.filter(position=0).delete()


def test_restore_brings_back_related_rows(seed_detection, author):
    first_version = editing.history(seed_detection)[0].version_id
    rule_text = seed_detection.sigma_rules.first().yaml_text
    false_positives = list(seed_detection.false_positives.values_list("description", flat=True))
    assert "level: medium" in rule_text
    editing.edit(
        seed_detection,
        user=author,
        expected_revision=1,
        mutate=change_rule_and_drop_false_positive,
    )

    restored = editing.restore(
        seed_detection, user=author, version_id=first_version, expected_revision=2
    )

    assert restored.revision == 3
    assert restored.sigma_rules.first().yaml_text == rule_text
    assert list(restored.false_positives.values_list("description", flat=True)) == false_positives
    entries = editing.history(restored)
    assert [entry.revision for entry in entries] == [3, 2, 1]
    assert entries[0].comment == "Restored revision 1"
    assert entries[0].user == "author"


def test_restore_removes_rows_added_since(seed_detection, author):
    first_version = editing.history(seed_detection)[0].version_id
    count = seed_detection.false_positives.count()

    def add_false_positive(detection):
        FalsePositive.objects.create(detection=detection, position=99, description="New")

    editing.edit(seed_detection, user=author, expected_revision=1, mutate=add_false_positive)
    restored = editing.restore(
        seed_detection, user=author, version_id=first_version, expected_revision=2
    )

    assert restored.false_positives.count() == count
    assert not FalsePositive.objects.filter(description="New").exists()


def test_restore_keeps_workflow_status(seed_detection, reviewer):
    first_version = editing.history(seed_detection)[0].version_id
    editing.transition(
        seed_detection, user=reviewer, to_status="deprecated", comment="", expected_revision=1
    )

    restored = editing.restore(
        seed_detection, user=reviewer, version_id=first_version, expected_revision=2
    )

    assert restored.status == "deprecated"


def test_restore_rejects_other_objects_version(seed_detection, author):
    playbook_version = Version.objects.get_for_object(Playbook.objects.get()).first()

    with pytest.raises(Version.DoesNotExist):
        editing.restore(
            seed_detection, user=author, version_id=playbook_version.pk, expected_revision=1
        )


def test_restore_rejected_for_viewer(seed_detection, viewer):
    version_id = editing.history(seed_detection)[0].version_id

    with pytest.raises(PermissionDenied):
        editing.restore(seed_detection, user=viewer, version_id=version_id, expected_revision=1)


def test_diff_shows_related_rows(seed_detection, author):
    rule = seed_detection.sigma_rules.first()
    first_fp = seed_detection.false_positives.get(position=0).description
    editing.edit(
        seed_detection,
        user=author,
        expected_revision=1,
        mutate=change_rule_and_drop_false_positive,
    )
    new, old = editing.history(seed_detection)

    changes = {
        change.field: change
        for change in editing.diff(seed_detection, old.version_id, new.version_id)
    }

    rule_change = changes[f"sigma_rules[{rule.rule_id}].yaml_text"]
    assert "-level: medium\n" in rule_change.diff
    assert "+level: low\n" in rule_change.diff
    removed = changes["false_positives[0]"]
    assert removed.before["description"] == first_fp
    assert removed.after is None
    assert "tuning_notes" not in changes


def test_diff_of_same_version_is_empty(seed_detection):
    version_id = editing.history(seed_detection)[0].version_id

    assert editing.diff(seed_detection, version_id, version_id) == []


def test_playbook_edit_and_history(seed_detection, author):
    playbook = Playbook.objects.get(slug=PLAYBOOK_SLUG)

    def retitle_first_step(item):
        step = item.steps.get(position=0)
        step.title = "Isolate the host"
        step.save(update_fields=["title"])

    stored = editing.edit(
        playbook, user=author, expected_revision=1, mutate=retitle_first_step, comment="Retitle"
    )
    new, old = editing.history(stored)
    changes = {
        change.field: change for change in editing.diff(stored, old.version_id, new.version_id)
    }

    assert stored.revision == 2
    assert changes["steps[0].title"].after == "Isolate the host"


def test_playbook_publish_needs_reviewer(seed_detection, author, reviewer):
    playbook = Playbook.objects.get(slug=PLAYBOOK_SLUG)
    Playbook.objects.filter(pk=playbook.pk).update(status=Detection.Status.REVIEW)

    with pytest.raises(PermissionDenied):
        editing.transition(
            playbook, user=author, to_status="published", comment="", expected_revision=1
        )
    stored = editing.transition(
        playbook, user=reviewer, to_status="published", comment="", expected_revision=1
    )

    assert stored.status == "published"
    assert StatusTransition.objects.get().content_object == stored


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the in-memory SQLite test database locks whole tables and fails instead of waiting",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_one_wins(author, reviewer):
    """Two threads edit from revision 1 at once: the row lock lets exactly one through."""
    import threading

    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    detection = Detection.objects.get(slug="archive-via-library-splunk")
    barrier = threading.Barrier(2)
    outcomes = {}

    def slow_mutate(text):
        def mutate(locked):
            locked.tuning_notes = text
            locked.save(update_fields=["tuning_notes"])

        return mutate

    def worker(user, text):
        barrier.wait()
        try:
            editing.edit(detection, user=user, expected_revision=1, mutate=slow_mutate(text))
            outcomes[text] = "stored"
        except EditConflict:
            outcomes[text] = "conflict"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(author, "from author")),
        threading.Thread(target=worker, args=(reviewer, "from reviewer")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["conflict", "stored"]
    winner = next(text for text, outcome in outcomes.items() if outcome == "stored")
    detection.refresh_from_db()
    assert detection.tuning_notes == winner
    assert detection.revision == 2
    assert len(editing.history(detection)) == 2


def test_import_sigma_records_history(seed_detection, author, tmp_path):
    from .import_helpers import rule_text, run_import, write

    rule_id = "6f1c2a40-8a8b-4c4e-9d3e-2b7c1a0e5f11"
    path = write(tmp_path, "rule.yml", rule_text(rule_id=rule_id))
    run_import("import_sigma", path)
    detection = Detection.objects.get(uuid=rule_id)
    write(tmp_path, "rule.yml", rule_text(rule_id=rule_id, title="Retitled Upstream"))

    run_import("import_sigma", path)

    detection.refresh_from_db()
    entries = editing.history(detection)
    assert [entry.revision for entry in entries] == [2, 1]
    assert entries[0].comment == "import_sigma: rule.yml"
    assert entries[0].user is None
    changes = {
        change.field: change
        for change in editing.diff(detection, entries[1].version_id, entries[0].version_id)
    }
    assert changes["title"].after == "Retitled Upstream"
    assert changes["version"].before == 1
    whole_rows = [field for field in changes if "." not in field]
    assert not [field for field in whole_rows if field.startswith(("sigma_rules", "mappings"))]
    first_revision = Version.objects.get(pk=entries[1].version_id).revision
    models_in_first = {version._model.__name__ for version in first_revision.version_set.all()}
    assert {"Detection", "SigmaRule", "AttackMapping", "FalsePositive"} <= models_in_first


def test_restore_of_imported_version(seed_detection, author, tmp_path):
    from .import_helpers import rule_text, run_import, write

    rule_id = "6f1c2a40-8a8b-4c4e-9d3e-2b7c1a0e5f12"
    path = write(tmp_path, "rule.yml", rule_text(rule_id=rule_id, level="low"))
    run_import("import_sigma", path)
    write(tmp_path, "rule.yml", rule_text(rule_id=rule_id, level="high"))
    run_import("import_sigma", path)
    detection = Detection.objects.get(uuid=rule_id)
    first = editing.history(detection)[-1].version_id

    restored = editing.restore(detection, user=author, version_id=first, expected_revision=2)

    assert restored.revision == 3
    assert restored.severity == "low"
    assert "level: low" in restored.sigma_rules.get().yaml_text


def test_restore_queues_renders_and_validation(seed_detection, author):
    from detections.models import Render, ValidationRun

    first_version = editing.history(seed_detection)[0].version_id
    editing.edit(
        seed_detection,
        user=author,
        expected_revision=1,
        mutate=change_rule_and_drop_false_positive,
    )
    rule = seed_detection.sigma_rules.first()
    Render.objects.filter(sigma_rule=rule).update(status=Render.Status.RENDERED, input_hash="x")
    runs = ValidationRun.objects.count()

    editing.restore(seed_detection, user=author, version_id=first_version, expected_revision=2)

    statuses = set(Render.objects.filter(sigma_rule=rule).values_list("status", flat=True))
    assert statuses == {Render.Status.QUEUED}
    assert ValidationRun.objects.count() == runs + 1


def test_playbook_restore_brings_back_step(seed_detection, author):
    playbook = Playbook.objects.get(slug=PLAYBOOK_SLUG)
    first_version = editing.history(playbook)[0].version_id
    steps = list(playbook.steps.values_list("title", flat=True))
    queries = sum(step.queries.count() for step in playbook.steps.all())
    assert playbook.steps.get(position=0).queries.exists()

    def drop_first_step(item):
        item.steps.get(position=0).delete()

    editing.edit(playbook, user=author, expected_revision=1, mutate=drop_first_step)
    restored = editing.restore(playbook, user=author, version_id=first_version, expected_revision=2)

    assert list(restored.steps.values_list("title", flat=True)) == steps
    assert sum(step.queries.count() for step in restored.steps.all()) == queries
    assert restored.revision == 3


@pytest.mark.django_db(transaction=True)
def test_roles_restored_after_flush():
    """A flush (as between transactional tests) empties auth_group; post_migrate refills it."""
    call_command("flush", "--noinput", verbosity=0)

    reviewer = Group.objects.get(name="reviewer")
    assert reviewer.permissions.filter(codename="publish_detection").exists()
    assert Group.objects.get(name="author").permissions.filter(codename="change_playbook").exists()


def test_restore_of_version_with_deleted_technique(seed_detection, author):
    from detections.editing import RestoreError
    from detections.models import Technique

    first_version = editing.history(seed_detection)[0].version_id
    subtechnique = seed_detection.mappings.exclude(subtechnique=None).first().subtechnique

    def drop_mappings(detection):
        detection.mappings.all().delete()

    editing.edit(seed_detection, user=author, expected_revision=1, mutate=drop_mappings)
    Technique.objects.filter(pk=subtechnique.pk).delete()

    with pytest.raises(RestoreError, match="no longer exists"):
        editing.restore(seed_detection, user=author, version_id=first_version, expected_revision=2)

    seed_detection.refresh_from_db()
    assert seed_detection.revision == 2
    assert not seed_detection.mappings.exists()
    assert len(editing.history(seed_detection)) == 2
