"""SQL queries per request of the benchmarked API views, so that an N+1 shows up as a failure."""

import pytest
from rest_framework.test import APIClient

from .conftest import SEED_SLUG


@pytest.mark.django_db
def test_detail_query_count(seed_detection, django_assert_max_num_queries):
    client = APIClient()

    # One query per related table, tuning entries included, and none per row.
    with django_assert_max_num_queries(16):
        response = client.get(f"/api/v1/detections/{SEED_SLUG}/")

    assert response.status_code == 200


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

    with django_assert_max_num_queries(9):
        response = client.get("/api/v1/detections/", {"severity": "high", "tactic": "TA0009"})

    assert response.status_code == 200
