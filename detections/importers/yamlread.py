"""Reading untrusted YAML files with limits, for the importers.

`read_documents` builds Python values from the parser's event stream with an explicit
stack, never by recursion, so no nesting depth can raise RecursionError. It enforces,
before any value reaches pySigma or the database:

- no anchors, aliases or merge keys (`<<`), because a few aliases can expand a file
  of under 1 KB into gigabytes once a consumer walks the values;
- no tags on lists and mappings (`!!set`, `!!omap`), and on scalars only the types
  of PyYAML's safe loader;
- nesting no deeper than `max_depth` lists and mappings;
- no list or mapping with more than `max_items` entries;
- mapping keys that are strings, numbers, booleans or null, each once per mapping;
- no NUL character or lone surrogate in any string, because PostgreSQL cannot
  store either.

Each document comes back with its text and the line of every key and list entry, so
later checks can name the line of a problem. The parser is libyaml's when PyYAML
was built with it (the wheels are), which is several times faster than the pure
Python one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from detections.content.values import text_problem

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
# Scalar types of the safe loader that JSON and the database can also store, plus
# timestamps, which Sigma uses for `date` and `modified`.
SCALAR_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "timestamp")
)

Path = tuple[str | int, ...]


class YAMLReadError(ValueError):
    """A YAML file that cannot be read within the limits; `line` counts from 1 when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class YAMLDocument:
    """One document of a file: its value, its own text and the lines of its entries."""

    value: object
    text: str
    line: int
    # Line (from 1) of each mapping key and list entry, by its path from the root.
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """Return the line of `path`, or of its nearest ancestor with a known line."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.line


@dataclass
class _Frame:
    container: dict | list
    path: Path
    # For mappings: the key read and waiting for its value, and whether one is waiting.
    key: object = None
    has_key: bool = False


def read_documents(text: str, *, max_depth: int, max_items: int) -> list[YAMLDocument]:
    """Parse every document of `text`; raise YAMLReadError naming the line of the first problem.

    Empty documents (such as one after a trailing `---`) are returned with the value None.
    """
    loader = Loader(text)
    documents: list[YAMLDocument] = []
    try:
        while True:
            event = loader.get_event()
            if isinstance(event, StreamEndEvent):
                break
            if isinstance(event, DocumentStartEvent):
                documents.append(_read_document(loader, event, text, max_depth, max_items))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YAMLReadError(f"invalid YAML: {problem}", line) from exc
    except yaml.YAMLError as exc:
        raise YAMLReadError(f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if len(documents) > 1:
        for document in documents:
            document.text = _strip_markers(document.text)
    return documents


def _read_document(
    loader, start: DocumentStartEvent, text: str, max_depth: int, max_items: int
) -> YAMLDocument:
    document = YAMLDocument(value=None, text="", line=start.start_mark.line + 1)
    stack: list[_Frame] = []
    root: list = []
    while True:
        event = loader.get_event()
        if isinstance(event, DocumentEndEvent):
            document.value = root[0] if root else None
            document.text = text[start.start_mark.index : event.end_mark.index]
            return document
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            raise YAMLReadError(
                f"YAML aliases are not allowed (found *{event.anchor}); "
                "write the value out in full",
                line,
            )
        if getattr(event, "anchor", None) is not None:
            raise YAMLReadError(
                f"YAML anchors are not allowed (found &{event.anchor}); remove the anchor", line
            )
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            finished = stack.pop()
            _add(stack, root, document, finished.container, line, max_items)
            continue
        if isinstance(event, CollectionStartEvent):
            _check_collection_tag(event, line)
            if len(stack) >= max_depth:
                raise YAMLReadError(
                    f"the YAML is nested more than {max_depth} levels deep; flatten it", line
                )
            container: dict | list = {} if isinstance(event, MappingStartEvent) else []
            stack.append(_Frame(container, _child_path(stack)))
            continue
        if isinstance(event, ScalarEvent):
            value = _scalar(loader, event, line)
            _add(stack, root, document, value, line, max_items)


def _child_path(stack: list[_Frame]) -> Path:
    if not stack:
        return ()
    frame = stack[-1]
    if isinstance(frame.container, dict):
        return (*frame.path, _path_key(frame.key))
    return (*frame.path, len(frame.container))


def _path_key(key: object) -> str | int:
    return key if isinstance(key, str | int) and not isinstance(key, bool) else str(key)


def _add(
    stack: list[_Frame], root: list, document: YAMLDocument, value, line: int, max_items: int
) -> None:
    """Put a finished value into the collection being built, or make it the document's root."""
    if not stack:
        root.append(value)
        return
    frame = stack[-1]
    container = frame.container
    if isinstance(container, list):
        if len(container) >= max_items:
            raise YAMLReadError(
                f"a list has more than {max_items} entries; the limit is {max_items}", line
            )
        document.lines[(*frame.path, len(container))] = line
        container.append(value)
        return
    if not frame.has_key:
        if isinstance(value, dict | list):
            raise YAMLReadError("mapping keys must be plain values, not lists or mappings", line)
        if value in container:
            raise YAMLReadError(f"duplicate key {value!r} in one mapping", line)
        if len(container) >= max_items:
            raise YAMLReadError(
                f"a mapping has more than {max_items} keys; the limit is {max_items}", line
            )
        document.lines[(*frame.path, _path_key(value))] = line
        frame.key, frame.has_key = value, True
        return
    container[frame.key] = value
    frame.key, frame.has_key = None, False


def _check_collection_tag(event: CollectionStartEvent, line: int) -> None:
    if event.tag in (None, "!", MAP_TAG, SEQ_TAG):
        return
    raise YAMLReadError(f"the YAML tag {event.tag} is not allowed; remove it", line)


def _scalar(loader, event: ScalarEvent, line: int):
    text = event.value
    # The full check only for text that can fail it: NUL is ASCII, surrogates are not.
    if "\0" in text or not text.isascii():
        problem = text_problem(text)
        if problem:
            raise YAMLReadError(f"a value {problem}", line)
    tag = event.tag
    if tag is None or tag == "!":
        if not event.implicit[0]:
            # A quoted or block scalar without a tag is always a string.
            return text
        tag = loader.resolve(ScalarNode, text, event.implicit)
    if tag == STR_TAG:
        return text
    if tag == MERGE_TAG:
        raise YAMLReadError("YAML merge keys (<<) are not allowed", line)
    if tag not in SCALAR_TAGS:
        raise YAMLReadError(f"the YAML tag {tag} is not allowed; remove it", line)
    node = ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
    try:
        # The constructor functions of the safe loader, called directly so that the
        # loader does not keep every scalar in its cache of constructed objects.
        return loader.yaml_constructors[tag](loader, node)
    except (ValueError, OverflowError, TypeError) as exc:
        preview = text if len(text) <= 40 else text[:40] + "..."
        raise YAMLReadError(f"invalid value {preview!r}: {exc}", line) from exc


def _strip_markers(text: str) -> str:
    """Remove the `---` line that starts and the `...` line that ends one document of several."""
    if text.startswith("---"):
        newline = text.find("\n")
        text = "" if newline < 0 else text[newline + 1 :]
    stripped = text.rstrip()
    if stripped.endswith("\n...") or stripped == "...":
        text = stripped[:-3]
    return text
