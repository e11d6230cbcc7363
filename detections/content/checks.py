"""Checks across the fields of one content document, run after the schema check.

The schema checks each value on its own. These checks compare values with each
other: ids listed twice, ATT&CK parents and tactics, Sigma file paths and links
between detections. None of them needs the database. Each returns
(field path, problem) pairs, as `schema.check_mapping` does.
"""

import re
from pathlib import PurePosixPath

from .values import json_problems

DETECTION_FILE = "detection.yml"
# The POSIX portable filename character set. The ZIP download names a Sigma file by
# its base name, with every other character replaced, so this also keeps base names
# distinct in the ZIP.
PATH_SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9._-]+")

# SigmaRule.title is a CharField(max_length=300). pySigma 1.5 already rejects titles
# longer than 256 characters, and this limit guards the column if a later version does not.
MAX_SIGMA_TITLE_LENGTH = 300

Problems = list[tuple[str, str]]


def sigma_path_problem(name: str) -> str | None:
    """Describe why `name` is not a safe Sigma file path, or return None.

    A Sigma path is relative to the detection folder, uses "/" as the separator and
    has no empty, "." or ".." segments, so every file has one spelling and export
    cannot write outside the folder.
    """
    if not name:
        return "the Sigma file path is empty"
    if "\\" in name:
        return f"{name!r} contains a backslash; use / to separate folders"
    if name.startswith("/"):
        return f"{name!r} is an absolute path; write it relative to the detection folder"
    segments = name.split("/")
    if ".." in segments:
        return f"{name!r} may point outside the detection folder; remove the '..' segments"
    if "" in segments or "." in segments:
        canonical = PurePosixPath(name).as_posix()
        return f"{name!r} has empty or '.' segments; write it as {canonical!r}"
    for segment in segments:
        if not PATH_SEGMENT_PATTERN.fullmatch(segment):
            return (
                f"{name!r} contains characters other than letters, digits, '.', '_' and '-'"
                " in a file or folder name"
            )
    if name == DETECTION_FILE:
        return f"{name!r} is the detection file itself; give the Sigma file another name"
    return None


def catalogue_problems(catalogue: dict) -> Problems:
    """Check attack.yml for repeated ids, unknown parents and unknown tactics."""
    problems = []
    for key in ("tactics", "techniques", "data_components"):
        problems += _repeated_ids(catalogue.get(key) or [], key)
    tactic_ids = {tactic["id"] for tactic in catalogue["tactics"]}
    technique_ids = {technique["id"] for technique in catalogue["techniques"]}
    for index, technique in enumerate(catalogue["techniques"]):
        where = f"techniques[{index}]"
        problems += _parent_problems(technique, technique_ids, where)
        for t_index, tactic in enumerate(technique.get("tactics") or []):
            if tactic not in tactic_ids:
                problems.append(
                    (f"{where}.tactics[{t_index}]", f"{tactic} is not listed under tactics")
                )
    return problems


def _repeated_ids(entries: list[dict], key: str) -> Problems:
    problems = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        first = first_index.setdefault(entry["id"], index)
        if first != index:
            problems.append(
                (f"{key}[{index}].id", f"{entry['id']} is also listed as {key}[{first}]")
            )
    return problems


def _parent_problems(technique: dict, technique_ids: set[str], where: str) -> Problems:
    attack_id = technique["id"]
    parent = technique.get("parent")
    if parent is None:
        if "." in attack_id:
            expected = attack_id.split(".", 1)[0]
            return [(f"{where}.parent", f"sub-technique {attack_id} needs parent: {expected}")]
        return []
    if "." not in attack_id:
        return [(f"{where}.parent", f"{attack_id} is a technique; only sub-techniques have one")]
    if not attack_id.startswith(f"{parent}."):
        return [
            (
                f"{where}.parent",
                f"{parent} cannot be the parent of {attack_id}; a sub-technique id starts "
                "with its parent's id and a dot",
            )
        ]
    if parent not in technique_ids:
        return [(f"{where}.parent", f"{parent} is not listed under techniques")]
    return []


def detection_problems(document: dict, folder_name: str) -> Problems:
    """Check a detection.yml for entries listed twice and links that cannot be right."""
    problems = []
    slug = document["slug"]
    if slug != folder_name:
        problems.append(
            (
                "slug",
                f"{slug!r} differs from the folder name {folder_name!r}; "
                "rename the folder or change the slug",
            )
        )
    problems += _repeated_mappings(document["attack"])
    for q_index, query in enumerate(document.get("queries") or []):
        problems += _repeated_branch_names(query, f"queries[{q_index}]")
    for key in ("related", "other_platforms"):
        for index, other in enumerate(document.get(key) or []):
            if other == slug:
                problems.append((f"{key}[{index}]", "a detection cannot link to itself"))
    problems += _sigma_path_problems(document.get("sigma_rules") or [])
    problems += tuning_problems(document)
    return problems


def tuning_problems(document: dict) -> Problems:
    """Check each tuning entry's condition with pySigma, its branch names and repeated ids.

    Rule ids are checked by the reader, which has parsed the Sigma files.
    """
    from detections.pysigma.tuning import condition_problems

    problems = []
    branch_names = {
        branch["name"]
        for query in document.get("queries") or []
        for branch in query.get("branches") or []
    }
    first_index: dict[str, int] = {}
    for index, entry in enumerate(document.get("tuning") or []):
        where = f"tuning[{index}]"
        first = first_index.setdefault(entry["id"], index)
        if first != index:
            problems.append((f"{where}.id", f"{entry['id']} is also the id of tuning[{first}]"))
        for problem in condition_problems(entry["condition"]):
            problems.append((f"{where}.condition", problem))
        for b_index, name in enumerate(entry.get("branches") or []):
            if name not in branch_names:
                known = ", ".join(sorted(branch_names)) or "none"
                problems.append(
                    (
                        f"{where}.branches[{b_index}]",
                        f"{name!r} is not a branch of the queries (branches: {known})",
                    )
                )
    return problems


def _repeated_mappings(mappings: list[dict]) -> Problems:
    problems = []
    first_index: dict[tuple, int] = {}
    for index, mapping in enumerate(mappings):
        key = (mapping["tactic"], mapping["technique"], mapping.get("subtechnique"))
        first = first_index.setdefault(key, index)
        if first != index:
            problems.append((f"attack[{index}]", f"repeats attack[{first}]"))
    return problems


def _repeated_branch_names(query: dict, where: str) -> Problems:
    problems = []
    first_index: dict[str, int] = {}
    for index, branch in enumerate(query.get("branches") or []):
        first = first_index.setdefault(branch["name"], index)
        if first != index:
            problems.append(
                (
                    f"{where}.branches[{index}].name",
                    f"{branch['name']!r} is also the name of branches[{first}]",
                )
            )
    return problems


def _sigma_path_problems(names: list[str]) -> Problems:
    problems = []
    base_names: dict[str, str] = {}
    for index, name in enumerate(names):
        where = f"sigma_rules[{index}]"
        problem = sigma_path_problem(name)
        if problem:
            problems.append((where, problem))
            continue
        # Compared without case, because the ZIP download and case-insensitive file
        # systems would put the two files in one place.
        base_name = PurePosixPath(name).name.casefold()
        other = base_names.setdefault(base_name, name)
        if other != name:
            problems.append(
                (
                    where,
                    f"{name!r} has the same file name as {other!r}; the ZIP download "
                    "names Sigma files by file name, so rename one of them",
                )
            )
    return problems


def sigma_storage_problems(parsed) -> list[str]:
    """Check the fields parsed from a Sigma rule against the SigmaRule columns."""
    problems = []
    if len(parsed.title) > MAX_SIGMA_TITLE_LENGTH:
        problems.append(
            f"the title is {len(parsed.title)} characters long; "
            f"the maximum is {MAX_SIGMA_TITLE_LENGTH}"
        )
    values = {"title": parsed.title, "logsource": parsed.logsource, "tags": parsed.tags}
    values["falsepositives"] = parsed.falsepositives
    for where, message in json_problems(values, ""):
        problems.append(f"{where}: {message}")
    return problems
