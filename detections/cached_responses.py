"""Serve anonymous reads of cached list and API responses before URL resolution.

Views that keep their responses in the response cache (`detections.response_cache`)
mark a response they built for an anonymous client with `cacheable_for_anonymous()`.
`AnonymousCacheMiddleware`, the innermost middleware, stores such a response whole:
body, status and the headers the view and DRF set. The next anonymous GET of the same
path, host and Accept header under the same content stamp gets it back without URL
resolution, authentication, content negotiation or the view. The outer middleware
still runs, so the request log, security headers and the Content Security Policy
are the same as on the full path.

An anonymous client here is a request without an Authorization header and without a
session or message cookie. API requests are counted by DRF's throttles first, with
the same counters the API views use, and a miss is not counted twice. A client over
its limit goes down the full path, which returns 429. A stamp that cannot be read, a cache miss or Redis being down
also sends the request down the full path, so this layer never returns content
the full path would not.
"""

import re

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from rest_framework.settings import api_settings

from portal.throttling import COUNTED, WindowRateThrottle, count_with

from .api.versioned import not_modified
from .response_cache import cache_key, current_stamp

ANONYMOUS_CACHEABLE = "_anonymous_cacheable"
# Paths whose views mark their responses. Only these pay for a cache lookup.
API_PATHS = re.compile(r"/api/v1/detections/(?:[^/]+/)?")
PAGE_PATHS = re.compile(r"/")
# Headers that are kept with a stored response, as set by the view and DRF.
STORED_HEADERS = ("Content-Type", "ETag", "Vary", "Allow")


def cacheable_for_anonymous(response: HttpResponse) -> HttpResponse:
    """Mark a response that shows exactly what any anonymous client of this URL gets."""
    setattr(response, ANONYMOUS_CACHEABLE, True)
    return response


def _is_anonymous(request: HttpRequest) -> bool:
    if "HTTP_AUTHORIZATION" in request.META:
        return False
    cookies = request.COOKIES
    return settings.SESSION_COOKIE_NAME not in cookies and CookieStorage.cookie_name not in cookies


def _read_and_count(request: HttpRequest, key: str):
    """Read the stored entry and count the request with DRF's default throttles.

    A window-counting throttle (portal.throttling) adds its count in the same cache
    round trip as the read, and keeps it on the request, so that the view does not
    count again if the request goes down the full path. Other throttle classes
    count as they would in the view. Returns (entry or None, allowed).
    """
    entry, allowed, read = None, True, False
    counts = {}
    setattr(request, COUNTED, counts)
    for throttle_class in api_settings.DEFAULT_THROTTLE_CLASSES:
        throttle = throttle_class()
        if not isinstance(throttle, WindowRateThrottle):
            allowed = throttle.allow_request(request, None) and allowed
            continue
        counter = throttle.window_counter(request)
        if counter is None:
            continue
        counter_key = counter[0]
        value, count = count_with(cache, counter_key, throttle.duration + 1, None if read else key)
        if not read:
            entry, read = value, True
        counts[counter_key] = count
        allowed = throttle.accepts(count) and allowed
    if not read:
        entry = cache.get(key)
    return entry, allowed


class AnonymousCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        kind, key = self._key(request)
        if key is not None:
            response = self._stored(request, kind, key)
            if response is not None:
                return response
        response = self.get_response(request)
        if key is not None and self._storable(response):
            headers = {name: response[name] for name in STORED_HEADERS if name in response}
            cache.set(key, (response.content, headers), settings.API_CACHE_TIMEOUT)
        return response

    def _key(self, request: HttpRequest) -> tuple[str, str | None]:
        """Return the kind of path ("api" or "page") and the key, or a None key."""
        if request.method != "GET" or not _is_anonymous(request):
            return "", None
        path = request.path_info
        if API_PATHS.fullmatch(path):
            kind = "api"
        elif PAGE_PATHS.fullmatch(path):
            kind = "page"
        else:
            return "", None
        try:
            stamp = current_stamp()
        except DatabaseError:
            return kind, None
        if stamp is None:
            return kind, None
        return kind, cache_key(
            f"anonymous-{kind}",
            stamp,
            request.get_full_path(),
            request.build_absolute_uri("/"),
            request.META.get("HTTP_ACCEPT", ""),
        )

    def _stored(self, request: HttpRequest, kind: str, key: str) -> HttpResponse | None:
        if kind == "api":
            entry, allowed = _read_and_count(request, key)
            if not allowed:
                return None
        else:
            entry = cache.get(key)
        if entry is None:
            return None
        body, headers = entry
        tag = headers.get("ETag")
        if tag and not_modified(request, tag):
            kept = {name: value for name, value in headers.items() if name != "Content-Type"}
            response = HttpResponse(status=304, headers=kept)
            del response["Content-Type"]
            return response
        return HttpResponse(body, headers=headers)

    @staticmethod
    def _storable(response: HttpResponse) -> bool:
        return (
            getattr(response, ANONYMOUS_CACHEABLE, False)
            and response.status_code == 200
            and not response.streaming
            and not response.cookies
        )
