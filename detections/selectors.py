"""Queries that pick which detections a user may see, shared by web and API views."""

from django.db.models import QuerySet

from .models import Detection


def visible_detections(user) -> QuerySet[Detection]:
    """Return the detections `user` may read: staff see all, everyone else published ones."""
    detections = Detection.objects.all()
    if not user.is_staff:
        detections = detections.filter(status=Detection.Status.PUBLISHED)
    return detections


def detection_queryset_for(user, *, full: bool = False) -> QuerySet[Detection]:
    """Return the visible detections ordered by title, with what the API serializers read.

    With `full`, every relation of the detail view is prefetched as well.
    """
    queryset = visible_detections(user).prefetch_related(
        "mappings__tactic",
        "mappings__technique",
        "mappings__subtechnique",
        "data_sources__component",
    )
    if full:
        queryset = queryset.prefetch_related(
            "queries__branches__sigma_rule",
            "queries__detection",
            "sigma_rules__detection",
            "sigma_rules__referenced_rules",
            "false_positives",
            "tests__telemetry",
            "tuning_entries",
            "related",
            "other_platforms",
        )
    return queryset.order_by("title")
