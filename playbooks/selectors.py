"""Queries that pick which playbooks a user may see, shared by web and API views."""

from django.db.models import Prefetch, QuerySet

from detections.models import Detection
from detections.permissions import visible_detections, visible_playbooks

from .models import Playbook, PlaybookDetection, PlaybookQuery

QUERIES = PlaybookQuery.objects.select_related("sigma_rule")


__all__ = ["detection_playbooks", "playbook_queryset_for", "visible_playbooks"]


def playbook_queryset_for(user) -> QuerySet[Playbook]:
    """Return the visible playbooks ordered by title, with every relation the pages read.

    The detection links are limited to detections `user` may read, so a published
    playbook never reveals a draft detection.
    """
    links = PlaybookDetection.objects.filter(
        detection__in=visible_detections(user)
    ).select_related("detection").prefetch_related(
        "detection__mappings__technique", "detection__mappings__subtechnique"
    )
    return (
        visible_playbooks(user)
        .prefetch_related(
            Prefetch("links", queryset=links),
            "inputs",
            Prefetch("steps__queries", queryset=QUERIES),
            Prefetch("questions__queries", queryset=QUERIES),
            Prefetch("hunts__queries", queryset=QUERIES),
            "sigma_rules",
        )
        .order_by("title")
    )


def detection_playbooks(user, detection: Detection) -> QuerySet[Playbook]:
    """Return the playbooks of `detection` that `user` may read, fully prefetched."""
    return playbook_queryset_for(user).filter(links__detection=detection)
