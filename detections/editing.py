"""Editing detections and playbooks without lost updates, with history and a review workflow.

Portal and API changes go through `edit`, `transition` or `restore`. Each one locks
the row, checks that the caller started from the stored `revision`, applies the
change, raises `revision` by one and records a django-reversion revision of the
whole aggregate (see detections.versioning) with the user and a comment. The
loading commands and the admin record their own writes with `revision_record`.

Workflow moves (`TRANSITIONS`):

- draft -> review: submit for review;
- review -> draft: withdraw, or send back to the author;
- review -> published: publish;
- published -> review: take back for rework;
- published -> deprecated: retire;
- deprecated -> draft: revive.

Moving to or from `published`, and to or from `deprecated`, changes what readers
of the catalogue see, so it needs the publish permission (reviewers). The other
moves need the change permission (authors).
"""

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import reversion
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from reversion.errors import RevertError
from reversion.models import Version

from .models import Detection, DetectionTest, StatusTransition, ValidationRun
from .permissions import can_edit, can_publish
from .rendering import renders_schedule
from .validation.runs import validation_request
from .versioning import aggregate_models, followed_relations

Status = Detection.Status

TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.DRAFT: (Status.REVIEW,),
    Status.REVIEW: (Status.DRAFT, Status.PUBLISHED),
    Status.PUBLISHED: (Status.REVIEW, Status.DEPRECATED),
    Status.DEPRECATED: (Status.DRAFT,),
}
PUBLISHING_STATUSES = (Status.PUBLISHED, Status.DEPRECATED)

# Fields that change on every save or only record bookkeeping; a diff leaves them out.
UNDIFFED_FIELDS = {"id", "revision", "updated_at", "created_at", "loaded_fingerprint"}


@dataclass(frozen=True)
class FieldChange:
    """One difference between two versions of an aggregate.

    `field` names the row and the field, such as `tuning_notes`,
    `false_positives[2].description` or `sigma_rules[<rule id>]` for a whole row
    added or removed. `diff` is a unified diff when either value has several lines.
    """

    field: str
    before: Any
    after: Any
    diff: str = ""

    def as_dict(self) -> dict:
        return {"field": self.field, "before": self.before, "after": self.after, "diff": self.diff}

    def __str__(self) -> str:
        if self.diff:
            return f"{self.field}:\n{self.diff}"
        return f"{self.field}: {self.before!r} -> {self.after!r}"


class EditConflict(Exception):
    """The object was changed since the revision the editor started from."""

    def __init__(
        self, *, expected_revision: int, current_revision: int, changes: list[FieldChange]
    ):
        self.expected_revision = expected_revision
        self.current_revision = current_revision
        self.changes = changes
        super().__init__(
            f"the object was changed since revision {expected_revision} and is now at "
            f"revision {current_revision}; reload it and apply the edit again"
        )


class RestoreError(Exception):
    """A stored version cannot be written back, for example because it refers to a row
    deleted since."""


class TransitionError(ValueError):
    """The requested workflow status cannot be reached from the current one."""


@dataclass(frozen=True)
class HistoryEntry:
    """One stored version of an aggregate."""

    version_id: int
    revision: int | None
    user: str | None
    created_at: datetime
    comment: str


def edit(
    obj: models.Model,
    *,
    user,
    expected_revision: int,
    mutate: Callable[[models.Model], None],
    comment: str = "",
) -> models.Model:
    """Apply `mutate` to the locked row of `obj` and store the result as a new revision.

    `mutate` receives the freshly locked object and saves its fields and related rows.
    Raises PermissionDenied when `user` may not edit, and EditConflict when the stored
    revision is not `expected_revision`. Returns the object as stored afterwards.
    """
    model = type(obj)
    _check_can_edit(user, model)
    with transaction.atomic():
        locked = _lock(obj, expected_revision)
        mutate(locked)
        _record(locked, user=user, comment=comment)
    return model.objects.get(pk=obj.pk)


def transition(
    obj: models.Model, *, user, to_status: str, comment: str, expected_revision: int
) -> models.Model:
    """Move `obj` to the workflow status `to_status` and store a StatusTransition row.

    Raises TransitionError for a move `TRANSITIONS` does not allow, PermissionDenied
    when `user` lacks the change or publish permission it needs, and EditConflict on
    a stale `expected_revision`.
    """
    model = type(obj)
    _check_can_edit(user, model)
    with transaction.atomic():
        locked = _lock(obj, expected_revision)
        from_status = locked.status
        allowed = TRANSITIONS.get(from_status, ())
        if to_status not in allowed:
            choices = ", ".join(allowed) or "none"
            raise TransitionError(
                f"cannot move from {from_status} to {to_status!r}; allowed from {from_status}: "
                f"{choices}"
            )
        needs_publish = from_status in PUBLISHING_STATUSES or to_status in PUBLISHING_STATUSES
        if needs_publish and not can_publish(user, model):
            raise PermissionDenied(
                f"{_username(user)} may not move {model._meta.verbose_name_plural} from "
                f"{from_status} to {to_status}; a reviewer must do it."
            )
        locked.status = to_status
        locked.save(update_fields=["status", "updated_at"])
        text = comment or f"Status {from_status} -> {to_status}"
        _record(locked, user=user, comment=text)
        StatusTransition.objects.create(
            content_object=locked,
            from_status=from_status,
            to_status=to_status,
            user=user if user is not None and user.is_authenticated else None,
            comment=comment,
            revision=locked.revision,
        )
    return model.objects.get(pk=obj.pk)


def restore(
    obj: models.Model,
    *,
    user,
    version_id: int,
    expected_revision: int,
    comment: str = "",
    trigger: str = ValidationRun.Trigger.WEB,
) -> models.Model:
    """Bring back the aggregate as stored in version `version_id`, as a new revision.

    Related rows return with it: rows deleted since then are recreated and rows added
    since then are deleted. The workflow status stays as it is, because only
    `transition` changes it. A detection's renders and a validation run (started by
    `trigger`) are queued. Raises Version.DoesNotExist for a version of another
    object, besides the errors of `edit`.

    Raises RestoreError, changing nothing, when the version refers to a row deleted
    since, such as an ATT&CK technique removed from the catalogue.
    """
    model = type(obj)
    _check_can_edit(user, model)
    with transaction.atomic():
        locked = _lock(obj, expected_revision)
        version = Version.objects.get_for_object(locked).select_related("revision").get(
            pk=version_id
        )
        _revert(version, model)
        model.objects.filter(pk=locked.pk).update(
            status=locked.status, revision=locked.revision
        )
        restored = model.objects.get(pk=locked.pk)
        old_revision = version.field_dict.get("revision")
        _record(restored, user=user, comment=comment or f"Restored revision {old_revision}")
        if isinstance(restored, Detection):
            _work_queue(restored, user, trigger)
    return model.objects.get(pk=obj.pk)


def _revert(version: Version, model) -> None:
    """Write the version's revision back and check its foreign keys before going on.

    Foreign keys are deferred to the commit on PostgreSQL and SQLite, so a missing
    row would otherwise only fail after the new revision was recorded.
    """
    tables = [item._meta.db_table for item in aggregate_models(model)]
    try:
        version.revision.revert(delete=True)
        connection.check_constraints(table_names=tables)
    except (RevertError, IntegrityError) as exc:
        raise RestoreError(
            f"version {version.pk} cannot be restored because it refers to data that no "
            f"longer exists ({exc}); restore a later version or add the missing data"
        ) from exc


def _work_queue(detection: Detection, user, trigger: str) -> None:
    """Queue renders of changed Sigma rules and a validation run, sent once committed."""
    renders_schedule(rule_ids=list(detection.sigma_rules.values_list("pk", flat=True)))
    if detection.tests.filter(origin=DetectionTest.Origin.AUTHORED).exists():
        validation_request(detection, trigger=trigger, user=user)


def history(obj: models.Model) -> list[HistoryEntry]:
    """Return the stored versions of `obj`, newest first."""
    versions = Version.objects.get_for_object(obj).select_related("revision__user")
    return [
        HistoryEntry(
            version_id=version.pk,
            revision=version.field_dict.get("revision"),
            user=version.revision.user.get_username() if version.revision.user else None,
            created_at=version.revision.date_created,
            comment=version.revision.comment,
        )
        for version in versions
    ]


def diff(
    obj: models.Model, version_a: int | Version, version_b: int | Version
) -> list[FieldChange]:
    """Return the differences from version `version_a` to `version_b` of `obj`.

    Both must be versions of `obj` itself (ids from `history`). Related rows are
    compared by a stable key: a Sigma rule by its rule id, other rows by position.
    """
    versions = Version.objects.get_for_object(obj)
    before = version_a if isinstance(version_a, Version) else versions.get(pk=version_a)
    after = version_b if isinstance(version_b, Version) else versions.get(pk=version_b)
    return _aggregate_diff(_aggregate_rows(before), _aggregate_rows(after))


def revision_record(obj: models.Model, *, user=None, comment: str, bump: bool = True) -> None:
    """Store the current state of `obj` as a revision, raising `revision` first when `bump`.

    For the loading commands, which write outside `edit`: pass bump=False for an
    object they just created.
    """
    if bump:
        _record(obj, user=user, comment=comment)
    else:
        _revision_save(obj, user=user, comment=comment)


def _lock(obj: models.Model, expected_revision: int) -> models.Model:
    model = type(obj)
    locked = model.objects.select_for_update().get(pk=obj.pk)
    if locked.revision != expected_revision:
        raise EditConflict(
            expected_revision=expected_revision,
            current_revision=locked.revision,
            changes=_changes_since(locked, expected_revision),
        )
    return locked


def _record(obj: models.Model, *, user, comment: str) -> None:
    type(obj).objects.filter(pk=obj.pk).update(revision=F("revision") + 1)
    obj.refresh_from_db(fields=["revision"])
    _revision_save(obj, user=user, comment=comment)


def _revision_save(obj: models.Model, *, user, comment: str) -> None:
    # Each revision holds one aggregate, so callers must not nest these blocks.
    with reversion.create_revision(atomic=False):
        if user is not None and user.is_authenticated:
            reversion.set_user(user)
        reversion.set_comment(comment)
        reversion.add_to_revision(obj)


def _changes_since(obj: models.Model, expected_revision: int) -> list[FieldChange]:
    """Return what changed between `expected_revision` and the stored object.

    Empty when no stored version has `expected_revision`, as for a revision number
    the object never had.
    """
    versions = list(Version.objects.get_for_object(obj).select_related("revision"))
    started = next((v for v in versions if v.field_dict.get("revision") == expected_revision), None)
    if started is None or not versions:
        return []
    return _aggregate_diff(_aggregate_rows(started), _aggregate_rows(versions[0]))


def _aggregate_rows(root_version: Version) -> dict[str, dict]:
    """Return every row of the aggregate in `root_version`'s revision by its label."""
    by_model: dict[type, list[Version]] = {}
    for version in root_version.revision.version_set.all():
        by_model.setdefault(version._model, []).append(version)
    rows: dict[str, dict] = {}
    _collect_rows(rows, by_model, root_version._model, root_version, "")
    return rows


def _collect_rows(
    rows: dict, by_model: dict, model, version: Version, label: str, parent_attname: str = ""
) -> None:
    rows[label] = _comparable_fields(version.field_dict, parent_attname)
    for name in followed_relations(model):
        relation = model._meta.get_field(name)
        child_model = relation.related_model
        child_parent = relation.field.attname
        children = [
            child
            for child in by_model.get(child_model, [])
            if str(child.field_dict.get(child_parent)) == str(version.object_id)
        ]
        for child in children:
            key = _row_key(child.field_dict)
            child_label = f"{label}.{name}[{key}]" if label else f"{name}[{key}]"
            _collect_rows(rows, by_model, child_model, child, child_label, child_parent)


def _row_key(fields: dict) -> str:
    for key in ("rule_id", "position"):
        if key in fields:
            return str(fields[key])
    return str(fields.get("id"))


def _comparable_fields(fields: dict, parent_attname: str) -> dict:
    """Return the fields worth comparing: not bookkeeping, not the link to the parent row."""
    return {
        name: _plain(value)
        for name, value in fields.items()
        if name not in UNDIFFED_FIELDS and name != parent_attname
    }


def _plain(value):
    """Return `value` as JSON-ready data: dates and UUIDs as strings."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))


def _aggregate_diff(before: dict[str, dict], after: dict[str, dict]) -> list[FieldChange]:
    changes = []
    for label in sorted(before.keys() | after.keys(), key=lambda item: (item.count("."), item)):
        old, new = before.get(label), after.get(label)
        if old is None or new is None:
            changes.append(FieldChange(label, old, new))
            continue
        for name in sorted(old.keys() | new.keys()):
            if old.get(name) != new.get(name):
                field = f"{label}.{name}" if label else name
                changes.append(_field_change(field, old.get(name), new.get(name)))
    return changes


def _field_change(field: str, before, after) -> FieldChange:
    text_diff = ""
    if isinstance(before, str) and isinstance(after, str) and ("\n" in before or "\n" in after):
        text_diff = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"{field} (before)",
                tofile=f"{field} (after)",
            )
        )
    return FieldChange(field, before, after, text_diff)


def _check_can_edit(user, model) -> None:
    if not can_edit(user, model):
        raise PermissionDenied(f"{_username(user)} may not edit {model._meta.verbose_name_plural}.")


def _username(user) -> str:
    if user is None or not user.is_authenticated:
        return "An anonymous user"
    return f"User {user.get_username()!r}"
