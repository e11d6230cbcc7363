"""Read-only API over playbooks, with Markdown and CACAO 2.0 downloads."""

import uuid

import django_filters
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from detections.api.detection_edits import COMMENT_FIELD, changed_fields, reject_unknown_fields
from detections.api.versioned import ETAG_HEADER, WRITE_ERRORS, EditPermission, VersionedMixin

from playbooks import downloads
from playbooks.models import Playbook
from playbooks.selectors import playbook_queryset_for

from .serializers import PlaybookSerializer


class PlaybookFilter(django_filters.FilterSet):
    detection = django_filters.CharFilter(
        method="filter_detection",
        label="Detection",
        help_text="Only playbooks of this detection, by slug or UUID.",
    )

    class Meta:
        model = Playbook
        fields = ["detection"]

    def filter_detection(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            condition = Q(links__detection__uuid=uuid.UUID(value))
        except ValueError:
            condition = Q(links__detection__slug=value)
        return queryset.filter(pk__in=Playbook.objects.filter(condition).values("pk"))


class PlaybookEditSerializer(serializers.ModelSerializer):
    """Fields of a playbook that PATCH may change."""

    comment = COMMENT_FIELD

    class Meta:
        model = Playbook
        fields = ["title", "summary", "authors", "references", "comment"]


class PlaybookViewSet(VersionedMixin, viewsets.ReadOnlyModelViewSet):
    """Playbooks with their steps, questions, hunts and queries. `{slug}` also takes the UUID.

    Anonymous callers see published playbooks only, and only the published detections
    they belong to. Writes need the change permission and the ETag in If-Match.
    """

    edit_model = Playbook
    detail_serializer_class = PlaybookSerializer
    permission_classes = [EditPermission]
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    serializer_class = PlaybookSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = PlaybookFilter

    def get_queryset(self) -> QuerySet[Playbook]:
        return playbook_queryset_for(self.request.user)

    @extend_schema(
        request=PlaybookEditSerializer,
        parameters=[ETAG_HEADER],
        responses={200: PlaybookSerializer, **WRITE_ERRORS},
    )
    def partial_update(self, request, slug=None) -> Response:
        """Change fields of the playbook. Status changes go through `transitions/`."""
        playbook = self.get_object()
        body = PlaybookEditSerializer(data=request.data, partial=True)
        reject_unknown_fields(request.data, body)
        body.is_valid(raise_exception=True)
        fields, comment = changed_fields(body)

        def mutate(locked: Playbook) -> None:
            for name, value in fields.items():
                setattr(locked, name, value)
            locked.save(update_fields=[*fields, "updated_at"])

        return self.edit_response(
            request, playbook, mutate, comment or "Changed " + ", ".join(sorted(fields))
        )

    def get_object(self) -> Playbook:
        value = self.kwargs["slug"]
        if "\x00" in value:
            # PostgreSQL text cannot contain NUL, so such a lookup can match nothing.
            raise Http404("No playbook matches the given query.")
        queryset = self.get_queryset()
        try:
            playbook = get_object_or_404(queryset, uuid=uuid.UUID(value))
        except ValueError:
            playbook = get_object_or_404(queryset, slug=value)
        self.check_object_permissions(self.request, playbook)
        return playbook

    @extend_schema(
        responses={
            (200, "text/markdown"): OpenApiResponse(
                response=OpenApiTypes.STR, description="The playbook as one Markdown file."
            )
        }
    )
    @action(detail=True, url_path="download/markdown", url_name="markdown-download")
    def markdown_download(self, request, slug=None) -> HttpResponse:
        """Download the playbook as Markdown, for a ticket or a wiki page."""
        return downloads.markdown_response(self.get_object())

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="An OASIS CACAO Security Playbooks 2.0 playbook object.",
            )
        }
    )
    @action(detail=True, url_path="download/cacao", url_name="cacao-download")
    def cacao_download(self, request, slug=None) -> HttpResponse:
        """Download the playbook as a CACAO 2.0 JSON document for SOAR platforms."""
        return downloads.cacao_response(self.get_object())
