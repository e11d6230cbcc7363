"""Edit pages of tuning entries: add, change, enable, disable, delete, errors, conflicts."""

import json

import pytest
from django.urls import reverse

from detections import editing
from detections.models import Detection, TuningEntry, ValidationRun
from detections.tuning import detection_macro

from .test_edit_views import form_data, textarea_text

pytestmark = pytest.mark.django_db

NEW_CONDITION = "Image|endswith:\n  - '\\backup-agent.exe'\n  - '\\restic.exe'\n"


def url(name: str, detection: Detection, *args) -> str:
    return reverse(f"detections:{name}", args=[detection.slug, *args])


def first_entry(detection: Detection) -> TuningEntry:
    return detection.tuning_entries.order_by("position").first()


def new_entry_data(detection: Detection, **fields) -> dict:
    values = {
        "revision": detection.revision,
        "condition": NEW_CONDITION,
        "reason": "The backup agents compress user files every night.",
        "owner": "SOC Tuning",
        "ticket": "SOC-4711",
        "enabled": "on",
        "comment": "Exclude the backup agents",
    }
    return values | fields


@pytest.fixture
def author_client(client, author):
    client.force_login(author)
    return client


def test_author_adds_entry(author_client, seed_detection):
    count = seed_detection.tuning_entries.count()
    macro_before = detection_macro(seed_detection).definition

    add_url = url("tuning_entry_add", seed_detection)
    response = author_client.post(add_url, new_entry_data(seed_detection))

    assert response.status_code == 302
    assert response["Location"].endswith("#tuning")
    detection = Detection.objects.get(pk=seed_detection.pk)
    assert detection.revision == seed_detection.revision + 1
    assert detection.tuning_entries.count() == count + 1
    added = detection.tuning_entries.order_by("-position").first()
    assert added.condition == {"Image|endswith": ["\\backup-agent.exe", "\\restic.exe"]}
    assert added.created_by.username == "author"
    assert added.ticket == "SOC-4711"
    macro_after = detection_macro(detection).definition
    assert macro_after != macro_before
    assert "restic.exe" in macro_after
    assert editing.history(detection)[0].comment == "Exclude the backup agents"
    page = author_client.get(detection.get_absolute_url()).content.decode()
    assert "restic.exe" in page


def test_add_limits_entry_to_branch(author_client, seed_detection):
    add_url = url("tuning_entry_add", seed_detection)
    page = author_client.get(add_url).content.decode()
    assert 'value="CompressionDllLoad"' in page
    data = new_entry_data(seed_detection, branches=["CompressionDllLoad"])

    response = author_client.post(add_url, data)

    assert response.status_code == 302
    added = seed_detection.tuning_entries.order_by("-position").first()
    assert added.branches == ["CompressionDllLoad"]
    assert added.rules == []
    macro = detection_macro(Detection.objects.get(pk=seed_detection.pk)).definition
    expected = 'DetectionSource="CompressionDllLoad" Image IN ("*\\\\backup-agent.exe",'
    assert expected in macro


def test_add_queues_one_validation_run(author_client, seed_detection):
    runs = ValidationRun.objects.filter(detection=seed_detection).count()

    author_client.post(url("tuning_entry_add", seed_detection), new_entry_data(seed_detection))

    added = ValidationRun.objects.filter(detection=seed_detection).order_by("pk")[runs:]
    assert [run.trigger for run in added] == [ValidationRun.Trigger.WEB]


def test_edit_form_shows_condition_yaml(author_client, seed_detection):
    entry = first_entry(seed_detection)

    response = author_client.get(url("tuning_entry_edit", seed_detection, entry.uuid))

    assert response.status_code == 200
    text = textarea_text(response, "condition")
    first_key = next(iter(entry.condition))
    assert text.startswith(f"{first_key}:")


def test_author_edits_entry(author_client, seed_detection):
    entry = first_entry(seed_detection)
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))
    data.update(owner="Platform Team", comment="Hand over")

    response = author_client.post(edit_url, data)

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.owner == "Platform Team"
    assert editing.history(seed_detection)[0].comment == "Hand over"


def test_unchanged_edit_stores_no_revision(author_client, seed_detection):
    entry = first_entry(seed_detection)
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))

    response = author_client.post(edit_url, data)

    assert response.status_code == 302
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


def test_reformatted_condition_stores_no_revision(author_client, seed_detection):
    entry = first_entry(seed_detection)
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))
    data["condition"] = json.dumps(entry.condition)

    response = author_client.post(edit_url, data)

    assert response.status_code == 302
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


@pytest.mark.parametrize("enabled", [False, True])
def test_author_toggles_entry(author_client, seed_detection, enabled):
    entry = first_entry(seed_detection)
    TuningEntry.objects.filter(pk=entry.pk).update(enabled=not enabled)
    toggle_url = url("tuning_entry_enabled", seed_detection, entry.uuid)
    confirm = author_client.get(toggle_url)
    assert confirm.status_code == 200
    assert confirm.context["turn_on"] is enabled
    data = {"revision": seed_detection.revision, "enabled": "true" if enabled else "false"}

    response = author_client.post(toggle_url, data)

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.enabled is enabled
    verb = "Enabled" if enabled else "Disabled"
    assert editing.history(seed_detection)[0].comment.startswith(f"{verb} the tuning entry")


def test_disabled_entry_leaves_macro(author_client, seed_detection):
    entry = first_entry(seed_detection)
    clause = entry.spl
    assert clause in detection_macro(seed_detection).definition
    data = {"revision": seed_detection.revision, "enabled": "false"}

    author_client.post(url("tuning_entry_enabled", seed_detection, entry.uuid), data)

    assert clause not in detection_macro(Detection.objects.get(pk=seed_detection.pk)).definition


def test_page_has_toggle_and_add(author_client, seed_detection):
    page = author_client.get(seed_detection.get_absolute_url()).content.decode()

    assert 'data-testid="add-tuning-entry"' in page
    assert 'data-testid="toggle-tuning-entry"' in page
    assert url("tuning_entry_enabled", seed_detection, first_entry(seed_detection).uuid) in page


def test_page_hides_actions_from_viewer(client, viewer, seed_detection):
    client.force_login(viewer)

    page = client.get(seed_detection.get_absolute_url()).content.decode()

    assert 'data-testid="add-tuning-entry"' not in page
    assert 'data-testid="toggle-tuning-entry"' not in page


def test_author_deletes_entry(author_client, seed_detection):
    entry = first_entry(seed_detection)
    delete_url = url("tuning_entry_delete", seed_detection, entry.uuid)
    confirm = author_client.get(delete_url)
    assert confirm.status_code == 200
    assert "Delete the entry</button>" in confirm.content.decode()

    response = author_client.post(
        delete_url, {"revision": seed_detection.revision, "confirm": "true", "comment": "Gone"}
    )

    assert response.status_code == 302
    assert not TuningEntry.objects.filter(pk=entry.pk).exists()
    assert editing.history(seed_detection)[0].comment == "Gone"


def test_invalid_yaml_keeps_entry_and_names_line(author_client, seed_detection):
    entry = first_entry(seed_detection)
    stored = entry.condition
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))
    typed = "Image|endswith: '\\pip.exe'\nCommandLine|contains: [unclosed\nUser: x\n"
    data["condition"] = typed

    response = author_client.post(edit_url, data)

    assert response.status_code == 400
    form = response.context["form"]
    assert form.error_line == 3
    assert "invalid YAML" in form.errors["condition"][0]
    page = response.content.decode()
    assert 'data-testid="yaml-error-line"' in page
    assert textarea_text(response, "condition") == typed
    entry.refresh_from_db()
    assert entry.condition == stored
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


def test_invalid_modifier_keeps_entry_and_names_it(author_client, seed_detection):
    entry = first_entry(seed_detection)
    stored = entry.condition
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))
    data["condition"] = "User: svc-backup\nImage|endwith: '\\pip.exe'\n"

    response = author_client.post(edit_url, data)

    assert response.status_code == 400
    form = response.context["form"]
    assert "endwith" in form.errors["condition"][0]
    assert form.error_line == 2
    entry.refresh_from_db()
    assert entry.condition == stored


def test_add_requires_reason(author_client, seed_detection):
    count = seed_detection.tuning_entries.count()

    response = author_client.post(
        url("tuning_entry_add", seed_detection), new_entry_data(seed_detection, reason="  ")
    )

    assert response.status_code == 400
    assert "reason" in response.context["form"].errors
    assert seed_detection.tuning_entries.count() == count


def test_viewer_gets_403(client, viewer, seed_detection):
    client.force_login(viewer)
    entry = first_entry(seed_detection)

    assert client.get(url("tuning_entry_add", seed_detection)).status_code == 403
    response = client.post(
        url("tuning_entry_delete", seed_detection, entry.uuid),
        {"revision": seed_detection.revision, "confirm": "true"},
    )
    assert response.status_code == 403
    assert TuningEntry.objects.filter(pk=entry.pk).exists()


def test_anonymous_redirected_to_login(client, seed_detection):
    entry = first_entry(seed_detection)

    for name, args in [
        ("tuning_entry_add", []),
        ("tuning_entry_edit", [entry.uuid]),
        ("tuning_entry_enabled", [entry.uuid]),
        ("tuning_entry_delete", [entry.uuid]),
    ]:
        response = client.get(url(name, seed_detection, *args))
        assert response.status_code == 302, name
        assert "/login" in response["Location"], name


def test_conflict_keeps_typed_text(author_client, seed_detection, reviewer):
    entry = first_entry(seed_detection)
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))

    def other_change(locked):
        row = locked.tuning_entries.get(pk=entry.pk)
        row.owner = "Someone Else"
        row.save()

    editing.edit(seed_detection, user=reviewer, expected_revision=1, mutate=other_change)
    typed = "Image|endswith: '\\conda.exe'\n"
    data.update(condition=typed, comment="Mine")

    response = author_client.post(edit_url, data)

    assert response.status_code == 409
    page = response.content.decode()
    assert 'data-testid="conflict"' in page
    assert "Someone Else" in page
    assert textarea_text(response, "condition") == typed
    assert response.context["form"]["revision"].value() == "2"
    entry.refresh_from_db()
    assert entry.owner == "Someone Else"

    again = author_client.post(edit_url, {**data, "revision": "2"})

    assert again.status_code == 302
    entry.refresh_from_db()
    assert entry.condition == {"Image|endswith": "\\conda.exe"}


def test_stale_toggle_shows_conflict(author_client, seed_detection, reviewer):
    entry = first_entry(seed_detection)
    editing.edit(
        seed_detection,
        user=reviewer,
        expected_revision=1,
        mutate=lambda locked: None,
        comment="Other change",
    )

    response = author_client.post(
        url("tuning_entry_enabled", seed_detection, entry.uuid),
        {"revision": 1, "enabled": "false"},
    )

    assert response.status_code == 409
    entry.refresh_from_db()
    assert entry.enabled is True


# History and restore


def test_history_diff_names_changed_condition(author_client, seed_detection):
    entry = first_entry(seed_detection)
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))
    data["condition"] = "Image|endswith: '\\conda.exe'\n"
    author_client.post(edit_url, data)

    newest, previous = editing.history(seed_detection)[:2]
    changes = {
        change.field: change
        for change in editing.diff(seed_detection, previous.version_id, newest.version_id)
    }

    label = f"tuning_entries[{entry.position}]"
    assert changes[f"{label}.condition"].before == entry.condition
    assert changes[f"{label}.condition"].after == {"Image|endswith": "\\conda.exe"}
    assert "conda.exe" in changes[f"{label}.spl"].after
    history_page = author_client.get(
        reverse("detections:history", args=[seed_detection.slug]),
        {"a": previous.version_id, "b": newest.version_id},
    )
    assert f"{label}.condition" in history_page.content.decode()


def test_history_diff_shows_deleted_entry(author_client, seed_detection):
    entry = first_entry(seed_detection)
    author_client.post(
        url("tuning_entry_delete", seed_detection, entry.uuid),
        {"revision": seed_detection.revision, "confirm": "true"},
    )

    newest, previous = editing.history(seed_detection)[:2]
    changes = {
        change.field: change
        for change in editing.diff(seed_detection, previous.version_id, newest.version_id)
    }

    removed = changes[f"tuning_entries[{entry.position}]"]
    assert removed.after is None
    assert removed.before["condition"] == entry.condition
    assert removed.before["owner"] == entry.owner


def test_restore_brings_back_deleted_entry(author_client, seed_detection, author):
    entry = first_entry(seed_detection)
    stored = {"condition": entry.condition, "owner": entry.owner, "spl": entry.spl}
    author_client.post(
        url("tuning_entry_delete", seed_detection, entry.uuid),
        {"revision": seed_detection.revision, "confirm": "true"},
    )
    before_delete = editing.history(seed_detection)[1]

    editing.restore(
        seed_detection, user=author, version_id=before_delete.version_id, expected_revision=2
    )

    restored = TuningEntry.objects.get(uuid=entry.uuid)
    assert restored.condition == stored["condition"]
    assert restored.owner == stored["owner"]
    assert restored.spl == stored["spl"]
    detection = Detection.objects.get(pk=seed_detection.pk)
    assert stored["spl"] in detection_macro(detection).definition


def test_restore_undoes_changed_and_added(author_client, seed_detection, author):
    entry = first_entry(seed_detection)
    original = entry.condition
    edit_url = url("tuning_entry_edit", seed_detection, entry.uuid)
    data = form_data(author_client.get(edit_url))
    data["condition"] = "Image|endswith: '\\conda.exe'\n"
    author_client.post(edit_url, data)
    author_client.post(
        url("tuning_entry_add", seed_detection), new_entry_data(seed_detection, revision=2)
    )
    count_with_added = seed_detection.tuning_entries.count()
    first_version = editing.history(seed_detection)[-1]

    editing.restore(
        seed_detection, user=author, version_id=first_version.version_id, expected_revision=3
    )

    entry.refresh_from_db()
    assert entry.condition == original
    assert seed_detection.tuning_entries.count() == count_with_added - 1
    assert not seed_detection.tuning_entries.filter(owner="SOC Tuning", ticket="SOC-4711").exists()
