"""API throttles: one counter per client and fixed time window.

DRF's own throttles keep a list of request times per client and rewrite it on every
request, a read and a write of the shared cache. These count requests in fixed
windows instead (for "120/minute", each clock minute): one atomic increment per
request, which Redis runs in the same round trip as other reads
(`count_with`). A client may therefore send up to twice its rate across the
boundary of two windows. A denied request counts too, so a client that keeps
sending past its limit waits for the next window.

Each client is counted by one throttle only: anonymous clients by address under
THROTTLE_ANON_RATE, signed-in users by id under THROTTLE_USER_RATE.
"""

from rest_framework.throttling import SimpleRateThrottle

# Attribute of the Django request holding counts taken before the view ran
# (detections.cached_responses), keyed by counter, so a view does not count again.
COUNTED = "_throttle_counts"


def count_with(cache, counter: str, ttl: int, key: str | None = None):
    """Add one to `counter` and read `key` (unless None), and return (value, count).

    On the shared Redis cache both happen in one round trip. Other caches take
    several calls. A counter that did not exist starts at 1 and expires after `ttl`
    seconds.
    """
    pipelined = getattr(cache, "get_and_incr", None)
    if pipelined is not None:
        return pipelined(key, counter, ttl)
    value = cache.get(key) if key is not None else None
    cache.add(counter, 0, ttl)
    try:
        count = cache.incr(counter)
    except ValueError:
        # Expired between add() and incr().
        cache.set(counter, 1, ttl)
        count = 1
    return value, count


class WindowRateThrottle(SimpleRateThrottle):
    """Allow `num_requests` per client in each window of `duration` seconds."""

    def window_counter(self, request) -> tuple[str, int] | None:
        """Return this window's counter key for the client and the window's end."""
        if self.rate is None:
            return None
        ident = self.get_cache_key(request, None)
        if ident is None:
            return None
        window = int(self.timer() // self.duration)
        return f"{ident}:{window}", (window + 1) * self.duration

    def allow_request(self, request, view) -> bool:
        counter = self.window_counter(request)
        if counter is None:
            return True
        key, self.window_end = counter
        counts = getattr(request, COUNTED, {})
        count = counts.get(key)
        if count is None:
            _, count = count_with(self.cache, key, self.duration + 1)
        return self.accepts(count)

    def accepts(self, count: int) -> bool:
        return count <= self.num_requests

    def wait(self) -> float:
        return max(0.0, self.window_end - self.timer())


class ClientAddressRateThrottle(WindowRateThrottle):
    """Count anonymous clients by address (the proxy-aware DRF ident)."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignedInUserRateThrottle(WindowRateThrottle):
    """Count signed-in users by id, and leave anonymous clients to the address throttle."""

    scope = "user"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
