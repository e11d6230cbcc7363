"""Edit pages of a detection's tuning entries: add, change, enable or disable, delete.

They follow the other edit pages (detections.edit_flow). Each form carries the
detection revision it was loaded from and a change comment, and saves through
`editing.edit`. When someone else changed the detection in between, the conflict
page shows the changes and keeps the typed text.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.forms import BooleanField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from . import forms
from .edit_flow import EditPage, edit_page
from .edit_views import EDIT_METHODS, editable_detection
from .models import Detection, TuningEntry, ValidationRun
from .tuning_edit import condition_to_yaml, entry_delete, entry_label, entry_write


def _tuning_url(detection: Detection, entry: TuningEntry | None = None) -> str:
    anchor = f"tuning-{entry.uuid}" if entry is not None else "tuning"
    return f"{detection.get_absolute_url()}#{anchor}"


def _entry_of(detection: Detection, entry_uuid) -> TuningEntry:
    return get_object_or_404(detection.tuning_entries, uuid=entry_uuid)


@login_required
@require_http_methods(EDIT_METHODS)
def tuning_entry_add(request: HttpRequest, slug: str) -> HttpResponse:
    detection = editable_detection(request, slug)

    def form_factory(data, initial=None):
        return forms.TuningEntryForm(
            data, initial=initial, detection=detection, default_comment="Added a tuning entry"
        )

    def apply(locked, form, extra) -> None:
        entry_write(
            locked, None, form.values(), user=request.user, trigger=ValidationRun.Trigger.WEB
        )

    page = EditPage(
        obj=detection,
        template="detections/edit/tuning_entry.html",
        form_factory=form_factory,
        initial=lambda obj: {"enabled": True},
        apply=apply,
        success_url=_tuning_url(detection),
        success_message=(
            "Added the tuning entry; the workers render the tuned rules and run the tests again."
        ),
        context={"detection": detection, "entry": None},
    )
    return edit_page(request, page)


@login_required
@require_http_methods(EDIT_METHODS)
def tuning_entry_edit(request: HttpRequest, slug: str, entry_uuid) -> HttpResponse:
    detection = editable_detection(request, slug)
    entry = _entry_of(detection, entry_uuid)

    def form_factory(data, initial=None):
        return forms.TuningEntryForm(
            data,
            initial=initial,
            detection=detection,
            default_comment=f"Changed the tuning entry {entry_label(entry)}",
        )

    def apply(locked, form, extra) -> None:
        values = form.values()
        entry_write(locked, entry, values, user=request.user, trigger=ValidationRun.Trigger.WEB)

    page = EditPage(
        obj=detection,
        template="detections/edit/tuning_entry.html",
        form_factory=form_factory,
        initial=lambda obj: forms.TuningEntryForm.initial_from(entry),
        apply=apply,
        success_url=_tuning_url(detection, entry),
        success_message=(
            "Saved the tuning entry; the workers render the tuned rules and run the tests again."
        ),
        context={"detection": detection, "entry": entry},
    )
    return edit_page(request, page)


@login_required
@require_http_methods(EDIT_METHODS)
def tuning_entry_enabled(request: HttpRequest, slug: str, entry_uuid) -> HttpResponse:
    """Enable or disable an entry; the detection page posts here from the entry's row."""
    detection = editable_detection(request, slug)
    entry = _entry_of(detection, entry_uuid)
    # A GET flips the stored state. A POST sets the state named in its `enabled` field.
    turn_on = not entry.enabled
    if request.method == "POST":
        turn_on = BooleanField(required=False).to_python(request.POST.get("enabled"))
    verb = "Enabled" if turn_on else "Disabled"

    def form_factory(data, initial=None):
        return forms.TuningEntryEnabledForm(
            data, initial=initial, default_comment=f"{verb} the tuning entry {entry_label(entry)}"
        )

    def apply(locked, form, extra) -> None:
        values = {"enabled": form.cleaned_data["enabled"]}
        entry_write(locked, entry, values, user=request.user, trigger=ValidationRun.Trigger.WEB)

    page = EditPage(
        obj=detection,
        template="detections/edit/tuning_entry_confirm.html",
        form_factory=form_factory,
        initial=lambda obj: {"enabled": entry.enabled},
        apply=apply,
        success_url=_tuning_url(detection, entry),
        success_message=f"{verb} the tuning entry {entry_label(entry)}.",
        context={
            "detection": detection,
            "entry": entry,
            "entry_yaml": condition_to_yaml(entry.condition),
            "action": "enable" if turn_on else "disable",
            "turn_on": turn_on,
        },
    )
    return edit_page(request, page)


@login_required
@require_http_methods(EDIT_METHODS)
def tuning_entry_delete(request: HttpRequest, slug: str, entry_uuid) -> HttpResponse:
    detection = editable_detection(request, slug)
    entry = _entry_of(detection, entry_uuid)

    def form_factory(data, initial=None):
        return forms.TuningEntryDeleteForm(
            data, initial=initial, default_comment=f"Deleted the tuning entry {entry_label(entry)}"
        )

    def apply(locked, form, extra) -> None:
        entry_delete(locked, entry, user=request.user, trigger=ValidationRun.Trigger.WEB)

    page = EditPage(
        obj=detection,
        template="detections/edit/tuning_entry_confirm.html",
        form_factory=form_factory,
        initial=lambda obj: {"confirm": False},
        apply=apply,
        success_url=_tuning_url(detection),
        success_message=(
            f"Deleted the tuning entry {entry_label(entry)}; restore it from the history page."
        ),
        context={
            "detection": detection,
            "entry": entry,
            "entry_yaml": condition_to_yaml(entry.condition),
            "action": "delete",
        },
    )
    return edit_page(request, page)
