"""Server-rendered playbook pages and their Markdown and CACAO downloads.

Anonymous users see published playbooks only, and only the published detections
they belong to. Staff users see every status.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

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
    return render(request, "playbooks/playbook_detail.html", {"playbook": playbook})


@require_safe
def markdown_download(request: HttpRequest, slug: str) -> HttpResponse:
    return downloads.markdown_response(_visible_playbook(request, slug))


@require_safe
def cacao_download(request: HttpRequest, slug: str) -> HttpResponse:
    return downloads.cacao_response(_visible_playbook(request, slug))


def _visible_playbook(request: HttpRequest, slug: str) -> Playbook:
    return get_object_or_404(playbook_queryset_for(request.user), slug=slug)
