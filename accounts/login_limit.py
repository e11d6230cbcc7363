"""Login rate limiting, kept in Django's default cache.

Failed sign-ins are counted per username and per client IP address within a window
of LOGIN_FAILURE_WINDOW seconds that starts at the first failure. Once a count
reaches its limit, the login page returns 429 and the authentication backend
rejects the credentials, also on the admin login, until the window ends. The
counters live in CACHES["default"]: with a per-process cache such as the default
LocMemCache each web process counts on its own, so production uses a shared cache.
"""

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.signals import user_login_failed, user_logged_in
from django.core.cache import cache
from django.dispatch import receiver

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lockout:
    """A limit that was reached: by username or by IP, and seconds until it ends."""

    scope: str
    retry_after: int


def client_ip(request) -> str:
    """Return the client address as the web server passed it.

    NOTE: behind a reverse proxy this is the proxy's address unless the proxy sets
    REMOTE_ADDR (for example gunicorn's --forwarded-allow-ips with a proxy header).
    """
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def lockout(request, username: str | None) -> Lockout | None:
    """Return the reached limit for this username or client, or None."""
    now = time.time()
    for scope, key, limit in _counters(request, username):
        count = cache.get(key, 0)
        if count >= limit:
            started = cache.get(f"{key}:start", now)
            retry_after = max(1, int(settings.LOGIN_FAILURE_WINDOW - (now - started)))
            return Lockout(scope, retry_after)
    return None


def failure_record(request, username: str | None) -> None:
    window = settings.LOGIN_FAILURE_WINDOW
    for scope, key, limit in _counters(request, username):
        if cache.add(key, 1, timeout=window):
            cache.set(f"{key}:start", time.time(), timeout=window)
            continue
        try:
            count = cache.incr(key)
        except ValueError:
            # The counter expired between add() and incr(): start a new window.
            cache.set(key, 1, timeout=window)
            cache.set(f"{key}:start", time.time(), timeout=window)
            continue
        if count == limit:
            logger.warning(
                "login limit reached for %s %s: %d failures within %d s",
                scope,
                username if scope == "username" else client_ip(request),
                count,
                window,
            )


def success_record(request, username: str | None) -> None:
    """Forget the failures of a username that signed in; the IP counter stays."""
    for scope, key, _ in _counters(request, username):
        if scope == "username":
            cache.delete_many([key, f"{key}:start"])


def _counters(request, username: str | None) -> list[tuple[str, str, int]]:
    counters = []
    if username:
        digest = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()
        counters.append(
            ("username", f"login-failures:user:{digest}", settings.LOGIN_MAX_FAILURES_PER_USERNAME)
        )
    address = client_ip(request)
    if address:
        counters.append(("ip", f"login-failures:ip:{address}", settings.LOGIN_MAX_FAILURES_PER_IP))
    return counters


@receiver(user_login_failed)
def _failure_count(sender, credentials, request=None, **kwargs):
    failure_record(request, credentials.get("username"))


@receiver(user_logged_in)
def _failures_forget(sender, request, user, **kwargs):
    success_record(request, user.get_username())
