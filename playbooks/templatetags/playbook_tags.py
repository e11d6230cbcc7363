"""Template tags for playbooks: the section of the detection page, the body, element ids."""

from django import template

from playbooks.models import Playbook, PlaybookQuery
from playbooks.selectors import detection_playbooks
from playbooks.sigma_checks import SigmaCheck, playbook_sigma_checks

register = template.Library()


@register.inclusion_tag("playbooks/partials/detection_section.html", takes_context=True)
def detection_playbooks_section(context, detection) -> dict:
    """Render the playbooks of `detection` that the requesting user may read."""
    user = context["request"].user
    return {"detection": detection, "playbooks": list(detection_playbooks(user, detection))}


@register.inclusion_tag("playbooks/partials/playbook_body.html")
def playbook_body(
    playbook: Playbook, heading_level: int = 2, collapsible: bool = False, editable: bool = False
) -> dict:
    """Render the response steps by phase, the investigation guide and the hunts.

    `heading_level` is the level of the part headings, so that the body fits under
    the headings of the page around it. Phases, questions and hunts are one level
    below, and steps two levels below. Each query with a Sigma form shows how that form
    fares on the linked detections' recorded tests. With `editable`, each step, question
    and hunt links to its edit page.
    """
    return {
        "playbook": playbook,
        "sigma_checks": playbook_sigma_checks(playbook),
        "part": f"h{heading_level}",
        "item": f"h{min(heading_level + 1, 6)}",
        "sub": f"h{min(heading_level + 2, 6)}",
        "collapsible": collapsible,
        "editable": editable,
        "id_prefix": f"playbook-{playbook.slug}",
    }


@register.filter
def sigma_check_for(checks: dict[int, SigmaCheck], query: PlaybookQuery) -> SigmaCheck | None:
    """Return the check of `query`'s Sigma form, or None when it has none."""
    return checks.get(query.pk)


@register.simple_tag
def element_id(*parts) -> str:
    """Join parts into an HTML id, such as `playbook-x-step-3-query-1`."""
    return "-".join(str(part) for part in parts)
