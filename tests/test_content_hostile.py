"""Content folders built to harm the loader or the exporter: links, special files, YAML bombs."""

import os
import shutil
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from detections import admin
from detections.content import reader
from detections.models import SigmaRule

from .conftest import CONTENT_DIR, SEED_SLUG
from .test_content_loader import (
    DETECTION,
    SEED_FILE,
    SEED_SIGMA,
    database_state,
    edit_document,
)

SEED_FOLDER = Path("detections") / SEED_SLUG


@pytest.fixture
def content_copy(tmp_path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    return root


@contextmanager
def time_limit(seconds: int):
    """Fail the test instead of hanging when the code under test blocks."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load_error(root: Path, seconds: int = 20) -> str:
    with time_limit(seconds), pytest.raises(CommandError) as error:
        call_command("load_content", str(root), verbosity=0)
    return str(error.value)


def replace_with_link(path: Path, target: Path | str) -> None:
    path.unlink()
    path.symlink_to(target)


def replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def move_folder_outside(root: Path) -> None:
    folder = root / SEED_FOLDER
    outside = root.parent / "outside"
    folder.rename(outside)
    folder.symlink_to(outside, target_is_directory=True)


def link_sigma_outside(root: Path) -> None:
    replace_with_link(root / SEED_SIGMA, root / "attack.yml")


def list_sigma_twice_through_link(root: Path) -> None:
    (root / SEED_SIGMA).with_name("copy.yml").symlink_to(SEED_SIGMA.name)
    edit_document(root, SEED_FILE, lambda doc: doc["sigma_rules"].append("sigma/copy.yml"))


# Each case turns a copy of the shipped content into a hostile folder and names
# the issue line the load must report.
HOSTILE_FILE_CASES = {
    "detection_links_to_dev_zero": (
        lambda root: replace_with_link(root / SEED_FILE, "/dev/zero"),
        f"{DETECTION}: is a link to /dev/zero, which is outside",
    ),
    "detection_links_to_etc_hostname": (
        lambda root: replace_with_link(root / SEED_FILE, "/etc/hostname"),
        f"{DETECTION}: is a link to /etc/hostname, which is outside",
    ),
    "detection_is_fifo": (
        lambda root: replace_with_fifo(root / SEED_FILE),
        f"{DETECTION}: is a FIFO, not a regular file",
    ),
    "detection_is_directory": (
        lambda root: replace_with_directory(root / SEED_FILE),
        f"{DETECTION}: is a directory, not a file",
    ),
    "detection_folder_links_outside": (
        move_folder_outside,
        f"{DETECTION}: is a link to ",
    ),
    "catalogue_is_fifo": (
        lambda root: replace_with_fifo(root / "attack.yml"),
        "attack.yml: is a FIFO, not a regular file",
    ),
    "catalogue_link_is_dangling": (
        lambda root: replace_with_link(root / "attack.yml", root / "missing.yml"),
        "attack.yml: file not found",
    ),
    "sigma_links_out_of_detection_folder": (
        link_sigma_outside,
        f"{DETECTION}: sigma_rules[0]: Sigma file {SEED_SIGMA.as_posix()}: is a link to ",
    ),
    "sigma_listed_twice_through_link": (
        list_sigma_twice_through_link,
        f"{DETECTION}: sigma_rules[5]: Sigma rule id 760a8c60-5f71-4805-ada6-afde0a1bd1af "
        "is also the id of sigma_rules[0]",
    ),
    "sigma_is_fifo": (
        lambda root: replace_with_fifo(root / SEED_SIGMA),
        f"{DETECTION}: sigma_rules[0]: Sigma file {SEED_SIGMA.as_posix()}: is a FIFO",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILE_CASES))
def test_load_rejects_hostile_file(seed_detection, content_copy, case):
    make_hostile, expected = HOSTILE_FILE_CASES[case]
    make_hostile(content_copy)
    before = database_state()

    message = load_error(content_copy)

    assert expected in message
    assert "nothing was changed" in message
    assert database_state() == before


def test_load_limits_bytes_read(seed_detection, content_copy, monkeypatch):
    monkeypatch.setattr(reader, "MAX_FILE_BYTES", 1000)
    before = database_state()

    message = load_error(content_copy)

    assert f"{DETECTION}: file is larger than the limit of 1000 bytes" in message
    assert database_state() == before


def nested_aliases(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


def seed_with(root: Path, extra: str) -> None:
    path = root / SEED_FILE
    path.write_text(path.read_text() + extra)


def seed_replace(root: Path, old: str, new: str) -> None:
    path = root / SEED_FILE
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def sigma_with(root: Path, extra: str) -> None:
    path = root / SEED_SIGMA
    path.write_text(path.read_text() + extra)


# Each case writes YAML that PyYAML's safe loader accepts but that must not load.
HOSTILE_YAML_CASES = {
    "alias_bomb": (
        lambda root: seed_with(root, nested_aliases(9)),
        f"{DETECTION}: invalid YAML: YAML anchors are not allowed (found &a0)",
    ),
    "alias_without_anchor_in_list": (
        lambda root: seed_replace(root, "authors:\n- ", "authors:\n- &name "),
        f"{DETECTION}: invalid YAML: YAML anchors are not allowed (found &name)",
    ),
    "merge_key": (
        lambda root: seed_replace(root, "attack:\n- tactic:", "attack:\n- <<: {}\n  tactic:"),
        f"{DETECTION}: invalid YAML: YAML merge keys (<<) are not allowed",
    ),
    "duplicate_key": (
        lambda root: seed_with(root, "title: Another title\n"),
        f"{DETECTION}: invalid YAML: while constructing a mapping",
    ),
    "nested_duplicate_key": (
        lambda root: seed_replace(
            root, "  technique: T1560\n", "  technique: T1560\n  tactic: TA0009\n"
        ),
        "duplicate key 'tactic'",
    ),
    "deep_flow_list": (
        lambda root: seed_with(root, "extra: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        f"{DETECTION}: invalid YAML: the document is nested too deeply",
    ),
    "huge_integer": (
        lambda root: seed_replace(root, "\nversion: 1\n", "\nversion: " + "9" * 5000 + "\n"),
        f"{DETECTION}: invalid YAML: invalid value '9999",
    ),
    "impossible_date": (
        lambda root: seed_replace(root, "date_created: 2026-12-04", "date_created: 2026-02-30"),
        f"{DETECTION}: invalid YAML: invalid value '2026-02-30': day is out of range",
    ),
    "sigma_alias_bomb": (
        lambda root: sigma_with(root, nested_aliases(9)),
        f"{DETECTION}: sigma_rules[0]: {SEED_SIGMA.as_posix()}: invalid YAML: YAML anchors "
        "are not allowed",
    ),
    "sigma_duplicate_key": (
        lambda root: sigma_with(root, "level: high\n"),
        f"{DETECTION}: sigma_rules[0]: {SEED_SIGMA.as_posix()}: invalid YAML: while "
        "constructing a mapping",
    ),
    "sigma_deep_flow_list": (
        lambda root: sigma_with(root, "extra: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        f"{DETECTION}: sigma_rules[0]: {SEED_SIGMA.as_posix()}: invalid YAML: the document "
        "is nested too deeply",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML_CASES))
def test_load_rejects_hostile_yaml(seed_detection, content_copy, case):
    make_hostile, expected = HOSTILE_YAML_CASES[case]
    make_hostile(content_copy)
    before = database_state()
    started = time.monotonic()

    message = load_error(content_copy)

    assert expected in message
    assert "nothing was changed" in message
    assert time.monotonic() - started < 10
    assert database_state() == before


def test_duplicate_key_message_names_key(db, content_copy):
    seed_with(content_copy, "title: Another title\n")

    message = load_error(content_copy)

    assert "duplicate key 'title'" in message


def test_export_rejects_filename_outside_folder(seed_detection, tmp_path):
    SigmaRule.objects.filter(detection=seed_detection, position=0).update(filename="../../x.yml")
    target = tmp_path / "out"

    with pytest.raises(CommandError) as error:
        call_command("export_content", str(target), verbosity=0)

    message = str(error.value)
    assert f"detection '{SEED_SLUG}': Sigma file not exported: '../../x.yml'" in message
    assert not (tmp_path / "x.yml").exists()
    assert not target.exists()


def test_export_rejects_absolute_filename(seed_detection, tmp_path):
    target = tmp_path / "out"
    absolute = target / SEED_FOLDER / "sigma" / "x.yml"
    SigmaRule.objects.filter(detection=seed_detection, position=0).update(filename=str(absolute))

    with pytest.raises(CommandError) as error:
        call_command("export_content", str(target), verbosity=0)

    assert f"'{absolute}' is an absolute path" in str(error.value)
    assert not target.exists()


def test_export_rejects_folder_linked_outside(seed_detection, tmp_path):
    target = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "detections").mkdir(parents=True)
    (target / SEED_FOLDER).symlink_to(outside, target_is_directory=True)

    with pytest.raises(CommandError) as error:
        call_command("export_content", str(target), verbosity=0)

    assert f"outside {target / SEED_FOLDER}" in str(error.value)
    assert list(outside.iterdir()) == []
    assert not (target / "attack.yml").exists()


def test_admin_shows_sigma_filename_read_only():
    assert "filename" in admin.SigmaRuleInline.readonly_fields
