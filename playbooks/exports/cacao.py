"""A playbook as an OASIS CACAO Security Playbooks 2.0 document, for SOAR platforms.

The workflow runs start, then the response steps in order, then end. The
investigation questions form a parallel step after the last triage or investigation
step, and the hunts form a parallel step before the end. Each question and hunt is
an action that ends its own branch. Identifiers are UUIDv5 values derived from the
playbook's id, so exporting the same content twice gives the same document.

Commands: a step that can be automated and has SPL queries gets one `http-api`
command per query, sent to Splunk's REST search endpoint. Every other step is a
`manual` command for its role, followed by one `manual` command per query and one
`sigma` command per Sigma form. `$name$` tokens become CACAO variable references
`__name__:value`.
"""

import base64
import json
import uuid
from urllib.parse import quote_plus

from detections.models import Detection
from playbooks.content.checks import TOKEN_PATTERN
from playbooks.models import (
    HuntingQuery,
    InvestigationQuestion,
    Playbook,
    PlaybookInput,
    PlaybookQuery,
    ResponseStep,
)

SPEC_VERSION = "cacao-2.0"
CONTENT_TYPE = "application/json; charset=utf-8"
# Namespace of the identity ids derived from author names. It is fixed, so an author
# has the same `created_by` in every playbook and every export.
IDENTITY_NAMESPACE = uuid.UUID("9d8e3f52-0c1b-4a6e-b7d4-5f2a61c0e8b3")
DEFAULT_AUTHOR = "Detection Content Portal"

# Splunk's streaming search endpoint takes the search as a form field and returns the
# results in the same response, with no search job to poll.
SPLUNK_SEARCH_COMMAND = "POST /services/search/jobs/export HTTP/1.1"
SPLUNK_URL_VARIABLE = "__splunk_rest_url__"

# CACAO playbook-type-ov values for the phases each covers.
PHASE_PLAYBOOK_TYPES = {
    ResponseStep.Phase.TRIAGE: "investigation",
    ResponseStep.Phase.INVESTIGATION: "investigation",
    ResponseStep.Phase.CONTAINMENT: "mitigation",
    ResponseStep.Phase.ERADICATION: "remediation",
    ResponseStep.Phase.RECOVERY: "remediation",
}
INVESTIGATION_PHASES = (ResponseStep.Phase.TRIAGE, ResponseStep.Phase.INVESTIGATION)


def cacao_json(playbook: Playbook) -> str:
    """Serialise the CACAO document of a playbook as indented UTF-8 JSON."""
    return json.dumps(cacao_document(playbook), indent=2, ensure_ascii=False) + "\n"


def cacao_filename(playbook: Playbook) -> str:
    return f"{playbook.slug}.cacao.json"


def cacao_document(playbook: Playbook) -> dict:
    """Build the CACAO 2.0 playbook object of a stored playbook."""
    builder = _WorkflowBuilder(playbook)
    workflow = builder.build()
    document = {
        "type": "playbook",
        "spec_version": SPEC_VERSION,
        "id": f"playbook--{playbook.uuid}",
        "name": playbook.title,
        "description": playbook.summary,
        "playbook_types": _playbook_types(playbook),
        "created_by": identity_id(_first_author(playbook)),
        "created": _timestamp(playbook.date_created),
        "modified": _timestamp(playbook.date_modified),
        "revoked": playbook.status == Detection.Status.DEPRECATED,
        "labels": _labels(playbook),
        "external_references": _external_references(playbook),
        "playbook_variables": builder.variables(),
        "workflow_start": builder.start_id,
        "workflow": workflow,
        "agent_definitions": builder.agents,
    }
    if builder.targets:
        document["target_definitions"] = builder.targets
    return {key: value for key, value in document.items() if value not in ([], {})}


def identity_id(name: str) -> str:
    """Return the STIX identity id of an author name, for `created_by`."""
    return f"identity--{uuid.uuid5(IDENTITY_NAMESPACE, name)}"


class _WorkflowBuilder:
    """Collects the workflow steps, agents, targets and variables of one playbook."""

    def __init__(self, playbook: Playbook):
        self.playbook = playbook
        self.namespace = playbook.uuid
        self.start_id = self.step_id("start", "start")
        self.end_id = self.step_id("end", "end")
        self.steps: dict[str, dict] = {}
        self.agents: dict[str, dict] = {}
        self.targets: dict[str, dict] = {}

    def step_id(self, kind: str, key: str) -> str:
        return f"{kind}--{uuid.uuid5(self.namespace, key)}"

    def build(self) -> dict[str, dict]:
        """Return the workflow dictionary, keyed by step id, in execution order."""
        steps = list(self.playbook.steps.all())
        chain = [self._response_action(step) for step in steps]
        last_investigation = max(
            (index for index, step in enumerate(steps) if step.phase in INVESTIGATION_PHASES),
            default=-1,
        )
        questions = self._group(
            "investigation",
            "Answer the investigation questions",
            [self._question_action(item) for item in self.playbook.questions.all()],
        )
        if questions:
            chain.insert(last_investigation + 1, questions)
        hunts = self._group(
            "hunting",
            "Hunt for the same behaviour on other hosts",
            [self._hunt_action(hunt) for hunt in self.playbook.hunts.all()],
        )
        if hunts:
            chain.append(hunts)

        workflow = {self.start_id: {"type": "start", "name": "Start"}}
        previous = workflow[self.start_id]
        for step_id in chain:
            previous["on_completion"] = step_id
            step = self.steps[step_id]
            workflow[step_id] = step
            # A parallel step's branches follow it: each action, then its end step.
            for branch_id in step.get("next_steps", []):
                workflow[branch_id] = self.steps[branch_id]
                end_id = self.steps[branch_id]["on_completion"]
                workflow[end_id] = self.steps[end_id]
            previous = step
        previous["on_completion"] = self.end_id
        workflow[self.end_id] = {"type": "end", "name": "End"}
        return workflow

    def variables(self) -> dict[str, dict]:
        variables = {}
        for item in self.playbook.inputs.all():
            variables[variable_name(item.name)] = {
                "type": "string",
                "description": item.description,
                "constant": False,
                "external": item.source == PlaybookInput.Source.ALERT,
            }
        if self.targets:
            variables[SPLUNK_URL_VARIABLE] = {
                "type": "uri",
                "description": (
                    "Base URL of the Splunk REST API on the search head's management "
                    "port, such as https://splunk.example.com:8089."
                ),
                "constant": False,
                "external": True,
            }
        return variables

    def _group(self, key: str, name: str, action_ids: list[str]) -> str | None:
        """Return one step that runs the actions: a parallel step, or the only action."""
        if len(action_ids) < 2:
            return action_ids[0] if action_ids else None
        parallel_id = self.step_id("parallel", f"{key}/parallel")
        for index, action_id in enumerate(action_ids):
            end_id = self.step_id("end", f"{key}/{index}/end")
            self.steps[action_id]["on_completion"] = end_id
            self.steps[end_id] = {"type": "end"}
        self.steps[parallel_id] = {
            "type": "parallel",
            "name": name,
            "next_steps": action_ids,
        }
        return parallel_id

    def _response_action(self, step: ResponseStep) -> str:
        action_id = self.step_id("action", f"response/{step.position}")
        queries = list(step.queries.all())
        action = {
            "type": "action",
            "name": f"{step.get_phase_display()}: {step.title}",
            "description": _step_description(step),
        }
        splunk_queries = [query for query in queries if query.language.upper() == "SPL"]
        if step.automatable and splunk_queries and len(splunk_queries) == len(queries):
            action["commands"] = [_splunk_command(query) for query in splunk_queries]
            action["targets"] = [self._splunk_target()]
        else:
            action["commands"] = [_manual_command(step.title, step.action)]
            action["commands"] += _query_commands(queries)
            action["agent"] = self._agent(step.role)
        _add_arguments(action, queries, step.records)
        self.steps[action_id] = action
        return action_id

    def _question_action(self, question: InvestigationQuestion) -> str:
        action_id = self.step_id("action", f"investigation/{question.position}")
        queries = list(question.queries.all())
        action = {
            "type": "action",
            "name": question.question,
            "description": _question_description(question),
            "commands": [
                _manual_command(
                    "Answer the question from the evidence listed in the step description",
                    question.question,
                )
            ],
            "agent": self._agent(question.role),
        }
        action["commands"] += _query_commands(queries)
        _add_arguments(action, queries, [])
        self.steps[action_id] = action
        return action_id

    def _hunt_action(self, hunt: HuntingQuery) -> str:
        action_id = self.step_id("action", f"hunting/{hunt.position}")
        queries = list(hunt.queries.all())
        action = {
            "type": "action",
            "name": f"Hunt: {hunt.name}",
            "description": _hunt_description(hunt),
            "commands": _query_commands(queries),
            "agent": self._agent(hunt.role),
        }
        _add_arguments(action, queries, [])
        self.steps[action_id] = action
        return action_id

    def _agent(self, role: str) -> str:
        agent_id = f"group--{uuid.uuid5(self.namespace, f'agent/{role}')}"
        self.agents.setdefault(
            agent_id,
            {
                "type": "group",
                "name": role,
                "description": f"People in the role {role!r}, who carry out its manual commands.",
            },
        )
        return agent_id

    def _splunk_target(self) -> str:
        target_id = f"http-api--{uuid.uuid5(self.namespace, 'target/splunk')}"
        self.targets.setdefault(
            target_id,
            {
                "type": "http-api",
                "name": "Splunk REST API",
                "description": "The search head that holds the detection's Sysmon data.",
                "address": {"url": [f"{SPLUNK_URL_VARIABLE}:value"]},
            },
        )
        return target_id


def variable_name(input_name: str) -> str:
    return f"__{input_name}__"


def with_variables(text: str) -> str:
    """Replace `$name$` tokens with CACAO variable references `__name__:value`."""
    return TOKEN_PATTERN.sub(lambda match: f"{variable_name(match.group(1))}:value", text)


def _manual_command(summary: str, text: str) -> dict:
    return {"type": "manual", "description": summary, "command": text}


def _query_commands(queries: list[PlaybookQuery]) -> list[dict]:
    commands = []
    for query in queries:
        label = f"Run in {query.platform} ({query.language})"
        description = f"{label}: {query.description}" if query.description else label
        commands.append(
            {"type": "manual", "description": description, "command": with_variables(query.text)}
        )
        if query.sigma_rule:
            commands.append(
                {
                    "type": "sigma",
                    "description": f"Sigma form: {query.sigma_rule.title}",
                    "command_b64": base64.b64encode(
                        query.sigma_rule.yaml_text.encode("utf-8")
                    ).decode("ascii"),
                }
            )
    return commands


def _splunk_command(query: PlaybookQuery) -> dict:
    """Build an `http-api` command that runs an SPL query on Splunk's export endpoint.

    The form body URL-encodes the search, except for variable references, which stay
    readable so that the executing platform can substitute them.
    """
    search = query.text.rstrip("\n")
    if not search.lstrip().startswith("|"):
        # The REST API runs the text as a search pipeline, so a leading search
        # command has to be written out.
        search = f"search {search}"
    return {
        "type": "http-api",
        "description": query.description or f"Run in {query.platform} ({query.language})",
        "command": SPLUNK_SEARCH_COMMAND,
        "headers": {"Content-Type": ["application/x-www-form-urlencoded"]},
        "content": f"search={_form_encode(search)}&output_mode=json",
    }


def _form_encode(text: str) -> str:
    """URL-encode `text` for a form body, turning `$name$` tokens into variable references.

    NOTE: the platform substitutes variable values without encoding them, so a value
    with `&`, `+` or `%` in it changes the form body. Host names, GUIDs and hashes are
    safe.
    """
    parts = []
    position = 0
    for match in TOKEN_PATTERN.finditer(text):
        parts.append(quote_plus(text[position : match.start()]))
        parts.append(f"{variable_name(match.group(1))}:value")
        position = match.end()
    parts.append(quote_plus(text[position:]))
    return "".join(parts)


def _add_arguments(action: dict, queries: list[PlaybookQuery], records: list[str]) -> None:
    """Set `in_args` to the variables the queries use and `out_args` to those recorded."""
    used = []
    for query in queries:
        used += TOKEN_PATTERN.findall(query.text)
    in_args = [variable_name(name) for name in dict.fromkeys(used)]
    if in_args:
        action["in_args"] = in_args
    if records:
        action["out_args"] = [variable_name(name) for name in records]


def _step_description(step: ResponseStep) -> str:
    automation = "Can be automated." if step.automatable else "Manual step."
    if step.automation:
        automation = f"{automation} {step.automation}"
    parts = [
        step.action.strip(),
        f"Why it matters: {step.rationale.strip()}",
        f"Role: {step.role}. {automation}",
    ]
    return "\n\n".join(parts)


def _question_description(question: InvestigationQuestion) -> str:
    parts = []
    if question.artifacts:
        artifacts = "\n".join(f"- {item}" for item in question.artifacts)
        parts.append(f"Evidence that answers it:\n{artifacts}")
    parts.append(f"Benign answer: {question.benign_answer.strip()}")
    if question.malicious_answer:
        parts.append(f"Points to an intrusion: {question.malicious_answer.strip()}")
    return "\n\n".join(parts)


def _hunt_description(hunt: HuntingQuery) -> str:
    parts = [
        f"Hypothesis: {hunt.hypothesis.strip()}",
        f"Expected noise: {hunt.expected_noise.strip()}",
    ]
    if hunt.data_sources:
        parts.append(f"Data sources: {', '.join(hunt.data_sources)}.")
    return "\n\n".join(parts)


def _playbook_types(playbook: Playbook) -> list[str]:
    types = [PHASE_PLAYBOOK_TYPES.get(step.phase) for step in playbook.steps.all()]
    if playbook.questions.all():
        types.append("investigation")
    if playbook.hunts.all():
        types.append("detection")
    return list(dict.fromkeys(kind for kind in types if kind))


def _labels(playbook: Playbook) -> list[str]:
    labels = []
    for link in playbook.links.all():
        labels += link.detection.attack_ids
    return list(dict.fromkeys(labels))


def _external_references(playbook: Playbook) -> list[dict]:
    references = []
    for item in playbook.references:
        reference = {"name": item["name"], "url": item["url"]}
        if item.get("description"):
            reference["description"] = item["description"]
        references.append(reference)
    for link in playbook.links.all():
        references.append(
            {
                "name": link.detection.title,
                "description": "Detection that starts this playbook when it fires.",
                "external_id": str(link.detection.uuid),
            }
        )
    return references


def _first_author(playbook: Playbook) -> str:
    return playbook.authors[0] if playbook.authors else DEFAULT_AUTHOR


def _timestamp(day) -> str:
    """Return midnight UTC of `day` with the millisecond precision CACAO requires."""
    return f"{day.isoformat()}T00:00:00.000Z"
