"""Read serializers for the detection API: every stored fact, nested."""

from functools import cached_property
from pathlib import PurePosixPath

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from detections.downloads import query_filename, render_filename, sigma_filename
from detections.models import (
    AttackMapping,
    DataComponent,
    Detection,
    DetectionBranch,
    DetectionDataSource,
    DetectionTest,
    ExpectedTelemetry,
    Query,
    Render,
    SigmaRule,
    Tactic,
    Technique,
    TestResult,
    TuningEntry,
    ValidationRun,
)
from detections.pysigma.convert import RenderTarget
from detections.selectors import visible_detections
from detections.tuning import condition_lines, detection_macro, filter_files, tuned_spl
from playbooks.api.links import PlaybookLinkSerializer
from playbooks.selectors import visible_playbooks


class TacticSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="attack_id")

    class Meta:
        model = Tactic
        fields = ["id", "name", "url"]


class TechniqueSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="attack_id")

    class Meta:
        model = Technique
        fields = ["id", "name", "url"]


class AttackMappingSerializer(serializers.ModelSerializer):
    tactic = TacticSerializer()
    technique = TechniqueSerializer()
    subtechnique = TechniqueSerializer(allow_null=True)

    class Meta:
        model = AttackMapping
        fields = ["tactic", "technique", "subtechnique"]


class DataComponentSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="attack_id")

    class Meta:
        model = DataComponent
        fields = ["id", "label", "data_source", "data_source_id", "name", "url"]


class DataSourceSerializer(serializers.ModelSerializer):
    component = DataComponentSerializer()

    class Meta:
        model = DetectionDataSource
        fields = ["component", "log_source", "event_id", "event_name"]


class BranchSerializer(serializers.ModelSerializer):
    sigma_rule_id = serializers.UUIDField(
        source="sigma_rule.rule_id", allow_null=True, default=None
    )

    class Meta:
        model = DetectionBranch
        fields = [
            "name",
            "description",
            "log_source",
            "event_id",
            "sigma_rule_id",
            *DetectionBranch.LIST_FIELDS,
        ]


class QuerySerializer(serializers.ModelSerializer):
    branches = BranchSerializer(many=True)
    filename = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    tuned_text = serializers.SerializerMethodField()
    tuned_download_url = serializers.SerializerMethodField()

    class Meta:
        model = Query
        fields = [
            "platform",
            "language",
            "text",
            "output_fields",
            "required_sourcetypes",
            "branch_field",
            "branches",
            "filename",
            "download_url",
            "tuned_text",
            "tuned_download_url",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_tuned_text(self, query: Query) -> str | None:
        """Return the SPL with the detection's filter macro call, or None for other languages."""
        if query.language.upper() != "SPL":
            return None
        return tuned_spl(query, detection_macro(query.detection))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_tuned_download_url(self, query: Query) -> str | None:
        if query.language.upper() != "SPL":
            return None
        return reverse(
            "api:detection-tuned-query-download",
            kwargs={"slug": query.detection.slug, "position": query.position},
            request=self.context.get("request"),
        )

    def get_filename(self, query: Query) -> str:
        return query_filename(query)

    def get_download_url(self, query: Query) -> str:
        return reverse(
            "api:detection-query-download",
            kwargs={"slug": query.detection.slug, "position": query.position},
            request=self.context.get("request"),
        )


class SigmaRuleSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="rule_id")
    yaml = serializers.CharField(source="yaml_text")
    filename = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    referenced_rules = serializers.SlugRelatedField(
        many=True,
        read_only=True,
        slug_field="rule_id",
        help_text="Ids of the stored rules that this correlation rule or filter names.",
    )

    class Meta:
        model = SigmaRule
        fields = [
            "id",
            "kind",
            "name",
            "title",
            "status",
            "level",
            "logsource",
            "tags",
            "falsepositives",
            "is_valid",
            "messages",
            "rule_references",
            "referenced_rules",
            "filename",
            "yaml",
            "download_url",
        ]

    def get_filename(self, rule: SigmaRule) -> str:
        return sigma_filename(rule)

    def get_download_url(self, rule: SigmaRule) -> str:
        return reverse(
            "api:detection-sigma-download",
            kwargs={"slug": rule.detection.slug, "rule_id": rule.rule_id},
            request=self.context.get("request"),
        )


class TelemetrySerializer(serializers.ModelSerializer):
    class Meta:
        model = ExpectedTelemetry
        fields = ["source", "event_id", "event_name", "key_fields", "artifact_path", "description"]


class TestSerializer(serializers.ModelSerializer):
    telemetry = TelemetrySerializer(many=True)
    recorded_event_count = serializers.SerializerMethodField()

    class Meta:
        model = DetectionTest
        fields = [
            "position",
            "name",
            "description",
            "atomic_guid",
            "origin",
            "platform",
            "platforms",
            "executor",
            "executor_summary",
            "input_arguments",
            "expected_signal",
            "expect",
            "min_matches",
            "known_false_positive",
            "telemetry",
            "recorded_event_count",
        ]

    def get_recorded_event_count(self, test: DetectionTest) -> int:
        # detection_queryset_for counts the events in the database and defers the list.
        counted = getattr(test, "recorded_event_total", None)
        return counted if counted is not None else len(test.recorded_events)


class ValidationSummarySerializer(serializers.ModelSerializer):
    """The newest validation run of a detection, as the list and detail show it."""

    url = serializers.SerializerMethodField()

    class Meta:
        model = ValidationRun
        fields = [
            "id",
            "status",
            "engine",
            "target",
            "tests_total",
            "tests_passed",
            "created_at",
            "finished_at",
            "url",
        ]

    def get_url(self, run: ValidationRun) -> str:
        return reverse("api:validation-detail", kwargs={"pk": run.pk}, request=self.context.get("request"))


class TestResultSerializer(serializers.ModelSerializer):
    __test__ = False  # Not a pytest test class, despite the name.

    class Meta:
        model = TestResult
        fields = [
            "position",
            "name",
            "expect",
            "min_matches",
            "known_false_positive",
            "event_count",
            "matches",
            "matched_events",
            "raw_matches",
            "raw_matched_events",
            "tuning",
            "passed",
            "error",
            "details",
        ]


class ValidationRunSerializer(ValidationSummarySerializer):
    """A validation run with the exact queries it ran and every test's result."""

    detection = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    trigger = serializers.CharField(read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    results = TestResultSerializer(many=True, read_only=True)

    class Meta(ValidationSummarySerializer.Meta):
        fields = ValidationSummarySerializer.Meta.fields + [
            "detection",
            "trigger",
            "requested_by",
            "started_at",
            "error",
            "queries",
            "versions",
            "results",
        ]


class ValidationRequestSerializer(serializers.Serializer):
    engine = serializers.ChoiceField(
        choices=ValidationRun.Engine.choices, default=ValidationRun.Engine.EMBEDDED
    )


class DetectionLinkSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name="api:detection-detail", lookup_field="slug"
    )

    class Meta:
        model = Detection
        fields = ["slug", "title", "platform", "url"]


class DetectionListSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    url = serializers.HyperlinkedIdentityField(
        view_name="api:detection-detail", lookup_field="slug"
    )
    attack_ids = serializers.ListField(child=serializers.CharField())
    data_sources = serializers.SerializerMethodField()
    validation = serializers.SerializerMethodField()

    class Meta:
        model = Detection
        fields = [
            "id",
            "slug",
            "url",
            "title",
            "platform",
            "query_language",
            "status",
            "origin",
            "sigma_status",
            "severity",
            "confidence",
            "version",
            "revision",
            "attack_ids",
            "data_sources",
            "updated_at",
            "validation",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_data_sources(self, detection: Detection) -> list[str]:
        return [source.component.label for source in detection.data_sources.all()]

    @extend_schema_field(ValidationSummarySerializer(allow_null=True))
    def get_validation(self, detection: Detection) -> dict | None:
        """The newest validation run, from the view's batch lookup when it made one."""
        latest = self.context.get("latest_runs")
        run = latest.get(detection.pk) if latest is not None else detection.validation_runs.first()
        if run is None:
            return None
        return self._validation_serializer.to_representation(run)

    @cached_property
    def _validation_serializer(self) -> ValidationSummarySerializer:
        # One instance for every row of a list: DRF builds a serializer's fields per
        # instance, which cost more than the row's data on a page of 50.
        return ValidationSummarySerializer(context=self.context)


class RenderWarningSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class RenderSerializer(serializers.ModelSerializer):
    """A Sigma rule rendered for one target, with what produced it."""

    # The context must contain `targets`: the configured RenderTarget objects by key.
    rule_id = serializers.UUIDField(source="sigma_rule.rule_id")
    rule_title = serializers.CharField(source="sigma_rule.title")
    target_label = serializers.SerializerMethodField(
        help_text="The target's label, or its key if it is no longer configured."
    )
    warnings = RenderWarningSerializer(many=True)
    versions = serializers.DictField(
        child=serializers.CharField(), help_text="Installed version by Python package name."
    )
    pipelines = serializers.ListField(
        child=serializers.CharField(), help_text="pySigma pipelines applied before the backend."
    )
    duration_ms = serializers.FloatField(
        allow_null=True, help_text="Conversion time in milliseconds."
    )
    filename = serializers.SerializerMethodField(help_text="File name of the download.")
    download_url = serializers.SerializerMethodField(
        help_text="Set only when the status is `rendered`."
    )

    class Meta:
        model = Render
        fields = [
            "rule_id",
            "rule_title",
            "target",
            "target_label",
            "status",
            "query",
            "warnings",
            "error",
            "pipelines",
            "output_format",
            "versions",
            "duration_ms",
            "finished_at",
            "filename",
            "download_url",
        ]

    def _target(self, render: Render) -> RenderTarget | None:
        return self.context["targets"].get(render.target)

    def get_target_label(self, render: Render) -> str:
        target = self._target(render)
        return target.label if target else render.target

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_filename(self, render: Render) -> str | None:
        target = self._target(render)
        return render_filename(render.sigma_rule, target) if target else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, render: Render) -> str | None:
        if render.status != Render.Status.RENDERED or self._target(render) is None:
            return None
        return reverse(
            "api:detection-render-download",
            kwargs={
                "slug": render.sigma_rule.detection.slug,
                "target": render.target,
                "rule_id": render.sigma_rule.rule_id,
            },
            request=self.context.get("request"),
        )


class RendersSummarySerializer(serializers.Serializer):
    """Number of renders of a detection's Sigma rules in each status, over all targets."""

    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    rendered = serializers.IntegerField()
    failed = serializers.IntegerField()
    unavailable = serializers.IntegerField()
    total = serializers.IntegerField()


class TuningEntrySerializer(serializers.ModelSerializer):
    """A tuning entry: the events it excludes, why, who owns it and whether it applies."""

    id = serializers.UUIDField(source="uuid")
    condition = serializers.JSONField(
        help_text="Sigma detection selection: `Field|modifier` to a value or a list of values."
    )
    condition_text = serializers.SerializerMethodField(
        help_text="The condition in words, one field per line."
    )
    spl = serializers.CharField(help_text="The condition as a Splunk search expression.")
    expired = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField(help_text="Enabled and not expired.")
    created_by = serializers.SlugRelatedField(read_only=True, slug_field="username")
    filter_urls = serializers.SerializerMethodField(
        help_text="Downloads of the Sigma filters made from the entry, while it is active."
    )

    class Meta:
        model = TuningEntry
        fields = [
            "id",
            "condition",
            "condition_text",
            "spl",
            "rules",
            "branches",
            "reason",
            "owner",
            "expires",
            "expired",
            "active",
            "ticket",
            "enabled",
            "created_by",
            "created_at",
            "updated_at",
            "filter_urls",
        ]

    def get_condition_text(self, entry: TuningEntry) -> str:
        return "\n".join(condition_lines(entry.condition))

    def get_expired(self, entry: TuningEntry) -> bool:
        return entry.is_expired()

    def get_active(self, entry: TuningEntry) -> bool:
        return entry.is_active()

    @extend_schema_field(serializers.ListField(child=serializers.URLField()))
    def get_filter_urls(self, entry: TuningEntry) -> list[str]:
        files = self.context.get("filter_files", {}).get(entry.pk, [])
        return [
            reverse(
                "api:detection-filter-download",
                kwargs={"slug": entry.detection.slug, "name": PurePosixPath(name).stem},
                request=self.context.get("request"),
            )
            for name in files
        ]


def tuning_entries_data(
    detection: Detection, context: dict, entries: list[TuningEntry] | None = None
) -> list[dict]:
    """Serialize `entries` (default: every entry of `detection`) with their filter URLs."""
    files: dict[int, list[str]] = {}
    for item in filter_files(detection):
        files.setdefault(item.entry.pk, []).append(item.filename)
    context = context | {"filter_files": files}
    entries = list(detection.tuning_entries.all()) if entries is None else entries
    for entry in entries:
        entry.detection = detection
    return TuningEntrySerializer(entries, many=True, context=context).data


class TuningMacroSerializer(serializers.Serializer):
    """The detection's Splunk filter macro, built from its active tuning entries."""

    name = serializers.CharField()
    definition = serializers.CharField()
    stanza = serializers.CharField(help_text="The macro as a macros.conf stanza.")
    skipped = serializers.ListField(
        child=serializers.CharField(),
        help_text="Active entries that the authored SPL cannot apply, with the reason.",
    )
    download_url = serializers.URLField()


class DetectionSerializer(DetectionListSerializer):
    attack = AttackMappingSerializer(source="mappings", many=True)
    data_sources = DataSourceSerializer(many=True)
    queries = QuerySerializer(many=True)
    sigma_rules = SigmaRuleSerializer(many=True)
    false_positives = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="description"
    )
    tests = TestSerializer(many=True)
    related = serializers.SerializerMethodField()
    other_platforms = serializers.SerializerMethodField()
    sigma_zip_url = serializers.SerializerMethodField()
    renders_summary = serializers.SerializerMethodField()
    queries_url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()
    playbooks = serializers.SerializerMethodField(
        help_text="Response playbooks for the detection that the caller may read."
    )
    tuning_entries = serializers.SerializerMethodField()
    tuning_macro = serializers.SerializerMethodField()

    class Meta(DetectionListSerializer.Meta):
        fields = DetectionListSerializer.Meta.fields + [
            "html_url",
            "description",
            "summary",
            "libraries",
            "evaded_tools",
            "malware_families",
            "authors",
            "references",
            "canonical_reference",
            "date_created",
            "date_modified",
            "attack",
            "data_sources",
            "queries",
            "sigma_rules",
            "sigma_zip_url",
            "renders_summary",
            "queries_url",
            "false_positives",
            "tuning_notes",
            "tuning_entries",
            "tuning_macro",
            "tests",
            "related",
            "other_platforms",
            "playbooks",
        ]

    @extend_schema_field(TuningEntrySerializer(many=True))
    def get_tuning_entries(self, detection: Detection) -> list[dict]:
        return tuning_entries_data(detection, self.context)

    @extend_schema_field(TuningMacroSerializer)
    def get_tuning_macro(self, detection: Detection) -> dict:
        macro = detection_macro(detection)
        return {
            "name": macro.name,
            "definition": macro.definition,
            "stanza": macro.stanza,
            "skipped": [f"{entry.uuid}: {reason}" for entry, reason in macro.skipped],
            "download_url": reverse(
                "api:detection-macros-download",
                kwargs={"slug": detection.slug},
                request=self.context.get("request"),
            ),
        }

    @extend_schema_field(DetectionLinkSerializer(many=True))
    def get_related(self, detection: Detection) -> list[dict]:
        return self._visible_links(detection.related.all())

    @extend_schema_field(DetectionLinkSerializer(many=True))
    def get_other_platforms(self, detection: Detection) -> list[dict]:
        return self._visible_links(detection.other_platforms.all())

    def _visible_links(self, linked) -> list[dict]:
        """Serialize linked detections, leaving out those the requesting user may not read."""
        request = self.context.get("request")
        user = request.user if request else AnonymousUser()
        visible = visible_detections(user).filter(pk__in=[item.pk for item in linked])
        return DetectionLinkSerializer(visible, many=True, context=self.context).data

    def get_sigma_zip_url(self, detection: Detection) -> str:
        return reverse(
            "api:detection-sigma-zip",
            kwargs={"slug": detection.slug},
            request=self.context.get("request"),
        )

    @extend_schema_field(RendersSummarySerializer)
    def get_renders_summary(self, detection: Detection) -> dict[str, int]:
        counts = dict.fromkeys(Render.Status.values, 0)
        rows = (
            Render.objects.filter(sigma_rule__detection=detection)
            .values_list("status")
            .annotate(count=Count("pk"))
            .order_by()
        )
        for status, count in rows:
            counts[status] = count
        counts["total"] = sum(counts.values())
        return counts

    def get_queries_url(self, detection: Detection) -> str:
        return reverse(
            "api:detection-queries",
            kwargs={"slug": detection.slug},
            request=self.context.get("request"),
        )

    def get_html_url(self, detection: Detection) -> str:
        request = self.context.get("request")
        path = detection.get_absolute_url()
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(PlaybookLinkSerializer(many=True))
    def get_playbooks(self, detection: Detection) -> list[dict]:
        request = self.context.get("request")
        user = request.user if request else AnonymousUser()
        playbooks = visible_playbooks(user).filter(links__detection=detection).order_by("title")
        return PlaybookLinkSerializer(playbooks, many=True, context=self.context).data
