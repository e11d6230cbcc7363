"""YAML reading and the one canonical way the portal writes content files."""

import datetime

import yaml

FORMAT_VERSION = 1


class _ContentDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks."""


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
    """Parse YAML with the safe loader; dates stay `datetime.date` objects."""
    return yaml.safe_load(text)


def date_or_none(value: object) -> datetime.date | None:
    return value if isinstance(value, datetime.date) else None
