"""History, restore and workflow endpoints of the detection page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .edit_views import editable_detection
from .history import history_page, restore_page
from .workflow import transition_post


@login_required
@require_POST
def detection_transition(request: HttpRequest, slug: str) -> HttpResponse:
    detection = editable_detection(request, slug)
    return transition_post(request, detection, detection.get_absolute_url())


@login_required
@require_safe
def detection_history(request: HttpRequest, slug: str) -> HttpResponse:
    detection = editable_detection(request, slug)
    return history_page(
        request,
        detection,
        template="detections/history.html",
        context={"detection": detection},
        history_url=reverse("detections:history", args=[detection.slug]),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def detection_restore(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    detection = editable_detection(request, slug)
    # editing.restore queues the renders and a validation run of the restored rules.
    return restore_page(
        request,
        detection,
        version_id,
        template="detections/restore.html",
        context={"detection": detection},
        history_url=reverse("detections:history", args=[detection.slug]),
    )
