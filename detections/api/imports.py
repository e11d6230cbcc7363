"""Uploading Sigma rules through the API: one .yml file or a .zip archive per request."""

import logging
from pathlib import PurePosixPath

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from detections.importers.sigma import import_sigma
from detections.importers.sources import (
    YAML_SUFFIXES,
    ImportLimits,
    SourceFile,
    printable,
    zip_sources,
)
from detections.permissions import can_edit

logger = logging.getLogger(__name__)


class FailureSerializer(serializers.Serializer):
    file = serializers.CharField(help_text="The uploaded file, or `archive.zip:entry/path`.")
    reason = serializers.CharField()
    line = serializers.IntegerField(required=False, help_text="Line of the problem, from 1.")


class NoticeSerializer(serializers.Serializer):
    file = serializers.CharField()
    message = serializers.CharField()
    line = serializers.IntegerField(required=False)


class ImportSummarySerializer(serializers.Serializer):
    """The outcome of an import: rules created, updated and unchanged, and the failed files."""

    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    failed = FailureSerializer(many=True)
    warnings = NoticeSerializer(
        many=True, help_text="Tags and log sources that could not be mapped, per file."
    )


UPLOAD_REQUEST = inline_serializer(
    "SigmaUpload",
    {"file": serializers.FileField(help_text="A Sigma rule (.yml, .yaml) or a .zip of rules.")},
)


class CanEditDetections(permissions.BasePermission):
    """Only users with the change permission on detections (authors, reviewers) import."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and can_edit(request.user)


class SigmaImportView(APIView):
    """Import Sigma rules uploaded as one .yml file or a .zip archive."""

    # TODO: allow only users with the author role once the portal has roles; until
    # then any signed-in user may import.
    permission_classes = [CanEditDetections]
    parser_classes = [MultiPartParser]
    # portal.middleware.RequestSizeLimitMiddleware applies this limit instead of
    # DATA_UPLOAD_MAX_MEMORY_SIZE.
    max_request_bytes_setting = "IMPORT_MAX_UPLOAD_BYTES"

    @extend_schema(
        operation_id="v1_imports_sigma",
        request={"multipart/form-data": UPLOAD_REQUEST},
        responses={
            200: OpenApiResponse(ImportSummarySerializer, description="Every rule imported."),
            400: OpenApiResponse(
                description="No `file` part, or a file that is not .yml, .yaml or .zip."
            ),
            401: OpenApiResponse(description="Not signed in, or an invalid token."),
            403: OpenApiResponse(
                description="The user may not edit detections (author and reviewer roles may)."
            ),
            413: OpenApiResponse(
                description="The request is larger than IMPORT_MAX_UPLOAD_BYTES."
            ),
            422: OpenApiResponse(
                ImportSummarySerializer,
                description=(
                    "The file, the archive or some of its entries were rejected; `failed` "
                    "names each with the reason. Rules of the other entries were imported."
                ),
            ),
        },
        description=(
            "Import Sigma rules like `manage.py import_sigma`: each rule, correlation rule "
            "and filter becomes a detection (or updates the one with its id), and renders "
            "are queued for new and changed rules. New detections start as "
            "IMPORT_SIGMA_STATUS (draft). Files are checked against the IMPORT_* limits "
            "before pySigma parses them."
        ),
    )
    def post(self, request: Request) -> Response:
        limit = settings.IMPORT_MAX_UPLOAD_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            message = "The Content-Length header is not a number."
            return _detail(message, status.HTTP_400_BAD_REQUEST)
        # Checked before the body is parsed, so an oversized upload is never read.
        if length > limit:
            return _too_large(length, limit)

        upload = request.FILES.get("file")
        if upload is None:
            return _detail(
                "Send the rules as a multipart form field named `file`.",
                status.HTTP_400_BAD_REQUEST,
            )
        if upload.size > limit:
            return _too_large(upload.size, limit)

        # Browsers may send a full client path; only the file name is kept.
        name = printable(PurePosixPath((upload.name or "").replace("\\", "/")).name)
        sources = _upload_sources(upload, name)
        if sources is None:
            return _detail(
                f"{name!r} is not a .yml, .yaml or .zip file; upload one Sigma rule or a ZIP "
                "archive of rules.",
                status.HTTP_400_BAD_REQUEST,
            )

        summary = import_sigma(sources)
        logger.info(
            "Sigma upload %s by %s: %d created, %d updated, %d unchanged, %d failed",
            name,
            request.user.get_username(),
            summary.created,
            summary.updated,
            summary.unchanged,
            len(summary.failed),
        )
        code = status.HTTP_200_OK if summary.succeeded else status.HTTP_422_UNPROCESSABLE_ENTITY
        return Response(summary.as_dict(), status=code)


def _upload_sources(upload, name: str) -> list[SourceFile] | None:
    """Return the files of an upload, or None when its type is not supported."""
    limits = ImportLimits.from_settings()
    lowered = name.lower()
    if lowered.endswith(".zip"):
        return list(zip_sources(upload.file, name, limits))
    if not lowered.endswith(YAML_SUFFIXES):
        return None
    source = SourceFile(name, name)
    data = upload.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        source.error = f"file is larger than the limit of {limits.max_file_bytes} bytes"
    else:
        source.data = data
    return [source]


def _detail(message: str, code: int) -> Response:
    return Response({"detail": message}, status=code)


def _too_large(size: int, limit: int) -> Response:
    return _detail(
        f"The upload has {size} bytes; the limit is {limit} (IMPORT_MAX_UPLOAD_BYTES). "
        "Split the rules into smaller archives.",
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )
