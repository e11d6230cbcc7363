from django.contrib import admin

from .editing import revision_record
from .models import StatusTransition


class RevisionedAdmin(admin.ModelAdmin):
    """Admin for a detection or playbook that stores each save as a revision.

    A status changed here is stored as a StatusTransition too, but without the
    workflow's checks: the admin is for superusers, who hold every permission.
    """

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "revision"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        changed = list(form.changed_data)
        for formset in formsets:
            if formset.has_changed():
                changed.append(formset.prefix)
        comment = "Changed in the admin: " + (", ".join(changed) or "no fields")
        if not change:
            comment = "Created in the admin"
        revision_record(obj, user=request.user, comment=comment, bump=change)
        if change and "status" in form.changed_data:
            StatusTransition.objects.create(
                content_object=obj,
                from_status=form.initial.get("status", ""),
                to_status=obj.status,
                user=request.user,
                comment="Changed in the admin",
                revision=obj.revision,
            )
