"""Checks across the fields of one playbook.yml, run after the schema check.

Each check returns (field path, problem) pairs, as `detections.content.schema`
does. None of them needs the database.
"""

import re

from detections.content.checks import sigma_path_problem

from .schema import PHASES, PLAYBOOK_FILE

Problems = list[tuple[str, str]]

# Input names become `$name$` tokens in queries and `__name__` variables in CACAO.
INPUT_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# A `$name$` token in query text. A `$` that ends a regular expression in SPL does not
# match, because no identifier and second `$` follow it.
TOKEN_PATTERN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\$")

QUERY_OWNERS = ("response", "investigation", "hunting")


def playbook_problems(document: dict, folder_name: str) -> Problems:
    """Check a playbook.yml for a wrong slug, dates, phase order, inputs and Sigma paths."""
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
    if document["date_modified"] < document["date_created"]:
        problems.append(
            (
                "date_modified",
                f"{document['date_modified']} is earlier than date_created "
                f"{document['date_created']}",
            )
        )
    problems += _phase_order_problems(document["response"])
    problems += _input_problems(document)
    problems += _token_problems(document)
    problems += _repeated_hunt_names(document.get("hunting") or [])
    problems += _sigma_problems(document)
    return problems


def _phase_order_problems(steps: list[dict]) -> Problems:
    problems = []
    latest = 0
    for index, step in enumerate(steps):
        rank = PHASES.index(step["phase"])
        if rank < latest:
            problems.append(
                (
                    f"response[{index}].phase",
                    f"a {step['phase']!r} step comes after {PHASES[latest]!r} steps; "
                    f"list the steps in phase order: {', '.join(PHASES)}",
                )
            )
        latest = max(latest, rank)
    return problems


def _input_problems(document: dict) -> Problems:
    problems = []
    inputs = document.get("inputs") or []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(inputs):
        name = entry["name"]
        if not INPUT_NAME_PATTERN.fullmatch(name):
            problems.append(
                (
                    f"inputs[{index}].name",
                    f"{name!r} is not an input name (lowercase letters, digits and "
                    "underscores, starting with a letter)",
                )
            )
        first = first_index.setdefault(name, index)
        if first != index:
            problems.append(
                (f"inputs[{index}].name", f"{name!r} is also the name of inputs[{first}]")
            )
    sources = {entry["name"]: entry["source"] for entry in inputs}
    recorded = set()
    for s_index, step in enumerate(document["response"]):
        for r_index, name in enumerate(step.get("records") or []):
            where = f"response[{s_index}].records[{r_index}]"
            if name not in sources:
                problems.append((where, f"{name!r} is not the name of an input"))
            elif sources[name] != "analyst":
                problems.append(
                    (where, f"{name!r} comes from the alert; a step records analyst inputs only")
                )
            recorded.add(name)
    for index, entry in enumerate(inputs):
        if entry["source"] == "analyst" and entry["name"] not in recorded:
            problems.append(
                (
                    f"inputs[{index}]",
                    f"no response step records the analyst input {entry['name']!r}; "
                    "name it in the `records` list of the step that finds it",
                )
            )
    return problems


def _token_problems(document: dict) -> Problems:
    """Report `$name$` tokens in query text that name no input."""
    names = {entry["name"] for entry in document.get("inputs") or []}
    known = ", ".join(sorted(names)) or "none"
    problems = []
    for where, query in _queries(document):
        for token in dict.fromkeys(TOKEN_PATTERN.findall(query["text"])):
            if token not in names:
                problems.append(
                    (f"{where}.text", f"${token}$ is not the name of an input (inputs: {known})")
                )
    return problems


def _repeated_hunt_names(hunts: list[dict]) -> Problems:
    problems = []
    first_index: dict[str, int] = {}
    for index, hunt in enumerate(hunts):
        first = first_index.setdefault(hunt["name"], index)
        if first != index:
            problems.append(
                (f"hunting[{index}].name", f"{hunt['name']!r} is also the name of hunting[{first}]")
            )
    return problems


def _sigma_problems(document: dict) -> Problems:
    problems = []
    # Compared without case, because case-insensitive file systems would put two
    # such files in one place on export.
    spellings: dict[str, str] = {}
    for where, query in _queries(document):
        name = query.get("sigma")
        if name is None:
            continue
        problem = sigma_path_problem(name)
        if problem:
            # The path rules are shared with detections, whose messages name that folder.
            problem = problem.replace("the detection folder", "the playbook folder")
        if problem is None and name == PLAYBOOK_FILE:
            problem = f"{name!r} is the playbook file itself; give the Sigma file another name"
        other = spellings.setdefault(name.casefold(), name)
        if problem is None and other != name:
            problem = f"{name!r} differs from {other!r} only in case; spell both the same"
        if problem:
            problems.append((f"{where}.sigma", problem))
    return problems


def _queries(document: dict):
    """Yield (field path, query) for every query of every step, question and hunt."""
    for key in QUERY_OWNERS:
        for index, owner in enumerate(document.get(key) or []):
            for q_index, query in enumerate(owner.get("queries") or []):
                yield f"{key}[{index}].queries[{q_index}]", query


def sigma_paths(document: dict) -> list[tuple[str, str]]:
    """Return (field path, Sigma file) for every query that names a Sigma form."""
    return [(where, query["sigma"]) for where, query in _queries(document) if query.get("sigma")]
