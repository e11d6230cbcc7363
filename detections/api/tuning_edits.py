"""The tuning entries of a detection through the API: list, read, add, change, delete.

Reads return the detection's ETag. Writes are conditional writes of the detection
(see detections.api.versioned): they need its ETag in If-Match, go through
`editing.edit` and return the new ETag.
"""

import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from detections.models import Detection, TuningEntry, ValidationRun
from detections.tuning_edit import (
    ConditionSyntaxError,
    condition_from_yaml,
    entry_delete,
    entry_field_problems,
    entry_label,
    entry_write,
)

from .detection_edits import COMMENT_FIELD, reject_unknown_fields
from .serializers import TuningEntrySerializer, tuning_entries_data
from .versioned import ETAG_HEADER, WRITE_ERRORS, etag_for

ENTRY_ID = OpenApiParameter(
    "entry_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The entry's `id`."
)


class TuningEntryWriteSerializer(serializers.Serializer):
    """The fields of a tuning entry that POST sets and PATCH changes."""

    condition = serializers.JSONField(
        help_text=(
            "Sigma selection of the events to exclude: an object of `Field|modifier` to a "
            'value or a list of values, such as {"Image|endswith": "\\\\pip.exe"}. A string '
            "is read as the same mapping written in YAML."
        )
    )
    reason = serializers.CharField(help_text="Why the excluded events are benign, Markdown.")
    owner = serializers.CharField(max_length=200, help_text="Team or person who owns the entry.")
    expires = serializers.DateField(
        required=False, allow_null=True, help_text="From this day on the entry no longer applies."
    )
    ticket = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Change reference."
    )
    enabled = serializers.BooleanField(required=False)
    rules = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Ids of the detection's Sigma rules the entry is limited to.",
    )
    branches = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Names of the query branches the entry is limited to.",
    )
    comment = COMMENT_FIELD

    def validate_condition(self, value):
        if not isinstance(value, str):
            return value
        try:
            return condition_from_yaml(value)
        except ConditionSyntaxError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class TuningEntryDeleteSerializer(serializers.Serializer):
    comment = COMMENT_FIELD


def _entry_values(body: TuningEntryWriteSerializer, entry: TuningEntry | None) -> dict:
    """Return the entry's fields after the write: the stored ones updated by the body."""
    values = {}
    if entry is not None:
        values = {
            name: getattr(entry, name)
            for name in ("condition", "rules", "branches", "reason", "owner")
        }
        values |= {"expires": entry.expires, "ticket": entry.ticket, "enabled": entry.enabled}
    values |= {name: value for name, value in body.validated_data.items() if name != "comment"}
    return values


def _checked_values(
    request: Request, detection: Detection, entry: TuningEntry | None
) -> tuple[dict, str]:
    """Validate the body against the model's checks; raise 400 naming each field."""
    body = TuningEntryWriteSerializer(data=request.data, partial=entry is not None)
    reject_unknown_fields(request.data, body)
    body.is_valid(raise_exception=True)
    values = _entry_values(body, entry)
    if entry is not None and not set(body.validated_data) - {"comment"}:
        raise exceptions.ValidationError({"detail": ["The body changes no field."]})
    problems = entry_field_problems(detection, values)
    if problems:
        raise exceptions.ValidationError(problems)
    return values, body.validated_data.get("comment", "")


class TuningEditMixin:
    """`tuning/` and `tuning/{entry_id}/` of a detection."""

    def _entry_response(self, detection: Detection, entry_uuid, status_code=200) -> Response:
        entry = detection.tuning_entries.get(uuid=entry_uuid)
        data = tuning_entries_data(detection, self.get_serializer_context(), [entry])[0]
        return Response(data, status=status_code, headers={"ETag": etag_for(detection)})

    @extend_schema(
        methods=["GET"],
        responses={200: TuningEntrySerializer(many=True)},
        description="The detection's tuning entries in their order, with its ETag.",
    )
    @extend_schema(
        methods=["POST"],
        parameters=[ETAG_HEADER],
        request=TuningEntryWriteSerializer,
        responses={
            201: OpenApiResponse(
                TuningEntrySerializer, description="The entry; ETag is the detection's new one."
            ),
            **WRITE_ERRORS,
        },
        description=(
            "Add a tuning entry. The condition is checked with pySigma first: an invalid "
            "condition, rule id or branch returns 400 naming the field and nothing is "
            "stored. The renders and a validation run are queued for the workers."
        ),
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="tuning",
        url_name="tuning",
        filter_backends=[],
        pagination_class=None,
    )
    def tuning(self, request: Request, slug=None) -> Response:
        """List or add tuning entries of the detection."""
        detection = self.get_object()
        if request.method == "GET":
            data = tuning_entries_data(detection, self.get_serializer_context())
            return Response(data, headers={"ETag": etag_for(detection)})
        values, comment = _checked_values(request, detection, None)
        new_uuid = uuid.uuid4()

        def mutate(locked: Detection) -> None:
            entry_write(
                locked,
                None,
                values | {"uuid": new_uuid},
                user=request.user,
                trigger=ValidationRun.Trigger.API,
            )

        entry_name = entry_label(TuningEntry(condition=values["condition"], owner=values["owner"]))
        return self.edit_response(
            request,
            detection,
            mutate,
            comment or f"Added the tuning entry {entry_name}",
            respond=lambda stored: self._entry_response(stored, new_uuid, status.HTTP_201_CREATED),
        )

    @extend_schema(
        methods=["GET"], parameters=[ENTRY_ID], responses={200: TuningEntrySerializer}
    )
    @extend_schema(
        methods=["PATCH"],
        parameters=[ENTRY_ID, ETAG_HEADER],
        request=TuningEntryWriteSerializer,
        responses={
            200: OpenApiResponse(
                TuningEntrySerializer, description="The entry; ETag is the detection's new one."
            ),
            **WRITE_ERRORS,
        },
        description=(
            "Change fields of a tuning entry, such as `enabled: false` to disable it. An "
            "invalid result returns 400 and the stored entry stays."
        ),
    )
    @extend_schema(
        methods=["DELETE"],
        parameters=[ENTRY_ID, ETAG_HEADER],
        request=TuningEntryDeleteSerializer,
        responses={
            204: OpenApiResponse(description="Deleted; ETag is the detection's new one."),
            **WRITE_ERRORS,
        },
        description=(
            "Delete a tuning entry; the body may carry a `comment` for the history. "
            "Restoring an older version brings the entry back."
        ),
    )
    @action(
        detail=True,
        methods=["get", "patch", "delete"],
        url_path=r"tuning/(?P<entry_id>[0-9a-fA-F-]{36})",
        url_name="tuning-entry",
        filter_backends=[],
    )
    def tuning_entry(self, request: Request, slug=None, entry_id=None) -> Response:
        """Read, change or delete one tuning entry of the detection."""
        detection = self.get_object()
        try:
            entry_uuid = uuid.UUID(entry_id)
        except ValueError as exc:
            raise exceptions.NotFound("Not a tuning entry id.") from exc
        entry = get_object_or_404(detection.tuning_entries, uuid=entry_uuid)
        if request.method == "GET":
            return self._entry_response(detection, entry_uuid)
        if request.method == "DELETE":
            body = TuningEntryDeleteSerializer(data=request.data)
            reject_unknown_fields(request.data, body)
            body.is_valid(raise_exception=True)
            return self.edit_response(
                request,
                detection,
                lambda locked: entry_delete(
                    locked, entry, user=request.user, trigger=ValidationRun.Trigger.API
                ),
                body.validated_data["comment"] or f"Deleted the tuning entry {entry_label(entry)}",
                respond=lambda stored: Response(
                    status=status.HTTP_204_NO_CONTENT, headers={"ETag": etag_for(stored)}
                ),
            )
        values, comment = _checked_values(request, detection, entry)

        def mutate(locked: Detection) -> None:
            entry_write(locked, entry, values, user=request.user, trigger=ValidationRun.Trigger.API)

        return self.edit_response(
            request,
            detection,
            mutate,
            comment or f"Changed the tuning entry {entry_label(entry)}",
            respond=lambda stored: self._entry_response(stored, entry_uuid),
        )
