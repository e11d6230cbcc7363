"""File downloads of a detection: authored queries, Sigma rules, a ZIP of all rules and
the queries rendered from the Sigma rules for each render target.

Web views and API views both return these responses, so file names and content
types are the same everywhere.
"""

import io
import re
import zipfile
from pathlib import PurePosixPath

from django.http import Http404, HttpResponse

from .content.yamlio import dump_document
from .models import Detection, Query, Render, SigmaRule
from .pysigma.convert import RenderTarget, render_targets
from .tuning import SigmaFilterFile, detection_macro, filter_files, tuned_spl

SIGMA_CONTENT_TYPE = "application/yaml; charset=utf-8"
SPL_CONTENT_TYPE = "text/plain; charset=utf-8"
# Rendered queries are plain text in every target language, including savedsearches.conf.
RENDER_CONTENT_TYPE = "text/plain; charset=utf-8"
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


def render_filename(rule: SigmaRule, target: RenderTarget) -> str:
    """Return `<rule file stem>.<target key>.<extension>`, e.g. `dll_load.splunk.spl`."""
    stem = PurePosixPath(sigma_filename(rule)).stem or str(rule.rule_id)
    return f"{stem}.{target.key}.{target.extension}"


def render_target_filename(detection: Detection, target: RenderTarget) -> str:
    return f"{detection.slug}.{target.key}.{target.extension}"


def configured_target(key: str) -> RenderTarget:
    """Return the render target `key` from settings.RENDER_TARGETS, or raise Http404."""
    target = render_targets().get(key)
    if target is None:
        raise Http404(f"Unknown render target {key!r}.")
    return target


def rendered_render(detection: Detection, target: RenderTarget, rule_id) -> Render:
    """Return one Sigma rule's render, or raise Http404 unless its status is rendered."""
    render = (
        Render.objects.filter(
            sigma_rule__detection=detection, sigma_rule__rule_id=rule_id, target=target.key
        )
        .select_related("sigma_rule")
        .first()
    )
    if render is None:
        raise Http404(f"No render of Sigma rule {rule_id} for {target.label}.")
    if render.status != Render.Status.RENDERED:
        raise Http404(f"The render of Sigma rule {rule_id} for {target.label} is {render.status}.")
    return render


def target_renders(detection: Detection, target: RenderTarget) -> list[Render]:
    """Return the detection's rendered queries for `target` in Sigma rule order.

    Raises Http404 when no rule of the detection is rendered for the target.
    """
    renders = list(
        Render.objects.filter(
            sigma_rule__detection=detection, target=target.key, status=Render.Status.RENDERED
        )
        .select_related("sigma_rule")
        .order_by("sigma_rule__position", "sigma_rule__pk")
    )
    if not renders:
        raise Http404(f"No Sigma rule of {detection.slug} is rendered for {target.label}.")
    return renders


def render_response(render: Render, target: RenderTarget) -> HttpResponse:
    """Send one rendered query byte for byte, as UTF-8."""
    body = render.query.encode("utf-8")
    return _attachment(body, RENDER_CONTENT_TYPE, render_filename(render.sigma_rule, target))


def target_renders_bytes(renders: list[Render]) -> bytes:
    """Join rendered queries with one blank line between them and a line end after the last.

    Trailing line ends of each query are dropped first, so the separator is always
    exactly one blank line.
    """
    queries = [render.query.rstrip("\r\n") for render in renders]
    return ("\n\n".join(queries) + "\n").encode("utf-8")


def target_renders_response(
    detection: Detection, target: RenderTarget, renders: list[Render]
) -> HttpResponse:
    body = target_renders_bytes(renders)
    return _attachment(body, RENDER_CONTENT_TYPE, render_target_filename(detection, target))


def query_response(query: Query) -> HttpResponse:
    return _attachment(query.text.encode("utf-8"), SPL_CONTENT_TYPE, query_filename(query))


def sigma_response(rule: SigmaRule) -> HttpResponse:
    return _attachment(rule.yaml_text.encode("utf-8"), SIGMA_CONTENT_TYPE, sigma_filename(rule))


def sigma_zip_bytes(detection: Detection) -> bytes:
    """Build a ZIP holding every Sigma rule of the detection under its file name, and
    the Sigma filters of its active tuning entries under filters/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        members = [(sigma_filename(rule), rule.yaml_text) for rule in detection.sigma_rules.all()]
        members += [(item.filename, filter_yaml(item)) for item in filter_files(detection)]
        for name, text in members:
            info = zipfile.ZipInfo(f"{detection.slug}/{name}", ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def filter_yaml(item: SigmaFilterFile) -> str:
    """Return a tuning entry's Sigma filter as YAML, in the key order of the Sigma specification."""
    return dump_document(item.document)


def filter_response(detection: Detection, name: str) -> HttpResponse:
    """Send the Sigma filter file `filters/<name>.yml` of an active entry, or raise Http404."""
    for item in filter_files(detection):
        if item.filename == f"filters/{name}.yml":
            body = filter_yaml(item).encode("utf-8")
            return _attachment(body, SIGMA_CONTENT_TYPE, f"{name}.yml")
    raise Http404(f"No active tuning entry of {detection.slug} has the filter {name}.yml.")


def macros_conf_text(detection: Detection) -> str:
    """Return the detection's filter macro as a Splunk macros.conf file."""
    macro = detection_macro(detection)
    lines = [
        f"# Filter macro of the detection {detection.slug}, from its active tuning entries.",
        f"# The tuned SPL calls it as `{macro.name}` right after the fields it filters exist.",
    ]
    for entry, reason in macro.skipped:
        lines.append(f"# Tuning entry {entry.uuid} is not in the macro: {reason}.")
    return "\n".join(lines) + "\n" + macro.stanza


def macros_response(detection: Detection) -> HttpResponse:
    body = macros_conf_text(detection).encode("utf-8")
    return _attachment(body, SPL_CONTENT_TYPE, f"{detection.slug}-macros.conf")


def tuned_query_filename(query: Query) -> str:
    stem = PurePosixPath(query_filename(query))
    return f"{stem.stem}-tuned{stem.suffix}"


def tuned_query_response(query: Query) -> HttpResponse:
    """Send an authored SPL query with the detection's filter macro call applied."""
    text = tuned_spl(query, detection_macro(query.detection))
    return _attachment(text.encode("utf-8"), SPL_CONTENT_TYPE, tuned_query_filename(query))


def sigma_zip_response(detection: Detection) -> HttpResponse:
    body = sigma_zip_bytes(detection)
    return _attachment(body, ZIP_CONTENT_TYPE, f"{detection.slug}-sigma.zip")


def _attachment(body: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
