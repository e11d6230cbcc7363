"""Server-rendered pages of the portal: the detection list, detail page and file downloads.

Anonymous users see only published detections, on every page and download. Users
with the view permission (the viewer, author and reviewer groups) see every status.
"""

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from . import downloads, permissions
from .filters import DetectionFilter, filter_options
from .models import (
    Detection,
    DetectionBranch,
    DetectionTest,
    Query,
    Render,
    SigmaRule,
    TuningEntry,
)
from .permissions import can_view_unpublished
from .pysigma.convert import RenderTarget, render_targets
from .cached_responses import cacheable_for_anonymous
from .response_cache import body_store, cache_key, cached_body, current_stamp
from .selectors import DATA_SOURCES_PREFETCH, MAPPINGS_PREFETCH, visible_detections
from .tuning_page import tuning_context
from .validation.runs import latest_runs
from .workflow import workflow_actions

LIST_PAGE_SIZE = 50



@dataclass
class RenderRow:
    """One Sigma rule on a target's tab, with its render if one was scheduled."""

    slug: str
    target: RenderTarget
    rule: SigmaRule
    render: Render | None

    @property
    def element_id(self) -> str:
        return f"{self.target.key}-{self.rule.rule_id}"

    @property
    def download_url(self) -> str:
        return reverse(
            "detections:render_download",
            args=[self.slug, self.target.key, self.rule.rule_id, self.target.extension],
        )


@dataclass
class RenderTab:
    """The renders of every Sigma rule of a detection for one target, in rule order."""

    slug: str
    target: RenderTarget
    rows: list[RenderRow] = field(default_factory=list)

    @property
    def download_url(self) -> str:
        return reverse(
            "detections:render_target_download",
            args=[self.slug, self.target.key, self.target.extension],
        )

    @property
    def rendered_count(self) -> int:
        return self._count(Render.Status.RENDERED)

    @property
    def problem_count(self) -> int:
        """Number of rules whose render failed or whose target is unavailable."""
        return self._count(Render.Status.FAILED, Render.Status.UNAVAILABLE)

    @property
    def pending_count(self) -> int:
        return self._count(Render.Status.QUEUED, Render.Status.RUNNING)

    def _count(self, *statuses: str) -> int:
        return sum(1 for row in self.rows if row.render and row.render.status in statuses)


def render_tabs(detection: Detection) -> list[RenderTab]:
    """Return one tab per configured render target, in settings order.

    Renders of targets no longer in settings.RENDER_TARGETS are left out.
    """
    rules = list(detection.sigma_rules.all())
    renders = {
        (item.sigma_rule_id, item.target): item
        for item in Render.objects.filter(sigma_rule__in=rules)
    }
    tabs = []
    for target in render_targets().values():
        rows = [
            RenderRow(detection.slug, target, rule, renders.get((rule.pk, target.key)))
            for rule in rules
        ]
        tabs.append(RenderTab(detection.slug, target, rows))
    return tabs


def _anonymous_list_key(request: HttpRequest) -> str | None:
    """Return the cache key of an anonymous client's list page, or None to render it.

    Only clients without a session or message cookie get the cached page, because
    for them the page shows no user name, form token or message.
    """
    cookies = request.COOKIES
    if settings.SESSION_COOKIE_NAME in cookies or CookieStorage.cookie_name in cookies:
        return None
    if request.user.is_authenticated:
        return None
    stamp = current_stamp()
    if stamp is None:
        return None
    return cache_key(
        "detection-list-html",
        stamp,
        request.get_full_path(),
        request.build_absolute_uri("/"),
        can_view_unpublished(request.user),
    )


@require_safe
def detection_list(request: HttpRequest) -> HttpResponse:
    """Render the filtered list, from the response cache for anonymous clients."""
    key = _anonymous_list_key(request)
    body = cached_body(key) if key else None
    if body is not None:
        response = HttpResponse(body)
    else:
        response = _detection_list_page(request)
        if key and response.status_code == 200:
            body_store(key, response.content)
    patch_vary_headers(response, ("Cookie",))
    return cacheable_for_anonymous(response) if key else response


def _detection_list_page(request: HttpRequest) -> HttpResponse:
    detections = visible_detections(request.user)
    filterset = DetectionFilter(
        request.GET or None,
        queryset=detections.prefetch_related(MAPPINGS_PREFETCH, DATA_SOURCES_PREFETCH),
    )
    page = Paginator(filterset.qs, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    runs = latest_runs(detection.pk for detection in page.object_list)
    for detection in page.object_list:
        detection.latest_run = runs.get(detection.pk)
    context = {
        "filterset": filterset,
        "page_obj": page,
        "options": filter_options(detections, request.GET),
        "show_status_filter": can_view_unpublished(request.user),
    }
    return render(request, "detections/detection_list.html", context)


@require_safe
def detection_detail(request: HttpRequest, slug: str) -> HttpResponse:
    detection = _detail_queryset(request.user).filter(slug=slug).first()
    if detection is None:
        return _redirect_uuid_spelling(request, slug)
    visible = visible_detections(request.user)
    tabs = render_tabs(detection)
    latest_run = detection.validation_runs.first()
    tests = list(detection.tests.all())
    results = {}
    if latest_run is not None:
        results = {result.test_id: result for result in latest_run.results.all()}
    for test in tests:
        test.last_result = results.get(test.pk)
        test.matched_event_list = [
            (position, test.recorded_events[position])
            for position in (test.last_result.matched_events if test.last_result else [])
            if position < len(test.recorded_events)
        ]
    context = {
        "detection": detection,
        "can_edit": permissions.can_edit(request.user),
        "workflow_actions": workflow_actions(request.user, detection),
        "transition_url": reverse("detections:transition", args=[detection.slug]),
        "tuning": tuning_context(detection),
        "tests": tests,
        "latest_run": latest_run,
        "render_tabs": tabs,
        "pending_render_count": sum(tab.pending_count for tab in tabs),
        "related": visible.filter(pk__in=detection.related.values("pk")),
        "other_platforms": visible.filter(pk__in=detection.other_platforms.values("pk")),
    }
    return render(request, "detections/detection_detail.html", context)


def _redirect_uuid_spelling(request: HttpRequest, value: str) -> HttpResponse:
    """Redirect an uppercase or unhyphenated UUID to the slug URL, as the API accepts them."""
    try:
        detection_uuid = uuid.UUID(value)
    except ValueError as exc:
        raise Http404("No detection matches this slug.") from exc
    return detection_detail_by_uuid(request, detection_uuid)


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
def tuned_query_download(request: HttpRequest, slug: str, position: int, ext: str) -> HttpResponse:
    """Send an authored SPL query with the detection's filter macro call applied."""
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    query = get_object_or_404(Query, detection=detection, position=position, language__iexact="spl")
    if ext != query.file_extension:
        raise Http404(f"Query {position} is available as .{query.file_extension}, not .{ext}.")
    query.detection = detection
    return downloads.tuned_query_response(query)


@require_safe
def macros_download(request: HttpRequest, slug: str) -> HttpResponse:
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    return downloads.macros_response(detection)


@require_safe
def filter_download(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    return downloads.filter_response(detection, name)


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


@require_safe
def render_download(
    request: HttpRequest, slug: str, target: str, rule_id, ext: str
) -> HttpResponse:
    """Send one Sigma rule's rendered query, or 404 unless its status is rendered."""
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    render_target = downloads.configured_target(target)
    _check_extension(render_target, ext)
    rendered = downloads.rendered_render(detection, render_target, rule_id)
    return downloads.render_response(rendered, render_target)


@require_safe
def render_target_download(request: HttpRequest, slug: str, target: str, ext: str) -> HttpResponse:
    """Send the rendered queries of all the detection's Sigma rules for one target."""
    detection = get_object_or_404(visible_detections(request.user), slug=slug)
    render_target = downloads.configured_target(target)
    _check_extension(render_target, ext)
    renders = downloads.target_renders(detection, render_target)
    return downloads.target_renders_response(detection, render_target, renders)


def _check_extension(target: RenderTarget, ext: str) -> None:
    if ext != target.extension:
        raise Http404(f"{target.label} queries are available as .{target.extension}, not .{ext}.")


def _detail_queryset(user) -> QuerySet[Detection]:
    return visible_detections(user).prefetch_related(
        MAPPINGS_PREFETCH,
        DATA_SOURCES_PREFETCH,
        "queries",
        Prefetch(
            "queries__branches", queryset=DetectionBranch.objects.select_related("sigma_rule")
        ),
        "sigma_rules",
        Prefetch(
            "sigma_rules__referenced_rules", queryset=SigmaRule.objects.select_related("detection")
        ),
        "false_positives",
        Prefetch("tests", queryset=DetectionTest.objects.prefetch_related("telemetry")),
        Prefetch("tuning_entries", queryset=TuningEntry.objects.select_related("created_by")),
    )

