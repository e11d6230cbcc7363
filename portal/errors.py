"""Error responses: 503 while the database is unreachable, JSON for API clients."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

# Seconds a client should wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 5

_ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<p>{message}</p></body></html>
"""


def wants_json(request: HttpRequest) -> bool:
    """Return whether the client is an API client: an /api/ path or a JSON Accept header."""
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 when the exception being handled is a lost database, else 500.

    Django calls this inside its `except` block, so sys.exc_info() is the exception
    that reached the handler. The page is built without templates or the session,
    because both may need the database that just failed.
    """
    exception = sys.exc_info()[1]
    if isinstance(exception, (OperationalError, InterfaceError)):
        message = (
            "The database is unreachable. Stored content is back as soon as it returns; "
            f"retry in {RETRY_AFTER_SECONDS} seconds."
        )
        status, title = 503, "Service unavailable"
    else:
        message = "The server failed to process this request. The error has been logged."
        status, title = 500, "Server error"
    if wants_json(request):
        response = JsonResponse({"detail": message}, status=status)
    else:
        page = _ERROR_PAGE.format(title=title, message=message)
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
