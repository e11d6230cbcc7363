"""Field values as the SPL stand-in stores them, and their conversions.

A row maps field names to a string, a number (``_time`` and eval results), or a list of
strings for a multivalue field. A missing field is absent from the row, never None.
"""

import re
from datetime import UTC, datetime
from typing import Any

NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Row key of the set of custom indexed field names. Its NUL prefix cannot clash with a
# field name, and render_row leaves it out of results.
INDEXED_FIELDS_KEY = "\x00indexed_fields"


def to_number(value: Any) -> int | float | None:
    """Return the number a value holds, or None when it is not numeric."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        text = value.strip()
        number = float(text)
        if number.is_integer() and re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        return number
    return None


def render_number(number: int | float) -> str:
    """Format a number as SPL results show it: integral values without a decimal point."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return str(number)


def render_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return render_number(value)
    return str(value)


def field_values(value: Any) -> list[str]:
    """Return a field's values as strings: [] when missing, one or more otherwise."""
    if value is None:
        return []
    if isinstance(value, list):
        return [render_scalar(item) for item in value]
    return [render_scalar(value)]


def render_time(epoch: float) -> str:
    """Format ``_time`` as Splunk's JSON results do, in ISO 8601 with milliseconds (UTC here)."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def render_row(row: dict[str, Any]) -> dict[str, Any]:
    """Convert a row to the JSON shape of a results row: strings and lists of strings."""
    rendered: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or name == INDEXED_FIELDS_KEY:
            continue
        if name == "_time" and to_number(value) is not None:
            rendered[name] = render_time(float(to_number(value)))
        elif isinstance(value, list):
            rendered[name] = [render_scalar(item) for item in value]
        else:
            rendered[name] = render_scalar(value)
    return rendered
