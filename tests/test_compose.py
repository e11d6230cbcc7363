"""docker-compose.yml and .env.example, checked against the code without a Docker engine."""

import importlib
import re
import shlex

import pytest
import yaml
from django.core.management import get_commands

from portal.celery import app as celery_app
from portal.env import VARIABLES

from .conftest import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
# Services run from this repository's image; the others use their image's variables.
PORTAL_SERVICES = {name: spec for name, spec in SERVICES.items() if "build" in spec}
ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def command_lines(spec: dict) -> list[list[str]]:
    """Split a service's command into programs, unpacking `sh -c "a && b"`."""
    command = spec["command"]
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in words[2].split("&&")]
    return [words]


def env_example_names() -> list[str]:
    names = []
    for line in (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(line)
        if match:
            names.append(match.group(1))
    return names


def gunicorn_port(words: list[str]) -> int:
    binds = [word.split("=", 1)[1] for word in words if word.startswith("--bind=")]
    assert len(binds) == 1, words
    return int(binds[0].rsplit(":", 1)[1])


def test_compose_has_the_production_services():
    assert set(SERVICES) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert set(PORTAL_SERVICES) == {"migrate", "web", "worker", "beat"}


@pytest.mark.parametrize("name", sorted(PORTAL_SERVICES))
def test_service_commands_exist_in_code(name):
    django_commands = get_commands()
    queues = {route["queue"] for route in celery_app.conf.task_routes.values()}

    for words in command_lines(PORTAL_SERVICES[name]):
        program = words[0]
        if program == "python":
            assert words[1] == "manage.py", words
            assert words[2] in django_commands, f"no management command {words[2]!r}"
        elif program == "celery":
            assert words[1:3] == ["-A", "portal"], words
            module = importlib.import_module(words[2])
            assert module.celery.app is celery_app
            assert words[3] in {"worker", "beat"}, words
            if "-Q" in words:
                assert set(words[words.index("-Q") + 1].split(",")) == queues
        elif program == "gunicorn":
            module_name, attribute = words[1].split(":")
            assert words[1] == "portal.wsgi:application"
            assert callable(getattr(importlib.import_module(module_name), attribute))
        else:
            pytest.fail(f"service {name} runs an unexpected program {program!r}")


def test_worker_consumes_both_queues():
    words = command_lines(SERVICES["worker"])[0]

    assert words[words.index("-Q") + 1] == "render,validate"


def test_settings_module_exists():
    manage = (REPO_ROOT / "manage.py").read_text(encoding="utf-8")
    wsgi = importlib.import_module("portal.wsgi")

    assert '"DJANGO_SETTINGS_MODULE", "portal.settings"' in manage
    assert wsgi.os.environ["DJANGO_SETTINGS_MODULE"] == "portal.settings"
    for spec in PORTAL_SERVICES.values():
        assert "DJANGO_SETTINGS_MODULE" not in spec.get("environment", {})


@pytest.mark.parametrize("name", sorted(PORTAL_SERVICES))
def test_service_variables_are_read_by_settings(name):
    environment = PORTAL_SERVICES[name].get("environment", {})

    unknown = sorted(set(environment) - set(VARIABLES))
    assert unknown == [], f"{name} sets variables the settings never read: {unknown}"


def test_env_example_lists_exactly_the_settings_variables():
    names = env_example_names()

    assert len(names) == len(set(names)), "a variable is listed twice"
    assert sorted(set(names) - set(VARIABLES)) == [], "listed but never read"
    assert sorted(set(VARIABLES) - set(names)) == [], "read but not listed"


def test_portal_services_read_env_file():
    for spec in PORTAL_SERVICES.values():
        assert spec["env_file"] == ".env"


def test_depends_on_targets_and_conditions():
    for name, spec in SERVICES.items():
        for target, condition in spec.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            assert target != name
            kind = condition["condition"]
            if kind == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no health check"
            elif kind == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} is not one-shot"
            else:
                assert kind == "service_started", kind


def test_migrate_runs_before_every_portal_process():
    assert command_lines(SERVICES["migrate"]) == [
        ["python", "manage.py", "migrate", "--noinput"],
        ["python", "manage.py", "load_content"],
    ]
    for name in ("web", "worker", "beat"):
        condition = SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_health_checks_of_dependencies():
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert SERVICES["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    worker_check = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert "celery -A portal inspect ping" in worker_check


def test_web_port_health_check_and_bind_agree(client):
    web = SERVICES["web"]
    port = gunicorn_port(command_lines(web)[0])
    check = " ".join(web["healthcheck"]["test"])
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", check)

    assert web["ports"] == [f"{port}:{port}"]
    assert url is not None, check
    assert int(url.group(1)) == port
    assert client.get(url.group(2)).status_code == 200


def test_host_ports_are_unique():
    published = [
        mapping.split(":")[0] for spec in SERVICES.values() for mapping in spec.get("ports", [])
    ]

    assert len(published) == len(set(published))


def test_named_volumes_and_secrets_are_declared():
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            assert source in COMPOSE["volumes"], f"{name} mounts undeclared volume {source}"
        for secret in spec.get("secrets", []):
            assert secret in COMPOSE["secrets"], f"{name} uses undeclared secret {secret}"
    for spec in PORTAL_SERVICES.values():
        environment = spec["environment"]
        for key, value in environment.items():
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in spec["secrets"], f"{key} names a secret the service lacks"


def test_compose_runs_production_settings():
    for spec in PORTAL_SERVICES.values():
        assert spec["environment"]["PORTAL_ENV"] == "production"
        assert spec["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert spec["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:")


def test_dockerfile_command_is_the_web_command():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)

    assert cmd is not None
    words = yaml.safe_load(cmd.group(1))
    assert words[:2] == ["gunicorn", "portal.wsgi:application"]
    assert gunicorn_port(words) == gunicorn_port(command_lines(SERVICES["web"])[0])
