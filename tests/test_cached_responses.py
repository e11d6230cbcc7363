"""Anonymous reads served whole from the cache by AnonymousCacheMiddleware.

Each test compares what the middleware serves with what the full path serves, and
checks that throttling, revalidation, visibility and content changes still hold.
"""

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import ApiToken
from portal.throttling import ClientAddressRateThrottle
from detections import cached_responses, editing
from detections.models import ContentStamp, Detection
from detections.response_cache import STAMP_ID

from .conftest import CONTENT_DIR, SEED_SLUG

DETAIL = f"/api/v1/detections/{SEED_SLUG}/"
LIST = "/api/v1/detections/?severity=medium"
PAGE = "/?q=library"


@pytest.fixture
def seed(transactional_db) -> Detection:
    ContentStamp.objects.get_or_create(pk=STAMP_ID, defaults={"token": "before-load"})
    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    return Detection.objects.get(slug=SEED_SLUG)


@pytest.fixture
def served_views(monkeypatch) -> list[str]:
    """Record each request that reached URL resolution, so past the middleware."""
    reached = []
    original = cached_responses.AnonymousCacheMiddleware.__call__

    def spy(self, request):
        inner = self.get_response

        def counted(request):
            reached.append(request.get_full_path())
            return inner(request)

        self.get_response = counted
        try:
            return original(self, request)
        finally:
            self.get_response = inner

    monkeypatch.setattr(cached_responses.AnonymousCacheMiddleware, "__call__", spy)
    return reached


@pytest.mark.parametrize("path", [DETAIL, LIST, PAGE])
def test_second_anonymous_read_skips_the_view(seed, served_views, path):
    client = Client()
    first = client.get(path)

    with CaptureQueriesContext(connection) as queries:
        second = client.get(path)

    assert first.status_code == second.status_code == 200
    assert served_views == [path]
    assert second.content == first.content
    for header in ("Content-Type", "ETag", "Vary", "Allow", "X-Frame-Options"):
        assert second.get(header) == first.get(header), header
    assert "Content-Security-Policy" in second
    # Only the content stamp is read.
    assert len(queries) == 1, [query["sql"] for query in queries]


def test_content_change_reaches_the_next_anonymous_read(seed, served_views):
    client = APIClient()
    client.get(DETAIL)
    client.get(DETAIL)
    author = User.objects.create_user("author", is_superuser=True)

    def rename(detection):
        detection.title = "Archive via Library, renamed"
        detection.save(update_fields=["title"])

    editing.edit(seed, user=author, expected_revision=seed.revision, mutate=rename)
    response = client.get(DETAIL)

    assert response.json()["title"] == "Archive via Library, renamed"
    assert served_views == [DETAIL, DETAIL]


def test_stored_entry_returns_304(seed, served_views):
    client = APIClient()
    tag = client.get(DETAIL)["ETag"]

    response = client.get(DETAIL, HTTP_IF_NONE_MATCH=f"W/{tag}")
    other = client.get(DETAIL, HTTP_IF_NONE_MATCH='"another.1"')

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == tag
    assert "Content-Type" not in response
    assert other.status_code == 200
    assert served_views == [DETAIL]


def test_throttle_counts_reads_served_from_the_cache(seed, monkeypatch, throttle_clock):
    monkeypatch.setattr(ClientAddressRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    client = APIClient()

    codes = [client.get(DETAIL).status_code for _ in range(5)]

    assert codes == [200, 200, 200, 429, 429]


def test_signed_in_clients_never_get_the_anonymous_entry(seed, served_views):
    Detection.objects.filter(pk=seed.pk).update(status=Detection.Status.DRAFT)
    anonymous = APIClient()
    assert anonymous.get(DETAIL).status_code == 404
    assert anonymous.get(LIST).json()["count"] == 0
    author = User.objects.create_user("author", is_superuser=True)
    _, token = ApiToken.issue(author, name="ci")
    with_token = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    with_session = APIClient()
    with_session.force_login(author)

    for client in (with_token, with_session):
        assert client.get(DETAIL).status_code == 200
        assert client.get(LIST).json()["count"] == 1
    assert DETAIL in served_views[2:]
    assert LIST in served_views[2:]


def test_accept_and_host_select_separate_entries(seed, served_views, settings):
    settings.ALLOWED_HOSTS = ["portal.example", "testserver"]
    client = APIClient()
    client.get(DETAIL)
    indented = client.get(DETAIL, HTTP_ACCEPT="application/json; indent=2")
    elsewhere = client.get(DETAIL, HTTP_HOST="portal.example")

    assert b'\n  "' in indented.content
    assert elsewhere.json()["url"].startswith("http://portal.example/")
    assert served_views == [DETAIL, DETAIL, DETAIL]


def test_missing_entry_or_stamp_uses_view(seed, served_views, monkeypatch):
    client = APIClient()
    first = client.get(DETAIL)
    cache.clear()
    second = client.get(DETAIL)
    ContentStamp.objects.all().delete()
    third = client.get(DETAIL)
    fourth = client.get(DETAIL)

    assert first.content == second.content == third.content == fourth.content
    assert served_views == [DETAIL] * 4


def test_head_and_other_paths_are_not_stored(seed, served_views):
    client = Client()
    detail_page = f"/detections/{SEED_SLUG}/"
    for _ in range(2):
        assert client.get(detail_page).status_code == 200
        assert client.head(DETAIL).status_code == 200

    assert served_views == [detail_page, DETAIL] * 2


REDIS_CACHE = {
    "default": {
        "BACKEND": "portal.cache.FailOpenRedisCache",
        # Database 13 of the machine's Redis, which no other test uses.
        "LOCATION": "redis://127.0.0.1:6379/13",
        "KEY_PREFIX": "cached-responses-test",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = REDIS_CACHE
    cache.clear()
    yield cache
    cache.clear()


def test_redis_read_and_count_in_one_round_trip(redis_cache):
    redis_cache.set("entry", (b"body", {"ETag": '"a.1"'}), 60)

    first = redis_cache.get_and_incr("entry", "counter", 61)
    second = redis_cache.get_and_incr(None, "counter", 61)
    missing = redis_cache.get_and_incr("absent", "counter", 61)
    client = redis_cache._cache.get_client()
    ttl = client.ttl(redis_cache.make_and_validate_key("counter"))

    assert first == ((b"body", {"ETag": '"a.1"'}), 1)
    assert second == (None, 2)
    assert missing == (None, 3)
    assert 0 < ttl <= 61


def test_unreachable_redis_counts_nothing(settings):
    unreachable = {"default": {**REDIS_CACHE["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    settings.CACHES = unreachable

    assert cache.get_and_incr("entry", "counter", 61) == (None, 1)


def test_throttle_on_redis_counts_cached_reads_once(
    seed, served_views, redis_cache, monkeypatch, throttle_clock
):
    monkeypatch.setattr(ClientAddressRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    client = APIClient()

    codes = [client.get(DETAIL).status_code for _ in range(5)]
    counters = redis_cache._cache.get_client().keys("*throttle_anon*")

    assert codes == [200, 200, 200, 429, 429]
    # The first read and the two 429s went the full path, each counted once.
    assert served_views == [DETAIL] * 3
    assert len(counters) == 1
    assert int(redis_cache._cache.get_client().get(counters[0])) == 5
