"""Cached API responses: each source of change reaches the next GET, per visibility.

The tests commit for real (`transactional_db`), because the content stamp changes
after the commit, as it does in production.
"""

import shutil

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from detections import editing
from detections.models import ContentStamp, Detection, Render, TuningEntry, ValidationRun
from detections.rendering import renders_run
from detections.response_cache import STAMP_ID, _changes_shown_content
from detections.validation.runs import validation_execute

from .conftest import CONTENT_DIR, SEED_SLUG
from .import_helpers import rule_text, run_import, write

DETAIL = f"/api/v1/detections/{SEED_SLUG}/"
LIST = "/api/v1/detections/"
FILTERED = {"severity": "medium", "tactic": "TA0009"}


@pytest.fixture
def seed(transactional_db) -> Detection:
    # The flush after an earlier transactional test deletes the row migration 0009 made.
    ContentStamp.objects.get_or_create(pk=STAMP_ID, defaults={"token": "before-load"})
    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    return Detection.objects.get(slug=SEED_SLUG)


def detail(client: APIClient | None = None, **headers) -> dict:
    response = (client or APIClient()).get(DETAIL, **headers)
    assert response.status_code == 200, response.content[:200]
    return response.json()


def cached_twice(path: str, params: dict | None = None, client: APIClient | None = None) -> dict:
    """GET `path` twice, so the second response comes from the cache, and return it."""
    client = client or APIClient()
    first = client.get(path, params or {})
    with CaptureQueriesContext(connection) as queries:
        second = client.get(path, params or {})
    assert first.status_code == 200
    assert second.content == first.content
    # The stamp or detection row, plus the session, user and two permission lookups
    # of a signed-in client.
    assert len(queries) <= (1 if client.session.is_empty() else 5), [q["sql"] for q in queries]
    return second.json()


def slugs(page: dict) -> set[str]:
    return {item["slug"] for item in page["results"]}


def test_repeat_detail_served_from_cache(seed, django_assert_max_num_queries):
    client = APIClient()
    first = client.get(DETAIL)

    with django_assert_max_num_queries(1):
        second = client.get(DETAIL)

    assert second.status_code == 200
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]
    assert second["Content-Type"] == "application/json"


def test_detail_and_list_vary_by_user_headers(seed):
    client = APIClient()

    for response in (client.get(DETAIL), client.get(DETAIL), client.get(LIST, FILTERED)):
        vary = {item.strip() for item in response["Vary"].split(",")}
        assert {"Accept", "Authorization", "Cookie"} <= vary


def test_edit_changes_cached_detail(seed, author):
    cached_twice(DETAIL)

    def set_notes(detection):
        detection.tuning_notes = "Exclude the backup server."
        detection.save(update_fields=["tuning_notes"])

    editing.edit(seed, user=author, expected_revision=seed.revision, mutate=set_notes)

    assert detail()["tuning_notes"] == "Exclude the backup server."


def test_render_finish_changes_cached_detail(seed):
    before = cached_twice(DETAIL)["renders_summary"]
    assert before["queued"] > 0
    queued = Render.objects.filter(status=Render.Status.QUEUED)
    render_ids = list(queued.values_list("pk", flat=True))

    renders_run(render_ids=render_ids[:3], task_id="cache-test")

    after = detail()["renders_summary"]
    assert after["queued"] == before["queued"] - 3
    assert after["total"] == before["total"]


def test_render_finish_changes_cached_list(seed):
    cached_twice(LIST, FILTERED)
    queued = Render.objects.filter(status=Render.Status.QUEUED)
    render_ids = list(queued.values_list("pk", flat=True))
    before = ContentStamp.objects.get().token

    renders_run(render_ids=render_ids[:1], task_id="cache-test")

    assert ContentStamp.objects.get().token != before


def test_validation_finish_changes_cached_detail_and_list(seed):
    run = ValidationRun.objects.get(detection=seed)
    assert cached_twice(DETAIL)["validation"]["status"] == ValidationRun.Status.QUEUED
    listed = cached_twice(LIST, FILTERED)["results"]
    assert [item["validation"]["status"] for item in listed] == [ValidationRun.Status.QUEUED]

    validation_execute(run.pk, task_id="cache-test")

    finished = ValidationRun.objects.get(pk=run.pk).status
    assert finished != ValidationRun.Status.QUEUED
    assert detail()["validation"]["status"] == finished
    listed = APIClient().get(LIST, FILTERED).json()["results"]
    assert [item["validation"]["status"] for item in listed] == [finished]


def test_tuning_entry_save_changes_cached_detail(seed):
    before = cached_twice(DETAIL)["tuning_entries"]

    TuningEntry.objects.create(
        detection=seed,
        condition={"CommandLine|contains": "backup-agent"},
        reason="Benign on the backup hosts.",
        owner="SOC Tuning",
    )

    entries = detail()["tuning_entries"]
    assert len(entries) == len(before) + 1
    assert "Benign on the backup hosts." in [entry["reason"] for entry in entries]


def test_load_content_changes_cached_detail(seed, tmp_path):
    assert cached_twice(DETAIL)["confidence"] == "medium"
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    path = root / "detections" / SEED_SLUG / "detection.yml"
    path.write_text(path.read_text().replace("confidence: medium", "confidence: high", 1))

    call_command("load_content", str(root), verbosity=0)

    assert detail()["confidence"] == "high"


def test_import_sigma_changes_cached_list(seed, viewer, tmp_path):
    # Imported rules start unpublished, so a viewer, who may read drafts, requests the list.
    client = APIClient()
    client.force_login(viewer)
    before = cached_twice(LIST, client=client)
    write(tmp_path / "rules", "zlib.yml", rule_text(title="Python Packs Data With zlib"))

    run_import("import_sigma", tmp_path / "rules")

    after = client.get(LIST).json()
    assert after["count"] == before["count"] + 1


def test_transition_hides_cached_detail_from_anonymous(seed, reviewer):
    cached_twice(DETAIL)
    assert SEED_SLUG in slugs(cached_twice(LIST, FILTERED))

    editing.transition(
        seed,
        user=reviewer,
        to_status=Detection.Status.REVIEW,
        comment="",
        expected_revision=seed.revision,
    )

    assert APIClient().get(DETAIL).status_code == 404
    assert SEED_SLUG not in slugs(APIClient().get(LIST, FILTERED).json())


def test_cached_draft_not_served_to_anonymous(seed, reviewer, viewer):
    editing.transition(
        seed,
        user=reviewer,
        to_status=Detection.Status.REVIEW,
        comment="",
        expected_revision=seed.revision,
    )
    staff = APIClient()
    staff.force_login(viewer)
    assert cached_twice(DETAIL, client=staff)["status"] == Detection.Status.REVIEW
    assert SEED_SLUG in slugs(cached_twice(LIST, client=staff))

    anonymous = APIClient()

    assert anonymous.get(DETAIL).status_code == 404
    assert SEED_SLUG not in slugs(anonymous.get(LIST).json())


def test_cached_detail_links_follow_host(seed):
    first = detail(HTTP_HOST="localhost")
    second = detail(HTTP_HOST="127.0.0.1")

    assert first["html_url"].startswith("http://localhost/")
    assert second["html_url"].startswith("http://127.0.0.1/")


def test_cached_list_keyed_by_query_string(seed):
    client = APIClient()
    everything = cached_twice(LIST, client=client)

    none = cached_twice(LIST, {"severity": "informational", "tactic": "TA0009"}, client=client)
    page_two = client.get(LIST, {"page": 2})

    assert SEED_SLUG in slugs(everything)
    assert none["count"] == 0
    assert none["results"] == []
    assert page_two.status_code == 404


def test_missing_stamp_row_disables_cache(seed, author):
    ContentStamp.objects.all().delete()
    detail()

    def set_notes(detection):
        detection.tuning_notes = "After the stamp row was deleted."
        detection.save(update_fields=["tuning_notes"])

    editing.edit(seed, user=author, expected_revision=seed.revision, mutate=set_notes)

    assert detail()["tuning_notes"] == "After the stamp row was deleted."
    assert ContentStamp.objects.count() == 1


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT * FROM "detections_detection"', False),
        ('UPDATE "detections_render" SET "status" = %s', True),
        ('INSERT INTO "playbooks_playbook" ("title") VALUES (%s)', True),
        ('DELETE FROM "detections_tuningentry" WHERE id = %s', True),
        ('UPDATE "auth_user" SET "username" = %s', True),
        ('UPDATE "auth_user" SET "last_login" = %s', True),
        ('UPDATE "detections_contentstamp" SET "token" = %s', False),
        ('UPDATE "detections_preview" SET "status" = %s', False),
        ('UPDATE "django_session" SET "session_data" = %s', False),
        ("INSERT INTO detections_render (status) VALUES (%s)", True),
    ],
)
def test_write_detection_by_table(sql, expected):
    assert _changes_shown_content(sql) is expected


def test_html_list_cached_for_anonymous_only(seed, reviewer, viewer):
    anonymous = Client()
    first = anonymous.get("/", FILTERED)
    with CaptureQueriesContext(connection) as queries:
        second = anonymous.get("/", FILTERED)
    assert second.content == first.content
    assert len(queries) == 1
    assert "Cookie" in second["Vary"]

    editing.transition(
        seed,
        user=reviewer,
        to_status=Detection.Status.REVIEW,
        comment="",
        expected_revision=seed.revision,
    )
    staff = Client()
    staff.force_login(viewer)

    assert SEED_SLUG not in anonymous.get("/", FILTERED).content.decode()
    staff_page = staff.get("/", FILTERED).content.decode()
    assert SEED_SLUG in staff_page
    assert "Signed in as viewer" in staff_page


def test_html_list_rendered_with_session_cookie(seed, viewer):
    staff = Client()
    staff.force_login(viewer)
    staff.get("/", FILTERED)

    with CaptureQueriesContext(connection) as queries:
        staff.get("/", FILTERED)

    assert len(queries) > 1


def test_playbook_unpublished_leaves_cached_detail(seed):
    from playbooks.models import Playbook

    assert len(cached_twice(DETAIL)["playbooks"]) == 1

    Playbook.objects.update(status=Detection.Status.DRAFT)

    assert detail()["playbooks"] == []


@pytest.mark.django_db(transaction=True)
def test_migrate_replaces_stamp_after_running(caplog):
    from detections import response_cache

    before = ContentStamp.objects.get(pk=STAMP_ID).token

    call_command("migrate", verbosity=0)

    assert response_cache._migrating is False
    assert ContentStamp.objects.get(pk=STAMP_ID).token != before
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == []
