"""Server-rendered playbook pages and their Markdown and CACAO downloads.

Anonymous users see published playbooks only, and only the published detections
they belong to. Staff users see every status.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from detections.history import history_page, restore_page
from detections.permissions import can_edit
from detections.workflow import transition_post, workflow_actions

from . import downloads
from .models import Playbook
from .selectors import playbook_queryset_for


@require_safe
def playbook_list(request: HttpRequest) -> HttpResponse:
    playbooks = playbook_queryset_for(request.user)
    return render(request, "playbooks/playbook_list.html", {"playbooks": playbooks})


@require_safe
def playbook_detail(request: HttpRequest, slug: str) -> HttpResponse:
    playbook = _visible_playbook(request, slug)
    context = {
        "playbook": playbook,
        "can_edit": can_edit(request.user, Playbook),
        "workflow_actions": workflow_actions(request.user, playbook),
        "transition_url": reverse("playbooks:transition", args=[playbook.slug]),
    }
    return render(request, "playbooks/playbook_detail.html", context)


@login_required
@require_POST
def playbook_transition(request: HttpRequest, slug: str) -> HttpResponse:
    playbook = _visible_playbook(request, slug)
    return transition_post(request, playbook, playbook.get_absolute_url())


@login_required
@require_safe
def playbook_history(request: HttpRequest, slug: str) -> HttpResponse:
    playbook = _visible_playbook(request, slug)
    return history_page(
        request,
        playbook,
        template="playbooks/history.html",
        context={"playbook": playbook},
        history_url=reverse("playbooks:history", args=[playbook.slug]),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def playbook_restore(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    playbook = _visible_playbook(request, slug)
    return restore_page(
        request,
        playbook,
        version_id,
        template="playbooks/restore.html",
        context={"playbook": playbook},
        history_url=reverse("playbooks:history", args=[playbook.slug]),
    )


@require_safe
def markdown_download(request: HttpRequest, slug: str) -> HttpResponse:
    return downloads.markdown_response(_visible_playbook(request, slug))


@require_safe
def cacao_download(request: HttpRequest, slug: str) -> HttpResponse:
    return downloads.cacao_response(_visible_playbook(request, slug))


def _visible_playbook(request: HttpRequest, slug: str) -> Playbook:
    return get_object_or_404(playbook_queryset_for(request.user), slug=slug)
