"""Request log and request size limit middleware."""

import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse

from portal.errors import wants_json

logger = logging.getLogger("portal.request")


class RequestLogMiddleware:
    """Log one line per request: method, path, status, duration in ms and user id.

    The path is logged without its query string, which may carry tokens, and no
    header, cookie or body is logged.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        user_id = _user_id(request)
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        logger.log(
            level,
            "%s %s %s %.1f ms user=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            user_id,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": user_id,
            },
        )
        return response


def _user_id(request: HttpRequest) -> int | None:
    # Read only a user that authentication already loaded: touching request.user here
    # would query the session for every request, also for static files and errors.
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    pk = getattr(wrapped, "pk", None)
    return pk if isinstance(pk, int) else None


class RequestSizeLimitMiddleware:
    """Return 413 for a request body over the view's limit, as JSON for API clients.

    Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when the body is read as a form,
    and then returns a 400 page. Here the declared Content-Length is checked before
    any view or the CSRF check reads the body. A view sets its own limit with a
    `max_request_bytes_setting` attribute naming a setting (the Sigma upload API
    uses IMPORT_MAX_UPLOAD_BYTES).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        setting = _limit_setting(view_func)
        limit = getattr(settings, setting)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            value = request.META["CONTENT_LENGTH"]
            return _error(request, 400, f"Content-Length {value!r} is not a number.")
        if limit is not None and length > limit:
            return too_large(request, length, limit, setting)
        return None

    def process_exception(self, request, exception):
        # A body without a Content-Length, or form fields past Django's count limit.
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _error(
                request,
                413,
                f"The request body exceeds {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE).",
            )
        if isinstance(exception, TooManyFieldsSent):
            return _error(
                request,
                413,
                f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields "
                "(DATA_UPLOAD_MAX_NUMBER_FIELDS).",
            )
        return None


def _limit_setting(view_func) -> str:
    view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
    return getattr(view_class, "max_request_bytes_setting", "DATA_UPLOAD_MAX_MEMORY_SIZE")


def too_large(request: HttpRequest, size: int, limit: int, setting: str) -> HttpResponse:
    return _error(
        request,
        413,
        f"The request body has {size} bytes; the limit is {limit} ({setting}). "
        "Send a smaller body, or raise the setting on the server.",
    )


def _error(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
