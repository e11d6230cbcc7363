"""Template filters for detection pages: Markdown, code highlighting and list helpers."""

import json

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from detections.highlight import highlight_code
from detections.markdown import render_markdown, web_url
from detections.models import DetectionBranch, Query, SigmaRule

register = template.Library()

BRANCH_LIST_LABELS = {
    "dll_names": "DLL names",
    "excluded_processes": "Excluded processes",
    "excluded_paths": "Excluded paths",
    "processes": "Processes",
    "command_line_markers": "Command-line markers",
    "file_extensions": "File extensions",
    "staging_paths": "Staging paths",
}


@register.filter
def markdown(text: str) -> SafeString:
    return render_markdown(text)


@register.filter
def highlight(text: str, language: str) -> SafeString:
    return highlight_code(text, language)


@register.filter
def as_list(value) -> list:
    """Wrap a single value in a list, so a JSON field with a string or a list renders alike."""
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


@register.filter
def branch_lists(branch: DetectionBranch) -> list[tuple[str, list]]:
    """Return (label, values) for each non-empty list field of a branch, in model order."""
    lists = []
    for field in DetectionBranch.LIST_FIELDS:
        values = getattr(branch, field)
        if values:
            lists.append((BRANCH_LIST_LABELS.get(field, field), values))
    return lists


@register.inclusion_tag("detections/partials/code_block.html")
def query_code_block(query: Query) -> dict:
    extension = query.file_extension
    return {
        "block_id": f"query-code-{query.position}",
        "code": query.text,
        "lexer": query.language,
        "language_label": query.language,
        "download_url": reverse(
            "detections:query_download", args=[query.detection.slug, query.position, extension]
        ),
        "download_id": f"download-query-{query.position}",
        "download_label": f"Download {query.language} (.{extension})",
    }


@register.inclusion_tag("detections/partials/code_block.html")
def tuned_query_code_block(query: Query, tuned_text: str) -> dict:
    return {
        "block_id": f"tuned-query-code-{query.position}",
        "code": tuned_text,
        "lexer": query.language,
        "language_label": f"{query.language} with tuning",
        "download_url": reverse(
            "detections:tuned_query_download",
            args=[query.detection.slug, query.position, query.file_extension],
        ),
        "download_id": f"download-tuned-query-{query.position}",
        "download_label": f"Download tuned {query.language} (.{query.file_extension})",
    }


@register.inclusion_tag("detections/partials/code_block.html")
def macro_code_block(detection, stanza: str) -> dict:
    return {
        "block_id": "tuning-macro-code",
        "code": stanza,
        "lexer": "ini",
        "language_label": "macros.conf",
        "download_url": reverse("detections:macros_download", args=[detection.slug]),
        "download_id": "download-macros",
        "download_label": "Download macros.conf",
    }


@register.inclusion_tag("detections/partials/code_block.html")
def sigma_code_block(rule: SigmaRule) -> dict:
    return {
        "block_id": f"sigma-code-{rule.rule_id}",
        "code": rule.yaml_text,
        "lexer": "yaml",
        "language_label": "Sigma YAML",
        "download_url": reverse(
            "detections:sigma_download", args=[rule.detection.slug, rule.rule_id]
        ),
        "download_id": f"download-sigma-{rule.rule_id}",
        "download_label": "Download .yml",
    }


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@register.filter
def http_url(value: str) -> str:
    """Return `value` if it is an http(s) URL, else "", so content cannot add javascript: links."""
    return web_url(value)


@register.filter
def external_link(url: str, text: str | None = None) -> SafeString:
    """Render a link to an http(s) URL, or the text without a link for any other value.

    A reference such as `javascript:alert(1)` or "Internal research" then shows as
    plain, escaped text instead of a link.
    """
    label = url if text is None or text == "" else text
    href = web_url(url)
    if not href:
        return format_html('<span class="inert-link">{}</span>', label)
    return format_html('<a href="{}" rel="noopener noreferrer nofollow">{}</a>', href, label)
