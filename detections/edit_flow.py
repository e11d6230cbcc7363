"""The request flow shared by every edit page of detections and playbooks.

An edit page loads a form with the object's current values and revision. On POST
the form is validated and `editing.edit` stores the change. When someone else stored
a change since the form was loaded, `editing.edit` raises EditConflict. The page is
then shown again with status 409 and the user's text kept in the form. It lists what
the other change did and moves the form's revision to the current one, so saving
again applies the user's text on top of the other change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from . import editing, permissions
from .models import Detection


@dataclass
class EditPage:
    """The object, form, template and callbacks of one edit page."""

    obj: object
    template: str
    # Builds the form from POST data (or None for a blank form) and initial values.
    form_factory: Callable[..., object]
    initial: Callable[[object], dict]
    # Copies the valid form and extra forms onto the locked object inside editing.edit.
    apply: Callable[[object, object, dict], None]
    success_url: str
    success_message: str
    context: dict = field(default_factory=dict)
    # Extra bound forms (such as a formset) that must be valid as well.
    extra_forms: Callable[[dict | None, object], dict] | None = None


def editor_required(request: HttpRequest, model=None) -> None:
    """Raise PermissionDenied (403) unless the signed-in user may edit content of `model`."""
    if not permissions.can_edit(request.user, model or Detection):
        raise PermissionDenied("Your account may read content but not edit it.")


def edit_page(request: HttpRequest, page: EditPage) -> HttpResponse:
    """Show the edit form, or validate and store it; see the module docstring."""
    editor_required(request, type(page.obj))
    if request.method != "POST":
        initial = {**page.initial(page.obj), "revision": page.obj.revision}
        form = page.form_factory(None, initial=initial)
        extra = page.extra_forms(None, page.obj) if page.extra_forms else {}
        return _render(request, page, form, extra)

    initial = {**page.initial(page.obj), "revision": page.obj.revision}
    form = page.form_factory(request.POST, initial=initial)
    extra = page.extra_forms(request.POST, page.obj) if page.extra_forms else {}
    if not (form.is_valid() and all(item.is_valid() for item in extra.values())):
        return _render(request, page, form, extra, status=400)
    if not _content_changed(form, extra):
        messages.info(request, "Nothing was changed, so no new revision was stored.")
        return redirect(page.success_url)

    def mutate(locked) -> None:
        page.apply(locked, form, extra)

    try:
        editing.edit(
            page.obj,
            user=request.user,
            expected_revision=form.cleaned_data["revision"],
            mutate=mutate,
            comment=form.cleaned_data["comment"],
        )
    except editing.EditConflict as conflict:
        data = request.POST.copy()
        data["revision"] = str(conflict.current_revision)
        form = page.form_factory(data, initial=None)
        form.is_valid()
        extra = page.extra_forms(data, page.obj) if page.extra_forms else {}
        return _render(request, page, form, extra, status=409, conflict=conflict)
    messages.success(request, page.success_message)
    return redirect(page.success_url)


def _content_changed(form, extra: dict) -> bool:
    """Tell whether the posted values differ from the stored ones, ignoring the comment.

    The form's initial values are the object's values when the POST arrives, so a save
    after someone else's change counts as a change and reaches the conflict check.
    """
    bookkeeping = {"revision", "comment"}
    if any(name not in bookkeeping for name in form.changed_data):
        return True
    return any(item.has_changed() for item in extra.values())


def _render(
    request: HttpRequest,
    page: EditPage,
    form,
    extra: dict,
    *,
    status: int = 200,
    conflict: editing.EditConflict | None = None,
) -> HttpResponse:
    context = {
        **page.context,
        "object": page.obj,
        "form": form,
        **extra,
        "conflict": conflict,
        "conflict_changes": conflict.changes if conflict else [],
        "cancel_url": page.success_url,
    }
    return render(request, page.template, context, status=status)
