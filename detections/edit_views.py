"""Edit pages of a detection: overview, tuning and false positives, tests and Sigma rules.

Only users who may edit (authors, reviewers and administrators) reach these pages:
anonymous users are sent to the login page and everyone else gets 403. Every save
goes through `editing.edit`, which records a revision with the user and comment.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from . import forms, permissions
from .edit_flow import EditPage, edit_page
from .models import Detection, DetectionTest, FalsePositive, ValidationRun
from .rendering import renders_schedule
from .rule_edit import rule_text_store
from .validation.runs import validation_request

EDIT_METHODS = ["GET", "HEAD", "POST"]


def editable_detection(request: HttpRequest, slug: str) -> Detection:
    return get_object_or_404(permissions.visible_detections(request.user), slug=slug)


def _section_url(detection: Detection, anchor: str) -> str:
    return f"{detection.get_absolute_url()}#{anchor}"


def _fields_initial(names):
    def initial(obj) -> dict:
        return {name: getattr(obj, name) for name in names}

    return initial


def _fields_apply(names):
    def apply(locked, form, extra) -> None:
        for name in names:
            setattr(locked, name, form.cleaned_data[name])
        locked.save()

    return apply


@login_required
@require_http_methods(EDIT_METHODS)
def overview_edit(request: HttpRequest, slug: str) -> HttpResponse:
    detection = editable_detection(request, slug)
    page = EditPage(
        obj=detection,
        template="detections/edit/overview.html",
        form_factory=forms.OverviewForm,
        initial=_fields_initial(forms.OverviewForm.FIELDS),
        apply=_fields_apply(forms.OverviewForm.FIELDS),
        success_url=_section_url(detection, "description"),
        success_message="Saved the description, summary, severity and confidence.",
        context={"detection": detection},
    )
    return edit_page(request, page)


@login_required
@require_http_methods(EDIT_METHODS)
def tuning_edit(request: HttpRequest, slug: str) -> HttpResponse:
    detection = editable_detection(request, slug)

    def extra_forms(data, obj) -> dict:
        initial = [{"description": item.description} for item in obj.false_positives.all()]
        formset = forms.FalsePositiveFormSet(data, initial=initial, prefix="false_positives")
        return {"false_positive_forms": formset}

    def apply(locked, form, extra) -> None:
        locked.tuning_notes = form.cleaned_data["tuning_notes"]
        locked.save()
        texts = forms.false_positive_texts(extra["false_positive_forms"])
        stored = [item.description for item in locked.false_positives.all()]
        if texts != stored:
            locked.false_positives.all().delete()
            FalsePositive.objects.bulk_create(
                FalsePositive(detection=locked, position=position, description=text)
                for position, text in enumerate(texts)
            )

    page = EditPage(
        obj=detection,
        template="detections/edit/tuning.html",
        form_factory=forms.TuningForm,
        initial=_fields_initial(forms.TuningForm.FIELDS),
        apply=apply,
        success_url=_section_url(detection, "tuning"),
        success_message="Saved the tuning notes and false positives.",
        context={"detection": detection},
        extra_forms=extra_forms,
    )
    return edit_page(request, page)


@login_required
@require_http_methods(EDIT_METHODS)
def test_edit(request: HttpRequest, slug: str, test_id: int) -> HttpResponse:
    detection = editable_detection(request, slug)
    test = get_object_or_404(detection.tests, pk=test_id)

    def apply(locked, form, extra) -> None:
        locked_test = locked.tests.get(pk=test.pk)
        for name in forms.TestExpectationForm.FIELDS:
            setattr(locked_test, name, form.cleaned_data[name])
        locked_test.save()
        if locked_test.origin == DetectionTest.Origin.AUTHORED:
            validation_request(locked, trigger=ValidationRun.Trigger.WEB, user=request.user)

    page = EditPage(
        obj=detection,
        template="detections/edit/test.html",
        form_factory=forms.TestExpectationForm,
        initial=lambda obj: _fields_initial(forms.TestExpectationForm.FIELDS)(test),
        apply=apply,
        success_url=_section_url(detection, f"test-{test.position + 1}"),
        success_message=f"Saved the expectation of test {test.position + 1}; the tests run again.",
        context={"detection": detection, "test": test},
    )
    return edit_page(request, page)


@login_required
@require_http_methods(EDIT_METHODS)
def sigma_edit(request: HttpRequest, slug: str, rule_id) -> HttpResponse:
    detection = editable_detection(request, slug)
    rule = get_object_or_404(detection.sigma_rules, rule_id=rule_id)

    def form_factory(data, initial=None):
        return forms.SigmaRuleForm(data, initial=initial, rule=rule)

    def apply(locked, form, extra) -> None:
        locked_rule = locked.sigma_rules.get(pk=rule.pk)
        rule_text_store(locked_rule, form.checked)
        # Both are sent to the workers only once the edit is committed.
        renders_schedule(rule_ids=[locked_rule.pk])
        if locked.tests.filter(origin=DetectionTest.Origin.AUTHORED).exists():
            validation_request(locked, trigger=ValidationRun.Trigger.WEB, user=request.user)

    page = EditPage(
        obj=detection,
        template="detections/edit/sigma_rule.html",
        form_factory=form_factory,
        initial=lambda obj: {"yaml_text": rule.yaml_text},
        apply=apply,
        success_url=_section_url(detection, f"sigma-code-{rule.rule_id}"),
        success_message=(
            f"Saved the Sigma rule {rule.filename}; the workers render it and run the tests again."
        ),
        context={
            "detection": detection,
            "rule": rule,
            "preview_url": reverse("detections:preview_sigma", args=[detection.slug, rule.rule_id]),
        },
    )
    return edit_page(request, page)
