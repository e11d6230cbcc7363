"""Checks of a content bundle against the database: ATT&CK ids, slugs and links.

They run inside the load's transaction, after attack.yml is written and before any
detection is, so they see the catalogue the detections will be written against.
"""

from detections.models import DataComponent, Detection, SigmaRule, Tactic, Technique

from .reader import ContentBundle, ContentError, ContentIssue, DetectionFile


def check_references(bundle: ContentBundle) -> None:
    """Raise ContentError for ATT&CK ids, data components or links that do not exist."""
    tactics = set(Tactic.objects.values_list("attack_id", flat=True))
    techniques = dict(Technique.objects.values_list("attack_id", "parent__attack_id"))
    technique_tactics: dict[str, set[str]] = {}
    for technique, tactic in Technique.tactics.through.objects.values_list(
        "technique__attack_id", "tactic__attack_id"
    ):
        technique_tactics.setdefault(technique, set()).add(tactic)

    components = set(DataComponent.objects.values_list("attack_id", flat=True))
    slugs = {item.document["slug"] for item in bundle.detections}
    slug_owners = dict(Detection.objects.values_list("slug", "uuid"))
    slugs |= set(slug_owners)

    issues = []
    for item in bundle.detections:
        issues += _slug_owner_issues(item, slug_owners)
        issues += _mapping_issues(item, tactics, techniques, technique_tactics)
        for index, source in enumerate(item.document.get("data_sources") or []):
            if source["component"] not in components:
                issues.append(
                    _issue(
                        item,
                        f"data_sources[{index}].component",
                        f"unknown ATT&CK data component {source['component']}",
                    )
                )
        issues += _rule_owner_issues(item)
        for key in ("related", "other_platforms"):
            for index, slug in enumerate(item.document.get(key) or []):
                if slug not in slugs:
                    issues.append(_issue(item, f"{key}[{index}]", f"no detection {slug!r}"))

    if issues:
        raise ContentError(issues)


def _slug_owner_issues(item: DetectionFile, slug_owners: dict) -> list[ContentIssue]:
    """Report a slug that a different detection in the database already has."""
    slug = item.document["slug"]
    owner = slug_owners.get(slug)
    if owner is None or str(owner) == item.document["id"]:
        return []
    return [
        _issue(
            item,
            "slug",
            f"{slug!r} is the slug of detection {owner} in the database, not of "
            f"{item.document['id']}; choose another slug, or change that detection's "
            "slug in an earlier load",
        )
    ]


def _mapping_issues(
    item: DetectionFile, tactics: set, techniques: dict, technique_tactics: dict
) -> list[ContentIssue]:
    issues = []
    for index, mapping in enumerate(item.document["attack"]):
        where = f"attack[{index}]"
        tactic, technique = mapping["tactic"], mapping["technique"]
        if tactic not in tactics:
            issues.append(
                _issue(
                    item,
                    f"{where}.tactic",
                    f"unknown ATT&CK tactic {tactic}; add it to attack.yml",
                )
            )
        elif technique in techniques and tactic not in technique_tactics.get(technique, ()):
            listed = ", ".join(sorted(technique_tactics.get(technique, ()))) or "none"
            issues.append(
                _issue(
                    item,
                    f"{where}.tactic",
                    f"{tactic} is not a tactic of {technique} in the ATT&CK catalogue "
                    f"(its tactics: {listed})",
                )
            )
        for key in ("technique", "subtechnique"):
            attack_id = mapping.get(key)
            if attack_id and attack_id not in techniques:
                issues.append(
                    _issue(
                        item,
                        f"{where}.{key}",
                        f"unknown ATT&CK technique {attack_id}; add it to attack.yml",
                    )
                )
        sub = mapping.get("subtechnique")
        if sub in techniques and techniques[sub] != mapping["technique"]:
            issues.append(
                _issue(
                    item,
                    f"{where}.subtechnique",
                    f"{sub} is not a sub-technique of {mapping['technique']}",
                )
            )
    return issues


def _rule_owner_issues(item: DetectionFile) -> list[ContentIssue]:
    """Report Sigma rule ids that already belong to a different detection."""
    issues = []
    for index, sigma in enumerate(item.sigma_files):
        owner = (
            SigmaRule.objects.filter(rule_id=sigma.parsed.rule_id)
            .exclude(detection__uuid=item.document["id"])
            .values_list("detection__slug", flat=True)
            .first()
        )
        if owner:
            issues.append(
                _issue(
                    item,
                    f"sigma_rules[{index}]",
                    f"Sigma rule id {sigma.parsed.rule_id} already belongs to "
                    f"detection {owner!r}; give the rule a new id",
                )
            )
    return issues


def _issue(item: DetectionFile, where: str, message: str) -> ContentIssue:
    return ContentIssue(item.path, where, message)
