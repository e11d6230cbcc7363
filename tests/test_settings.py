import os
import subprocess
import sys

from .conftest import REPO_ROOT


def import_settings(**env) -> subprocess.CompletedProcess:
    settings_variables = ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "PORTAL_", "DATABASE_")
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(settings_variables)
    }
    return subprocess.run(
        [sys.executable, "-c", "import portal.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)"],
        cwd=REPO_ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_settings_default_to_embedded_development():
    result = import_settings()

    assert result.returncode == 0, result.stderr
    assert "True ['127.0.0.1', 'localhost', '[::1]']" in result.stdout


def test_production_settings_reject_missing_secret():
    result = import_settings(PORTAL_ENV="production", ALLOWED_HOSTS="portal.example")

    assert result.returncode != 0
    assert "SECRET_KEY is missing" in result.stderr


def test_production_settings_reject_missing_allowed_hosts():
    result = import_settings(PORTAL_ENV="production", SECRET_KEY="k" * 50)

    assert result.returncode != 0
    assert "ALLOWED_HOSTS is missing" in result.stderr


def test_production_settings_start_with_secret_and_hosts():
    result = import_settings(
        PORTAL_ENV="production", SECRET_KEY="k" * 50, ALLOWED_HOSTS="portal.example"
    )

    assert result.returncode == 0, result.stderr
    assert "False ['portal.example']" in result.stdout


def test_settings_reject_unreadable_secret_file(tmp_path):
    result = import_settings(SECRET_KEY_FILE=str(tmp_path / "missing"))

    assert result.returncode != 0
    assert "SECRET_KEY_FILE" in result.stderr
