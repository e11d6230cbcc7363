"""Importing MITRE ATT&CK from STIX 2.x: tactics, techniques, data components, and the
ATT&CK v18 detection strategies and analytics.

The input is one bundle file (such as enterprise-attack.json) or a folder of JSON files,
each a bundle or a single object, as MITRE's cti repository keeps them. Objects are
matched to stored rows by their ATT&CK id (TA0009, T1560.002, DC0032, DET0103, AN0110).
Revoked and deprecated objects are stored with the flag set. Rows that the input does
not mention are kept, because detections may map to them.

Every object is checked before anything is written. A bad object is reported and left
out, and the rest is written in one transaction, so no reader sees half an import.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from detections.content.files import UnreadableFile, read_inside
from detections.content.values import text_problem
from detections.models import (
    Analytic,
    DataComponent,
    DetectionStrategy,
    Tactic,
    Technique,
)

from .progress import Progress
from .report import ImportSummary
from .sources import printable

logger = logging.getLogger(__name__)

ID_PATTERNS = {
    "x-mitre-tactic": re.compile(r"TA\d{4}"),
    "attack-pattern": re.compile(r"T\d{4}(?:\.\d{3})?"),
    "x-mitre-data-component": re.compile(r"DC\d{4}"),
    "x-mitre-data-source": re.compile(r"DS\d{4}"),
    "x-mitre-detection-strategy": re.compile(r"DET\d{4}"),
    "x-mitre-analytic": re.compile(r"AN\d{4}"),
}
RELATIONSHIP_TYPES = {"detects", "revoked-by"}
ATTACK_SOURCE = "mitre-attack"
MAX_NAME = 200
MAX_STRATEGY_NAME = 300
MAX_SHORTNAME = 100
MAX_URL = 200  # URLField's default max_length
_url_validator = URLValidator(schemes=["http", "https"])


@dataclass
class StixObject:
    """One STIX object of a kind the portal stores, with the file it came from."""

    data: dict
    file: str

    @property
    def stix_id(self) -> str:
        return self.data.get("id", "")

    @property
    def kind(self) -> str:
        return self.data.get("type", "")


@dataclass
class AttackBundle:
    """The objects read from the input, by kind, and the relationships between them."""

    objects: dict[str, list[StixObject]] = field(default_factory=dict)
    relationships: list[StixObject] = field(default_factory=list)


def import_attack(path: Path, *, progress: Progress | None = None) -> ImportSummary:
    """Import a STIX bundle file or folder; return the summary of objects created, updated
    and unchanged, and of the files and objects that failed."""
    progress = progress or Progress(None)
    summary = ImportSummary()
    logger.info("ATT&CK import started from %s", path)
    bundle = read_bundle(path, summary, progress)
    entries = AttackEntries.build(bundle, summary)
    with transaction.atomic():
        entries.write(summary)
    logger.info(
        "ATT&CK import finished: %d created, %d updated, %d unchanged, %d failed",
        summary.created,
        summary.updated,
        summary.unchanged,
        len(summary.failed),
    )
    return summary


# --- Reading ----------------------------------------------------------------------


def read_bundle(path: Path, summary: ImportSummary, progress: Progress) -> AttackBundle:
    """Read every JSON file of the input and keep the objects the portal stores."""
    bundle = AttackBundle()
    if path.is_dir():
        files = _folder_files(path)
        progress.start("reading", len(files))
        root = path.resolve()
        for file in files:
            label = printable(f"{path.name}/{file.relative_to(root).as_posix()}")
            _read_file(file, root, label, settings.IMPORT_MAX_FILE_BYTES, bundle, summary)
            progress.advance()
        progress.finish()
    else:
        resolved = path.resolve()
        _read_file(
            resolved, resolved.parent, printable(str(path)), settings.IMPORT_MAX_STIX_BYTES,
            bundle, summary,
        )
    return bundle


def _folder_files(folder: Path) -> list[Path]:
    root = folder.resolve()
    found = []
    for directory, subfolders, files in os.walk(root, followlinks=False):
        subfolders.sort()
        found += [Path(directory) / name for name in files if name.lower().endswith(".json")]
    return sorted(found)


def _read_file(
    path: Path, root: Path, label: str, max_bytes: int, bundle: AttackBundle, summary: ImportSummary
) -> None:
    try:
        data = read_inside(path, root, max_bytes)
    except UnreadableFile as exc:
        summary.fail(label, str(exc))
        return
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        summary.fail(label, f"not valid JSON: {exc}")
        return
    except RecursionError:
        summary.fail(label, "the JSON is nested too deeply")
        return
    if not isinstance(document, dict):
        summary.fail(label, "a STIX file must be a JSON object (a bundle or one object)")
        return
    objects = document.get("objects") if document.get("type") == "bundle" else [document]
    if not isinstance(objects, list):
        summary.fail(label, "the bundle's 'objects' must be a list")
        return
    for item in objects:
        if not isinstance(item, dict):
            summary.fail(label, "a STIX object must be a JSON object")
            continue
        kind = item.get("type")
        if kind in ID_PATTERNS:
            bundle.objects.setdefault(kind, []).append(StixObject(item, label))
        elif kind == "relationship" and item.get("relationship_type") in RELATIONSHIP_TYPES:
            bundle.relationships.append(StixObject(item, label))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


# --- Checking ---------------------------------------------------------------------


class ObjectProblem(ValueError):
    """A STIX object that cannot be stored, with the reason."""


def attack_id(item: StixObject) -> str:
    """Return the object's ATT&CK id from its mitre-attack external reference."""
    references = item.data.get("external_references")
    if isinstance(references, list):
        for reference in references:
            if isinstance(reference, dict) and reference.get("source_name") == ATTACK_SOURCE:
                value = reference.get("external_id")
                if isinstance(value, str) and ID_PATTERNS[item.kind].fullmatch(value):
                    return value
                raise ObjectProblem(f"the ATT&CK id {value!r} is not valid for a {item.kind}")
    raise ObjectProblem("the object has no mitre-attack external reference with an ATT&CK id")


def attack_url(item: StixObject) -> str:
    """Return the ATT&CK page of the object, or "" when it is missing or not an http(s) URL."""
    for reference in item.data.get("external_references") or []:
        if isinstance(reference, dict) and reference.get("source_name") == ATTACK_SOURCE:
            url = reference.get("url")
            if isinstance(url, str) and len(url) <= MAX_URL:
                try:
                    _url_validator(url)
                except ValidationError:
                    return ""
                return url
    return ""


def text_value(
    item: StixObject, key: str, *, max_length: int | None = None, required: bool = False
) -> str:
    value = item.data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ObjectProblem(f"'{key}' must be a non-empty string")
    problem = text_problem(value)
    if problem:
        raise ObjectProblem(f"'{key}' {problem}")
    if max_length is not None and len(value) > max_length:
        raise ObjectProblem(f"'{key}' is {len(value)} characters long; the maximum is {max_length}")
    return value


def string_list(item: StixObject, key: str) -> list[str]:
    value = item.data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ObjectProblem(f"'{key}' must be a list of strings")
    for entry in value:
        problem = text_problem(entry)
        if problem:
            raise ObjectProblem(f"'{key}' {problem}")
    return value


def flags(item: StixObject) -> dict:
    return {
        "stix_id": item.stix_id[:100],
        "revoked": item.data.get("revoked") is True,
        "deprecated": item.data.get("x_mitre_deprecated") is True,
    }


@dataclass
class AttackEntries:
    """Checked field values of every object, by kind and ATT&CK id, ready to write."""

    tactics: dict[str, dict] = field(default_factory=dict)
    techniques: dict[str, dict] = field(default_factory=dict)
    components: dict[str, dict] = field(default_factory=dict)
    analytics: dict[str, dict] = field(default_factory=dict)
    strategies: dict[str, dict] = field(default_factory=dict)
    # STIX id -> ATT&CK id, for resolving references between objects.
    stix_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, bundle: AttackBundle, summary: ImportSummary) -> AttackEntries:
        entries = cls()
        sources = entries._data_sources(bundle, summary)
        builders = (
            ("x-mitre-tactic", entries.tactics, _tactic_values),
            ("attack-pattern", entries.techniques, _technique_values),
            (
                "x-mitre-data-component",
                entries.components,
                lambda item: _component_values(item, sources),
            ),
            ("x-mitre-analytic", entries.analytics, _analytic_values),
            ("x-mitre-detection-strategy", entries.strategies, _strategy_values),
        )
        for kind, target, build in builders:
            for item in bundle.objects.get(kind, []):
                entries._add(item, target, build, summary)
        entries._relationships(bundle)
        entries._resolve_references()
        return entries

    def _add(self, item: StixObject, target: dict, build, summary: ImportSummary) -> None:
        try:
            identifier = attack_id(item)
            values = build(item)
        except ObjectProblem as exc:
            summary.fail(item.file, f"{item.stix_id or item.kind}: {exc}")
            return
        current = target.get(identifier)
        if current is not None and not (current["revoked"] or current["deprecated"]):
            if values["revoked"] or values["deprecated"]:
                return
            summary.fail(
                item.file, f"{item.stix_id}: {identifier} is also the id of {current['stix_id']}"
            )
            return
        target[identifier] = values
        self.stix_ids[item.stix_id] = identifier

    def _data_sources(
        self, bundle: AttackBundle, summary: ImportSummary
    ) -> dict[str, tuple[str, str]]:
        """Return (ATT&CK id, name) of each data source by STIX id; components name them."""
        sources = {}
        for item in bundle.objects.get("x-mitre-data-source", []):
            try:
                name = text_value(item, "name", max_length=MAX_NAME)
                sources[item.stix_id] = (attack_id(item), name)
            except ObjectProblem as exc:
                summary.fail(item.file, f"{item.stix_id or item.kind}: {exc}")
        return sources

    def _resolve_references(self) -> None:
        """Turn the STIX ids that analytics and strategies hold into ATT&CK ids.

        Ids of objects outside the input are looked up among the stored rows.
        """
        stored = {}
        for model in (DataComponent, Analytic):
            stored.update(
                dict(model.objects.exclude(stix_id="").values_list("stix_id", "attack_id"))
            )
        for values in self.analytics.values():
            for entry in values["log_sources"]:
                reference = entry.pop("component_ref")
                entry["component"] = self.stix_ids.get(reference) or stored.get(reference, "")
        for values in self.strategies.values():
            values["analytics"] = [
                self.stix_ids.get(reference) or stored.get(reference, "")
                for reference in values.pop("analytic_refs")
            ]

    def _relationships(self, bundle: AttackBundle) -> None:
        for item in bundle.relationships:
            source = self.stix_ids.get(item.data.get("source_ref", ""))
            target = self.stix_ids.get(item.data.get("target_ref", ""))
            if source is None or target is None:
                continue
            kind = item.data["relationship_type"]
            if kind == "revoked-by" and source in self.techniques and target in self.techniques:
                self.techniques[source]["revoked_by"] = target
            elif kind == "detects" and source in self.strategies and target in self.techniques:
                self.strategies[source]["techniques"].append(target)

    # --- Writing ------------------------------------------------------------------

    def write(self, summary: ImportSummary) -> None:
        """Write every entry; call inside a transaction."""
        _upsert(Tactic, self.tactics, ["name", "shortname", "url", "description"], summary)
        self._write_techniques(summary)
        self._write_components(summary)
        analytic_pks = _upsert(
            Analytic,
            self.analytics,
            ["name", "url", "description", "platforms", "log_sources", "mutable_elements"],
            summary,
        )
        component_pks = dict(DataComponent.objects.values_list("attack_id", "pk"))
        _set_links(
            Analytic.data_components.through,
            "analytic_id",
            "datacomponent_id",
            analytic_pks,
            {
                key: [entry["component"] for entry in values["log_sources"]]
                for key, values in self.analytics.items()
            },
            component_pks,
        )
        strategy_pks = _upsert(
            DetectionStrategy, self.strategies, ["name", "url", "description"], summary
        )
        technique_pks = dict(Technique.objects.values_list("attack_id", "pk"))
        _set_links(
            DetectionStrategy.techniques.through,
            "detectionstrategy_id",
            "technique_id",
            strategy_pks,
            {key: values["techniques"] for key, values in self.strategies.items()},
            technique_pks,
        )
        _set_links(
            DetectionStrategy.analytics.through,
            "detectionstrategy_id",
            "analytic_id",
            strategy_pks,
            {key: values["analytics"] for key, values in self.strategies.items()},
            dict(Analytic.objects.values_list("attack_id", "pk")),
        )

    def _write_techniques(self, summary: ImportSummary) -> None:
        stored = set(Technique.objects.values_list("attack_id", flat=True))
        for identifier, values in list(self.techniques.items()):
            parent = identifier.split(".", 1)[0] if "." in identifier else None
            if parent and parent not in self.techniques and parent not in stored:
                summary.fail(
                    values["_file"],
                    f"{values['stix_id']}: the parent technique {parent} of {identifier} is "
                    "neither in the input nor stored",
                )
                del self.techniques[identifier]
        fields = ["name", "url", "description", "platforms"]
        pks = _upsert(Technique, self.techniques, fields, summary)

        # Parents and replacements are set once every row exists.
        all_pks = dict(Technique.objects.values_list("attack_id", "pk"))
        parents, replacements = [], []
        for identifier, pk in pks.items():
            values = self.techniques[identifier]
            parent = identifier.split(".", 1)[0] if "." in identifier else None
            replacement = values.get("revoked_by")
            parents.append(Technique(pk=pk, parent_id=all_pks.get(parent) if parent else None))
            replacements.append(Technique(pk=pk, revoked_by_id=all_pks.get(replacement)))
        Technique.objects.bulk_update(parents, ["parent_id"], batch_size=500)
        Technique.objects.bulk_update(replacements, ["revoked_by_id"], batch_size=500)

        tactic_pks = dict(Tactic.objects.values_list("shortname", "pk"))
        _set_links(
            Technique.tactics.through,
            "technique_id",
            "tactic_id",
            pks,
            {key: values["tactic_shortnames"] for key, values in self.techniques.items()},
            tactic_pks,
        )

    def _write_components(self, summary: ImportSummary) -> None:
        # ATT&CK v18 leaves x_mitre_data_source_ref empty; keep the data source that
        # an older import or attack.yml stored rather than blanking it.
        stored = {
            attack_id: (source, source_id)
            for attack_id, source, source_id in DataComponent.objects.values_list(
                "attack_id", "data_source", "data_source_id"
            )
        }
        for identifier, values in self.components.items():
            if not values["data_source"] and identifier in stored:
                values["data_source"], values["data_source_id"] = stored[identifier]
        _upsert(
            DataComponent,
            self.components,
            ["name", "url", "description", "data_source", "data_source_id"],
            summary,
        )


def _tactic_values(item: StixObject) -> dict:
    shortname = text_value(item, "x_mitre_shortname", max_length=MAX_SHORTNAME, required=True)
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", shortname):
        raise ObjectProblem(f"'x_mitre_shortname' {shortname!r} is not a slug")
    return {
        "name": text_value(item, "name", max_length=MAX_NAME, required=True),
        "shortname": shortname,
        "url": attack_url(item),
        "description": text_value(item, "description"),
        **flags(item),
    }


def _technique_values(item: StixObject) -> dict:
    phases = item.data.get("kill_chain_phases") or []
    if not isinstance(phases, list):
        raise ObjectProblem("'kill_chain_phases' must be a list")
    shortnames = [
        phase.get("phase_name")
        for phase in phases
        if isinstance(phase, dict)
        and phase.get("kill_chain_name") == ATTACK_SOURCE
        and isinstance(phase.get("phase_name"), str)
    ]
    return {
        "name": text_value(item, "name", max_length=MAX_NAME, required=True),
        "url": attack_url(item),
        "description": text_value(item, "description"),
        "platforms": string_list(item, "x_mitre_platforms"),
        "tactic_shortnames": shortnames,
        "revoked_by": None,
        "_file": item.file,
        **flags(item),
    }


def _component_values(item: StixObject, sources: dict[str, tuple[str, str]]) -> dict:
    source_ref = item.data.get("x_mitre_data_source_ref") or ""
    source_id, source_name = sources.get(source_ref, ("", ""))
    return {
        "name": text_value(item, "name", max_length=MAX_NAME, required=True),
        "url": attack_url(item),
        "description": text_value(item, "description"),
        "data_source": source_name,
        "data_source_id": source_id,
        **flags(item),
    }


def _analytic_values(item: StixObject) -> dict:
    log_sources = []
    for entry in item.data.get("x_mitre_log_source_references") or []:
        if not isinstance(entry, dict):
            raise ObjectProblem("'x_mitre_log_source_references' must be a list of objects")
        log_sources.append(
            {
                "component_ref": _plain(entry.get("x_mitre_data_component_ref")),
                "name": _plain(entry.get("name")),
                "channel": _plain(entry.get("channel")),
            }
        )
    mutable = []
    for entry in item.data.get("x_mitre_mutable_elements") or []:
        if not isinstance(entry, dict):
            raise ObjectProblem("'x_mitre_mutable_elements' must be a list of objects")
        mutable.append(
            {"field": _plain(entry.get("field")), "description": _plain(entry.get("description"))}
        )
    return {
        "name": text_value(item, "name", max_length=MAX_NAME, required=True),
        "url": attack_url(item),
        "description": text_value(item, "description"),
        "platforms": string_list(item, "x_mitre_platforms"),
        "log_sources": log_sources,
        "mutable_elements": mutable,
        **flags(item),
    }


def _strategy_values(item: StixObject) -> dict:
    return {
        "name": text_value(item, "name", max_length=MAX_STRATEGY_NAME, required=True),
        "url": attack_url(item),
        "description": text_value(item, "description"),
        "analytic_refs": string_list(item, "x_mitre_analytic_refs"),
        "techniques": [],
        **flags(item),
    }


def _plain(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ObjectProblem(f"{value!r} must be a string")
    problem = text_problem(value)
    if problem:
        raise ObjectProblem(problem)
    return value


def _upsert(
    model, entries: dict[str, dict], fields: list[str], summary: ImportSummary
) -> dict[str, int]:
    """Create or update rows by ATT&CK id; count created, updated and unchanged rows.

    Returns the primary key of every row written or found, by ATT&CK id.
    """
    written = fields + ["stix_id", "revoked", "deprecated"]
    stored = {row.attack_id: row for row in model.objects.filter(attack_id__in=list(entries))}
    creates, updates, pks = [], [], {}
    for identifier, values in entries.items():
        row = stored.get(identifier)
        if row is None:
            creates.append(model(attack_id=identifier, **{key: values[key] for key in written}))
            continue
        pks[identifier] = row.pk
        if all(getattr(row, key) == values[key] for key in written):
            summary.unchanged += 1
            continue
        for key in written:
            setattr(row, key, values[key])
        updates.append(row)
    model.objects.bulk_create(creates, batch_size=500)
    model.objects.bulk_update(updates, written, batch_size=500)
    summary.created += len(creates)
    summary.updated += len(updates)
    pks.update({row.attack_id: row.pk for row in creates})
    return pks


def _set_links(through, owner_column: str, target_column: str, owners: dict[str, int],
               targets_by_owner: dict[str, list[str]], target_pks: dict[str, int]) -> None:
    """Replace the many-to-many links of the given owners with the named targets."""
    owner_ids = list(owners.values())
    for start in range(0, len(owner_ids), 500):
        through.objects.filter(**{f"{owner_column}__in": owner_ids[start : start + 500]}).delete()
    links = []
    for key, owner_pk in owners.items():
        for target in dict.fromkeys(targets_by_owner.get(key) or []):
            target_pk = target_pks.get(target)
            if target_pk is not None:
                links.append(through(**{owner_column: owner_pk, target_column: target_pk}))
    through.objects.bulk_create(links, batch_size=500)

