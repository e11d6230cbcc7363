"""Markdown and CACAO 2.0 exports of playbooks, and the CACAO schema they are checked with."""

import base64
import copy
import json
import re
from urllib.parse import parse_qs

import pytest
from jsonschema import Draft202012Validator

from detections.content.loader import content_load
from detections.models import Detection
from playbooks.exports.cacao import cacao_document, cacao_json, identity_id
from playbooks.exports.markdown import playbook_markdown
from playbooks.exports.validation import SCHEMA_PATH, cacao_problems, reference_problems
from playbooks.models import Playbook, PlaybookQuery

from .conftest import CONTENT_DIR

PLAYBOOK_ID = "cefb7b06-0da9-47b0-9ca8-a707161892c1"
IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]--[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-")


@pytest.fixture
def playbook(db) -> Playbook:
    content_load(root=CONTENT_DIR)
    return Playbook.objects.get()


@pytest.fixture
def document(playbook) -> dict:
    return cacao_document(playbook)


def steps_of_type(document: dict, kind: str) -> list[dict]:
    return [step for step in document["workflow"].values() if step["type"] == kind]


def walk(document: dict) -> list[str]:
    """Follow on_completion from workflow_start and return the step ids in order."""
    order = []
    step_id = document["workflow_start"]
    while step_id:
        order.append(step_id)
        step_id = document["workflow"][step_id].get("on_completion")
    return order


# CACAO document


def test_cacao_export_is_valid(document):
    assert cacao_problems(document) == []


def test_cacao_schema_is_valid_json_schema():
    schema = json.loads(SCHEMA_PATH.read_text())

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_cacao_required_properties(document, playbook):
    assert document["type"] == "playbook"
    assert document["spec_version"] == "cacao-2.0"
    assert document["id"] == f"playbook--{PLAYBOOK_ID}"
    assert document["name"] == playbook.title
    assert document["created_by"] == identity_id("Detection Content Portal")
    assert document["created"] == "2026-12-04T00:00:00.000Z"
    assert document["modified"] == "2026-12-04T00:00:00.000Z"
    assert document["revoked"] is False
    assert document["workflow"][document["workflow_start"]]["type"] == "start"


def test_cacao_ids_are_stable_across_loads(playbook):
    first = cacao_json(playbook)
    Playbook.objects.all().delete()
    content_load(root=CONTENT_DIR, force=True)

    second = cacao_json(Playbook.objects.get())

    assert second == first


def test_cacao_ids_are_identifiers(document):
    for step_id in document["workflow"]:
        assert IDENTIFIER.match(step_id), step_id


def test_cacao_step_ids_are_uuid5(document):
    for step_id in document["workflow"]:
        prefix, value = step_id.split("--")
        assert value[14] == "5", step_id
        assert prefix == document["workflow"][step_id]["type"]


def test_cacao_workflow_runs_every_step(document, playbook):
    order = walk(document)
    kinds = [document["workflow"][step_id]["type"] for step_id in order]
    actions = [document["workflow"][step_id] for step_id in order if step_id.startswith("action")]

    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    assert kinds.count("parallel") == 2
    assert len(actions) == playbook.steps.count()
    assert actions[0]["name"] == "Triage: Find the process instance behind the alert"
    assert actions[-1]["name"].startswith("Lessons learned: ")


def test_cacao_questions_run_after_investigation(document, playbook):
    order = walk(document)
    names = [document["workflow"][step_id].get("name", "") for step_id in order]
    questions = document["workflow"][order[names.index("Answer the investigation questions")]]

    assert names.index("Answer the investigation questions") == names.index(
        "Investigation: Check whether the data left the host"
    ) + 1
    assert len(questions["next_steps"]) == playbook.questions.count()
    for branch_id in questions["next_steps"]:
        branch = document["workflow"][branch_id]
        assert branch["type"] == "action"
        assert document["workflow"][branch["on_completion"]]["type"] == "end"


def test_cacao_hunts_carry_sigma_commands(document, playbook):
    hunts = [
        step for step in steps_of_type(document, "action") if step["name"].startswith("Hunt: ")
    ]
    sigma_commands = [
        command for hunt in hunts for command in hunt["commands"] if command["type"] == "sigma"
    ]
    decoded = {base64.b64decode(command["command_b64"]).decode() for command in sigma_commands}

    assert len(hunts) == playbook.hunts.count()
    assert decoded == {rule.yaml_text for rule in playbook.sigma_rules.all()}


def test_cacao_automatable_step_calls_splunk(document):
    step = next(
        step
        for step in steps_of_type(document, "action")
        if step["name"] == "Triage: Find the process instance behind the alert"
    )
    command = step["commands"][0]
    form = parse_qs(command["content"])
    target = document["target_definitions"][step["targets"][0]]

    assert command["type"] == "http-api"
    assert command["command"] == "POST /services/search/jobs/export HTTP/1.1"
    assert form["output_mode"] == ["json"]
    assert form["search"][0].startswith('search index=wineventlog sourcetype="XmlWinEventLog:')
    assert 'host="__host__:value"' in form["search"][0]
    assert "$host$" not in command["content"]
    assert step["in_args"] == ["__host__", "__process_name__"]
    assert step["out_args"] == ["__process_guid__", "__parent_process_guid__", "__process_sha256__"]
    assert target["type"] == "http-api"
    assert target["address"] == {"url": ["__splunk_rest_url__:value"]}
    assert document["playbook_variables"]["__splunk_rest_url__"]["external"] is True


def test_cacao_manual_step_has_role_agent(document):
    step = next(
        step
        for step in steps_of_type(document, "action")
        if step["name"] == "Eradication: Remove persistence"
    )
    agent = document["agent_definitions"][step["agent"]]

    assert agent == {
        "type": "group",
        "name": "Endpoint engineer",
        "description": "People in the role 'Endpoint engineer', who carry out its manual commands.",
    }
    assert [command["type"] for command in step["commands"]] == ["manual", "manual"]
    assert 'host="__host__:value"' in step["commands"][1]["command"]


def test_cacao_variables_follow_inputs(document, playbook):
    variables = document["playbook_variables"]

    for item in playbook.inputs.all():
        variable = variables[f"__{item.name}__"]
        assert variable["type"] == "string"
        assert variable["external"] is (item.source == "alert")


def test_cacao_references_name_detection(document):
    detection = Detection.objects.get()

    assert {
        "name": detection.title,
        "description": "Detection that starts this playbook when it fires.",
        "external_id": str(detection.uuid),
    } in document["external_references"]
    assert document["labels"] == ["T1560", "T1560.002"]


def test_cacao_deprecated_playbook_is_revoked(playbook):
    playbook.status = Detection.Status.DEPRECATED

    document = cacao_document(playbook)

    assert document["revoked"] is True
    assert cacao_problems(document) == []


def test_cacao_json_is_indented_utf8(playbook):
    text = cacao_json(playbook)

    assert text.endswith("}\n")
    assert json.loads(text) == cacao_document(playbook)
    assert text.startswith('{\n  "type": "playbook",')


# The schema must fail invalid documents; each case breaks one rule.


def _first(document: dict, kind: str) -> dict:
    return steps_of_type(document, kind)[0]


def _delete(key: str):
    return lambda document: document.pop(key)


def _set(key: str, value):
    return lambda document: document.update({key: value})


def _set_step(kind: str, **fields):
    return lambda document: _first(document, kind).update(fields)


def _set_command(**fields):
    return lambda document: _first(document, "action")["commands"][0].update(fields)


def _one_parallel_branch(document: dict) -> None:
    parallel = _first(document, "parallel")
    parallel["next_steps"] = parallel["next_steps"][:1]


INVALID_DOCUMENT_CASES = {
    "missing_spec_version": (_delete("spec_version"), "'spec_version' is a required property"),
    "missing_workflow_start": (_delete("workflow_start"), "'workflow_start' is a required"),
    "missing_created_by": (_delete("created_by"), "'created_by' is a required property"),
    "wrong_spec_version": (_set("spec_version", "cacao-1.0"), "'cacao-2.0' was expected"),
    "wrong_type": (_set("type", "bundle"), "'playbook' was expected"),
    "id_without_prefix": (_set("id", PLAYBOOK_ID), "$.id: "),
    "id_of_other_type": (_set("id", f"identity--{PLAYBOOK_ID}"), "$.id: "),
    "created_without_milliseconds": (_set("created", "2026-12-04T00:00:00Z"), "$.created: "),
    "created_with_offset": (_set("created", "2026-12-04T00:00:00.000+01:00"), "$.created: "),
    "unknown_property": (_set("owner", "soc"), "Additional properties are not allowed"),
    "priority_above_100": (_set("priority", 101), "101 is greater than the maximum of 100"),
    "empty_workflow": (_set("workflow", {}), "should be non-empty"),
    "unknown_step_type": (_set_step("start", type="loop"), "'loop' is not one of"),
    "end_with_next_step": (_set_step("end", on_completion=f"end--{PLAYBOOK_ID}"), "$.workflow"),
    "start_with_on_success": (_set_step("start", on_success=f"end--{PLAYBOOK_ID}"), "$.workflow"),
    "completion_and_success": (
        _set_step("action", on_success=f"end--{PLAYBOOK_ID}"),
        "$.workflow",
    ),
    "action_without_commands": (_set_step("action", commands=[]), "should be non-empty"),
    "parallel_with_one_step": (_one_parallel_branch, "is too short"),
    "command_without_text": (
        lambda document: _first(document, "action")["commands"][0].pop("command"),
        "is not valid under any of the given schemas",
    ),
    "http_command_without_protocol": (
        _set_command(type="http-api", command="POST /services/search/jobs/export"),
        "does not match",
    ),
    "sigma_command_not_base64": (
        lambda document: _first(document, "action")["commands"].append(
            {"type": "sigma", "command_b64": "not base64!"}
        ),
        "does not match",
    ),
    "agent_without_name": (
        lambda document: next(iter(document["agent_definitions"].values())).pop("name"),
        "'name' is a required property",
    ),
    "variable_with_bad_name": (
        lambda document: document["playbook_variables"].update({"host": {"type": "string"}}),
        "$.playbook_variables",
    ),
    "external_reference_without_detail": (
        lambda document: document["external_references"].append({"name": "Only a name"}),
        "is not valid under any of the given schemas",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_DOCUMENT_CASES))
def test_cacao_schema_rejects_invalid_document(document, case):
    breaker, expected = INVALID_DOCUMENT_CASES[case]
    broken = copy.deepcopy(document)
    breaker(broken)

    problems = cacao_problems(broken)

    assert problems, f"{case} passed the schema"
    assert any(expected in problem for problem in problems), problems


def _dangling_completion(document):
    _first(document, "action")["on_completion"] = f"action--{PLAYBOOK_ID}"


def _start_points_to_action(document):
    document["workflow_start"] = next(
        step_id for step_id in document["workflow"] if step_id.startswith("action--")
    )


def _undefined_agent(document):
    _first(document, "action")["agent"] = f"group--{PLAYBOOK_ID}"


def _prefix_differs_from_type(document):
    start_id = document["workflow_start"]
    step = document["workflow"].pop(start_id)
    renamed = start_id.replace("start--", "action--")
    document["workflow"][renamed] = step
    document["workflow_start"] = renamed


def _undeclared_argument(document):
    _first(document, "action")["in_args"] = ["__nobody__"]


def _modified_before_created(document):
    document["modified"] = "2026-12-03T23:59:59.999Z"


REFERENCE_CASES = {
    "dangling_on_completion": (_dangling_completion, "is not a step of the workflow"),
    "start_is_not_start_step": (_start_points_to_action, "names a 'action' step, not a start"),
    "undefined_agent": (_undefined_agent, "is not in agent_definitions"),
    "prefix_differs_from_type": (_prefix_differs_from_type, "the id starts with 'action'"),
    "undeclared_argument": (_undeclared_argument, "__nobody__ is not a declared variable"),
    "modified_before_created": (_modified_before_created, "$.modified: is earlier than created"),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_cacao_checks_references_between_objects(document, case):
    breaker, expected = REFERENCE_CASES[case]
    broken = copy.deepcopy(document)
    breaker(broken)

    problems = reference_problems(broken)

    assert any(expected in problem for problem in problems), problems


# Markdown


def test_markdown_lists_every_part(playbook):
    text = playbook_markdown(playbook)

    assert text.startswith("# Respond to Archive via Library (T1560.002)\n")
    for heading in ("## Inputs", "## Response playbook", "## Investigation guide"):
        assert f"\n{heading}\n" in text
    assert "\n## Hunting queries\n" in text
    assert "\n## References\n" in text
    assert "Detections: Detect Archive via Library in Splunk (T1560, T1560.002)." in text


def test_markdown_numbers_steps_by_phase(playbook):
    text = playbook_markdown(playbook)
    phases = re.findall(r"^### ([A-Z][a-z ]+)$", text, re.M)
    numbers = [int(number) for number in re.findall(r"^#### (\d+)\. ", text, re.M)]

    assert phases == [
        "Triage",
        "Investigation",
        "Containment",
        "Eradication",
        "Recovery",
        "Lessons learned",
    ]
    assert numbers == list(range(1, playbook.steps.count() + 1))


def test_markdown_fences_every_query(playbook):
    text = playbook_markdown(playbook)
    queries = PlaybookQuery.objects.all()

    for query in queries:
        assert f"```spl\n{query.text.rstrip()}\n```" in text
    for rule in playbook.sigma_rules.all():
        assert f"```yaml\n{rule.yaml_text.rstrip()}\n```" in text


def test_markdown_fence_outlasts_backticks(playbook):
    query = PlaybookQuery.objects.filter(hunt__isnull=False).first()
    query.text = "index=main ```a comment``` | stats count\n"
    query.save()

    text = playbook_markdown(Playbook.objects.get())

    assert "````spl\nindex=main ```a comment``` | stats count\n````" in text


def test_markdown_escapes_table_cells(playbook):
    item = playbook.inputs.first()
    item.description = "Pipe | and\nnew line"
    item.save()

    text = playbook_markdown(Playbook.objects.get())

    assert "| `$host$` | alert | Pipe \\| and new line | `WS-FIN-042` |" in text
