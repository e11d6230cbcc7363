"""Who may see, edit and publish detections and playbooks.

Roles are the groups that migration 0006 creates, and superusers, who hold every
permission:

- viewer: reads content in every workflow status.
- author: also edits content and submits it for review.
- reviewer: also publishes and deprecates content.

Anonymous users, token clients and signed-in users in no group read published
content only, unless settings.PORTAL_SHOW_UNPUBLISHED is true.
"""

from django.conf import settings
from django.db import models
from django.db.models import QuerySet

from .models import Detection


def _app_label(model: type[models.Model]) -> str:
    return model._meta.app_label


def _model_name(model: type[models.Model]) -> str:
    return model._meta.model_name


def _has_perm(user, action: str, model: type[models.Model]) -> bool:
    if user is None or not user.is_active:
        return False
    return user.has_perm(f"{_app_label(model)}.{action}_{_model_name(model)}")


def can_view_unpublished(user, model: type[models.Model] = Detection) -> bool:
    """Return whether `user` may see drafts, content in review and deprecated content."""
    return settings.PORTAL_SHOW_UNPUBLISHED or _has_perm(user, "view", model)


def can_edit(user, model: type[models.Model] = Detection) -> bool:
    """Return whether `user` may change content of `model` (Detection or Playbook)."""
    return _has_perm(user, "change", model)


def can_publish(user, model: type[models.Model] = Detection) -> bool:
    """Return whether `user` may publish and deprecate content of `model`."""
    return _has_perm(user, "publish", model)


def visible_detections(user) -> QuerySet[Detection]:
    """Return the detections `user` may read."""
    detections = Detection.objects.all()
    if not can_view_unpublished(user, Detection):
        detections = detections.filter(status=Detection.Status.PUBLISHED)
    return detections


def visible_playbooks(user):
    """Return the playbooks `user` may read."""
    from playbooks.models import Playbook

    playbooks = Playbook.objects.all()
    if not can_view_unpublished(user, Playbook):
        playbooks = playbooks.filter(status=Detection.Status.PUBLISHED)
    return playbooks
