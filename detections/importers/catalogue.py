"""Turning a Sigma rule's tags and log source into the portal's ATT&CK rows.

Tags name tactics by their short name (`attack.defense-evasion`) and techniques by
id (`attack.t1059.001`). A technique that the stored ATT&CK catalogue lacks is
reported, never created: `import_attack` loads the full catalogue, and
content/attack.yml ships a small subset so the portal works offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from detections.models import DataComponent, Tactic, Technique

TECHNIQUE_TAG = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)
# Groups (g0001), software (s0001), campaigns (c0001) and data components (dc0001)
# are ATT&CK objects the portal does not map detections to.
OTHER_ATTACK_TAG = re.compile(r"attack\.(?:g|s|c|dc|ds|m)\d{4}", re.IGNORECASE)

# Sigma log source categories and the ATT&CK data components whose events they carry.
# Component ids from ATT&CK v18 (x-mitre-data-component objects in MITRE's cti
# repository); categories from the Sigma taxonomy appendix. Categories missing here
# (dns_query, antivirus, ...) and services (windows/security, aws/cloudtrail) cover
# events of several components, and get no data source.
CATEGORY_COMPONENTS = {
    "process_creation": ("DC0032",),
    "process_termination": ("DC0033",),
    "process_access": ("DC0035",),
    "process_tampering": ("DC0020",),
    "create_remote_thread": ("DC0020",),
    "raw_access_thread": ("DC0054",),
    "image_load": ("DC0016",),
    "driver_load": ("DC0079",),
    "file_event": ("DC0039",),
    "file_executable_detected": ("DC0039",),
    "create_stream_hash": ("DC0039",),
    "file_change": ("DC0061",),
    "file_rename": ("DC0061",),
    "file_delete": ("DC0040",),
    "file_access": ("DC0055",),
    "registry_add": ("DC0056",),
    "registry_set": ("DC0063",),
    "registry_rename": ("DC0063",),
    "registry_delete": ("DC0045",),
    "registry_event": ("DC0056", "DC0063", "DC0045"),
    "network_connection": ("DC0082",),
    "firewall": ("DC0078",),
    "pipe_created": ("DC0048",),
    "wmi_event": ("DC0008",),
    "ps_script": ("DC0029",),
    "ps_module": ("DC0064",),
    "ps_classic_start": ("DC0064",),
    "ps_classic_provider_start": ("DC0064",),
    "ps_classic_script": ("DC0064",),
}
LOG_SOURCE_MAX_LENGTH = 100  # DetectionDataSource.log_source


@dataclass(frozen=True)
class MappingRow:
    """One AttackMapping to create: database ids of tactic, technique and sub-technique."""

    tactic_id: int
    technique_id: int
    subtechnique_id: int | None


@dataclass
class TagOutcome:
    """The mappings a rule's tags give, and what could not be mapped, by tag index."""

    rows: list[MappingRow] = field(default_factory=list)
    # (index of the tag in `tags`, message)
    notes: list[tuple[int, str]] = field(default_factory=list)


class TechniqueEntry(NamedTuple):
    pk: int
    parent_id: int | None
    tactic_ids: frozenset[int]
    revoked: bool
    replacement: str  # the ATT&CK id of the technique that replaces a revoked one


@dataclass
class Catalogue:
    """The stored ATT&CK catalogue, read once per import."""

    tactics: dict[str, int]  # shortname -> pk
    techniques: dict[str, TechniqueEntry]  # ATT&CK id in upper case -> entry
    components: dict[str, int]  # DC id -> pk

    @classmethod
    def load(cls) -> Catalogue:
        tactics = {shortname: pk for pk, shortname in Tactic.objects.values_list("pk", "shortname")}
        technique_tactics: dict[int, set[int]] = {}
        for technique_id, tactic_id in Technique.tactics.through.objects.values_list(
            "technique_id", "tactic_id"
        ):
            technique_tactics.setdefault(technique_id, set()).add(tactic_id)
        techniques = {}
        rows = Technique.objects.values_list(
            "pk", "attack_id", "parent_id", "revoked", "revoked_by__attack_id"
        )
        for pk, attack_id, parent_id, revoked, replacement in rows:
            tactic_ids = frozenset(technique_tactics.get(pk, ()))
            techniques[attack_id.upper()] = TechniqueEntry(
                pk, parent_id, tactic_ids, revoked, replacement or ""
            )
        components = dict(DataComponent.objects.values_list("attack_id", "pk"))
        return cls(tactics=tactics, techniques=techniques, components=components)

    def mappings(self, tags: list[str]) -> TagOutcome:
        """Map a rule's tags to (tactic, technique, sub-technique) rows.

        A technique is mapped under the rule's tactic tags that are tactics of the
        technique; when none is, under every tactic the catalogue gives it. A mapping
        to a technique alone is left out when a sub-technique of it is mapped under
        the same tactic.
        """
        outcome = TagOutcome()
        rule_tactics = set()
        for index, tag in enumerate(tags):
            lowered = tag.lower()
            if not lowered.startswith("attack."):
                continue
            name = lowered.removeprefix("attack.")
            if TECHNIQUE_TAG.fullmatch(lowered) or OTHER_ATTACK_TAG.fullmatch(lowered):
                continue
            if name in self.tactics:
                rule_tactics.add(self.tactics[name])
            else:
                outcome.notes.append(
                    (index, f"tag {tag} names no tactic in the ATT&CK catalogue; not mapped")
                )
        rows: set[MappingRow] = set()
        for index, tag in enumerate(tags):
            match = TECHNIQUE_TAG.fullmatch(tag)
            if match:
                rows |= self._technique_rows(match.group(1).upper(), rule_tactics, index, outcome)
        covered = {(row.tactic_id, row.technique_id) for row in rows if row.subtechnique_id}
        outcome.rows = sorted(
            (
                row
                for row in rows
                if row.subtechnique_id or (row.tactic_id, row.technique_id) not in covered
            ),
            key=lambda row: (row.technique_id, row.subtechnique_id or 0, row.tactic_id),
        )
        return outcome

    def _technique_rows(
        self, attack_id: str, rule_tactics: set[int], index: int, outcome: TagOutcome
    ) -> set[MappingRow]:
        entry = self.techniques.get(attack_id)
        if entry is None:
            outcome.notes.append(
                (index, f"{attack_id} is not in the ATT&CK catalogue; not mapped")
            )
            return set()
        if entry.revoked:
            instead = f"; ATT&CK replaced it with {entry.replacement}" if entry.replacement else ""
            message = f"{attack_id} is revoked in the ATT&CK catalogue{instead}"
            outcome.notes.append((index, message))
        tactics = entry.tactic_ids
        if not tactics:
            outcome.notes.append((index, f"{attack_id} has no tactic in the catalogue; not mapped"))
            return set()
        chosen = (tactics & rule_tactics) or tactics
        if entry.parent_id is None:
            return {MappingRow(tactic, entry.pk, None) for tactic in chosen}
        return {MappingRow(tactic, entry.parent_id, entry.pk) for tactic in chosen}

    def data_sources(self, logsource: dict[str, str]) -> tuple[list[tuple[int, str]], list[str]]:
        """Return (component pk, log source label) rows for a rule's log source, and notes."""
        category = logsource.get("category", "")
        wanted = CATEGORY_COMPONENTS.get(category, ())
        label = " / ".join(
            logsource[key] for key in ("product", "category", "service") if logsource.get(key)
        )[:LOG_SOURCE_MAX_LENGTH]
        rows, notes = [], []
        for component in wanted:
            pk = self.components.get(component)
            if pk is None:
                notes.append(
                    f"data component {component} for log source category {category} is not "
                    "in the ATT&CK catalogue; no data source stored"
                )
            else:
                rows.append((pk, label))
        return rows, notes
