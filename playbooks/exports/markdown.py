"""A playbook as one Markdown document, to paste into a ticket or a wiki page.

Steps are numbered across all phases, as on the playbook page, so "step 5" means the
same thing everywhere. The prose fields are Markdown already, so they are copied
unchanged. Queries and Sigma forms go into fenced code blocks.
"""

import re

from playbooks.models import Playbook, PlaybookQuery, ResponseStep

CONTENT_TYPE = "text/markdown; charset=utf-8"
BACKTICK_RUN = re.compile(r"`+")


def markdown_filename(playbook: Playbook) -> str:
    return f"{playbook.slug}.md"


def playbook_markdown(playbook: Playbook) -> str:
    """Render the whole playbook: header, inputs, response, investigation, hunting."""
    sections = [
        _header(playbook),
        _inputs(playbook),
        _response(playbook),
        _investigation(playbook),
        _hunting(playbook),
        _references(playbook),
    ]
    return "\n\n".join(section for section in sections if section).rstrip("\n") + "\n"


def _header(playbook: Playbook) -> str:
    lines = [f"# {playbook.title}", ""]
    facts = [
        f"Status: {playbook.get_status_display().lower()}",
        f"version {playbook.version}",
        f"modified {playbook.date_modified.isoformat()}",
    ]
    lines.append(", ".join(facts) + ".")
    if playbook.authors:
        lines.append(f"Authors: {', '.join(playbook.authors)}.")
    detections = [
        f"{link.detection.title} ({', '.join(link.detection.attack_ids)})"
        for link in playbook.links.all()
    ]
    if detections:
        lines.append(f"Detections: {'; '.join(detections)}.")
    lines.append(f"Playbook id: `{playbook.uuid}`.")
    lines += ["", playbook.summary.strip()]
    return "\n".join(lines)


def _inputs(playbook: Playbook) -> str:
    inputs = list(playbook.inputs.all())
    if not inputs:
        return ""
    lines = [
        "## Inputs",
        "",
        "Queries use these values as `$name$` tokens. Alert inputs are fields of the alert;",
        "analyst inputs are recorded by the step that finds them.",
        "",
        "| Input | Source | Description | Example |",
        "|---|---|---|---|",
    ]
    for item in inputs:
        example = f"`{item.example}`" if item.example else ""
        cells = [f"`{item.token}`", item.source, _cell(item.description), _cell(example)]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def _response(playbook: Playbook) -> str:
    blocks = ["## Response playbook"]
    phase = None
    for step in playbook.steps.all():
        if step.phase != phase:
            phase = step.phase
            blocks.append(f"### {step.get_phase_display()}")
        blocks.append(_step(step))
    return "\n\n".join(blocks)


def _step(step: ResponseStep) -> str:
    automation = "yes" if step.automatable else "no"
    if step.automation:
        automation = f"{automation}. {step.automation}"
    facts = [f"- Role: {step.role}", f"- Can be automated: {automation}"]
    if step.records:
        recorded = ", ".join(f"`${name}$`" for name in step.records)
        facts.append(f"- Records: {recorded}")
    parts = [
        f"#### {step.number}. {step.title}",
        "\n".join(facts),
        step.action.strip(),
        f"**Why it matters.** {step.rationale.strip()}",
    ]
    parts += [_query(query) for query in step.queries.all()]
    return "\n\n".join(parts)


def _investigation(playbook: Playbook) -> str:
    questions = list(playbook.questions.all())
    if not questions:
        return ""
    blocks = ["## Investigation guide"]
    for question in questions:
        parts = [f"### {question.number}. {question.question}", f"Role: {question.role}."]
        if question.artifacts:
            evidence = "\n".join(f"- {item}" for item in question.artifacts)
            parts.append(f"Evidence that answers it:\n\n{evidence}")
        parts.append(f"**Benign answer.** {question.benign_answer.strip()}")
        if question.malicious_answer:
            parts.append(f"**Points to an intrusion.** {question.malicious_answer.strip()}")
        parts += [_query(query) for query in question.queries.all()]
        blocks.append("\n\n".join(parts))
    return "\n\n".join(blocks)


def _hunting(playbook: Playbook) -> str:
    hunts = list(playbook.hunts.all())
    if not hunts:
        return ""
    blocks = ["## Hunting queries"]
    for hunt in hunts:
        parts = [
            f"### {hunt.number}. {hunt.name}",
            f"Role: {hunt.role}.",
            f"**Hypothesis.** {hunt.hypothesis.strip()}",
            f"**Expected noise.** {hunt.expected_noise.strip()}",
        ]
        if hunt.data_sources:
            parts.append(f"Data sources: {', '.join(hunt.data_sources)}.")
        parts += [_query(query) for query in hunt.queries.all()]
        blocks.append("\n\n".join(parts))
    return "\n\n".join(blocks)


def _references(playbook: Playbook) -> str:
    if not playbook.references:
        return ""
    lines = ["## References", ""]
    for item in playbook.references:
        line = f"- [{item['name']}]({item['url']})"
        if item.get("description"):
            line += f": {item['description']}"
        lines.append(line)
    return "\n".join(lines)


def _query(query: PlaybookQuery) -> str:
    label = f"**{query.platform} ({query.language})**"
    if query.description:
        label += f": {query.description}"
    parts = [label, _fenced(query.text, query.language.lower())]
    if query.sigma_rule:
        parts.append(f"Sigma form, `{query.sigma_rule.filename}`:")
        parts.append(_fenced(query.sigma_rule.yaml_text, "yaml"))
    return "\n\n".join(parts)


def _fenced(text: str, language: str) -> str:
    """Wrap text in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    code = text.rstrip("\n")
    return f"{fence}{language}\n{code}\n{fence}"


def _cell(text: str) -> str:
    """Make text safe for one table cell: no line breaks, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
