"""Server-rendered pages of the portal: the detection list, detail page and file downloads.

Anonymous users see only published detections, on every page and download. Staff
users see detections of every status.
"""

from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_safe

from . import downloads
from .filters import DetectionFilter, filter_options
from .models import (
    AttackMapping,
    Detection,
    DetectionBranch,
    DetectionDataSource,
    DetectionTest,
    Query,
)
from .selectors import visible_detections

LIST_PAGE_SIZE = 50

MAPPINGS_PREFETCH = Prefetch(
    "mappings", queryset=AttackMapping.objects.select_related("tactic", "technique", "subtechnique")
)
DATA_SOURCES_PREFETCH = Prefetch(
    "data_sources", queryset=DetectionDataSource.objects.select_related("component")
)


@require_safe
def detection_list(request: HttpRequest) -> HttpResponse:
    detections = visible_detections(request.user)
    filterset = DetectionFilter(
        request.GET or None,
        queryset=detections.prefetch_related(MAPPINGS_PREFETCH, DATA_SOURCES_PREFETCH),
    )
    page = Paginator(filterset.qs, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filterset": filterset,
        "page_obj": page,
        "options": filter_options(detections, request.GET),
        "show_status_filter": request.user.is_staff,
    }
    return render(request, "detections/detection_list.html", context)


@require_safe
def detection_detail(request: HttpRequest, slug: str) -> HttpResponse:
    detection = get_object_or_404(_detail_queryset(request.user), slug=slug)
    visible = visible_detections(request.user)
    context = {
        "detection": detection,
        "related": visible.filter(pk__in=detection.related.values("pk")),
        "other_platforms": visible.filter(pk__in=detection.other_platforms.values("pk")),
    }
    return render(request, "detections/detection_detail.html", context)


@require_safe
def detection_detail_by_uuid(request: HttpRequest, detection_uuid) -> HttpResponse:
    detection = get_object_or_404(visible_detections(request.user), uuid=detection_uuid)
    return redirect(detection)


@require_safe
def query_download(request: HttpRequest, slug: str, position: int, ext: str) -> HttpResponse:
    """Send the query stored at `position` (0-based, as in Query.position) as a file."""
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    query = get_object_or_404(Query, detection=detection, position=position)
    if ext != query.file_extension:
        raise Http404(f"Query {position} is available as .{query.file_extension}, not .{ext}.")
    query.detection = detection
    return downloads.query_response(query)


@require_safe
def sigma_download(request: HttpRequest, slug: str, rule_id) -> HttpResponse:
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    rule = get_object_or_404(detection.sigma_rules, rule_id=rule_id)
    return downloads.sigma_response(rule)


@require_safe
def sigma_zip_download(request: HttpRequest, slug: str) -> HttpResponse:
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    if not detection.sigma_rules.exists():
        raise Http404("This detection has no Sigma rules.")
    return downloads.sigma_zip_response(detection)


def _detail_queryset(user) -> QuerySet[Detection]:
    return visible_detections(user).prefetch_related(
        MAPPINGS_PREFETCH,
        DATA_SOURCES_PREFETCH,
        "queries",
        Prefetch(
            "queries__branches", queryset=DetectionBranch.objects.select_related("sigma_rule")
        ),
        "sigma_rules",
        "false_positives",
        Prefetch("tests", queryset=DetectionTest.objects.prefetch_related("telemetry")),
    )
