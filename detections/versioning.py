"""Version history of detections and playbooks, kept by django-reversion.

A detection is an aggregate of many rows: ATT&CK mappings, data sources, authored
queries and their branches, Sigma rules, false positives, tests with their expected
telemetry. django-reversion stores the whole aggregate in one revision by following
these relations, so restoring a version brings the related rows back together.
django-simple-history was not chosen because it tracks each table on its own, which
leaves the joining of rows of one moment to the reader.

A revision is recorded only by `detections.editing` and by the loading commands, never
implicitly on save, so each revision holds exactly one detection or playbook.
"""

import reversion
from django.apps import apps

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
    ),
    "detections.AttackMapping": (),
    "detections.DetectionDataSource": (),
    "detections.Query": ("branches",),
    "detections.DetectionBranch": (),
    "detections.SigmaRule": (),
    "detections.FalsePositive": (),
    "detections.DetectionTest": ("telemetry",),
    "detections.ExpectedTelemetry": (),
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


def _register(follow: dict[str, tuple[str, ...]]) -> None:
    for label, relations in follow.items():
        reversion.register(apps.get_model(label), follow=relations)


def register_detection_models() -> None:
    _register(DETECTION_FOLLOW)


def register_playbook_models() -> None:
    _register(PLAYBOOK_FOLLOW)
