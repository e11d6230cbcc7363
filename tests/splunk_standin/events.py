"""Events as the stand-in stores them, and the fields that a search reads from them."""

import json
from dataclasses import dataclass
from typing import Any

from .values import INDEXED_FIELDS_KEY


@dataclass
class StoredEvent:
    """One indexed event; ``searchable_at`` is a time.monotonic() value."""

    time: float
    host: str
    source: str
    sourcetype: str
    index: str
    raw: str
    indexed_fields: dict[str, str | list[str]]
    searchable_at: float

    def search_fields(self) -> dict[str, Any]:
        """Return the fields available to a search.

        Metadata fields override indexed fields, which override fields extracted from JSON.
        """
        fields: dict[str, Any] = {}
        fields.update(extract_json_fields(self.raw))
        fields.update(self.indexed_fields)
        fields[INDEXED_FIELDS_KEY] = frozenset(self.indexed_fields)
        fields.update(
            {
                "_raw": self.raw,
                "_time": self.time,
                "host": self.host,
                "source": self.source,
                "sourcetype": self.sourcetype,
                "index": self.index,
                "splunk_server": "splunk-standin",
            }
        )
        return fields


def extract_json_fields(raw: str) -> dict[str, str | list[str]]:
    """Flatten a JSON object the way Splunk's automatic JSON extraction names its fields.

    Nested objects give ``parent.child``, arrays give ``name{}`` with one value per
    element, and a name seen more than once becomes multivalue. Numbers and booleans keep
    their JSON text. ``_raw`` that is not a JSON object gives no fields.
    NOTE: JSON null gives no field here; how Splunk renders null is not verified.
    """
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    fields: dict[str, str | list[str]] = {}
    _flatten(document, "", fields)
    return fields


def _flatten(value: Any, name: str, fields: dict[str, str | list[str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{name}.{key}" if name else str(key), fields)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, f"{name}{{}}", fields)
    elif value is not None:
        text = json.dumps(value) if isinstance(value, bool | int | float) else str(value)
        existing = fields.get(name)
        if existing is None:
            fields[name] = text
        elif isinstance(existing, list):
            existing.append(text)
        else:
            fields[name] = [existing, text]
