"""Version history of detections and playbooks, kept by django-reversion.

A detection is an aggregate of many rows: ATT&CK mappings, data sources, authored
queries and their branches, Sigma rules, false positives, tests with their expected
telemetry, and tuning entries. django-reversion stores the whole aggregate in one
revision by following these relations, so restoring a version brings the related
rows back together.
django-simple-history was not chosen because it tracks each table on its own, which
leaves the joining of rows of one moment to the reader.

A revision is recorded only by `detections.editing`, which the API, the admin and
load_content call, and by `revisions_bulk_record` for import_sigma, never implicitly
on save. So each revision contains exactly one detection or playbook.
"""

import json

import reversion
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.python import Serializer as PythonSerializer
from django.db import router

# Relations each registered model follows, by "app_label.ModelName". A model that is
# followed but follows nothing itself has an empty tuple.
DETECTION_FOLLOW = {
    "detections.Detection": (
        "mappings",
        "data_sources",
        "queries",
        "sigma_rules",
        "false_positives",
        "tests",
        "tuning_entries",
    ),
    "detections.AttackMapping": (),
    "detections.DetectionDataSource": (),
    "detections.Query": ("branches",),
    "detections.DetectionBranch": (),
    "detections.SigmaRule": (),
    "detections.FalsePositive": (),
    "detections.DetectionTest": ("telemetry",),
    "detections.ExpectedTelemetry": (),
    "detections.TuningEntry": (),
}
PLAYBOOK_FOLLOW = {
    "playbooks.Playbook": ("links", "inputs", "sigma_rules", "steps", "questions", "hunts"),
    "playbooks.PlaybookDetection": (),
    "playbooks.PlaybookInput": (),
    "playbooks.PlaybookSigmaRule": (),
    "playbooks.ResponseStep": ("queries",),
    "playbooks.InvestigationQuestion": ("queries",),
    "playbooks.HuntingQuery": ("queries",),
    "playbooks.PlaybookQuery": (),
}


def followed_relations(model) -> tuple[str, ...]:
    """Return the relation names that a revision of `model` follows."""
    return {**DETECTION_FOLLOW, **PLAYBOOK_FOLLOW}.get(model._meta.label, ())


def aggregate_models(model) -> list:
    """Return `model` and every model its revisions follow, directly or through others."""
    models = [model]
    for name in followed_relations(model):
        models += aggregate_models(model._meta.get_field(name).related_model)
    return models


def _register(follow: dict[str, tuple[str, ...]]) -> None:
    for label, relations in follow.items():
        reversion.register(apps.get_model(label), follow=relations)


def register_detection_models() -> None:
    _register(DETECTION_FOLLOW)


def register_playbook_models() -> None:
    _register(PLAYBOOK_FOLLOW)


def _prefetch_paths(model, prefix: str = "") -> list[str]:
    """Return the prefetch paths of the followed relations and plain many-to-many fields."""
    paths = [
        f"{prefix}{field.name}"
        for field in model._meta.local_many_to_many
        if field.remote_field.through._meta.auto_created
    ]
    for name in followed_relations(model):
        path = f"{prefix}{name}"
        paths.append(path)
        paths += _prefetch_paths(model._meta.get_field(name).related_model, f"{path}__")
    return paths


def _aggregate_objects(obj) -> list:
    objects = [obj]
    for name in followed_relations(type(obj)):
        for child in getattr(obj, name).all():
            objects += _aggregate_objects(child)
    return objects


def revisions_bulk_record(
    model, comments: dict[int, str], *, created: dict[int, list] | None = None
) -> None:
    """Store one revision per object of `model`, by primary key, with its comment.

    Writes the same Revision and Version rows as reversion.create_revision with
    add_to_revision would, but with a few queries per batch instead of several per
    object, for importers that write thousands of detections at a time.

    `created` maps the primary keys of objects created in this transaction to their
    whole aggregate, the object first. Those are not read back from the database, and
    their many-to-many fields must be empty.
    """
    from django.db import connections
    from django.utils import timezone
    from reversion.models import Revision, Version

    created = created or {}
    aggregates = dict(created)
    for items in created.values():
        for item in items:
            _mark_many_to_many_empty(item)
    stored = model.objects.filter(pk__in=[pk for pk in comments if pk not in created])
    for obj in stored.prefetch_related(*_prefetch_paths(model)):
        aggregates[obj.pk] = _aggregate_objects(obj)
    now = timezone.now()
    revisions, members = [], []
    for pk, items in aggregates.items():
        revision = Revision(date_created=now, user=None, comment=comments[pk])
        revisions.append(revision)
        members += [(revision, item) for item in items]
    if connections[Revision.objects.db].features.can_return_rows_from_bulk_insert:
        Revision.objects.bulk_create(revisions)
    else:
        for revision in revisions:
            revision.save()
    versions = []
    for revision, item, serialized in _serialized(members):
        versions.append(
            Version(
                revision=revision,
                content_type=_content_type(type(item)),
                object_id=str(item.pk),
                db=router.db_for_write(type(item), instance=item),
                format="json",
                serialized_data=serialized,
                object_repr=str(item),
            )
        )
    Version.objects.bulk_create(versions, batch_size=500)


def _mark_many_to_many_empty(obj) -> None:
    """Record the many-to-many fields of a new object as prefetched and empty."""
    cache = obj.__dict__.setdefault("_prefetched_objects_cache", {})
    for field in obj._meta.local_many_to_many:
        if field.remote_field.through._meta.auto_created:
            cache.setdefault(field.name, [])


def _content_type(model):
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model)


class _PrefetchSerializer(PythonSerializer):
    """Django's python serializer, reading many-to-many values from the prefetch cache.

    Django 5.2 builds a queryset per object and field even when the values are
    prefetched, which took most of the serialization time of a Sigma import.
    """

    def handle_m2m_field(self, obj, field):
        cache = getattr(obj, "_prefetched_objects_cache", {})
        if field.remote_field.through._meta.auto_created and field.name in cache:
            self._current[field.name] = [
                self._value_from_field(related, related._meta.pk) for related in cache[field.name]
            ]
            return
        super().handle_m2m_field(obj, field)


def _serialized(members: list) -> list[tuple]:
    """Serialize each (revision, object) pair as reversion's JSON format does.

    Objects of one model go through Django's python serializer in one call, which
    costs much less than one JSON serializer call per object.
    """
    # NOTE: _get_options is django-reversion's internal registry (6.4.0); it gives the
    # fields that reversion itself would serialize.
    from reversion.revisions import _get_options

    by_model: dict[type, list] = {}
    for revision, item in members:
        by_model.setdefault(type(item), []).append((revision, item))
    result = []
    for item_model, pairs in by_model.items():
        options = _get_options(item_model)
        if options.format != "json":
            raise ValueError(f"{item_model._meta.label} is registered with format {options.format}")
        records = _PrefetchSerializer().serialize(
            [item for _, item in pairs], fields=options.fields
        )
        for (revision, item), record in zip(pairs, records, strict=True):
            text = json.dumps([record], cls=DjangoJSONEncoder, ensure_ascii=False)
            result.append((revision, item, text))
    return result
