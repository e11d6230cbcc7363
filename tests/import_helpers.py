"""Building Sigma files and running the import commands for the importer tests."""

import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

RULE_TEMPLATE = """\
title: {title}
id: {rule_id}
status: {status}
description: {description}
references:
    - https://example.org/advisories/zlib-staging
author: Ann Analyst, Bob Builder
date: 2026-01-02
modified: 2026-02-03
tags:
    - attack.collection
    - attack.t1560.002
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\python.exe'
        CommandLine|contains: 'zlib.compress'
    condition: selection
falsepositives:
    - Build servers packing release archives
level: {level}
"""


def rule_text(
    *,
    rule_id: str | None = None,
    title: str = "Python Compresses Data With zlib",
    status: str = "test",
    level: str = "medium",
    description: str = "A Python process compresses data in memory with zlib.",
) -> str:
    return RULE_TEMPLATE.format(
        title=title,
        rule_id=rule_id or str(uuid.uuid4()),
        status=status,
        level=level,
        description=description,
    )


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def zip_bytes(entries: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def run_import(command: str, *paths, expect_failure: bool = False, **options) -> dict:
    """Run an import command with --format json; return its summary.

    With `expect_failure`, the command must exit with status 1.
    """
    stdout = io.StringIO()
    arguments = [str(path) for path in paths]
    options.update(format="json", stdout=stdout, stderr=io.StringIO())
    if expect_failure:
        with pytest.raises(CommandError) as error:
            call_command(command, *arguments, **options)
        assert error.value.returncode == 1
    else:
        call_command(command, *arguments, **options)
    return json.loads(stdout.getvalue())


def only_failure(summary: dict) -> dict:
    assert len(summary["failed"]) == 1, summary["failed"]
    return summary["failed"][0]
