"""Read serializers for the detection API: every stored fact, nested."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from detections.downloads import query_filename, sigma_filename
from detections.models import (
    AttackMapping,
    DataComponent,
    Detection,
    DetectionBranch,
    DetectionDataSource,
    DetectionTest,
    ExpectedTelemetry,
    Query,
    SigmaRule,
    Tactic,
    Technique,
)


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
        ]

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

    class Meta:
        model = SigmaRule
        fields = [
            "id",
            "title",
            "status",
            "level",
            "logsource",
            "tags",
            "falsepositives",
            "is_valid",
            "messages",
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
            "name",
            "description",
            "atomic_guid",
            "platform",
            "executor",
            "executor_summary",
            "expected_signal",
            "expect",
            "min_matches",
            "known_false_positive",
            "telemetry",
            "recorded_event_count",
        ]

    def get_recorded_event_count(self, test: DetectionTest) -> int:
        return len(test.recorded_events)


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
            "severity",
            "confidence",
            "version",
            "attack_ids",
            "data_sources",
            "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_data_sources(self, detection: Detection) -> list[str]:
        return [source.component.label for source in detection.data_sources.all()]


class DetectionSerializer(DetectionListSerializer):
    attack = AttackMappingSerializer(source="mappings", many=True)
    data_sources = DataSourceSerializer(many=True)
    queries = QuerySerializer(many=True)
    sigma_rules = SigmaRuleSerializer(many=True)
    false_positives = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="description"
    )
    tests = TestSerializer(many=True)
    related = DetectionLinkSerializer(many=True)
    other_platforms = DetectionLinkSerializer(many=True)
    sigma_zip_url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()

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
            "false_positives",
            "tuning_notes",
            "tests",
            "related",
            "other_platforms",
        ]

    def get_sigma_zip_url(self, detection: Detection) -> str:
        return reverse(
            "api:detection-sigma-zip",
            kwargs={"slug": detection.slug},
            request=self.context.get("request"),
        )

    def get_html_url(self, detection: Detection) -> str:
        request = self.context.get("request")
        path = detection.get_absolute_url()
        return request.build_absolute_uri(path) if request else path
