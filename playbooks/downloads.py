"""File downloads of a playbook, shared by the web views and the API views."""

from django.http import HttpResponse

from .exports.cacao import CONTENT_TYPE as CACAO_CONTENT_TYPE
from .exports.cacao import cacao_filename, cacao_json
from .exports.markdown import CONTENT_TYPE as MARKDOWN_CONTENT_TYPE
from .exports.markdown import markdown_filename, playbook_markdown
from .models import Playbook


def markdown_response(playbook: Playbook) -> HttpResponse:
    body = playbook_markdown(playbook).encode("utf-8")
    return _attachment(body, MARKDOWN_CONTENT_TYPE, markdown_filename(playbook))


def cacao_response(playbook: Playbook) -> HttpResponse:
    body = cacao_json(playbook).encode("utf-8")
    return _attachment(body, CACAO_CONTENT_TYPE, cacao_filename(playbook))


def _attachment(body: bytes, content_type: str, filename: str) -> HttpResponse:
    # Slugs are letters, digits, hyphens and underscores, so the name needs no escaping.
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
