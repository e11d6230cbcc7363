"""JSON endpoints of the edit forms' live preview: Markdown and the query of a Sigma rule.

Markdown is rendered in the request with the sanitiser the pages use. A Sigma rule
is only queued here; a worker converts it, and the page polls `preview_status`.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from .edit_flow import editor_required
from .edit_views import editable_detection
from .markdown import render_markdown
from .models import Preview
from .previews import PreviewUnavailable, preview_as_dict, preview_request

# Maximum characters of a preview request's text: far above any description or
# Sigma rule, and small enough to render in a few milliseconds.
MAX_PREVIEW_CHARS = 200_000


def _posted_text(request: HttpRequest) -> str | JsonResponse:
    text = request.POST.get("text")
    if text is None:
        return JsonResponse({"error": "The form field `text` is missing."}, status=400)
    if len(text) > MAX_PREVIEW_CHARS:
        return JsonResponse(
            {
                "error": f"The text is {len(text)} characters long; the preview takes at most "
                f"{MAX_PREVIEW_CHARS}."
            },
            status=413,
        )
    return text.replace("\r\n", "\n")


@login_required
@require_POST
def preview_markdown(request: HttpRequest) -> JsonResponse:
    editor_required(request)
    text = _posted_text(request)
    if isinstance(text, JsonResponse):
        return text
    return JsonResponse({"html": str(render_markdown(text))})


@login_required
@require_POST
def preview_sigma(request: HttpRequest, slug: str, rule_id) -> JsonResponse:
    editor_required(request)
    detection = editable_detection(request, slug)
    rule = get_object_or_404(detection.sigma_rules, rule_id=rule_id)
    text = _posted_text(request)
    if isinstance(text, JsonResponse):
        return text
    try:
        preview = preview_request(text, user=request.user, sigma_rule=rule)
    except PreviewUnavailable as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    body = preview_as_dict(preview)
    body["url"] = reverse("detections:preview_status", args=[preview.pk])
    return JsonResponse(body, status=202)


@login_required
@require_safe
def preview_status(request: HttpRequest, preview_id) -> JsonResponse:
    editor_required(request)
    preview = get_object_or_404(Preview, pk=preview_id, requested_by=request.user)
    return JsonResponse(preview_as_dict(preview))
