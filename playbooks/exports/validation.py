"""Checking a CACAO 2.0 document: the JSON Schema, then the rules between its objects.

playbooks/schema/cacao-2.0.json contains the rules that JSON Schema can express. The
others compare one value with another, such as whether a referenced step, agent or
target exists, whether an identifier's prefix is its object's type, and whether
`modified` is not before `created`.
"""

import datetime
import functools
import json
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "cacao-2.0.json"

STEP_POINTERS = ("on_completion", "on_success", "on_failure", "on_true", "on_false")


@functools.cache
def cacao_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def cacao_problems(document: object) -> list[str]:
    """Return every way `document` breaks CACAO 2.0, as "json.path: message" lines.

    An empty list means the document is valid. The cross-object rules run only on a
    document that passes the schema, because they assume its shape.
    """
    errors = sorted(cacao_validator().iter_errors(document), key=lambda error: error.json_path)
    if errors:
        return [f"{error.json_path}: {error.message}" for error in errors]
    return reference_problems(document)


def reference_problems(document: dict) -> list[str]:
    """Check the rules between objects of a schema-valid CACAO document."""
    problems = []
    workflow = document["workflow"]
    problems += _prefix_problems("$.workflow", workflow)
    for key in ("agent_definitions", "target_definitions"):
        problems += _prefix_problems(f"$.{key}", document.get(key, {}))

    start = workflow.get(document["workflow_start"])
    if start is None:
        problems.append("$.workflow_start: names no step of the workflow")
    elif start["type"] != "start":
        problems.append(f"$.workflow_start: names a {start['type']!r} step, not a start step")
    exception = document.get("workflow_exception")
    if exception is not None and exception not in workflow:
        problems.append("$.workflow_exception: names no step of the workflow")
    if not any(step["type"] == "end" for step in workflow.values()):
        problems.append("$.workflow: has no end step")

    playbook_variables = set(document.get("playbook_variables", {}))
    for step_id, step in workflow.items():
        where = f"$.workflow['{step_id}']"
        problems += _pointer_problems(where, step, workflow)
        problems += _agent_problems(where, step, document)
        known = playbook_variables | set(step.get("step_variables", {}))
        for key in ("in_args", "out_args"):
            for index, name in enumerate(step.get(key, [])):
                if name not in known:
                    problems.append(f"{where}.{key}[{index}]: {name} is not a declared variable")

    if _instant(document["modified"]) < _instant(document["created"]):
        problems.append("$.modified: is earlier than created")
    valid_from, valid_until = document.get("valid_from"), document.get("valid_until")
    if valid_from and valid_until and _instant(valid_until) <= _instant(valid_from):
        problems.append("$.valid_until: is not later than valid_from")
    return problems


def _instant(timestamp: str) -> datetime.datetime:
    """Parse a schema-valid CACAO timestamp, whatever its number of sub-second digits."""
    # fromisoformat reads at most six sub-second digits.
    head, _, fraction = timestamp.removesuffix("Z").partition(".")
    fraction = (fraction + "000000")[:6]
    return datetime.datetime.fromisoformat(f"{head}.{fraction}+00:00")


def _prefix_problems(where: str, objects: dict) -> list[str]:
    """Report identifiers whose object-type prefix differs from the object's type."""
    problems = []
    for identifier, item in objects.items():
        prefix = identifier.split("--", 1)[0]
        if prefix != item["type"]:
            problems.append(
                f"{where}['{identifier}']: the id starts with {prefix!r} but the type is "
                f"{item['type']!r}"
            )
    return problems


def _pointer_problems(where: str, step: dict, workflow: dict) -> list[str]:
    pointers = [(key, step[key]) for key in STEP_POINTERS if key in step]
    pointers += [(f"next_steps[{i}]", value) for i, value in enumerate(step.get("next_steps", []))]
    pointers += [(f"cases['{case}']", value) for case, value in step.get("cases", {}).items()]
    return [
        f"{where}.{key}: {value} is not a step of the workflow"
        for key, value in pointers
        if value not in workflow
    ]


def _agent_problems(where: str, step: dict, document: dict) -> list[str]:
    problems = []
    agent = step.get("agent")
    if agent is not None and agent not in document.get("agent_definitions", {}):
        problems.append(f"{where}.agent: {agent} is not in agent_definitions")
    targets = document.get("target_definitions", {})
    for index, target in enumerate(step.get("targets", [])):
        if target not in targets:
            problems.append(f"{where}.targets[{index}]: {target} is not in target_definitions")
    return problems
