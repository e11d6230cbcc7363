from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed and revoked here; `manage.py create_api_token` creates them,
    because the key is shown only once, when it is made."""

    list_display = ["prefix", "name", "user", "read_only", "state", "expires_at", "last_used_at"]
    list_filter = ["read_only"]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            token.revoke()
