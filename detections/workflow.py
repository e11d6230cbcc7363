"""The workflow buttons of detection and playbook pages: review, publish, send back, deprecate.

`editing.transition` decides what is allowed and stores the change. This module only
picks the buttons a user sees and turns the form post into that call.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from . import editing, permissions
from .forms import MAX_COMMENT_LENGTH
from .models import Detection

Status = Detection.Status


@dataclass(frozen=True)
class WorkflowAction:
    """One button: the status it moves to and its label."""

    to_status: str
    label: str


# Button labels by (from, to); editing.TRANSITIONS decides which moves exist.
LABELS = {
    (Status.DRAFT, Status.REVIEW): "Submit for review",
    (Status.REVIEW, Status.DRAFT): "Send back to draft",
    (Status.REVIEW, Status.PUBLISHED): "Publish",
    (Status.PUBLISHED, Status.REVIEW): "Unpublish for review",
    (Status.PUBLISHED, Status.DEPRECATED): "Deprecate",
    (Status.DEPRECATED, Status.DRAFT): "Reopen as draft",
}


def workflow_actions(user, obj) -> list[WorkflowAction]:
    """Return the buttons `user` may use on `obj` in its current status; none for readers."""
    model = type(obj)
    if not permissions.can_edit(user, model):
        return []
    reviewer = permissions.can_publish(user, model)
    actions = []
    for to_status in editing.TRANSITIONS.get(obj.status, ()):
        publishing = (
            obj.status in editing.PUBLISHING_STATUSES or to_status in editing.PUBLISHING_STATUSES
        )
        if publishing and not reviewer:
            continue
        label = LABELS.get((obj.status, to_status), f"Move to {Status(to_status).label.lower()}")
        actions.append(WorkflowAction(to_status, label))
    return actions


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices)
    revision = forms.IntegerField(min_value=0)
    comment = forms.CharField(
        max_length=MAX_COMMENT_LENGTH,
        error_messages={"required": "Write a comment: it tells the author or reviewer why."},
    )


def transition_post(request: HttpRequest, obj, redirect_url: str) -> HttpResponse:
    """Apply the posted workflow change to `obj` and redirect back with the outcome."""
    if not permissions.can_edit(request.user, type(obj)):
        raise PermissionDenied("Your account may read content but not change its status.")
    form = TransitionForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(error) for errors in form.errors.values() for error in errors)
        messages.error(request, f"The status was not changed: {errors}")
        return redirect(redirect_url)
    to_status = form.cleaned_data["to_status"]
    label = Status(to_status).label.lower()
    try:
        editing.transition(
            obj,
            user=request.user,
            to_status=to_status,
            comment=form.cleaned_data["comment"],
            expected_revision=form.cleaned_data["revision"],
        )
    except editing.EditConflict as conflict:
        messages.error(
            request,
            f"The status was not changed: someone else saved a change (revision "
            f"{conflict.current_revision}) since you loaded the page. Check it and try again.",
        )
    except editing.TransitionError as exc:
        messages.error(request, f"The status was not changed to {label}: {exc}")
    else:
        messages.success(request, f"The status is now {label}.")
    return redirect(redirect_url)
