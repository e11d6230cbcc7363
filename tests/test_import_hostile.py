"""import_sigma on hostile and broken files: each fails alone, with its file and reason.

Every case is a small file written by the test. The import must report the file as
failed, store nothing of it, keep what an earlier import stored, and finish in time.
"""

import codecs
import io
import os
import stat
import uuid
import zipfile

import pytest
from django.test import override_settings

from detections.models import Detection, SigmaRule

from .import_helpers import only_failure, rule_text, run_import, write, zip_bytes
from .test_content_hostile import time_limit

ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
title: [*i,*i,*i,*i,*i,*i,*i,*i,*i]
"""


def with_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def with_title(title: str) -> str:
    return with_line(rule_text(), "title: Python Compresses Data With zlib", f"title: {title}")


def with_reference(reference: str) -> str:
    return with_line(rule_text(), "https://example.org/advisories/zlib-staging", reference)


def with_field_key(key: str) -> str:
    return with_line(rule_text(), "        Image|endswith:", f"        {key}:")


def deep_yaml(levels: int) -> str:
    return rule_text() + "custom: " + "[" * levels + "]" * levels + "\n"


def deep_condition(condition: str) -> str:
    return with_line(rule_text(), "    condition: selection\n", f"    condition: {condition}\n")


# Each case: file content and the failure it must give: a part of the reason, and the
# line, as a number or as text that first appears on that line.
HOSTILE_FILES = {
    "alias_bomb": (ALIAS_BOMB, "YAML anchors are not allowed (found &a)", 1),
    "alias_without_anchor_name": ("title: *missing\n", "YAML aliases are not allowed", 1),
    "merge_key": (
        "base: {level: high}\nother:\n    <<: {level: low}\n",
        "YAML merge keys (<<) are not allowed",
        3,
    ),
    "duplicate_key": (
        rule_text() + "level: high\n", "duplicate key 'level' in one mapping", "level: high"
    ),
    "python_tag": (
        "title: !!python/object/apply:os.system ['id']\n",
        "the YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
        1,
    ),
    "binary_tag": ("title: !!binary aGVsbG8=\n", "tag:yaml.org,2002:binary is not allowed", 1),
    "set_tag": ("title: !!set {a, b}\n", "tag:yaml.org,2002:set is not allowed", 1),
    "yaml_nesting": (deep_yaml(65), "nested more than 64 levels deep", "custom:"),
    # libyaml stops at 1,000 levels with its own message, before the reader's check.
    "yaml_nesting_recursion": (deep_yaml(5000), "nest", "custom:"),
    "condition_parentheses": (
        deep_condition("(" * 65 + "selection" + ")" * 65),
        "the condition is nested 65 levels deep",
        "condition:",
    ),
    "condition_not_chain": (
        deep_condition("not " * 300 + "selection"),
        "the condition is nested 300 levels deep",
        "condition:",
    ),
    "invalid_utf8": (
        rule_text().encode() + b"description2: caf\xe9\n",
        "the file is not valid UTF-8: byte 0xe9",
        "description2:",
    ),
    "nul_byte": (
        rule_text().encode().replace(b"Build", b"Bu\x00ild"), "contains a NUL byte", "Bu\0ild"
    ),
    "nul_escape": (
        with_line(rule_text(), "level: medium", 'level: "med\\0ium"'),
        "contains a NUL character",
        "level:",
    ),
    # libyaml rejects the escape itself; the reader's own check would name the surrogate.
    "lone_surrogate": (
        with_line(rule_text(), "level: medium", 'level: "\\ud800"'),
        "invalid Unicode character escape code",
        "level:",
    ),
    "utf16_with_bom": (codecs.BOM_UTF16_LE + rule_text().encode("utf-16-le"), "UTF-16", None),
    "utf16_without_bom": (rule_text().encode("utf-16-le"), "looks like UTF-16", None),
    "utf32": (codecs.BOM_UTF32_LE + rule_text().encode("utf-32-le"), "UTF-32", None),
    "top_level_list": ("- title: a\n- title: b\n", "must be a YAML mapping, not a list", 1),
    "top_level_string": ("just text\n", "must be a YAML mapping, not a str", 1),
    "empty_file": ("", "the file is empty", None),
    "comments_only": ("# nothing here\n", "the file is empty", None),
    "empty_documents": ("---\n---\n", "the file is empty", None),
    "title_line_break": (
        with_title('"Two\\nLines"'),
        "the title contains the control character U+000A",
        1,
    ),
    "title_control_character": (
        with_title('"Bell\\a"'),
        "the title contains the control character U+0007",
        1,
    ),
    "title_bidi_override": (
        with_title('"Safe \u202egpj.exe"'),
        "U+202E",
        1,
    ),
    "javascript_reference": (
        with_reference("javascript:alert(document.domain)"),
        "uses the javascript: scheme",
        "javascript:",
    ),
    "javascript_reference_obfuscated": (
        with_reference('" JaVa\\tScRiPt:alert(1)"'),
        "uses the javascript: scheme",
        "JaVa",
    ),
    "data_reference": (
        with_reference("data:text/html,<script>x</script>"),
        "uses the data: scheme",
        "data:",
    ),
    "spl_injection_field": (
        with_field_key("'a\"=* OR index=* OR \"b|endswith'"),
        "field name 'a\"=* OR index=* OR \"b' has characters other than",
        "index=*",
    ),
    "field_with_space": (
        with_field_key("'Image OR 1|endswith'"),
        "field name 'Image OR 1'",
        "Image OR 1",
    ),
    "modifier_injection": (
        with_field_key("'Image|endswith\" OR \"'"),
        "is not a modifier name",
        "Image|endswith\"",
    ),
    "fields_list_injection": (
        rule_text() + "fields:\n    - 'CommandLine\" | delete'\n",
        "field name 'CommandLine\" | delete'",
        "| delete",
    ),
    "collection_action": ("action: global\ntitle: t\n---\n" + rule_text(), "collection actions", 1),
    "invalid_status": (
        with_line(rule_text(), "status: test", "status: production"), "invalid Sigma rule", 3
    ),
    "missing_detection": (rule_text().split("detection:")[0], "must have a detection", 1),
    "unknown_identifier": (
        deep_condition("selection and not filter"), "'filter' not defined", "condition:"
    ),
    "unmatched_selector": (
        deep_condition("selection and not 1 of filter_*"),
        "'1 of filter_*' matches no detection identifier",
        "condition:",
    ),
    "pipe_aggregation": (
        deep_condition("selection | count() by ComputerName > 10"),
        "pipe syntax in Sigma conditions has been deprecated",
        "condition:",
    ),
    # Found in SigmaHQ's unsupported/ folder: proximity searches that pySigma never parsed.
    "near_operator": (
        deep_condition("selection | near filter"),
        "invalid condition",
        "condition:",
    ),
    "missing_id": (with_line(rule_text(), "id: ", "# id: "), "has no 'id'", 1),
    "id_not_uuid": (with_line(rule_text(), "id: ", "id: not-a-uuid # "), "invalid Sigma rule", 2),
    "title_too_long": (
        with_title("x" * 301),
        "invalid Sigma rule",
        1,
    ),
    "invalid_yaml": ("title: [unclosed\n", "invalid YAML", 2),
}


@pytest.fixture
def stored_rule(db, tmp_path):
    """One rule imported before the hostile file, which must survive the hostile import."""
    rule_id = str(uuid.uuid4())
    folder = tmp_path / "earlier"
    write(folder, "earlier.yml", rule_text(rule_id=rule_id, title="Imported Earlier"))
    run_import("import_sigma", folder)
    return rule_id


def line_number(content: str | bytes, line: int | str | None) -> int | None:
    if not isinstance(line, str):
        return line
    text = content.decode("latin-1") if isinstance(content, bytes) else content
    return text[: text.index(line)].count("\n") + 1


def assert_nothing_new(stored_rule: str) -> None:
    assert list(Detection.objects.values_list("uuid", flat=True)) == [uuid.UUID(stored_rule)]
    assert SigmaRule.objects.count() == 1
    assert Detection.objects.get().title == "Imported Earlier"


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_file_fails_alone(stored_rule, tmp_path, case):
    content, reason, line = HOSTILE_FILES[case]
    path = write(tmp_path / "hostile", f"{case}.yml", content)

    with time_limit(20):
        summary = run_import("import_sigma", path, expect_failure=True)

    failure = only_failure(summary)
    assert failure["file"] == str(path)
    assert reason in failure["reason"]
    assert failure.get("line") == line_number(content, line)
    assert summary["created"] == 0
    assert_nothing_new(stored_rule)


def test_file_over_default_limit(stored_rule, tmp_path):
    padding = "# " + "x" * 1000 + "\n"
    content = rule_text() + padding * (1024 * 1024 // len(padding) + 1)
    path = write(tmp_path, "large.yml", content)

    summary = run_import("import_sigma", path, expect_failure=True)

    assert only_failure(summary)["reason"] == "file is larger than the limit of 1048576 bytes"
    assert_nothing_new(stored_rule)


@override_settings(IMPORT_MAX_VALUES=100)
def test_too_many_values_in_field(stored_rule, tmp_path):
    values = "".join(f"            - 'value{index}'\n" for index in range(101))
    old = "        CommandLine|contains: 'zlib.compress'\n"
    content = with_line(rule_text(), old, f"        CommandLine|contains:\n{values}")
    path = write(tmp_path, "many.yml", content)

    summary = run_import("import_sigma", path, expect_failure=True)

    failure = only_failure(summary)
    assert failure["reason"] == "a list has more than 100 entries; the limit is 100"
    assert failure["line"] == line_number(content, "'value100'")
    assert_nothing_new(stored_rule)


@override_settings(IMPORT_MAX_NESTING=10000)
def test_recursion_error_from_pysigma_caught(stored_rule, tmp_path):
    path = write(tmp_path, "nots.yml", deep_condition("not " * 3000 + "selection"))

    with time_limit(60):
        summary = run_import("import_sigma", path, expect_failure=True)

    assert "nested too deeply" in only_failure(summary)["reason"]
    assert_nothing_new(stored_rule)


def test_duplicate_ids_fail_both_files(stored_rule, tmp_path):
    rule_id = str(uuid.uuid4())
    write(tmp_path / "dup", "one.yml", rule_text(rule_id=rule_id, title="One"))
    write(tmp_path / "dup", "two.yml", rule_text(rule_id=rule_id, title="Two"))

    summary = run_import("import_sigma", tmp_path / "dup", expect_failure=True)

    files = sorted(failure["file"] for failure in summary["failed"])
    assert files == ["dup/one.yml", "dup/two.yml"]
    assert all(rule_id in failure["reason"] for failure in summary["failed"])
    assert_nothing_new(stored_rule)


def test_duplicate_of_unchanged_file(stored_rule, tmp_path):
    write(tmp_path / "again", "earlier.yml", (tmp_path / "earlier" / "earlier.yml").read_text())
    write(tmp_path / "again", "copy.yml", rule_text(rule_id=stored_rule, title="Copy"))

    summary = run_import("import_sigma", tmp_path / "again", expect_failure=True)

    assert len(summary["failed"]) == 2
    assert summary["unchanged"] == 0
    assert_nothing_new(stored_rule)


def test_broken_update_keeps_stored_rule(stored_rule, tmp_path):
    path = tmp_path / "earlier" / "earlier.yml"
    path.write_text(with_line(path.read_text(), "status: test", "status: production"))

    summary = run_import("import_sigma", path, expect_failure=True)

    assert "invalid Sigma rule" in only_failure(summary)["reason"]
    detection = Detection.objects.get()
    assert detection.version == 1
    assert "status: test" in detection.sigma_rules.get().yaml_text


def test_rule_id_of_authored_detection(seed_detection, tmp_path):
    authored_rule_id = str(seed_detection.sigma_rules.first().rule_id)
    path = write(tmp_path, "steal.yml", rule_text(rule_id=authored_rule_id))

    summary = run_import("import_sigma", path, expect_failure=True)

    failure = only_failure(summary)
    expected = "belongs to a Sigma rule of the detection 'archive-via-library-splunk'"
    assert expected in failure["reason"]
    assert failure["line"] == 2
    assert seed_detection.sigma_rules.get(rule_id=authored_rule_id).yaml_text != rule_text(
        rule_id=authored_rule_id
    )


def test_uuid_of_authored_detection(seed_detection, tmp_path):
    path = write(tmp_path, "steal.yml", rule_text(rule_id=str(seed_detection.uuid)))

    summary = run_import("import_sigma", path, expect_failure=True)

    expected = "is the UUID of the detection 'archive-via-library-splunk'"
    assert expected in only_failure(summary)["reason"]


def test_link_outside_folder_rejected(stored_rule, tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "passwd.yml").symlink_to("/etc/passwd")

    summary = run_import("import_sigma", folder, expect_failure=True)

    assert "is a link to /etc/passwd, which is outside" in only_failure(summary)["reason"]


def test_fifo_rejected(stored_rule, tmp_path):
    folder = tmp_path / "fifo"
    folder.mkdir()
    os.mkfifo(folder / "pipe.yml")

    with time_limit(10):
        summary = run_import("import_sigma", folder, expect_failure=True)

    assert "is a FIFO, not a regular file" in only_failure(summary)["reason"]


# --- ZIP archives -------------------------------------------------------------------


def zip_with_entry(info: zipfile.ZipInfo, content: bytes, *extra: tuple[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, content)
        for name, text in extra:
            archive.writestr(name, text)
    return buffer.getvalue()


def symlink_entry(name: str, target: str) -> bytes:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with_entry(info, target.encode(), ("good.yml", rule_text()))


def with_good_rule(name: str, content: str | bytes) -> bytes:
    """Build a ZIP with the entry under test and one valid rule, which must still import."""
    return zip_bytes({name: content, "good.yml": rule_text()})


INNER_ZIP = zip_bytes({"a.yml": rule_text()})
GZIP_START = b"\x1f\x8b\x08\x00" + b"\x00" * 20
NESTED = "is an archive inside the archive; nested archives are not read"

ZIP_ENTRY_CASES = {
    "absolute_path": (with_good_rule("/etc/cron.d/rule.yml", rule_text()), "has an absolute path"),
    "drive_letter_path": (with_good_rule("C:/rules/rule.yml", rule_text()), "has an absolute path"),
    "parent_path": (with_good_rule("rules/../../escape.yml", rule_text()), "has '..' in its path"),
    "backslash_path": (with_good_rule("..\\escape.yml", rule_text()), "has a backslash"),
    "symlink": (symlink_entry("link.yml", "/etc/passwd"), "is a symbolic link"),
    "nested_zip": (with_good_rule("inner.zip", INNER_ZIP), NESTED),
    "nested_gzip_named_yml": (with_good_rule("hidden.yml", GZIP_START), NESTED),
    "nested_zip_named_yml": (with_good_rule("hidden.yml", INNER_ZIP), NESTED),
}


@pytest.mark.parametrize("case", list(ZIP_ENTRY_CASES))
def test_zip_entry_fails_alone(stored_rule, tmp_path, case):
    data, reason = ZIP_ENTRY_CASES[case]
    archive = write(tmp_path, "upload.zip", data)

    summary = run_import("import_sigma", archive, expect_failure=True)

    failure = only_failure(summary)
    assert failure["file"].startswith(f"{archive}:")
    assert reason in failure["reason"]
    assert summary["created"] == 1


@override_settings(IMPORT_MAX_ARCHIVE_ENTRIES=3)
def test_zip_too_many_entries(stored_rule, tmp_path):
    entries = {f"r{index}.yml": rule_text() for index in range(4)}
    archive = write(tmp_path, "many.zip", zip_bytes(entries))

    summary = run_import("import_sigma", archive, expect_failure=True)

    assert only_failure(summary) == {
        "file": str(archive),
        "reason": "the archive has 4 entries; the limit is 3, so none was read",
    }
    assert_nothing_new(stored_rule)


def test_zip_bomb_declared_size(stored_rule, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(3):
            archive.writestr(f"zeros{index}.yml", b"\0" * (100 * 1024 * 1024))
    archive_path = write(tmp_path, "bomb.zip", buffer.getvalue())
    assert archive_path.stat().st_size < 1024 * 1024

    with time_limit(30):
        summary = run_import("import_sigma", archive_path, expect_failure=True)

    failure = only_failure(summary)
    assert failure["reason"].startswith("the archive holds 314572800 bytes once uncompressed")
    assert_nothing_new(stored_rule)


@override_settings(IMPORT_MAX_ARCHIVE_BYTES=20 * 1024 * 1024)
def test_zip_entry_over_file_limit(stored_rule, tmp_path):
    archive = write(tmp_path, "big.zip", zip_bytes({"big.yml": b"#" * (2 * 1024 * 1024)}))

    summary = run_import("import_sigma", archive, expect_failure=True)

    assert only_failure(summary)["reason"] == "file is larger than the limit of 1048576 bytes"


def test_zip_with_false_sizes(stored_rule, tmp_path):
    """An entry whose directory record claims fewer bytes than it contains is cut at the limit."""
    content = b"#" * (2 * 1024 * 1024)
    data = bytearray(zip_bytes({"liar.yml": content}))
    real_size = len(content).to_bytes(4, "little")
    # Rewrite the uncompressed size in the local header and the central directory.
    data = bytes(data).replace(real_size, (100).to_bytes(4, "little"))
    archive = write(tmp_path, "liar.zip", data)

    with time_limit(20):
        summary = run_import("import_sigma", archive, expect_failure=True)

    reason = only_failure(summary)["reason"]
    assert "larger than the limit" in reason or "cannot be read from the archive" in reason
    assert_nothing_new(stored_rule)


def test_not_a_zip(stored_rule, tmp_path):
    archive = write(tmp_path, "fake.zip", b"this is not an archive")

    summary = run_import("import_sigma", archive, expect_failure=True)

    assert only_failure(summary)["reason"].startswith("not a readable ZIP archive")
