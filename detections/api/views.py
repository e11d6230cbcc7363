"""Read-only API over detections, for SOAR platforms and other tooling."""

import uuid

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from detections import downloads
from detections.filters import DetectionFilter
from detections.models import Detection
from detections.selectors import detection_queryset_for

from .serializers import DetectionListSerializer, DetectionSerializer

FILE_RESPONSE = OpenApiResponse(response=OpenApiTypes.BINARY, description="The file.")


class DetectionViewSet(viewsets.ReadOnlyModelViewSet):
    """Detections with every field; `{slug}` also accepts the detection's UUID."""

    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = DetectionFilter

    def get_queryset(self) -> QuerySet[Detection]:
        return detection_queryset_for(self.request.user, full=self.action != "list")

    def get_serializer_class(self):
        return DetectionListSerializer if self.action == "list" else DetectionSerializer

    def get_object(self) -> Detection:
        value = self.kwargs["slug"]
        queryset = self.get_queryset()
        try:
            detection = get_object_or_404(queryset, uuid=uuid.UUID(value))
        except ValueError:
            detection = get_object_or_404(queryset, slug=value)
        self.check_object_permissions(self.request, detection)
        return detection

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
