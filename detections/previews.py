"""Live previews of edited Sigma rules: queued by the web page, converted by a worker.

pySigma never runs in a web request. The edit page posts the rule text and gets the
id of a queued Preview row. It polls the row until a worker on the `render` queue has
stored the converted query, or the error with the line of the rule text at fault
where that is known.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Preview, SigmaRule
from .pysigma.convert import load_rule, render_targets
from .rendering import MAX_ERROR_CHARS, target_converter
from .rule_edit import RuleTextError, rule_text_check

logger = logging.getLogger(__name__)


class PreviewUnavailable(ValueError):
    """A preview that cannot be requested, with the reason."""


def preview_request(
    text: str, *, user, sigma_rule: SigmaRule | None = None, target: str | None = None
) -> Preview:
    """Store a queued preview and send it to the `render` queue once committed."""
    target = target or settings.PREVIEW_TARGET
    if target not in render_targets():
        raise PreviewUnavailable(
            f"unknown render target {target!r}; configured: {', '.join(render_targets())}"
        )
    cutoff = timezone.now() - timedelta(seconds=settings.PREVIEW_MAX_AGE_SECONDS)
    Preview.objects.filter(created_at__lt=cutoff).delete()
    preview = Preview.objects.create(
        sigma_rule=sigma_rule,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
        target=target,
        rule_text=text,
    )
    transaction.on_commit(lambda: preview_enqueue(preview.pk))
    return preview


def preview_enqueue(preview_id) -> bool:
    """Send a preview to the workers; fail it with the reason when the broker is unreachable."""
    from kombu.exceptions import OperationalError as BrokerError

    from .tasks import render_preview

    try:
        render_preview.apply_async(args=[str(preview_id)])
    except BrokerError as exc:
        logger.warning("broker unreachable, preview %s failed: %s", preview_id, exc)
        Preview.objects.filter(pk=preview_id, status=Preview.Status.QUEUED).update(
            status=Preview.Status.FAILED,
            error=(
                f"The preview could not be sent to a worker: {exc}. "
                "Check CELERY_BROKER_URL and that the broker and a worker are running."
            ),
            finished_at=timezone.now(),
        )
        return False
    return True


def preview_run(preview_id, *, timeout_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Check and convert one preview and store the outcome; skip one already finished.

    A preview left running by a retried task is run again: it only reads its own row.
    """
    unfinished = (Preview.Status.QUEUED, Preview.Status.RUNNING)
    claimed = Preview.objects.filter(pk=preview_id, status__in=unfinished).update(
        status=Preview.Status.RUNNING
    )
    if not claimed:
        return
    preview = Preview.objects.select_related("sigma_rule").get(pk=preview_id)
    try:
        stored_id = str(preview.sigma_rule.rule_id) if preview.sigma_rule else None
        checked = rule_text_check(preview.rule_text, rule_id=stored_id)
    except RuleTextError as exc:
        _finish(preview, error=exc.message, error_line=exc.line)
        return
    target = render_targets().get(preview.target)
    if target is None:
        _finish(preview, error=f"The render target {preview.target!r} is no longer configured.")
        return
    converter = target_converter(target)
    if isinstance(converter, str):
        _finish(preview, error=converter)
        return
    try:
        loaded = load_rule(checked.text)
        conversion = converter.convert(loaded, propagate=timeout_errors)
    except timeout_errors:
        _finish(preview, error=f"Timed out after {settings.RENDER_SOFT_TIME_LIMIT} s.")
        return
    except ValueError as exc:
        _finish(preview, error=str(exc))
        return
    _finish(
        preview,
        query=conversion.query,
        error=conversion.error,
        warnings=[warning.as_dict() for warning in conversion.warnings],
    )


def _finish(
    preview: Preview,
    *,
    query: str = "",
    error: str = "",
    error_line: int | None = None,
    warnings: list | None = None,
) -> None:
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + " [truncated]"
    Preview.objects.filter(pk=preview.pk, status=Preview.Status.RUNNING).update(
        status=Preview.Status.FAILED if error else Preview.Status.RENDERED,
        query=query,
        error=error,
        error_line=error_line,
        warnings=warnings or [],
        finished_at=timezone.now(),
    )


def preview_as_dict(preview: Preview) -> dict:
    """Return what the edit page's poll reads of a preview."""
    return {
        "id": str(preview.pk),
        "status": preview.status,
        "finished": preview.status in Preview.TERMINAL,
        "target": preview.target,
        "target_label": _target_label(preview.target),
        "query": preview.query,
        "error": preview.error,
        "error_line": preview.error_line,
        "warnings": preview.warnings,
    }


def _target_label(key: str) -> str:
    target = render_targets().get(key)
    return target.label if target else key
