"""Writes to a detection through the API: fields, Sigma rules and test expectations.

Each write is a conditional write (see detections.api.versioned): it needs the
detection's ETag in If-Match and stores one new revision.
"""

import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from detections.models import Detection, DetectionTest, FalsePositive, ValidationRun
from detections.rendering import renders_schedule
from detections.rule_edit import RuleTextError, rule_text_check, rule_text_store
from detections.validation.runs import validation_request

from .serializers import DetectionSerializer, SigmaRuleSerializer, TestSerializer
from .versioned import ETAG_HEADER, WRITE_ERRORS, etag_for

COMMENT_FIELD = serializers.CharField(
    required=False, allow_blank=True, default="", help_text="Why the change was made, for history."
)


def reject_unknown_fields(data, serializer: serializers.Serializer) -> None:
    """Raise 400 for body keys the serializer does not accept, instead of ignoring them."""
    if not hasattr(data, "keys"):
        raise exceptions.ValidationError({"detail": ["The body must be a JSON object."]})
    unknown = sorted(set(data.keys()) - set(serializer.fields))
    if unknown:
        hint = " Change `status` with POST .../transitions/." if "status" in unknown else ""
        raise exceptions.ValidationError(
            {name: [f"This field cannot be changed here.{hint}"] for name in unknown}
        )


class DetectionEditSerializer(serializers.ModelSerializer):
    """Fields of a detection that PATCH may change; false positives replace the list."""

    false_positives = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="The whole list, in order."
    )
    comment = COMMENT_FIELD

    class Meta:
        model = Detection
        fields = [
            "title",
            "description",
            "summary",
            "severity",
            "confidence",
            "tuning_notes",
            "references",
            "false_positives",
            "comment",
        ]


class SigmaRuleEditSerializer(serializers.Serializer):
    yaml = serializers.CharField(trim_whitespace=False, help_text="The rule's YAML text.")
    comment = COMMENT_FIELD


class TestEditSerializer(serializers.ModelSerializer):
    __test__ = False  # Not a pytest test class, despite the name.

    comment = COMMENT_FIELD

    class Meta:
        model = DetectionTest
        fields = [
            "name",
            "description",
            "expected_signal",
            "expect",
            "min_matches",
            "known_false_positive",
            "comment",
        ]


def changed_fields(body: serializers.Serializer) -> tuple[dict, str]:
    """Return the validated fields to change and the history comment; 400 when none."""
    fields = dict(body.validated_data)
    comment = fields.pop("comment", "")
    if not fields:
        raise exceptions.ValidationError({"detail": ["The body changes no field."]})
    return fields, comment


def _validate_after_commit(detection: Detection, user) -> None:
    """Queue a validation run of the detection's authored tests, sent once committed."""
    if detection.tests.filter(origin=DetectionTest.Origin.AUTHORED).exists():
        validation_request(detection, trigger=ValidationRun.Trigger.API, user=user)


class DetectionEditMixin:
    """PATCH of a detection, PUT/PATCH of its Sigma rules and PATCH of its tests."""

    @extend_schema(
        request=DetectionEditSerializer,
        parameters=[ETAG_HEADER],
        responses={200: DetectionSerializer, **WRITE_ERRORS},
    )
    def partial_update(self, request: Request, slug=None) -> Response:
        """Change fields of the detection. Status changes go through `transitions/`."""
        detection = self.get_object()
        body = DetectionEditSerializer(data=request.data, partial=True)
        reject_unknown_fields(request.data, body)
        body.is_valid(raise_exception=True)
        fields, comment = changed_fields(body)
        false_positives = fields.pop("false_positives", None)

        def mutate(locked: Detection) -> None:
            if fields:
                for name, value in fields.items():
                    setattr(locked, name, value)
                locked.save(update_fields=[*fields, "updated_at"])
            if false_positives is not None:
                locked.false_positives.all().delete()
                FalsePositive.objects.bulk_create(
                    FalsePositive(detection=locked, position=index, description=text)
                    for index, text in enumerate(false_positives)
                )

        changed = sorted([*fields, *(["false_positives"] if false_positives is not None else [])])
        return self.edit_response(
            request, detection, mutate, comment or "Changed " + ", ".join(changed)
        )

    @extend_schema(
        methods=["GET"],
        parameters=[OpenApiParameter("rule_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: SigmaRuleSerializer},
    )
    @extend_schema(
        methods=["PUT", "PATCH"],
        parameters=[
            OpenApiParameter("rule_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            ETAG_HEADER,
        ],
        request=SigmaRuleEditSerializer,
        responses={200: DetectionSerializer, **WRITE_ERRORS},
        description=(
            "Replace the rule's YAML. pySigma checks it first: invalid YAML or an invalid "
            "rule returns 400 with the reason and `line`, and the stored rule stays. The "
            "renders and a validation run are queued for the workers."
        ),
    )
    @action(
        detail=True,
        methods=["get", "put", "patch"],
        url_path=r"sigma/(?P<rule_id>[0-9a-fA-F-]{36})",
        url_name="sigma-rule",
        filter_backends=[],
    )
    def sigma_rule(self, request: Request, slug=None, rule_id=None) -> Response:
        """Read or replace one Sigma rule of the detection."""
        detection = self.get_object()
        try:
            parsed_id = uuid.UUID(rule_id)
        except ValueError as exc:
            raise exceptions.NotFound("Not a Sigma rule id.") from exc
        rules = detection.sigma_rules.select_related("detection")
        rule = get_object_or_404(rules, rule_id=parsed_id)
        if request.method == "GET":
            data = SigmaRuleSerializer(rule, context=self.get_serializer_context()).data
            return Response(data, headers={"ETag": etag_for(detection)})
        body = SigmaRuleEditSerializer(data=request.data)
        reject_unknown_fields(request.data, body)
        body.is_valid(raise_exception=True)
        try:
            checked = rule_text_check(body.validated_data["yaml"], rule_id=str(rule.rule_id))
        except RuleTextError as exc:
            # A Response, not ValidationError, so that `line` stays a number.
            return Response({"yaml": [str(exc)], "line": exc.line}, status=400)

        def mutate(locked: Detection) -> None:
            row = locked.sigma_rules.get(pk=rule.pk)
            rule_text_store(row, checked)
            renders_schedule(rule_ids=[row.pk])
            _validate_after_commit(locked, request.user)

        comment = body.validated_data["comment"] or f"Changed Sigma rule {rule.filename}"
        return self.edit_response(request, detection, mutate, comment)

    @extend_schema(
        methods=["GET"],
        parameters=[OpenApiParameter("position", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: TestSerializer},
    )
    @extend_schema(
        methods=["PATCH"],
        parameters=[
            OpenApiParameter("position", OpenApiTypes.INT, OpenApiParameter.PATH),
            ETAG_HEADER,
        ],
        request=TestEditSerializer,
        responses={200: DetectionSerializer, **WRITE_ERRORS},
        description="Change a test's expectation; a validation run is queued for the workers.",
    )
    @action(
        detail=True,
        methods=["get", "patch"],
        url_path=r"tests/(?P<position>\d+)",
        url_name="test",
        filter_backends=[],
    )
    def test_case(self, request: Request, slug=None, position=None) -> Response:
        """Read or change one test of the detection, by its position from 0."""
        detection = self.get_object()
        tests = detection.tests.prefetch_related("telemetry")
        test = get_object_or_404(tests, position=int(position))
        if request.method == "GET":
            data = TestSerializer(test, context=self.get_serializer_context()).data
            return Response(data, headers={"ETag": etag_for(detection)})
        body = TestEditSerializer(data=request.data, partial=True)
        reject_unknown_fields(request.data, body)
        body.is_valid(raise_exception=True)
        fields, comment = changed_fields(body)

        def mutate(locked: Detection) -> None:
            row = locked.tests.get(pk=test.pk)
            for name, value in fields.items():
                setattr(row, name, value)
            row.save(update_fields=list(fields))
            _validate_after_commit(locked, request.user)

        default_comment = f"Changed test {test.name}: " + ", ".join(sorted(fields))
        return self.edit_response(request, detection, mutate, comment or default_comment)
