"""YAML reading and the one canonical way the portal writes content files.

Content files and Sigma rules are read with `load_yaml`, a strict form of PyYAML's
safe loader. It rejects anchors and aliases, because nested aliases let a few
kilobytes expand into hundreds of megabytes. It also rejects merge keys (`<<`),
which only make sense with aliases, and duplicate mapping keys, where PyYAML would
silently keep the last value.
"""

import datetime

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

FORMAT_VERSION = 1

MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLNestingError(yaml.YAMLError):
    """A YAML document nested deeper than the parser's recursion allows."""


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, merge keys or duplicate keys."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise ComposerError(
                None,
                None,
                f"YAML aliases are not allowed (found *{event.anchor}); "
                "write the value out in full",
                event.start_mark,
            )
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            raise ComposerError(
                None,
                None,
                f"YAML anchors are not allowed (found &{event.anchor}); remove the anchor",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):
        # PyYAML builds scalars with int(), float() and datetime.date(), which raise
        # ValueError or OverflowError on input such as `2026-99-99` or an integer of
        # more than 4,300 digits. Report those with the position, as YAML errors.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:
            value = node.value if isinstance(node.value, str) else ""
            preview = value if len(value) <= 40 else value[:40] + "..."
            raise ConstructorError(
                None, None, f"invalid value {preview!r}: {exc}", node.start_mark
            ) from exc

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    raise ConstructorError(
                        None, None, "YAML merge keys (<<) are not allowed", key_node.start_mark
                    )
                key = self.construct_object(key_node, deep=True)
                try:
                    is_duplicate = key in seen
                except TypeError:
                    # An unhashable key; SafeConstructor reports it below.
                    continue
                if is_duplicate:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> object:
    """Parse one YAML document with StrictSafeLoader; every failure is a yaml.YAMLError."""
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as exc:
        raise YAMLNestingError(
            "the document is nested too deeply for the parser; flatten the nested lists or mappings"
        ) from exc


class _ContentDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks, and no aliases."""

    def ignore_aliases(self, data) -> bool:
        # A list or mapping used twice in a document would otherwise be written once
        # with an anchor and then as an alias, which load_yaml rejects.
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ContentDumper.add_representer(str, _represent_str)


def dump_document(document: dict) -> str:
    """Serialise a content document in the canonical layout that export writes."""
    return yaml.dump(
        document,
        Dumper=_ContentDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
    )


def load_document(text: str) -> object:
    """Parse a content file with `load_yaml`; dates stay `datetime.date` objects."""
    return load_yaml(text)


def date_or_none(value: object) -> datetime.date | None:
    return value if isinstance(value, datetime.date) else None
