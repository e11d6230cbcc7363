from django import forms
from django.contrib import admin

from . import models
from .admin_history import RevisionedAdmin
from .rendering import renders_schedule
from .rule_edit import RuleTextError, rule_text_check, rule_text_store


class MappingInline(admin.TabularInline):
    model = models.AttackMapping
    extra = 0


class DataSourceInline(admin.TabularInline):
    model = models.DetectionDataSource
    extra = 0


class FalsePositiveInline(admin.TabularInline):
    model = models.FalsePositive
    extra = 0


class SigmaRuleForm(forms.ModelForm):
    """Checks an edited rule text as the API does, and refreshes the parsed fields."""

    class Meta:
        model = models.SigmaRule
        fields = ["yaml_text"]

    def clean_yaml_text(self):
        text = self.cleaned_data["yaml_text"]
        if self.instance.pk is None or text == self.instance.yaml_text:
            return text
        try:
            self.checked_rule = rule_text_check(text, rule_id=str(self.instance.rule_id))
        except RuleTextError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text

    def save(self, commit=True):
        checked = getattr(self, "checked_rule", None)
        if checked is None:
            return super().save(commit=commit)
        rule_text_store(self.instance, checked)
        renders_schedule(rule_ids=[self.instance.pk])
        return self.instance


class SigmaRuleInline(admin.StackedInline):
    model = models.SigmaRule
    form = SigmaRuleForm
    extra = 0
    # The file name is set by load_content and names the file export_content writes,
    # so it is not editable here.
    readonly_fields = [
        "filename",
        "rule_id",
        "kind",
        "title",
        "status",
        "level",
        "logsource",
        "tags",
        "is_valid",
    ]
    fields = [*readonly_fields, "yaml_text"]


class TuningEntryInline(admin.StackedInline):
    model = models.TuningEntry
    extra = 0
    fields = [
        "uuid", "position", "condition", "rules", "branches", "reason", "owner", "expires",
        "ticket", "enabled", "spl", "created_by", "created_at", "updated_at",
    ]
    readonly_fields = ["spl", "created_by", "created_at", "updated_at"]


@admin.register(models.TuningEntry)
class TuningEntryAdmin(admin.ModelAdmin):
    list_display = ["uuid", "detection", "owner", "expires", "enabled", "ticket", "updated_at"]
    list_filter = ["enabled", "owner"]
    search_fields = ["uuid", "detection__slug", "owner", "ticket", "reason"]
    readonly_fields = ["spl", "created_by", "created_at", "updated_at"]
    autocomplete_fields = ["detection"]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(models.Detection)
class DetectionAdmin(RevisionedAdmin):
    list_display = ["title", "slug", "status", "sigma_status", "severity", "platform", "updated_at"]
    list_filter = ["status", "origin", "sigma_status", "severity", "platform"]
    search_fields = ["title", "slug", "description"]
    readonly_fields = [
        "uuid", "origin", "sigma_status", "source_path", "source_hash", "loaded_fingerprint"
    ]
    inlines = [
        MappingInline, DataSourceInline, FalsePositiveInline, TuningEntryInline, SigmaRuleInline
    ]

    def save_formset(self, request, form, formset, change):
        if formset.model is models.TuningEntry:
            for entry in formset.save(commit=False):
                if entry.created_by_id is None:
                    entry.created_by = request.user
                entry.save()
            for entry in formset.deleted_objects:
                entry.delete()
            formset.save_m2m()
            return
        super().save_formset(request, form, formset, change)


@admin.register(models.Tactic)
class TacticAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "name", "revoked", "deprecated"]


@admin.register(models.Technique)
class TechniqueAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "name", "parent", "revoked", "deprecated"]
    list_filter = ["revoked", "deprecated"]
    search_fields = ["attack_id", "name"]


@admin.register(models.DataComponent)
class DataComponentAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "label", "revoked", "deprecated"]


@admin.register(models.Analytic)
class AnalyticAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "name", "revoked", "deprecated"]
    search_fields = ["attack_id", "name", "description"]


@admin.register(models.DetectionStrategy)
class DetectionStrategyAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "name", "revoked", "deprecated"]
    search_fields = ["attack_id", "name"]


@admin.register(models.StatusTransition)
class StatusTransitionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "content_type", "object_id", "from_status", "to_status", "user"]
    list_filter = ["content_type", "to_status"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
