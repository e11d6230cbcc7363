"""API tokens, account commands and login rate limiting."""

import hashlib
import io
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken

from .conftest import SEED_SLUG
from .personas import PASSWORD

DETAIL = f"/api/v1/detections/{SEED_SLUG}/"
LOGIN_URL = "/accounts/login/"


@pytest.fixture(autouse=True)
def empty_cache():
    """Start each test with no login counters left by another test."""
    cache.clear()
    yield
    cache.clear()


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- Tokens at rest -----------------------------------------------------------------


def test_token_stored_as_hash_only(author):
    token, key = ApiToken.issue(author, name="soar")

    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:8]
    assert len(key) >= 43
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        row = cursor.fetchone()
    assert not any(isinstance(value, str) and key in value for value in row)


def test_token_key_never_starts_with_dash(author, monkeypatch):
    keys = iter(
        ["-starts-with-a-dash-00000000000000000000000", "plain-key-0000000000000000000000000000000"]
    )
    monkeypatch.setattr("accounts.models.secrets.token_urlsafe", lambda size: next(keys))

    token, key = ApiToken.issue(author, name="cli")

    assert key.startswith("plain-key")
    assert token.prefix == "plain-ke"


def test_token_keys_differ(author):
    _, first = ApiToken.issue(author, name="a")
    _, second = ApiToken.issue(author, name="b")

    assert first != second


# --- Authentication -----------------------------------------------------------------


def test_token_write_with_if_match(seed_detection, author):
    _, key = ApiToken.issue(author, name="ci")
    client = token_client(key)
    etag = client.get(DETAIL)["ETag"]

    response = client.patch(DETAIL, {"tuning_notes": "x"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    assert response.json()["revision"] == 2


def test_token_write_needs_no_csrf(seed_detection, author):
    _, key = ApiToken.issue(author, name="ci")
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.patch(
        DETAIL, {"tuning_notes": "x"}, format="json", HTTP_IF_MATCH=f'"{SEED_SLUG}.1"'
    )

    assert response.status_code == 200


def test_token_records_last_use(seed_detection, author):
    token, key = ApiToken.issue(author, name="ci")

    token_client(key).get(DETAIL)

    token.refresh_from_db()
    assert token.last_used_at is not None


def test_read_only_token_reads(seed_detection, author):
    _, key = ApiToken.issue(author, name="siem", read_only=True)

    assert token_client(key).get(DETAIL).status_code == 200


def test_read_only_token_cannot_write(seed_detection, author):
    _, key = ApiToken.issue(author, name="siem", read_only=True)

    response = token_client(key).patch(
        DETAIL, {"tuning_notes": "x"}, format="json", HTTP_IF_MATCH=f'"{SEED_SLUG}.1"'
    )

    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    seed_detection.refresh_from_db()
    assert seed_detection.revision == 1


def test_read_only_token_cannot_start_validation(seed_detection, author):
    _, key = ApiToken.issue(author, name="siem", read_only=True)

    response = token_client(key).post(f"{DETAIL}validations/", {}, format="json")

    assert response.status_code == 403


def test_token_starts_validation(seed_detection, author):
    _, key = ApiToken.issue(author, name="ci")

    response = token_client(key).post(f"{DETAIL}validations/", {}, format="json")

    assert response.status_code == 202


def test_expired_token_is_401(seed_detection, author):
    _, key = ApiToken.issue(author, name="old", expires_in=timedelta(days=1))
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = token_client(key).get(DETAIL)

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_revoked_token_is_401(seed_detection, author):
    token, key = ApiToken.issue(author, name="old")
    token.revoke()

    response = token_client(key).get(DETAIL)

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_unknown_token_is_401(seed_detection):
    response = token_client("not-a-real-key-000000000000000000000000000").get(DETAIL)

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_token_of_disabled_user_is_401(seed_detection, author):
    _, key = ApiToken.issue(author, name="ci")
    author.is_active = False
    author.save()

    assert token_client(key).get(DETAIL).status_code == 401


def test_viewer_token_sees_drafts(seed_detection, viewer):
    from detections.models import Detection

    Detection.objects.update(status=Detection.Status.DRAFT)
    _, key = ApiToken.issue(viewer, name="ci", read_only=True)

    assert token_client(key).get(DETAIL).status_code == 200
    assert APIClient().get(DETAIL).status_code == 404


# --- Token commands -----------------------------------------------------------------


def test_create_api_token_prints_key_last(seed_detection, author):
    output = run_command("create_api_token", "author", "--name", "soar", "--expires-days", "30")

    key = output.splitlines()[-1]
    token = ApiToken.objects.get()
    assert token.matches(key)
    assert token.name == "soar"
    assert not token.read_only
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert token_client(key).get(DETAIL).status_code == 200


def test_create_api_token_read_only(author):
    run_command("create_api_token", "author", "--read-only")

    assert ApiToken.objects.get().read_only


def test_create_api_token_unknown_user(db):
    with pytest.raises(CommandError, match="'ghost' not found"):
        run_command("create_api_token", "ghost")


def test_create_api_token_rejects_zero_days(author):
    with pytest.raises(CommandError, match="--expires-days 0 is invalid"):
        run_command("create_api_token", "author", "--expires-days", "0")


def test_list_api_tokens_hides_keys(author, reviewer):
    _, key = ApiToken.issue(author, name="soar")
    revoked, _ = ApiToken.issue(reviewer, name="old")
    revoked.revoke()

    everyone = run_command("list_api_tokens")
    only_author = run_command("list_api_tokens", "author")

    assert key not in everyone
    assert key[:8] in everyone
    assert "revoked" in everyone
    assert "soar" in only_author
    assert "old" not in only_author


def test_revoke_api_token_by_prefix(seed_detection, author):
    token, key = ApiToken.issue(author, name="soar")

    output = run_command("revoke_api_token", token.prefix)

    assert "revoked token" in output
    assert token_client(key).get(DETAIL).status_code == 401


def test_revoke_api_token_by_id(author):
    token, _ = ApiToken.issue(author, name="soar")

    run_command("revoke_api_token", str(token.pk))

    token.refresh_from_db()
    assert token.is_revoked


def test_revoke_unknown_token(db):
    with pytest.raises(CommandError, match="no API token"):
        run_command("revoke_api_token", "zzzzzzzz")


# --- Account commands ---------------------------------------------------------------


def test_create_admin_with_password_variable(db, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", "a-long-admin-password-4k")

    run_command("create_admin", "root", "--email", "root@example.test")

    user = get_user_model().objects.get(username="root")
    assert user.is_superuser
    assert user.check_password("a-long-admin-password-4k")


def test_create_admin_rejects_weak_password(db, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", "12345678")

    with pytest.raises(CommandError, match="password rejected"):
        run_command("create_admin", "root")
    assert not get_user_model().objects.exists()


def test_create_user_with_role(db, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", "a-long-author-password-7q")

    run_command("create_user", "alice", "--role", "author")
    run_command("create_user", "alice", "--role", "reviewer")

    user = get_user_model().objects.get(username="alice")
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert user.has_perm("detections.publish_detection")


def test_create_user_without_password_source(db, monkeypatch):
    monkeypatch.delenv("PORTAL_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    with pytest.raises(CommandError, match="PORTAL_PASSWORD"):
        run_command("create_user", "bob", "--role", "viewer")


# --- Login rate limit ---------------------------------------------------------------


def login(client, username, password, address="127.0.0.1"):
    return client.post(
        LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_login_works(client, author):
    response = login(client, "author", PASSWORD)

    assert response.status_code == 302


def test_login_limited_per_username(client, author, settings):
    settings.LOGIN_MAX_FAILURES_PER_USERNAME = 3
    for attempt in range(3):
        assert login(client, "author", "wrong", address=f"10.0.0.{attempt}").status_code == 200

    locked = login(client, "author", PASSWORD, address="10.0.0.9")

    assert locked.status_code == 429
    assert "Too many failed sign-ins for this username" in locked.content.decode()
    assert int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_login_limited_per_address(client, author, reviewer, settings):
    settings.LOGIN_MAX_FAILURES_PER_IP = 3
    for name in ("a", "b", "c"):
        login(client, name, "wrong", address="10.0.0.5")

    locked = login(client, "reviewer", PASSWORD, address="10.0.0.5")
    elsewhere = login(client, "reviewer", PASSWORD, address="10.0.0.6")

    assert locked.status_code == 429
    assert "your network address" in locked.content.decode()
    assert elsewhere.status_code == 302


def test_login_limit_ends_with_window(client, author, settings):
    settings.LOGIN_MAX_FAILURES_PER_USERNAME = 2
    settings.LOGIN_FAILURE_WINDOW = 1
    login(client, "author", "wrong")
    login(client, "author", "wrong")
    assert login(client, "author", PASSWORD).status_code == 429

    time.sleep(1.2)

    assert login(client, "author", PASSWORD).status_code == 302


def test_login_success_resets_username_count(client, author, settings):
    settings.LOGIN_MAX_FAILURES_PER_USERNAME = 2
    login(client, "author", "wrong")
    assert login(client, "author", PASSWORD).status_code == 302
    client.logout()

    login(client, "author", "wrong")

    assert login(client, "author", PASSWORD).status_code == 302


def test_admin_login_limited_too(client, admin_user, settings):
    settings.LOGIN_MAX_FAILURES_PER_USERNAME = 2
    login(client, "admin", "wrong")
    login(client, "admin", "wrong")

    response = client.post(
        "/admin/login/", {"username": "admin", "password": PASSWORD}, REMOTE_ADDR="127.0.0.1"
    )

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
