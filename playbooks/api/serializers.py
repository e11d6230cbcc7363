"""Read serializers for playbooks: each row embeds its steps, questions, hunts and queries."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detections.api.serializers import DetectionLinkSerializer
from playbooks.models import (
    HuntingQuery,
    InvestigationQuestion,
    PlaybookInput,
    PlaybookQuery,
    PlaybookSigmaRule,
    ResponseStep,
)

from .links import PlaybookLinkSerializer


class SigmaFormSerializer(serializers.ModelSerializer):
    """The Sigma form of a query: a complete Sigma rule, as written."""

    id = serializers.UUIDField(source="rule_id")
    yaml = serializers.CharField(source="yaml_text")

    class Meta:
        model = PlaybookSigmaRule
        fields = ["id", "title", "level", "logsource", "tags", "filename", "yaml"]


class PlaybookQuerySerializer(serializers.ModelSerializer):
    sigma = SigmaFormSerializer(
        source="sigma_rule",
        allow_null=True,
        help_text="The query's Sigma form, for rendering on other platforms; null if none.",
    )
    text = serializers.CharField(help_text="The query; `$name$` tokens stand for inputs.")

    class Meta:
        model = PlaybookQuery
        fields = ["platform", "language", "description", "text", "sigma"]


class PlaybookInputSerializer(serializers.ModelSerializer):
    token = serializers.CharField(help_text="How queries write the input, such as `$host$`.")

    class Meta:
        model = PlaybookInput
        fields = ["name", "token", "source", "description", "example"]


class ReferenceSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.URLField()
    description = serializers.CharField(required=False, default="")


class ResponseStepSerializer(serializers.ModelSerializer):
    number = serializers.IntegerField(help_text="Position in the whole playbook, from 1.")
    queries = PlaybookQuerySerializer(many=True)
    records = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the analyst inputs the step finds."
    )

    class Meta:
        model = ResponseStep
        fields = [
            "number",
            "phase",
            "title",
            "role",
            "automatable",
            "action",
            "rationale",
            "automation",
            "records",
            "queries",
        ]


class InvestigationQuestionSerializer(serializers.ModelSerializer):
    number = serializers.IntegerField()
    artifacts = serializers.ListField(child=serializers.CharField())
    queries = PlaybookQuerySerializer(many=True)

    class Meta:
        model = InvestigationQuestion
        fields = [
            "number",
            "question",
            "role",
            "artifacts",
            "benign_answer",
            "malicious_answer",
            "queries",
        ]


class HuntingQuerySerializer(serializers.ModelSerializer):
    number = serializers.IntegerField()
    data_sources = serializers.ListField(child=serializers.CharField())
    queries = PlaybookQuerySerializer(many=True)

    class Meta:
        model = HuntingQuery
        fields = [
            "number",
            "name",
            "role",
            "hypothesis",
            "expected_noise",
            "data_sources",
            "queries",
        ]


class PlaybookSerializer(PlaybookLinkSerializer):
    """A playbook with everything it contains, as the list and detail views return it."""

    authors = serializers.ListField(child=serializers.CharField())
    detections = serializers.SerializerMethodField(
        help_text="Detections that start the playbook, limited to those the caller may read."
    )
    inputs = PlaybookInputSerializer(many=True)
    references = ReferenceSerializer(many=True)
    response = ResponseStepSerializer(source="steps", many=True)
    investigation = InvestigationQuestionSerializer(source="questions", many=True)
    hunting = HuntingQuerySerializer(source="hunts", many=True)

    class Meta(PlaybookLinkSerializer.Meta):
        fields = PlaybookLinkSerializer.Meta.fields + [
            "date_created",
            "date_modified",
            "authors",
            "summary",
            "detections",
            "inputs",
            "references",
            "response",
            "investigation",
            "hunting",
            "updated_at",
        ]

    @extend_schema_field(DetectionLinkSerializer(many=True))
    def get_detections(self, playbook) -> list[dict]:
        # The selectors prefetch only the links to detections the caller may read.
        detections = [link.detection for link in playbook.links.all()]
        return DetectionLinkSerializer(detections, many=True, context=self.context).data
