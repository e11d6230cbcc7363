"""Production settings, checked in subprocesses that import them with PORTAL_ENV=production."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

SECRET = "production-test-secret-" + "x" * 40


def production_env(tmp_path, **extra) -> dict[str, str]:
    """The environment of a production process: the required variables and no others."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    }
    return clean | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "portal.example",
        "CSRF_TRUSTED_ORIGINS": "https://portal.example",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        **extra,
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )


def test_check_deploy_passes(tmp_path):
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(tmp_path),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_redis(tmp_path):
    env = production_env(tmp_path)
    del env["REDIS_URL"]

    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env
    )

    assert result.returncode != 0
    assert "portal.W001" in result.stderr
    assert "REDIS_URL is not set" in result.stderr


@pytest.mark.parametrize(
    "secret",
    ["", "development-only-secret-key-do-not-use-in-production", "short"],
    ids=["missing", "development", "short"],
)
def test_production_rejects_weak_secret(tmp_path, secret):
    result = run(
        [sys.executable, "-c", "import django; django.setup()"],
        production_env(tmp_path, SECRET_KEY=secret),
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "set it (or SECRET_KEY_FILE)" in result.stderr


def test_secret_key_from_file(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(SECRET + "-from-file\n", encoding="utf-8")
    env = production_env(tmp_path, SECRET_KEY_FILE=str(secret_file))
    del env["SECRET_KEY"]

    result = run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY)"],
        env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SECRET + "-from-file"


PROBE = r"""
import json
import django
django.setup()
from django.test import Client
from rest_framework.settings import api_settings

client = Client()
page = client.get("/accounts/login/", secure=True, HTTP_HOST="portal.example")
html = page.content.decode()
import re
css = re.search(r'href="(/static/css/portal\.[0-9a-f]{12}\.css)"', html)
static = client.get(css.group(1), secure=True, HTTP_HOST="portal.example") if css else None
plain = client.get("/accounts/login/", HTTP_HOST="portal.example")
api = client.get("/api/v1/", secure=True, HTTP_HOST="portal.example", HTTP_ACCEPT="text/html")
print(json.dumps({
    "status": page.status_code,
    "css": css.group(1) if css else None,
    "static_status": static.status_code if static else None,
    "static_cache": static.headers.get("Cache-Control") if static else None,
    "headers": dict(page.headers),
    "cookie_secure": bool(page.cookies["csrftoken"]["secure"]),
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location"),
    "renderers": [cls.__name__ for cls in api_settings.DEFAULT_RENDERER_CLASSES],
    "api_type": api.headers.get("Content-Type"),
}))
"""


@pytest.fixture(scope="module")
def production_probe(tmp_path_factory):
    """Collect the static files, then request pages with the production settings."""
    tmp_path = tmp_path_factory.mktemp("production")
    env = production_env(tmp_path)
    collected = run([sys.executable, "manage.py", "collectstatic", "--noinput"], env)
    assert collected.returncode == 0, collected.stderr
    result = run([sys.executable, "-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    return {"static_root": tmp_path / "static", **json.loads(result.stdout.splitlines()[-1])}


def test_collectstatic_writes_hashed_and_compressed_files(production_probe):
    root = production_probe["static_root"]

    assert (root / "staticfiles.json").is_file()
    hashed = list((root / "css").glob("portal.*.css"))
    assert hashed, "no hashed portal.css"
    assert list((root / "css").glob("portal.*.css.gz")), "no compressed copy"


def test_page_references_hashed_static_names(production_probe):
    assert production_probe["status"] == 200
    assert production_probe["css"] is not None
    assert production_probe["static_status"] == 200
    assert "immutable" in production_probe["static_cache"]


def test_production_security_headers(production_probe):
    headers = production_probe["headers"]

    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert production_probe["cookie_secure"] is True


def test_production_redirects_plain_http(production_probe):
    assert production_probe["plain_status"] == 301
    assert production_probe["plain_location"].startswith("https://portal.example/")


def test_production_api_answers_json_only(production_probe):
    assert production_probe["renderers"] == ["JSONRenderer"]
    assert production_probe["api_type"] == "application/json"
