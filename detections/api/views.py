"""Read-only API over detections, for SOAR platforms and other tooling."""

import uuid

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.utils.cache import patch_vary_headers
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from detections import downloads
from detections.cached_responses import cacheable_for_anonymous
from detections.filters import DetectionFilter
from detections.models import Detection, Render, ValidationRun
from detections.permissions import can_view_unpublished
from detections.pysigma.convert import render_targets
from detections.response_cache import (
    body_store,
    cache_key,
    cached_body,
    current_stamp,
    stamp_subquery,
)
from detections.selectors import detection_queryset_for, visible_detections
from detections.validation.runs import ValidationUnavailable, latest_runs, validation_request

from .detection_edits import DetectionEditMixin
from .serializers import (
    DetectionListSerializer,
    DetectionSerializer,
    RenderSerializer,
    ValidationRequestSerializer,
    ValidationRunSerializer,
    ValidationSummarySerializer,
)
from .tuning_edits import TuningEditMixin
from .versioned import EditPermission, VersionedMixin, etag_for, not_modified

FILE_RESPONSE = OpenApiResponse(response=OpenApiTypes.BINARY, description="The file.")
RENDER_FILE_RESPONSES = {
    (200, "text/plain"): OpenApiResponse(
        response=OpenApiTypes.STR,
        description=(
            "The query as UTF-8 text, sent as an attachment with the target's file extension."
        ),
    ),
    404: OpenApiResponse(
        description="Unknown detection, Sigma rule or render target, or nothing rendered."
    ),
}
TARGET_PARAMETER = OpenApiParameter(
    "target",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Render target key from settings.RENDER_TARGETS, such as `splunk`.",
)
RULE_ID_PARAMETER = OpenApiParameter(
    "rule_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The Sigma rule's `id`."
)


# Actions whose response is the full detail serializer.
FULL_ACTIONS = {
    "retrieve",
    "partial_update",
    "sigma_rule",
    "test_case",
    "transitions",
    "history_restore",
}


# Request headers that select the user, and so what the response shows.
USER_HEADERS = ("Accept", "Authorization", "Cookie")


def visibility_class(user) -> str:
    """Return which unpublished content `user` may read: the user-dependent part of responses."""
    from playbooks.models import Playbook

    detections = can_view_unpublished(user, Detection)
    playbooks = can_view_unpublished(user, Playbook)
    return f"detections={detections:d},playbooks={playbooks:d}"


def response_variant(request: Request) -> tuple[str, ...]:
    """Return what besides the content changes a response's bytes.

    Links in the body are absolute, so the scheme and host count, and the accepted
    media type carries JSONRenderer's `indent` parameter.
    """
    return (
        visibility_class(request.user),
        request.build_absolute_uri("/"),
        request.accepted_media_type or "",
    )


def json_cacheable(request: Request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == "json"


def cached_json_response(body: bytes, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(body, content_type="application/json", headers=headers)
    return cacheable_for_anonymous(response)


def store_after_render(response: Response, key: str) -> Response:
    """Store the rendered body of a successful response under `key`."""
    if response.status_code == status.HTTP_200_OK:
        response.add_post_render_callback(lambda rendered: body_store(key, rendered.content))
    return cacheable_for_anonymous(response)


class RenderFilterSerializer(serializers.Serializer):
    """Query parameters of the queries list. Target choices are read from settings per request."""

    target = serializers.ChoiceField(choices=[], required=False)
    status = serializers.MultipleChoiceField(choices=Render.Status.choices, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = list(render_targets())


class ReadOrAuthenticated(permissions.BasePermission):
    """Reads follow the detection's visibility; writes need a signed-in user."""

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated)


class DetectionViewSet(
    DetectionEditMixin, TuningEditMixin, VersionedMixin, viewsets.ReadOnlyModelViewSet
):
    """Detections with every field; `{slug}` also accepts the detection's UUID.

    Reads show what the caller may see. Writes need the change permission and the
    ETag of the last GET in If-Match.
    """

    edit_model = Detection
    detail_serializer_class = DetectionSerializer
    permission_classes = [EditPermission]
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = DetectionFilter

    def get_queryset(self) -> QuerySet[Detection]:
        # Only the detail serializer reads the prefetched relations. The download and
        # queries actions look up the detection alone.
        return detection_queryset_for(self.request.user, full=self.action in FULL_ACTIONS)

    def get_serializer_class(self):
        return DetectionListSerializer if self.action == "list" else DetectionSerializer

    @extend_schema(
        methods=["GET"],
        responses={200: ValidationSummarySerializer(many=True)},
        description="Validation runs of the detection, newest first, paginated.",
    )
    @extend_schema(
        methods=["POST"],
        request=ValidationRequestSerializer,
        responses={
            202: ValidationRunSerializer,
            400: OpenApiResponse(description="Unknown engine, or the engine is not configured."),
            403: OpenApiResponse(description="Not signed in."),
        },
        description=(
            "Queue a validation run of the detection's tests on a worker. Poll the run's "
            "`url` until its status is `passed`, `failed` or `error`."
        ),
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="validations",
        filter_backends=[],
        permission_classes=[ReadOrAuthenticated],
    )
    def validations(self, request: Request, slug=None) -> Response:
        """List the detection's validation runs, or start one (signed-in users)."""
        detection = self.get_object()
        if request.method == "POST":
            body = ValidationRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            try:
                run = validation_request(
                    detection,
                    engine=body.validated_data["engine"],
                    trigger=ValidationRun.Trigger.API,
                    user=request.user,
                )
            except ValidationUnavailable as exc:
                return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
            data = ValidationRunSerializer(run, context=self.get_serializer_context()).data
            return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})
        runs = detection.validation_runs.all()
        page = self.paginate_queryset(runs)
        data = ValidationSummarySerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    def _lookup(self) -> dict[str, object]:
        """Return the filter for `{slug}`, which also accepts the detection's UUID."""
        value = self.kwargs["slug"]
        if "\x00" in value:
            # PostgreSQL text cannot contain NUL, so such a lookup can match nothing.
            raise Http404("No detection matches the given query.")
        try:
            return {"uuid": uuid.UUID(value)}
        except ValueError:
            return {"slug": value}

    def get_object(self) -> Detection:
        detection = get_object_or_404(self.get_queryset(), **self._lookup())
        self.check_object_permissions(self.request, detection)
        return detection

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        """Return the detail from the response cache when the content stamp matches.

        One query reads the visible detection's identity, revision and the content
        stamp, and the cache key is built from them and `response_variant`.
        """
        if not json_cacheable(request) or request.query_params:
            return super().retrieve(request, *args, **kwargs)
        row = get_object_or_404(
            visible_detections(request.user)
            .only("pk", "slug", "revision")
            .annotate(content_stamp=stamp_subquery()),
            **self._lookup(),
        )
        self.check_object_permissions(request, row)
        tag = etag_for(row)
        # NOTE: the ETag names the revision only, so a client that revalidates after a
        # render or validation run finished gets 304 and keeps the older body.
        if not_modified(request, tag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
        if row.content_stamp is None:
            return super().retrieve(request, *args, **kwargs)
        key = cache_key(
            "detection", row.pk, row.revision, row.content_stamp, *response_variant(request)
        )
        body = cached_body(key)
        if body is not None:
            return cached_json_response(body, headers={"ETag": tag})
        return store_after_render(super().retrieve(request, *args, **kwargs), key)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and self.action in ("list", "retrieve"):
            patch_vary_headers(response, USER_HEADERS)
        return response

    @extend_schema(responses={200: FILE_RESPONSE})
    @action(detail=True, url_path=r"download/query/(?P<position>\d+)", url_name="query-download")
    def query_download(self, request, slug=None, position=None) -> HttpResponse:
        """Download an authored query (SPL as `.spl`) by its position, counted from 0."""
        detection = self.get_object()
        query = get_object_or_404(detection.queries, position=int(position))
        return downloads.query_response(query)

    @extend_schema(responses={200: FILE_RESPONSE})
    @action(detail=True, url_path="download/spl", url_name="spl-download")
    def spl_download(self, request, slug=None) -> HttpResponse:
        """Download the detection's first SPL query as a `.spl` file."""
        detection = self.get_object()
        query = detection.queries.filter(language__iexact="spl").first()
        if query is None:
            raise Http404("This detection has no SPL query.")
        return downloads.query_response(query)

    @extend_schema(responses={200: FILE_RESPONSE})
    @action(
        detail=True,
        url_path=r"download/query/(?P<position>\d+)/tuned",
        url_name="tuned-query-download",
    )
    def tuned_query_download(self, request, slug=None, position=None) -> HttpResponse:
        """Download an authored SPL query with the detection's filter macro call applied."""
        detection = self.get_object()
        query = get_object_or_404(detection.queries, position=int(position), language__iexact="spl")
        query.detection = detection
        return downloads.tuned_query_response(query)

    @extend_schema(responses={200: FILE_RESPONSE})
    @action(detail=True, url_path="download/macros.conf", url_name="macros-download")
    def macros_download(self, request, slug=None) -> HttpResponse:
        """Download the detection's filter macro as a Splunk macros.conf stanza."""
        return downloads.macros_response(self.get_object())

    @extend_schema(
        parameters=[OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: FILE_RESPONSE},
    )
    @action(
        detail=True,
        url_path=r"download/filters/(?P<name>tuning-[0-9a-f-]{36}(?:-[0-9]+)?)",
        url_name="filter-download",
    )
    def filter_download(self, request, slug=None, name=None) -> HttpResponse:
        """Download the Sigma filter of an active tuning entry as a `.yml` file."""
        return downloads.filter_response(self.get_object(), name)

    @extend_schema(
        parameters=[OpenApiParameter("rule_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: FILE_RESPONSE},
    )
    @action(
        detail=True,
        url_path=r"download/sigma/(?P<rule_id>[0-9a-fA-F-]{36})",
        url_name="sigma-download",
    )
    def sigma_download(self, request, slug=None, rule_id=None) -> HttpResponse:
        """Download one Sigma rule as the YAML file it was written as."""
        detection = self.get_object()
        try:
            rule = get_object_or_404(detection.sigma_rules, rule_id=uuid.UUID(rule_id))
        except ValueError as exc:
            raise Http404("Not a Sigma rule id.") from exc
        return downloads.sigma_response(rule)

    @extend_schema(responses={200: FILE_RESPONSE})
    @action(detail=True, url_path="download/sigma.zip", url_name="sigma-zip")
    def sigma_zip(self, request, slug=None) -> HttpResponse:
        """Download every Sigma rule of the detection in one ZIP archive."""
        return downloads.sigma_zip_response(self.get_object())

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "target",
                OpenApiTypes.STR,
                enum=list(render_targets()),
                description="Only renders for this target key.",
            ),
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=Render.Status.values,
                many=True,
                explode=True,
                description="Only renders in these statuses. Repeat the parameter for several.",
            ),
        ],
        responses={
            200: RenderSerializer(many=True),
            400: OpenApiResponse(description="Invalid filter."),
        },
    )
    @action(detail=True, url_path="queries", filter_backends=[], pagination_class=None)
    def queries(self, request: Request, slug=None) -> Response:
        """List the detection's Sigma rules rendered for each target, in rule and settings order.

        Every render is listed whatever its status. `query` is set only when the
        status is `rendered`, and `error` when it is `failed` or `unavailable`.
        """
        detection = self.get_object()
        filters = RenderFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        targets = render_targets()
        renders = Render.objects.filter(sigma_rule__detection=detection).select_related(
            "sigma_rule__detection"
        )
        if "target" in filters.validated_data:
            renders = renders.filter(target=filters.validated_data["target"])
        if filters.validated_data.get("status"):
            renders = renders.filter(status__in=filters.validated_data["status"])
        target_order = {key: index for index, key in enumerate(targets)}
        ordered = sorted(
            renders,
            key=lambda render: (
                render.sigma_rule.position,
                render.sigma_rule_id,
                target_order.get(render.target, len(target_order)),
                render.target,
            ),
        )
        context = {**self.get_serializer_context(), "targets": targets}
        return Response(RenderSerializer(ordered, many=True, context=context).data)

    @extend_schema(
        operation_id="v1_detections_queries_rule_download",
        parameters=[TARGET_PARAMETER, RULE_ID_PARAMETER],
        responses=RENDER_FILE_RESPONSES,
    )
    @action(
        detail=True,
        url_path=r"queries/(?P<target>[A-Za-z0-9_-]+)/(?P<rule_id>[0-9a-fA-F-]{36})/download",
        url_name="render-download",
    )
    def render_download(self, request, slug=None, target=None, rule_id=None) -> HttpResponse:
        """Download one Sigma rule's query rendered for a target, with the target's extension.

        Returns 404 unless the render's status is `rendered`.
        """
        detection = self.get_object()
        render_target = downloads.configured_target(target)
        try:
            parsed_rule_id = uuid.UUID(rule_id)
        except ValueError as exc:
            raise Http404("Not a Sigma rule id.") from exc
        render = downloads.rendered_render(detection, render_target, parsed_rule_id)
        return downloads.render_response(render, render_target)

    @extend_schema(
        operation_id="v1_detections_queries_target_download",
        parameters=[TARGET_PARAMETER],
        responses=RENDER_FILE_RESPONSES,
    )
    @action(
        detail=True,
        url_path=r"queries/(?P<target>[A-Za-z0-9_-]+)/download",
        url_name="render-target-download",
    )
    def render_target_download(self, request, slug=None, target=None) -> HttpResponse:
        """Download the queries of all the detection's Sigma rules rendered for a target.

        The queries follow the rule order, separated by a blank line. Rules whose
        render is not `rendered` are left out, and the response is 404 when no rule is
        rendered.
        """
        detection = self.get_object()
        render_target = downloads.configured_target(target)
        renders = downloads.target_renders(detection, render_target)
        return downloads.target_renders_response(detection, render_target, renders)


    # Defined last: a method named `list` would hide the builtin in the rest of the class body.
    def list(self, request: Request, *args, **kwargs) -> Response:
        """Return the page from the response cache when the content stamp matches.

        The key contains the stamp and the full path with its query string, so every
        filter and page has its own entry, and `next`/`previous` links stay exact.
        """
        stamp = current_stamp() if json_cacheable(request) else None
        if stamp is None:
            return self._list_page(request)
        key = cache_key(
            "detection-list", stamp, request.get_full_path(), *response_variant(request)
        )
        body = cached_body(key)
        if body is not None:
            return cached_json_response(body)
        return store_after_render(self._list_page(request), key)

    def _list_page(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        detections = page if page is not None else list(queryset)
        # One query finds the newest run of every detection on the page.
        context = self.get_serializer_context() | {
            "latest_runs": latest_runs(detection.pk for detection in detections)
        }
        data = DetectionListSerializer(detections, many=True, context=context).data
        return self.get_paginated_response(data) if page is not None else Response(data)

class ValidationRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Validation runs with their queries and per-test results, for detections you may see."""

    serializer_class = ValidationRunSerializer
    filter_backends = []

    def get_queryset(self) -> QuerySet[ValidationRun]:
        return (
            ValidationRun.objects.filter(detection__in=visible_detections(self.request.user))
            .select_related("detection", "requested_by")
            .prefetch_related("results")
        )
