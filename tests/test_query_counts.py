"""SQL queries per request of the benchmarked API views, so that an N+1 shows up as a failure."""

import pytest
from rest_framework.test import APIClient

from detections.models import ContentStamp
from detections.response_cache import STAMP_ID

from .conftest import SEED_SLUG


@pytest.fixture(autouse=True)
def content_stamp(db) -> None:
    """Recreate the stamp row that migration 0009 made, if an earlier test's flush deleted it."""
    ContentStamp.objects.get_or_create(pk=STAMP_ID, defaults={"token": "query-count"})


@pytest.mark.django_db
def test_detail_query_count(seed_detection, django_assert_max_num_queries):
    client = APIClient()

    # Uncached: the content stamp for the anonymous response cache, the detection
    # and stamp row, then one query per related table, tuning entries included, and
    # none per row.
    with django_assert_max_num_queries(18):
        response = client.get(f"/api/v1/detections/{SEED_SLUG}/")
    # Cached: the content stamp only.
    with django_assert_max_num_queries(1):
        cached = client.get(f"/api/v1/detections/{SEED_SLUG}/")

    assert response.status_code == 200
    assert cached.content == response.content


@pytest.mark.django_db
def test_detail_counts_recorded_events_in_database(seed_detection):
    client = APIClient()

    tests = client.get(f"/api/v1/detections/{SEED_SLUG}/").json()["tests"]

    expected = {test.name: len(test.recorded_events) for test in seed_detection.tests.all()}
    assert {test["name"]: test["recorded_event_count"] for test in tests} == expected
    assert any(count > 0 for count in expected.values())


@pytest.mark.django_db
def test_filtered_list_query_count(seed_detection, django_assert_max_num_queries):
    client = APIClient()

    filters = {"severity": "high", "tactic": "TA0009"}
    # Uncached: the content stamp, then the page, its count and its relations.
    with django_assert_max_num_queries(10):
        response = client.get("/api/v1/detections/", filters)
    # Cached: the content stamp only.
    with django_assert_max_num_queries(1):
        cached = client.get("/api/v1/detections/", filters)

    assert response.status_code == 200
    assert cached.content == response.content
