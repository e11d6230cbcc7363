"""Recorded events: the one shape both validation engines read, and how files become it.

An event is a flat JSON object with the field names its source writes:

- Windows event logs (Sysmon, PowerShell, Security): the `System` header flattened to
  `EventID`, `Channel`, `Provider_Name`, `Provider_Guid`, `Computer`, `TimeCreated`,
  `EventRecordID`, `Version`, `Level`, `Task`, `Opcode`, `Keywords`,
  `Execution_ProcessID`, `Execution_ThreadID` and `Security_UserID`, then every
  `EventData` field under its own name. The prefixed names keep the header's
  `ProcessID` apart from Sysmon's `ProcessId` even where field names are compared
  without case, as SQL column names are.
- Linux auditd: one object per record, with `type`, `msg` (`audit(<epoch>:<serial>)`),
  `node` when written, and the record's own fields.

`splunk_event` is the single place where this shape is mapped to what Splunk indexes
(`EventCode`, `host`, `source`, `sourcetype`, `_time`).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from detections.pysigma.embedded import windows_channel_services

# The magic bytes at the start of every Windows .evtx file header.
EVTX_MAGIC = b"ElfFile\x00"

# Recordings are small by nature; a larger file is the wrong file or an attack.
MAX_EVENTS_FILE_BYTES = 64 * 1024 * 1024
MAX_EVENTS_PER_TEST = 100_000

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"

# Sigma log source categories of Sysmon event IDs, as Sigma's Sysmon pipeline
# (pysigma-pipeline-sysmon 2.0) maps them.
SYSMON_CATEGORIES = {
    1: "process_creation",
    2: "file_change",
    3: "network_connection",
    4: "sysmon_status",
    5: "process_termination",
    6: "driver_load",
    7: "image_load",
    8: "create_remote_thread",
    9: "raw_access_thread",
    10: "process_access",
    11: "file_event",
    12: "registry_add",
    13: "registry_set",
    14: "registry_rename",
    15: "create_stream_hash",
    16: "sysmon_status",
    17: "pipe_created",
    18: "pipe_created",
    19: "wmi_event",
    20: "wmi_event",
    21: "wmi_event",
    22: "dns_query",
    23: "file_delete",
    24: "clipboard_capture",
    25: "process_tampering",
    26: "file_delete_detected",
    27: "file_block_executable",
    28: "file_block_shredding",
    29: "file_executable_detected",
    255: "sysmon_error",
}

# Categories that cover events filed under others. Sigma's `registry_event` covers
# Sysmon's three registry event IDs, and the Sysmon pipeline maps `registry_delete`
# to event ID 12, which creates and deletes keys and is filed as `registry_add`.
SYSMON_CATEGORY_ALIASES = {
    "registry_event": {"registry_add", "registry_set", "registry_rename"},
    "registry_delete": {"registry_add"},
}

# Sigma Windows services by event log channel, as pySigma maps them.
WINDOWS_SERVICES = windows_channel_services()

# PowerShell event IDs with a Sigma category of their own.
POWERSHELL_CATEGORIES = {4103: "ps_module", 4104: "ps_script"}
POWERSHELL_CLASSIC_CATEGORIES = {
    400: "ps_classic_start",
    600: "ps_classic_provider_start",
    800: "ps_classic_script",
}

AUDIT_MSG = re.compile(r"audit\((?P<epoch>\d+(?:\.\d+)?):(?P<serial>\d+)\)")


class EventFileError(ValueError):
    """A recording that cannot be read as events, with the file and the reason."""


@dataclass(frozen=True)
class EventSource:
    """The Sigma log source an event belongs to."""

    product: str | None
    service: str | None
    category: str | None

    @property
    def label(self) -> str:
        parts = [part for part in (self.product, self.service, self.category) if part]
        return "/".join(parts) or "unknown source"


UNKNOWN_SOURCE = EventSource(None, None, None)


def event_source(event: dict) -> EventSource:
    """Classify an event by the Sigma log source (product, service, category) it falls under."""
    channel = event.get("Channel")
    if isinstance(channel, str):
        service = WINDOWS_SERVICES.get(channel)
        event_id = _as_int(event.get("EventID"))
        category = None
        if service == "sysmon":
            category = SYSMON_CATEGORIES.get(event_id)
        elif service == "powershell":
            category = POWERSHELL_CATEGORIES.get(event_id)
        elif service == "powershell-classic":
            category = POWERSHELL_CLASSIC_CATEGORIES.get(event_id)
        return EventSource("windows", service, category)
    if isinstance(event.get("type"), str) and AUDIT_MSG.fullmatch(str(event.get("msg", ""))):
        return EventSource("linux", "auditd", None)
    return UNKNOWN_SOURCE


def logsource_matches(rule_logsource: dict, source: EventSource) -> bool:
    """Tell whether a rule's logsource covers events of this source, as Sigma pipelines do.

    Each of the rule's product, service and category must equal the event's, and a
    key the rule leaves out matches anything.
    """
    for key in ("product", "service", "category"):
        expected = rule_logsource.get(key)
        if not expected:
            continue
        actual = getattr(source, key)
        if key == "category" and actual in SYSMON_CATEGORY_ALIASES.get(expected, ()):
            continue
        if expected != actual:
            return False
    return True


def splunk_event(event: dict) -> dict:
    """Map an event to the HEC payload Splunk would index for it.

    Windows events take the sourcetype and source `XmlWinEventLog:<channel>` that the
    Splunk Add-on for Microsoft Windows gives XML event logs, with `EventCode` beside
    `EventID`. Auditd records take the `linux_audit` sourcetype of the Splunk Add-on
    for Unix and Linux.
    """
    fields = dict(event)
    channel = event.get("Channel")
    if isinstance(channel, str):
        fields["EventCode"] = event.get("EventID")
        return {
            "time": _windows_epoch(event.get("TimeCreated")),
            "host": str(event.get("Computer") or "unknown"),
            "source": f"XmlWinEventLog:{channel}",
            "sourcetype": f"XmlWinEventLog:{channel}",
            "event": fields,
        }
    match = AUDIT_MSG.fullmatch(str(event.get("msg", "")))
    if match:
        return {
            "time": float(match["epoch"]),
            "host": str(event.get("node") or "unknown"),
            "source": "/var/log/audit/audit.log",
            "sourcetype": "linux_audit",
            "event": fields,
        }
    return {"time": 0.0, "host": "unknown", "source": "portal", "sourcetype": "_json", "event": fields}


def read_events(data: bytes, *, name: str) -> list[dict]:
    """Read a recording, whatever its format, into events of the shape above.

    The format comes from the content, not the file name: a Windows .evtx file, a JSON
    array of events, one JSON object, or JSON lines. Events exported as the nested
    `Event.System` / `Event.EventData` JSON of evtx tools are flattened.
    """
    if len(data) > MAX_EVENTS_FILE_BYTES:
        raise EventFileError(
            f"{name}: the file is {len(data):,} bytes, over the {MAX_EVENTS_FILE_BYTES:,}-byte "
            "limit for a recording; split it or keep only the events of the test."
        )
    if data.startswith(EVTX_MAGIC):
        return _limit(read_evtx(data, name=name), name)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EventFileError(
            f"{name}: the file is UTF-16 text; save it as UTF-8 JSON lines or export the "
            "events as .evtx."
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventFileError(
            f"{name}: not an .evtx file and not UTF-8 text (invalid byte at offset {exc.start}); "
            "provide a Windows .evtx file, a JSON array or JSON lines."
        ) from None
    stripped = text.lstrip()
    if not stripped:
        raise EventFileError(f"{name}: the file is empty; it contains no events.")
    if stripped.startswith("["):
        return _limit(_read_json_array(text, name=name), name)
    if stripped.startswith("{"):
        return _limit(_read_json_lines(text, name=name), name)
    raise EventFileError(
        f"{name}: not an .evtx file, a JSON array or JSON lines (the text starts with "
        f"{stripped[:20]!r}); provide one of those formats."
    )


def read_events_file(path: Path) -> list[dict]:
    """Read a recording from disk, naming the path in every error."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EventFileError(f"{path}: cannot read the file: {exc.strerror}.") from None
    if not path.is_file():
        raise EventFileError(f"{path}: not a regular file; give the path of a recording.")
    if size > MAX_EVENTS_FILE_BYTES:
        raise EventFileError(
            f"{path}: the file is {size:,} bytes, over the {MAX_EVENTS_FILE_BYTES:,}-byte "
            "limit for a recording; split it or keep only the events of the test."
        )
    return read_events(path.read_bytes(), name=str(path))


def read_evtx(data: bytes, *, name: str) -> list[dict]:
    """Parse Windows .evtx bytes with the Rust-backed evtx package and flatten each record."""
    from evtx import PyEvtxParser

    try:
        parser = PyEvtxParser(io.BytesIO(data))
        records = list(parser.records_json())
    except (OSError, RuntimeError, ValueError) as exc:
        raise EventFileError(f"{name}: invalid .evtx file: {exc}") from None
    events = []
    for record in records:
        document = json.loads(record["data"])
        events.append(flatten_windows_event(document, name=f"{name} record {record['event_record_id']}"))
    if not events:
        raise EventFileError(f"{name}: the .evtx file contains no event records.")
    return events


def flatten_windows_event(document: dict, *, name: str) -> dict:
    """Flatten the `{"Event": {"System": ..., "EventData": ...}}` JSON of one Windows event."""
    event = document.get("Event", document)
    system = event.get("System")
    if not isinstance(system, dict):
        raise EventFileError(f"{name}: a Windows event without a System section.")
    flat: dict = {}
    for key, value in system.items():
        if key == "Provider":
            attributes = _attributes(value)
            for attribute in ("Name", "Guid"):
                if attribute in attributes:
                    flat[f"Provider_{attribute}"] = attributes[attribute]
        elif key == "TimeCreated":
            flat["TimeCreated"] = _attributes(value).get("SystemTime")
        elif key in ("Execution", "Security"):
            for attribute, attribute_value in _attributes(value).items():
                flat[f"{key}_{attribute}"] = attribute_value
        elif key == "Correlation":
            for attribute, attribute_value in _attributes(value).items():
                flat[f"Correlation_{attribute}"] = attribute_value
        elif key != "#attributes":
            flat[key] = _text(value)
    for section in ("EventData", "UserData"):
        data = event.get(section)
        if section == "UserData" and isinstance(data, dict) and len(data) == 1:
            data = next(iter(data.values()))
        if isinstance(data, dict):
            for key, value in data.items():
                if key == "#attributes":
                    continue
                if key == "Data" and isinstance(value, list):
                    for index, item in enumerate(value):
                        flat[f"Data{index + 1}" if index else "Data"] = _text(item)
                else:
                    flat[key] = _text(value)
        elif data is not None:
            flat[section] = _text(data)
    return check_event(flat, name=name)


def encode_events(events: Iterable[dict]) -> str:
    """Write events as JSON lines with sorted keys, the form content files keep."""
    return "".join(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n" for event in events)


def _read_json_array(text: str, *, name: str) -> list[dict]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EventFileError(f"{name}: line {exc.lineno}: invalid JSON: {exc.msg}.") from None
    except ValueError as exc:
        raise EventFileError(f"{name}: {exc}") from None
    if not isinstance(value, list):
        raise EventFileError(f"{name}: expected a JSON array of events.")
    return [_event_from_json(item, name=f"{name} item {index + 1}") for index, item in enumerate(value)]


def _read_json_lines(text: str, *, name: str) -> list[dict]:
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            if number == 1 and "Extra data" not in exc.msg:
                # One JSON object spread over several lines is a single event, not JSON lines.
                return _read_single_object(text, name=name)
            raise EventFileError(f"{name}: line {number}: invalid JSON: {exc.msg}.") from None
        except ValueError as exc:
            raise EventFileError(f"{name}: line {number}: {exc}") from None
        events.append(_event_from_json(value, name=f"{name}: line {number}"))
    return events


def _read_single_object(text: str, *, name: str) -> list[dict]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EventFileError(f"{name}: line {exc.lineno}: invalid JSON: {exc.msg}.") from None
    except ValueError as exc:
        raise EventFileError(f"{name}: {exc}") from None
    return [_event_from_json(value, name=name)]


def _event_from_json(value, *, name: str) -> dict:
    if not isinstance(value, dict):
        raise EventFileError(f"{name}: expected a JSON object for an event, found {type(value).__name__}.")
    event = value.get("Event")
    if isinstance(event, dict) and isinstance(event.get("System"), dict):
        return flatten_windows_event(value, name=name)
    return check_event(value, name=name)


def check_event(event: dict, *, name: str) -> dict:
    """Return the event if it is a flat object of JSON scalars, else raise EventFileError."""
    if not event:
        raise EventFileError(f"{name}: the event has no fields.")
    seen: dict[str, str] = {}
    for key, value in event.items():
        folded = key.casefold()
        if folded in seen:
            raise EventFileError(
                f"{name}: fields {seen[folded]!r} and {key!r} differ only in case; Sigma "
                "field names ignore case, so rename one."
            )
        seen[folded] = key
        if not key or "\x00" in key:
            raise EventFileError(f"{name}: invalid field name {key!r}.")
        if isinstance(value, dict | list):
            raise EventFileError(
                f"{name}: field {key!r} holds a nested {type(value).__name__}; events must be "
                "flat objects with the field names the source writes."
            )
        if isinstance(value, str) and "\x00" in value:
            raise EventFileError(f"{name}: field {key!r} contains a NUL character.")
        if isinstance(value, float) and not math.isfinite(value):
            raise EventFileError(f"{name}: field {key!r} is not a finite number.")
    return event


def _limit(events: list[dict], name: str) -> list[dict]:
    if len(events) > MAX_EVENTS_PER_TEST:
        raise EventFileError(
            f"{name}: {len(events):,} events, over the limit of {MAX_EVENTS_PER_TEST:,} per "
            "test; keep only the events of the test."
        )
    if not events:
        raise EventFileError(f"{name}: the file contains no events.")
    return events


def _reject_constant(value: str):
    raise ValueError(f"{value} is not a valid JSON number.")


def _attributes(value) -> dict:
    if isinstance(value, dict):
        attributes = value.get("#attributes")
        if isinstance(attributes, dict):
            return attributes
    return {}


def _text(value):
    """Return the value of an XML element as evtx renders it: plain, or under `#text`."""
    if isinstance(value, dict):
        if "#text" in value:
            return _text(value["#text"])
        return None if not value or set(value) == {"#attributes"} else json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return "\n".join(str(_text(item)) for item in value)
    return value


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _windows_epoch(value) -> float:
    if not isinstance(value, str) or not value:
        return 0.0
    text = value.strip().replace("Z", "+00:00")
    # Windows writes seven fractional digits; Python reads at most six.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
