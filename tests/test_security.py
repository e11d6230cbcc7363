"""Content Security Policy, security headers, API throttling, body limits and error pages."""

import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory, override_settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from portal.throttling import ClientAddressRateThrottle, SignedInUserRateThrottle

from .conftest import REPO_ROOT, SEED_SLUG

LIST_URL = "/api/v1/detections/"
INLINE_HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=""", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def template_files():
    return sorted((REPO_ROOT / "templates").rglob("*.html")) + sorted(
        (REPO_ROOT / "static").rglob("*.html")
    )


def test_templates_have_no_inline_script():
    files = template_files()

    assert files, "no templates found"
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in SCRIPT_TAG.finditer(text):
            assert "src=" in match.group(1), f"inline <script> in {path.relative_to(REPO_ROOT)}"
        assert not INLINE_HANDLER.search(text), f"on*= handler in {path.relative_to(REPO_ROOT)}"
        assert "javascript:" not in text.lower(), f"javascript: URL in {path.name}"


@pytest.mark.django_db
def test_pages_send_content_security_policy(client, seed_detection):
    response = client.get(f"/detections/{SEED_SLUG}/")
    policy = response.headers["Content-Security-Policy"]

    assert response.status_code == 200
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy


@pytest.mark.django_db
def test_api_docs_page_has_no_inline_script(client):
    page = client.get("/api/docs/").content.decode()
    tags = SCRIPT_TAG.findall(page)

    assert tags, "Swagger UI page has no script"
    for attributes in tags:
        assert "src=" in attributes


@pytest.mark.django_db
def test_security_headers(client):
    response = client.get("/")

    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_throttling_configured_from_settings():
    classes = api_settings.DEFAULT_THROTTLE_CLASSES

    assert ClientAddressRateThrottle in classes
    assert SignedInUserRateThrottle in classes
    assert api_settings.DEFAULT_THROTTLE_RATES == {
        "anon": settings.THROTTLE_ANON_RATE,
        "user": settings.THROTTLE_USER_RATE,
    }
    assert api_settings.NUM_PROXIES == settings.NUM_PROXIES == 0


@pytest.fixture
def five_per_minute(monkeypatch, throttle_clock):
    monkeypatch.setattr(ClientAddressRateThrottle, "THROTTLE_RATES", {"anon": "5/minute"})


def statuses(client, forwarded_for: list[str]) -> list[int]:
    return [client.get(LIST_URL, HTTP_X_FORWARDED_FOR=value).status_code for value in forwarded_for]


@pytest.mark.django_db
def test_forged_forwarded_for_is_throttled(five_per_minute):
    client = APIClient()

    codes = statuses(client, [f"198.51.100.{n}" for n in range(10)])

    assert codes[:5] == [200] * 5
    assert codes[5:] == [429] * 5


@pytest.mark.django_db
def test_user_throttle_counts_signed_in_only(
    monkeypatch, django_user_model, throttle_clock
):
    monkeypatch.setattr(ClientAddressRateThrottle, "THROTTLE_RATES", {"anon": "2/minute"})
    monkeypatch.setattr(SignedInUserRateThrottle, "THROTTLE_RATES", {"user": "4/minute"})
    user = django_user_model.objects.create_user("analyst")
    signed_in = APIClient()
    signed_in.force_authenticate(user)

    anonymous = [APIClient().get(LIST_URL).status_code for _ in range(3)]
    member = [signed_in.get(LIST_URL).status_code for _ in range(5)]

    assert anonymous == [200, 200, 429]
    assert member == [200, 200, 200, 200, 429]
    request = RequestFactory().get(LIST_URL)
    request.user = AnonymousUser()
    assert SignedInUserRateThrottle().get_cache_key(request, None) is None


@pytest.mark.django_db
def test_throttled_answer_names_wait(five_per_minute):
    client = APIClient()
    statuses(client, ["203.0.113.1"] * 5)

    response = client.get(LIST_URL)

    assert response.status_code == 429
    # The clock is 20 s into a one-minute window.
    assert response.headers["Retry-After"] == "40"
    assert "throttled" in response.json()["detail"].lower()


@pytest.mark.django_db
def test_one_proxy_counts_the_address_it_appends(five_per_minute):
    client = APIClient()
    rest_framework = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    with override_settings(REST_FRAMEWORK=rest_framework):
        forged = statuses(client, [f"10.9.9.{n}, 192.0.2.7" for n in range(8)])
        other_client = statuses(client, ["10.9.9.1, 192.0.2.8"])

    assert forged[:5] == [200] * 5
    assert forged[5:] == [429] * 3
    assert other_client == [200]


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_api_body_over_limit_is_json_413(seed_detection):
    client = APIClient()
    body = '{"engine": "embedded", "padding": "' + "x" * 2000 + '"}'

    response = client.post(
        f"/api/v1/detections/{SEED_SLUG}/validations/", body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    detail = response.json()["detail"]
    assert "the limit is 1024 (DATA_UPLOAD_MAX_MEMORY_SIZE)" in detail
    assert str(len(body)) in detail


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_form_body_over_limit_is_413(client):
    response = client.post("/accounts/login/", {"username": "u", "password": "p" * 2000})

    assert response.status_code == 413
    assert b"DATA_UPLOAD_MAX_MEMORY_SIZE" in response.content


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_upload_api_keeps_its_own_limit(author):
    client = APIClient()
    client.force_authenticate(author)
    payload = b"title: x\n" + b"#" * 4000

    response = client.post(
        "/api/v1/imports/sigma/",
        {"file": SimpleUploadedFile("rule.yml", payload)},
        format="multipart",
    )

    assert response.status_code in {200, 422}, response.content


@pytest.fixture
def failing_database(monkeypatch):
    from detections.api.views import DetectionViewSet

    def lost_connection(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(DetectionViewSet, "list", lost_connection)


@pytest.mark.django_db
def test_lost_database_is_json_503_for_api(client, failing_database):
    client.raise_request_exception = False

    response = client.get(LIST_URL)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "database is unreachable" in response.json()["detail"]


@pytest.mark.django_db
def test_lost_database_is_html_503_for_pages(client, monkeypatch):
    from detections import views

    def lost_connection(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(views, "visible_detections", lost_connection)
    client.raise_request_exception = False

    response = client.get("/")

    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"Service unavailable" in response.content
    assert b"Traceback" not in response.content


@pytest.mark.django_db
def test_other_errors_stay_500(client, monkeypatch):
    from detections.api.views import DetectionViewSet

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(DetectionViewSet, "list", broken)
    client.raise_request_exception = False

    response = client.get(LIST_URL)

    assert response.status_code == 500
    assert "bug" not in response.json()["detail"]
