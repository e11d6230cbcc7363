"""Edit pages of a playbook: one response step, investigation question or hunt at a time.

Each form edits the item's text and the text of its queries, and saves through
`editing.edit` on the playbook, so the playbook's history records every change.
Anonymous users are sent to the login page and readers get 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from detections.edit_flow import EditPage, edit_page

from . import forms
from .models import Playbook
from .selectors import visible_playbooks

EDIT_METHODS = ["GET", "HEAD", "POST"]


@dataclass(frozen=True)
class ItemKind:
    """A kind of playbook item that has an edit page."""

    related_name: str
    query_owner: str
    form_class: type[forms.QueryTextsForm]
    label: str
    anchor: str


ITEM_KINDS = {
    "steps": ItemKind("steps", "step", forms.StepForm, "response step", "step"),
    "questions": ItemKind("questions", "question", forms.QuestionForm, "question", "question"),
    "hunts": ItemKind("hunts", "hunt", forms.HuntForm, "hunt", "hunt"),
}


def editable_playbook(request: HttpRequest, slug: str) -> Playbook:
    return get_object_or_404(visible_playbooks(request.user), slug=slug)


@login_required
@require_http_methods(EDIT_METHODS)
def item_edit(request: HttpRequest, slug: str, kind: str, item_id: int) -> HttpResponse:
    item_kind = ITEM_KINDS.get(kind)
    if item_kind is None:
        raise Http404(f"Playbooks have no {kind!r} to edit; use one of {', '.join(ITEM_KINDS)}.")
    playbook = editable_playbook(request, slug)
    item = get_object_or_404(getattr(playbook, item_kind.related_name), pk=item_id)
    queries = list(item.queries.all())

    def form_factory(data, initial=None):
        return item_kind.form_class(data, initial=initial, queries=queries)

    def initial(obj) -> dict:
        return form_factory(None).initial_values(item)

    def apply(locked, form, extra) -> None:
        locked_item = getattr(locked, item_kind.related_name).get(pk=item.pk)
        for name in item_kind.form_class.FIELDS:
            setattr(locked_item, name, form.cleaned_data[name])
        locked_item.save()
        for query in locked_item.queries.all():
            text = form.cleaned_data.get(form.query_field_name(query))
            if text is not None and text != query.text:
                query.text = text
                query.save(update_fields=["text"])

    anchor = f"playbook-{playbook.slug}-{item_kind.anchor}-{item.number}"
    page = EditPage(
        obj=playbook,
        template="playbooks/edit_item.html",
        form_factory=form_factory,
        initial=initial,
        apply=apply,
        success_url=f"{playbook.get_absolute_url()}#{anchor}",
        success_message=f"Saved {item_kind.label} {item.number}.",
        context={"playbook": playbook, "item": item, "item_kind": item_kind},
    )
    return edit_page(request, page)
