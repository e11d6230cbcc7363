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
from playbooks.sigma_checks import STATUS_LABELS, SigmaCheck, playbook_sigma_checks

from .links import PlaybookLinkSerializer


class SigmaFormSerializer(serializers.ModelSerializer):
    """The Sigma form of a query: a complete Sigma rule, as written."""

    id = serializers.UUIDField(source="rule_id")
    yaml = serializers.CharField(source="yaml_text")

    class Meta:
        model = PlaybookSigmaRule
        fields = ["id", "title", "level", "logsource", "tags", "filename", "yaml"]


# Context key of the Sigma checks by PlaybookQuery id, which PlaybookSerializer fills.
SIGMA_CHECKS = "sigma_checks"


class TestHitSerializer(serializers.Serializer):
    __test__ = False  # Not a pytest test class, despite the name.

    detection = serializers.SlugField(help_text="Slug of the detection the test belongs to.")
    number = serializers.IntegerField(help_text="The test's number on the detection, from 1.")
    name = serializers.CharField()
    matched_events = serializers.IntegerField(
        help_text="Recorded events of the test that the Sigma form matched."
    )


class TestGroupSerializer(serializers.Serializer):
    __test__ = False  # Not a pytest test class, despite the name.

    tests = serializers.IntegerField(help_text="Tests of the group with recorded events.")
    read = serializers.IntegerField(
        help_text="Tests with at least one event of the Sigma form's log source."
    )
    hit = serializers.IntegerField(help_text="Tests with at least one matched event.")
    hits = TestHitSerializer(many=True, help_text="The tests with matched events.")


class SigmaCheckSerializer(serializers.Serializer):
    """The result of a query's Sigma form on the recorded events of the linked tests."""

    rule_id = serializers.CharField(
        help_text="The Sigma rule's id; empty if the rule cannot be read."
    )
    status = serializers.ChoiceField(
        choices=list(STATUS_LABELS),
        help_text=(
            "`finds_attack` when it matches an attack test, `misses_attack` when it matches "
            "none, `no_attack_tests` when no linked attack test has recorded events, and "
            "`error` when the engine reported an error."
        ),
    )
    label = serializers.CharField(help_text="The status in words, as the web pages show it.")
    attack = TestGroupSerializer(
        help_text="Tests that expect the detection to fire and are not known false positives."
    )
    benign = TestGroupSerializer(help_text="Known false positives and tests that expect silence.")
    errors = serializers.ListField(
        child=serializers.CharField(),
        help_text="Engine errors, such as a field that none of the events has.",
    )
    without_events = serializers.IntegerField(
        help_text="Linked tests without recorded events, which the check leaves out."
    )


class PlaybookQuerySerializer(serializers.ModelSerializer):
    sigma = SigmaFormSerializer(
        source="sigma_rule",
        allow_null=True,
        help_text="The query's Sigma form, for rendering on other platforms; null if none.",
    )
    text = serializers.CharField(help_text="The query; `$name$` tokens stand for inputs.")
    sigma_check = serializers.SerializerMethodField(
        help_text=(
            "The Sigma form run with the embedded engine over the recorded events of the "
            "tests of the playbook's detections that the caller may read; null if the query "
            "has no Sigma form."
        )
    )

    class Meta:
        model = PlaybookQuery
        fields = ["platform", "language", "description", "text", "sigma", "sigma_check"]

    @extend_schema_field(SigmaCheckSerializer(allow_null=True))
    def get_sigma_check(self, query: PlaybookQuery) -> dict | None:
        check: SigmaCheck | None = self.context.get(SIGMA_CHECKS, {}).get(query.pk)
        return None if check is None else SigmaCheckSerializer(check).data


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
            "revision",
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

    def to_representation(self, playbook):
        # One engine run per playbook gives the checks of all its queries, which the
        # nested query serializers read from the shared context.
        self.context.setdefault(SIGMA_CHECKS, {}).update(playbook_sigma_checks(playbook))
        return super().to_representation(playbook)

    @extend_schema_field(DetectionLinkSerializer(many=True))
    def get_detections(self, playbook) -> list[dict]:
        # The selectors prefetch only the links to detections the caller may read.
        detections = [link.detection for link in playbook.links.all()]
        return DetectionLinkSerializer(detections, many=True, context=self.context).data
