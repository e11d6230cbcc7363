from django.contrib import admin

from . import models


class MappingInline(admin.TabularInline):
    model = models.AttackMapping
    extra = 0


class DataSourceInline(admin.TabularInline):
    model = models.DetectionDataSource
    extra = 0


class FalsePositiveInline(admin.TabularInline):
    model = models.FalsePositive
    extra = 0


class SigmaRuleInline(admin.StackedInline):
    model = models.SigmaRule
    extra = 0
    # The file name is set by load_content and names the file export_content writes,
    # so it is not editable here.
    readonly_fields = [
        "filename",
        "rule_id",
        "title",
        "status",
        "level",
        "logsource",
        "tags",
        "is_valid",
    ]
    fields = [*readonly_fields, "yaml_text"]


@admin.register(models.Detection)
class DetectionAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "status", "severity", "platform", "updated_at"]
    list_filter = ["status", "severity", "platform"]
    search_fields = ["title", "slug", "description"]
    readonly_fields = ["uuid", "source_path", "source_hash", "loaded_fingerprint"]
    inlines = [MappingInline, DataSourceInline, FalsePositiveInline, SigmaRuleInline]


@admin.register(models.Tactic)
class TacticAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "name"]


@admin.register(models.Technique)
class TechniqueAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "name", "parent"]
    search_fields = ["attack_id", "name"]


@admin.register(models.DataComponent)
class DataComponentAdmin(admin.ModelAdmin):
    list_display = ["attack_id", "label"]
