"""Pages of validation runs: history, one run's results, and starting a run from the web."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from .models import Detection, ValidationRun
from .selectors import visible_detections
from .validation.runs import ValidationUnavailable, validation_request

HISTORY_PAGE_SIZE = 50


def _visible_detection(request: HttpRequest, slug: str) -> Detection:
    return get_object_or_404(visible_detections(request.user), slug=slug)


@require_safe
def validation_history(request: HttpRequest, slug: str) -> HttpResponse:
    detection = _visible_detection(request, slug)
    runs = detection.validation_runs.select_related("requested_by")
    page = Paginator(runs, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "detections/validation_history.html",
        {"detection": detection, "page_obj": page},
    )


@require_safe
def validation_run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    detection = _visible_detection(request, slug)
    run = get_object_or_404(detection.validation_runs, pk=run_id)
    results = list(run.results.select_related("test"))
    for result in results:
        events = result.test.recorded_events if result.test else []
        result.matched_event_list = [
            (position, events[position]) for position in result.matched_events if position < len(events)
        ]
    return render(
        request,
        "detections/validation_run.html",
        {"detection": detection, "run": run, "results": results},
    )


@login_required
@require_POST
def validation_start(request: HttpRequest, slug: str) -> HttpResponse:
    detection = _visible_detection(request, slug)
    engine = request.POST.get("engine", ValidationRun.Engine.EMBEDDED)
    if engine not in ValidationRun.Engine.values:
        raise Http404("Unknown validation engine.")
    try:
        run = validation_request(
            detection, engine=engine, trigger=ValidationRun.Trigger.WEB, user=request.user
        )
    except ValidationUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("detections:validation_history", slug=slug)
    return redirect("detections:validation_run", slug=slug, run_id=run.pk)
