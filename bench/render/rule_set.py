"""Reading a Sigma rule folder and inserting its rules as detections in bulk."""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Namespace for the ids given to rules without a unique `id`, so reruns give the same ids.
RULE_ID_NAMESPACE = uuid.UUID("6f1c1f52-8d0e-4f44-9a53-5b7f2d0c9e11")


@dataclass
class RuleFile:
    """A rule file that the portal's parser accepts."""

    relative_path: str
    text: str
    rule: object  # sigma.rule.SigmaRule


@dataclass
class RuleSet:
    """The parseable rules of a folder and counts of the files that were skipped."""

    files_found: int = 0
    rules: list[RuleFile] = field(default_factory=list)
    unparseable: Counter = field(default_factory=Counter)
    correlation_rules: int = 0
    filter_rules: int = 0
    generated_ids: int = 0


def select_rule_files(rules_dir: Path, limit: int | None) -> list[Path]:
    """Return the folder's *.yml files in path order, or `limit` of them evenly spread.

    Spreading the subset over the sorted paths samples every product folder
    instead of only the first one.
    """
    files = sorted(path for path in rules_dir.rglob("*.yml") if path.is_file())
    if limit is None or limit >= len(files):
        return files
    step = len(files) / limit
    return [files[int(index * step)] for index in range(limit)]


def read_rule_set(rules_dir: Path, files: list[Path]) -> RuleSet:
    """Parse each file with the renderer's load_rule, counting and skipping what it rejects."""
    from detections.pysigma.convert import load_rule

    rule_set = RuleSet(files_found=len(files))
    for path in files:
        relative_path = str(path.relative_to(rules_dir))
        try:
            text = path.read_text(encoding="utf-8")
            document = yaml.safe_load(text)
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            rule_set.unparseable[type(exc).__name__] += 1
            continue
        if isinstance(document, dict) and "correlation" in document:
            rule_set.correlation_rules += 1
            continue
        if isinstance(document, dict) and "filter" in document:
            rule_set.filter_rules += 1
            continue
        try:
            loaded = load_rule(text)
        except ValueError as exc:
            cause = exc.__cause__ or exc
            rule_set.unparseable[type(cause).__name__] += 1
            continue
        rule_set.rules.append(RuleFile(relative_path, text, loaded.rule))
    return rule_set


def insert_rule_set(rule_set: RuleSet) -> list[int]:
    """Insert one Detection with one SigmaRule per rule in bulk and return the SigmaRule ids."""
    from detections.models import Detection, SigmaRule

    levels = set(Detection.Level.values)
    detections = []
    for index, item in enumerate(rule_set.rules):
        rule = item.rule
        level = rule.level.name.lower() if rule.level else ""
        detections.append(
            Detection(
                slug=f"sigmahq-{index:05d}",
                title=(rule.title or item.relative_path)[:300],
                platform=(rule.logsource.product or "sigma")[:100],
                query_language="sigma",
                description=rule.description or "",
                severity=level if level in levels else Detection.Level.MEDIUM,
                confidence=Detection.Level.MEDIUM,
            )
        )
    Detection.objects.bulk_create(detections, batch_size=500)

    seen_ids: set[uuid.UUID] = set()
    sigma_rules = []
    for detection, item in zip(detections, rule_set.rules, strict=True):
        rule = item.rule
        rule_id = rule.id
        if rule_id is None or rule_id in seen_ids:
            rule_id = uuid.uuid5(RULE_ID_NAMESPACE, item.relative_path)
            rule_set.generated_ids += 1
        seen_ids.add(rule_id)
        logsource = {
            key: value
            for key, value in (
                ("category", rule.logsource.category),
                ("product", rule.logsource.product),
                ("service", rule.logsource.service),
            )
            if value
        }
        sigma_rules.append(
            SigmaRule(
                detection=detection,
                rule_id=rule_id,
                filename=item.relative_path[-200:],
                yaml_text=item.text,
                title=(rule.title or item.relative_path)[:300],
                status=rule.status.name.lower() if rule.status else "",
                level=rule.level.name.lower() if rule.level else "",
                logsource=logsource,
                tags=[str(tag) for tag in rule.tags],
            )
        )
    SigmaRule.objects.bulk_create(sigma_rules, batch_size=500)
    return [sigma_rule.pk for sigma_rule in sigma_rules]
