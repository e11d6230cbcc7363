"""File downloads of a detection: authored queries, Sigma rules and a ZIP of all rules.

Web views and API views both answer with these responses, so file names and
content types are the same everywhere.
"""

import io
import re
import zipfile
from pathlib import PurePosixPath

from django.http import HttpResponse

from .models import Detection, Query, SigmaRule

SIGMA_CONTENT_TYPE = "application/yaml; charset=utf-8"
SPL_CONTENT_TYPE = "text/plain; charset=utf-8"
ZIP_CONTENT_TYPE = "application/zip"

# A fixed timestamp keeps the archive identical for identical rules.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)


def query_filename(query: Query) -> str:
    suffix = f"-{query.position + 1}" if query.position else ""
    return f"{query.detection.slug}{suffix}.{query.file_extension}"


def sigma_filename(rule: SigmaRule) -> str:
    """Return the rule's file name, reduced to characters that are safe in a header."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(rule.filename).name)
    return name or f"{rule.rule_id}.yml"


def query_response(query: Query) -> HttpResponse:
    return _attachment(query.text.encode("utf-8"), SPL_CONTENT_TYPE, query_filename(query))


def sigma_response(rule: SigmaRule) -> HttpResponse:
    return _attachment(rule.yaml_text.encode("utf-8"), SIGMA_CONTENT_TYPE, sigma_filename(rule))


def sigma_zip_bytes(detection: Detection) -> bytes:
    """Build a ZIP holding every Sigma rule of the detection under its file name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rule in detection.sigma_rules.all():
            info = zipfile.ZipInfo(f"{detection.slug}/{sigma_filename(rule)}", ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, rule.yaml_text.encode("utf-8"))
    return buffer.getvalue()


def sigma_zip_response(detection: Detection) -> HttpResponse:
    body = sigma_zip_bytes(detection)
    return _attachment(body, ZIP_CONTENT_TYPE, f"{detection.slug}-sigma.zip")


def _attachment(body: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
