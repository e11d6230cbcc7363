"""History, restore and workflow endpoints of the detection page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .edit_views import editable_detection
from .history import history_page, restore_page
from .models import Detection, DetectionTest, ValidationRun
from .rendering import renders_schedule
from .validation.runs import validation_request
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

    def after_restore(restored: Detection) -> None:
        # Renders of rules whose text did not change are skipped by their input hash.
        renders_schedule(rule_ids=list(restored.sigma_rules.values_list("pk", flat=True)))
        if restored.tests.filter(origin=DetectionTest.Origin.AUTHORED).exists():
            validation_request(restored, trigger=ValidationRun.Trigger.WEB, user=request.user)

    return restore_page(
        request,
        detection,
        version_id,
        template="detections/restore.html",
        context={"detection": detection},
        history_url=reverse("detections:history", args=[detection.slug]),
        after_restore=after_restore,
    )
