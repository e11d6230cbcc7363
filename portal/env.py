"""Environment variables of the settings, read through helpers that record each name.

`portal.settings` reads every variable through these functions, so `VARIABLES`
lists exactly the names the settings read. Tests compare it with `.env.example`
and with the variables that `docker-compose.yml` sets.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Names read so far, in the order the settings read them.
VARIABLES: dict[str, None] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _record(name: str) -> str | None:
    VARIABLES.setdefault(name, None)
    return os.environ.get(name)


def env_str(name: str, default: str = "", *, from_file: bool = True) -> str:
    """Read a string variable, or the contents of the file named by NAME_FILE."""
    raw = _record(name)
    if not from_file:
        return default if raw is None else raw
    file_path = _record(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={file_path!r} cannot be read ({exc.strerror}); "
                f"point it at a readable file or set {name} instead."
            ) from exc
    return default if raw is None else raw


def env_bool(name: str, default: bool) -> bool:
    raw = _record(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = _record(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} is below the minimum of {minimum}.")
    return value


def env_float(name: str, default: float) -> float:
    raw = _record(name)
    if raw is None or raw.strip() == "":
        return float(default)
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = _record(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _record(name)
    value = default if raw is None or raw.strip() == "" else raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is invalid; use {', '.join(choices)}.")
    return value
