"""Template filters and tags of the edit, history and workflow parts of the pages."""

import json

from django import template

from detections import permissions

register = template.Library()


@register.filter
def change_value(value) -> str:
    """Show a field value of a conflict or history entry as text; the template escapes it."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.simple_tag(takes_context=True)
def user_can_edit(context) -> bool:
    return permissions.can_edit(context["request"].user)


@register.simple_tag(takes_context=True)
def user_can_publish(context) -> bool:
    return permissions.can_publish(context["request"].user)
