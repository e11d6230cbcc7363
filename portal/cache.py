"""The shared Redis cache, made to fail open while Redis is unreachable."""

import functools
import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
# Seconds between two warnings about the same outage in one process.
WARNING_INTERVAL = 30.0


class FailOpenRedisCache(RedisCache):
    """Django's RedisCache, where a call that cannot reach Redis acts as a cache miss.

    Throttling and login limits read the cache on every request. While Redis is
    down they count nothing and every request goes on, so pages and the API keep
    serving stored content. Reads return the default, writes store nothing and
    `incr` returns the delta as if the key were new.
    """

    _last_warning = 0.0

    def _warn(self, operation: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - FailOpenRedisCache._last_warning >= WARNING_INTERVAL:
            FailOpenRedisCache._last_warning = now
            logger.warning(
                "cache %s failed, Redis unreachable; serving without the cache: %s",
                operation,
                exc,
            )

    def get_and_incr(self, key: str | None, counter: str, ttl: int):
        """Read `key` (unless None) and add one to `counter` in one round trip.

        Returns (value or None, count). The counter expires `ttl` seconds after its
        last increment. With Redis unreachable: (None, 1).
        """
        client = self._cache.get_client(write=True)
        counter = self.make_and_validate_key(counter)
        try:
            with client.pipeline(transaction=False) as pipeline:
                if key is not None:
                    pipeline.get(self.make_and_validate_key(key))
                pipeline.incr(counter)
                pipeline.expire(counter, ttl)
                results = pipeline.execute()
        except UNREACHABLE as exc:
            self._warn("get_and_incr", exc)
            return None, 1
        raw = results[0] if key is not None else None
        value = None if raw is None else self._cache._serializer.loads(raw)
        return value, results[-2]


def _fail_open(name: str, fallback):
    original = getattr(RedisCache, name)

    @functools.wraps(original)
    def method(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except UNREACHABLE as exc:
            self._warn(name, exc)
            return fallback(*args, **kwargs)

    return method


def _default(key, default=None, *args, **kwargs):
    return default


for _name, _fallback in {
    "get": _default,
    "get_many": lambda *args, **kwargs: {},
    "set": lambda *args, **kwargs: None,
    "add": lambda *args, **kwargs: False,
    "set_many": lambda data, *args, **kwargs: list(data),
    "touch": lambda *args, **kwargs: False,
    "delete": lambda *args, **kwargs: False,
    "delete_many": lambda *args, **kwargs: None,
    "has_key": lambda *args, **kwargs: False,
    "incr": lambda key, delta=1, *args, **kwargs: delta,
}.items():
    setattr(FailOpenRedisCache, _name, _fail_open(_name, _fallback))
