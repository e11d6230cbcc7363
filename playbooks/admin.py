from django.contrib import admin

from detections.admin_history import RevisionedAdmin

from . import models


class LinkInline(admin.TabularInline):
    model = models.PlaybookDetection
    extra = 0


class InputInline(admin.TabularInline):
    model = models.PlaybookInput
    extra = 0


class StepInline(admin.StackedInline):
    model = models.ResponseStep
    extra = 0


class SigmaRuleInline(admin.StackedInline):
    model = models.PlaybookSigmaRule
    extra = 0
    # The file name names the file export_content writes, so it is not editable here.
    readonly_fields = ["filename", "rule_id", "title", "level", "logsource", "tags"]
    fields = [*readonly_fields, "yaml_text"]


@admin.register(models.Playbook)
class PlaybookAdmin(RevisionedAdmin):
    list_display = ["title", "slug", "status", "version", "updated_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug", "summary"]
    readonly_fields = ["uuid", "source_path", "source_hash", "loaded_fingerprint"]
    inlines = [LinkInline, InputInline, StepInline, SigmaRuleInline]
