"""Serving pySigma's ATT&CK lookups from a shipped STIX file instead of the network.

pySigma 1.x downloads MITRE's enterprise bundle on first use of
`sigma.data.mitre_attack` (the ES|QL backend's rule formats read it). Pointing it at
a local file keeps rendering offline; the file is built from content/attack.yml.
"""

import hashlib
import json
from pathlib import Path

from django.conf import settings
from sigma.data import mitre_attack

_configured_for: Path | None = None


def use_shipped_attack_data() -> None:
    """Point pySigma at settings.SIGMA_ATTACK_STIX_FILE, once per process."""
    global _configured_for
    path = Path(settings.SIGMA_ATTACK_STIX_FILE)
    if _configured_for == path:
        return
    if not path.is_file():
        raise FileNotFoundError(
            f"SIGMA_ATTACK_STIX_FILE={path} does not exist; point it at a STIX bundle "
            "(the repository ships content/attack-stix.json)."
        )
    # A cache folder per file content, so an updated file is never shadowed by
    # data cached from an older one.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    mitre_attack.set_cache_dir(str(Path(settings.SIGMA_CACHE_DIR) / digest))
    mitre_attack.set_url(str(path))
    _configured_for = path


def stix_bundle(catalogue: dict) -> dict:
    """Build a minimal STIX 2.1 bundle from an attack.yml catalogue document."""
    shortnames = {tactic["id"]: tactic["shortname"] for tactic in catalogue["tactics"]}
    objects = [
        {
            "type": "x-mitre-collection",
            "id": "x-mitre-collection--" + _uuid_for("collection"),
            "name": "Detection portal ATT&CK subset",
            "x_mitre_version": "subset",
        }
    ]
    for tactic in catalogue["tactics"]:
        objects.append(
            _stix_object("x-mitre-tactic", tactic, x_mitre_shortname=tactic["shortname"])
        )
    for technique in catalogue["techniques"]:
        phases = [
            {"kill_chain_name": "mitre-attack", "phase_name": shortnames[tactic_id]}
            for tactic_id in technique.get("tactics") or []
            if tactic_id in shortnames
        ]
        objects.append(
            _stix_object(
                "attack-pattern",
                technique,
                kill_chain_phases=phases,
                x_mitre_is_subtechnique="parent" in technique,
            )
        )
    return {"type": "bundle", "id": "bundle--" + _uuid_for("bundle"), "objects": objects}


def stix_bundle_text(catalogue: dict) -> str:
    return json.dumps(stix_bundle(catalogue), indent=1, sort_keys=True) + "\n"


def _stix_object(stix_type: str, entry: dict, **extra) -> dict:
    return {
        "type": stix_type,
        "id": f"{stix_type}--{_uuid_for(entry['id'])}",
        "name": entry["name"],
        "external_references": [
            {"source_name": "mitre-attack", "external_id": entry["id"], "url": entry["url"]}
        ],
        **extra,
    }


def _uuid_for(value: str) -> str:
    """Derive a stable UUID-shaped id, so the generated file only changes with its input."""
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
