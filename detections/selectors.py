"""Queries that pick which detections a user may see, shared by web and API views."""

from django.db.models import Func, IntegerField, Prefetch, QuerySet

from .models import (
    AttackMapping,
    Detection,
    DetectionBranch,
    DetectionDataSource,
    DetectionTest,
)
from .permissions import visible_detections


class JSONArrayLength(Func):
    """The number of elements of a JSON array column, computed by the database."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="jsonb_array_length", **extra_context)


# One query each, with the rows they point to joined in.
MAPPINGS_PREFETCH = Prefetch(
    "mappings", queryset=AttackMapping.objects.select_related("tactic", "technique", "subtechnique")
)
DATA_SOURCES_PREFETCH = Prefetch(
    "data_sources", queryset=DetectionDataSource.objects.select_related("component")
)

__all__ = ["detection_queryset_for", "visible_detections"]


def detection_queryset_for(user, *, full: bool = False) -> QuerySet[Detection]:
    """Return the visible detections ordered by title, with what the API serializers read.

    With `full`, every relation of the detail view is prefetched as well.
    """
    queryset = visible_detections(user).prefetch_related(MAPPINGS_PREFETCH, DATA_SOURCES_PREFETCH)
    if full:
        # Reverse foreign keys need no `__detection` prefetch: Django sets each fetched
        # row's `detection` to the instance it was prefetched for.
        queryset = queryset.prefetch_related(
            Prefetch(
                "queries__branches",
                queryset=DetectionBranch.objects.select_related("sigma_rule"),
            ),
            "sigma_rules__referenced_rules",
            "false_positives",
            Prefetch(
                "tests",
                # The serializer reads only the number of recorded events, which
                # recorded_event_count counts in the database instead of loading them.
                queryset=DetectionTest.objects.defer("recorded_events").annotate(
                    recorded_event_total=JSONArrayLength("recorded_events")
                ),
            ),
            "tests__telemetry",
            "tuning_entries",
            "related",
            "other_platforms",
        )
    return queryset.order_by("title")
