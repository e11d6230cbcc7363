"""Conditional writes, workflow and history for the detection and playbook API.

A GET of one object returns a strong ETag made of its slug and revision, so it
changes with every stored change and not when a worker finishes a render. Every
write must send that ETag in If-Match: without it the API returns 428, and with a
stale one 412 and what changed since. Authentication (401) and permissions (403)
are checked before the precondition.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import models
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from reversion.models import Version

from detections import editing
from detections.editing import EditConflict, RestoreError, TransitionError
from detections.models import Detection, StatusTransition, ValidationRun
from detections.permissions import can_edit, can_publish

ETAG_HEADER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="The ETag of the object's last GET. A stale one returns 412.",
)
WRITE_ERRORS = {
    400: OpenApiResponse(description="Invalid input; the body names the field and the reason."),
    401: OpenApiResponse(description="Not signed in, or an invalid, expired or revoked token."),
    403: OpenApiResponse(description="The user or token may not make this change."),
    404: OpenApiResponse(description="No such object, or one the caller may not see."),
    412: OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="If-Match is stale: the body has the current revision and what changed.",
    ),
    428: OpenApiResponse(description="If-Match is missing."),
}
RESTORE_ERRORS = {
    **WRITE_ERRORS,
    409: OpenApiResponse(description="The version refers to data that no longer exists."),
}


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = "Send If-Match with the ETag from a GET of this object."
    default_code = "precondition_required"


def etag_for(obj: models.Model) -> str:
    """Return the strong ETag of `obj`: its slug and revision, quoted."""
    return f'"{obj.slug}.{obj.revision}"'


def _etags(header: str) -> list[str]:
    return [item.strip() for item in header.split(",") if item.strip()]


def expected_revision(request: Request, obj: models.Model) -> int:
    """Return the revision the client's If-Match names, or raise 428.

    An ETag of another object, a weak ETag or `*` counts as stale, because only
    the exact revision protects against lost updates.
    """
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired()
    current = etag_for(obj)
    tags = _etags(header)
    if current in tags:
        return obj.revision
    prefix = f'"{obj.slug}.'
    for tag in tags:
        if tag.startswith(prefix) and tag.endswith('"'):
            number = tag[len(prefix) : -1]
            if number.isdigit():
                return int(number)
    # Not a revision of this object: report it as changed without a list of changes.
    raise _Stale(obj, EditConflict(expected_revision=0, current_revision=obj.revision, changes=[]))


def not_modified(request: Request, tag: str) -> bool:
    """Return whether If-None-Match names `tag`, strong or weak, so a GET may return 304."""
    tags = _etags(request.headers.get("If-None-Match", ""))
    return tag in tags or f"W/{tag}" in tags


class _Stale(Exception):
    def __init__(self, obj, conflict: EditConflict):
        self.obj = obj
        self.conflict = conflict


def conflict_response(obj: models.Model, conflict: EditConflict) -> Response:
    obj.revision = conflict.current_revision
    body = {
        "detail": (
            f"This {obj._meta.verbose_name} was changed since you read it: you sent revision "
            f"{conflict.expected_revision or 'unknown'}, the stored one is "
            f"{conflict.current_revision}. GET it again, reapply your change and send the new "
            "ETag."
        ),
        "expected_revision": conflict.expected_revision or None,
        "current_revision": conflict.current_revision,
        "changes": [change.as_dict() for change in conflict.changes],
    }
    return Response(
        body, status=status.HTTP_412_PRECONDITION_FAILED, headers={"ETag": etag_for(obj)}
    )


class EditPermission(permissions.BasePermission):
    """Reads follow the object's visibility; writes need the model's change permission.

    Publishing needs more; `detections.editing.transition` checks that per move.
    """

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        if not (request.user and request.user.is_authenticated):
            return False
        return can_edit(request.user, view.edit_model)


class TransitionRequestSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Detection.Status.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class StatusTransitionSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = StatusTransition
        fields = ["from_status", "to_status", "user", "comment", "revision", "created_at"]


class HistoryEntrySerializer(serializers.Serializer):
    version_id = serializers.IntegerField()
    revision = serializers.IntegerField(allow_null=True)
    user = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    comment = serializers.CharField(allow_blank=True)


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField(
        help_text="Row and field, such as `false_positives[2].description`."
    )
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    diff = serializers.CharField(help_text="Unified diff when either value has several lines.")


class DiffQuerySerializer(serializers.Serializer):
    from_version = serializers.IntegerField(min_value=1)
    to_version = serializers.IntegerField(min_value=1)

    def to_internal_value(self, data):
        # `from` is a Python keyword, so the query parameters are renamed here.
        renamed = {"from_version": data.get("from"), "to_version": data.get("to")}
        return super().to_internal_value(renamed)


class RestoreRequestSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class VersionedMixin:
    """ETags, conditional writes, workflow transitions and history for a viewset.

    The viewset sets `edit_model` and `detail_serializer_class`, and its `get_object`
    returns only objects the caller may see.
    """

    edit_model: type[models.Model]
    detail_serializer_class: type[serializers.Serializer]

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        obj = self.get_object()
        tag = etag_for(obj)
        if not_modified(request, tag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
        data = self.get_serializer(obj).data
        return Response(data, headers={"ETag": tag})

    def conditional_write(
        self, request: Request, obj: models.Model, write, respond=None
    ) -> Response:
        """Run `write(expected_revision)` and return the stored object with its new ETag.

        `respond(stored)`, when given, builds the response instead. Maps EditConflict
        to 412, TransitionError to 400, RestoreError to 409 and a rejected permission
        to 403.
        """
        try:
            stored = write(expected_revision(request, obj))
        except _Stale as stale:
            return conflict_response(stale.obj, stale.conflict)
        except EditConflict as conflict:
            return conflict_response(obj, conflict)
        except TransitionError as exc:
            raise exceptions.ValidationError({"to": [str(exc)]}) from exc
        except RestoreError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        return respond(stored) if respond is not None else self.stored_response(stored)

    def edit_response(
        self, request: Request, obj: models.Model, mutate, comment: str, respond=None
    ) -> Response:
        """Apply `mutate` through `editing.edit` as a conditional write."""
        return self.conditional_write(
            request,
            obj,
            lambda revision: editing.edit(
                obj,
                user=request.user,
                expected_revision=revision,
                mutate=mutate,
                comment=comment,
            ),
            respond,
        )

    def stored_response(self, obj: models.Model) -> Response:
        fresh = self.get_queryset().get(pk=obj.pk)
        data = self.detail_serializer_class(fresh, context=self.get_serializer_context()).data
        return Response(data, headers={"ETag": etag_for(fresh)})

    @extend_schema(
        methods=["GET"],
        responses={200: StatusTransitionSerializer(many=True)},
        description="The workflow transitions of the object, newest first.",
    )
    @extend_schema(
        methods=["POST"],
        parameters=[ETAG_HEADER],
        request=TransitionRequestSerializer,
        description=(
            "Move the object in the workflow draft -> review -> published -> deprecated "
            "(also review -> draft, published -> review and deprecated -> draft). Moves to "
            "or from published and deprecated need the publish permission (reviewers)."
        ),
        responses={200: OpenApiTypes.OBJECT, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="transitions",
        filter_backends=[],
        pagination_class=None,
    )
    def transitions(self, request: Request, slug=None) -> Response:
        obj = self.get_object()
        if request.method == "GET":
            rows = StatusTransition.objects.filter(
                content_type__app_label=obj._meta.app_label,
                content_type__model=obj._meta.model_name,
                object_id=obj.pk,
            ).select_related("user")
            return Response(StatusTransitionSerializer(rows, many=True).data)
        body = TransitionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = body.validated_data["to"]
        publishing = editing.PUBLISHING_STATUSES
        if (obj.status in publishing or target in publishing) and not can_publish(
            request.user, self.edit_model
        ):
            raise exceptions.PermissionDenied(
                f"Moving from {obj.status} to {target} needs the publish permission (reviewers)."
            )
        return self.conditional_write(
            request,
            obj,
            lambda revision: editing.transition(
                obj,
                user=request.user,
                to_status=target,
                comment=body.validated_data["comment"],
                expected_revision=revision,
            ),
        )

    @extend_schema(responses={200: HistoryEntrySerializer(many=True)})
    @action(detail=True, url_path="history", filter_backends=[], pagination_class=None)
    def history(self, request: Request, slug=None) -> Response:
        """List the stored versions of the object, newest first, with revision, user and comment."""
        obj = self.get_object()
        entries = [entry.__dict__ for entry in editing.history(obj)]
        return Response(HistoryEntrySerializer(entries, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.INT, required=True, description="A version_id."),
            OpenApiParameter("to", OpenApiTypes.INT, required=True, description="A version_id."),
        ],
        responses={
            200: FieldChangeSerializer(many=True),
            404: OpenApiResponse(description="Unknown version."),
        },
    )
    @action(
        detail=True,
        url_path="history/diff",
        url_name="history-diff",
        filter_backends=[],
        pagination_class=None,
    )
    def history_diff(self, request: Request, slug=None) -> Response:
        """Compare two versions of the object field by field, related rows included."""
        obj = self.get_object()
        query = DiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            changes = editing.diff(
                obj, query.validated_data["from_version"], query.validated_data["to_version"]
            )
        except Version.DoesNotExist as exc:
            raise Http404("No such version of this object; take ids from its history.") from exc
        rows = [change.as_dict() for change in changes]
        return Response(FieldChangeSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[
            ETAG_HEADER,
            OpenApiParameter("version_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        request=RestoreRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, **RESTORE_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"history/(?P<version_id>\d+)/restore",
        url_name="history-restore",
        filter_backends=[],
    )
    def history_restore(self, request: Request, slug=None, version_id=None) -> Response:
        """Restore a stored version, related rows included, as a new revision.

        The workflow status is kept: only transitions change it.
        """
        obj = self.get_object()
        body = RestoreRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not Version.objects.get_for_object(obj).filter(pk=int(version_id)).exists():
            raise Http404("No such version of this object; take ids from its history.")
        return self.conditional_write(
            request,
            obj,
            lambda revision: editing.restore(
                obj,
                user=request.user,
                version_id=int(version_id),
                expected_revision=revision,
                comment=body.validated_data["comment"],
                trigger=ValidationRun.Trigger.API,
            ),
        )
