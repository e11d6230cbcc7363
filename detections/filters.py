"""Filters over detections, shared by the web list page and the REST API.

Every filter on a related table matches through a `pk__in` subquery instead of a
join, so a detection with several matching rows still appears once.
"""

from collections.abc import Mapping

import django_filters
from django.db.models import Q, QuerySet

from .models import (
    AttackMapping,
    DataComponent,
    Detection,
    DetectionDataSource,
    Query,
    SigmaRule,
    Tactic,
    Technique,
)

SEARCH_MAX_LENGTH = 200


class DetectionFilter(django_filters.FilterSet):
    """Query-string filters of the detection list, ordered by title, each detection once."""

    search = django_filters.CharFilter(
        method="filter_search",
        label="Search",
        help_text="Text in the title, description, summary, queries, Sigma rules or tuning notes.",
        # SQLite rejects LIKE patterns longer than 50,000 bytes by default. A search
        # this long is a mistake, so it gets a validation error, not a server error.
        max_length=SEARCH_MAX_LENGTH,
    )
    tactic = django_filters.CharFilter(
        method="filter_tactic", label="Tactic", help_text="ATT&CK tactic id, e.g. TA0009."
    )
    technique = django_filters.CharFilter(
        method="filter_technique",
        label="Technique",
        help_text="ATT&CK technique id, e.g. T1560 (with its sub-techniques) or T1560.002.",
    )
    severity = django_filters.ChoiceFilter(choices=Detection.Level.choices, label="Severity")
    status = django_filters.ChoiceFilter(choices=Detection.Status.choices, label="Status")
    data_source = django_filters.CharFilter(
        method="filter_data_source",
        label="Data source",
        help_text=(
            "ATT&CK data component id (DC0032), name (Process Creation) "
            "or label (Process: Process Creation)."
        ),
    )
    platform = django_filters.CharFilter(
        field_name="platform", lookup_expr="iexact", label="Platform", help_text="e.g. Splunk."
    )

    class Meta:
        model = Detection
        fields = ["search", "tactic", "technique", "severity", "status", "data_source", "platform"]

    @property
    def qs(self) -> QuerySet[Detection]:
        return super().qs.order_by("title")

    def filter_search(self, queryset, name, value):
        text_fields = ("title", "description", "summary", "tuning_notes")
        condition = Q()
        for field in text_fields:
            condition |= Q(**{f"{field}__icontains": value})
        condition |= Q(pk__in=Query.objects.filter(text__icontains=value).values("detection"))
        condition |= Q(
            pk__in=SigmaRule.objects.filter(yaml_text__icontains=value).values("detection")
        )
        return queryset.filter(condition)

    def filter_tactic(self, queryset, name, value):
        mappings = AttackMapping.objects.filter(tactic__attack_id__iexact=value)
        return queryset.filter(pk__in=mappings.values("detection"))

    def filter_technique(self, queryset, name, value):
        condition = Q()
        for field in ("technique__attack_id", "subtechnique__attack_id"):
            condition |= Q(**{f"{field}__iexact": value})
            condition |= Q(**{f"{field}__istartswith": f"{value}."})
        mappings = AttackMapping.objects.filter(condition)
        return queryset.filter(pk__in=mappings.values("detection"))

    def filter_data_source(self, queryset, name, value):
        components = DataComponent.objects.filter(
            Q(attack_id__iexact=value) | Q(name__iexact=value) | _component_label_matches(value)
        )
        sources = DetectionDataSource.objects.filter(component__in=components)
        return queryset.filter(pk__in=sources.values("detection"))


def _component_label_matches(value: str) -> Q:
    """Match DataComponent.label ("Data source: Name"), which is a property, not a column."""
    data_source, separator, name = value.partition(":")
    if not separator:
        return Q(pk__in=[])
    return Q(data_source__iexact=data_source.strip(), name__iexact=name.strip())


def filter_options(
    detections: QuerySet[Detection], selected: Mapping[str, str]
) -> dict[str, list[tuple[str, str]]]:
    """Build (value, label) choices for the list page's selects from what `detections` use.

    A free-text value in `selected` that is not among the choices, such as a technique
    typed into the URL, is added as its own choice so the select still shows it.
    """
    mappings = AttackMapping.objects.filter(detection__in=detections)
    # Only the fields of the labels: the Markdown descriptions are long and unused here.
    tactics = Tactic.objects.filter(pk__in=mappings.values("tactic")).only("attack_id", "name")
    techniques = Technique.objects.filter(
        Q(pk__in=mappings.values("technique")) | Q(pk__in=mappings.values("subtechnique"))
    ).only("attack_id", "name")
    components = DataComponent.objects.filter(
        pk__in=DetectionDataSource.objects.filter(detection__in=detections).values("component")
    ).only("attack_id", "data_source", "name")
    platforms = detections.order_by("platform").values_list("platform", flat=True).distinct()
    options = {
        "tactic": [(item.attack_id, str(item)) for item in tactics],
        "technique": [(item.attack_id, str(item)) for item in techniques],
        "severity": list(Detection.Level.choices),
        "status": list(Detection.Status.choices),
        "data_source": [(item.attack_id, f"{item.attack_id} {item.label}") for item in components],
        "platform": [(platform, platform) for platform in platforms],
    }
    # Severity and status accept only their choices, so an unknown value there is an error.
    for name in ("tactic", "technique", "data_source", "platform"):
        value = selected.get(name, "").strip()
        if value and value not in {choice for choice, _ in options[name]}:
            options[name].append((value, value))
    return options
