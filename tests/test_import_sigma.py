"""import_sigma on well-formed input: what each rule becomes, re-imports, correlations."""

import io
import uuid

import pytest
from django.core.management import call_command
from django.test import override_settings

from detections.importers.sigma_checks import condition_depth
from detections.importers.sigma_store import rule_filename, slug_from_title, split_authors
from detections.models import Detection, Render, SigmaRule

from .conftest import CONTENT_DIR
from .import_helpers import rule_text, run_import, write, zip_bytes


@pytest.fixture
def catalogue(db):
    """The shipped ATT&CK subset and detection: TA0009, T1560 and its sub-techniques."""
    call_command("load_content", str(CONTENT_DIR), verbosity=0)


def test_rule_becomes_detection(catalogue, tmp_path):
    rule_id = str(uuid.uuid4())
    name = "windows/proc_creation_win_python_zlib.yml"
    write(tmp_path / "rules", name, rule_text(rule_id=rule_id))

    summary = run_import("import_sigma", tmp_path / "rules")

    assert summary == {"created": 1, "updated": 0, "unchanged": 0, "failed": [], "warnings": []}
    detection = Detection.objects.get(uuid=rule_id)
    assert detection.slug == "python-compresses-data-with-zlib"
    assert detection.title == "Python Compresses Data With zlib"
    assert detection.origin == Detection.Origin.SIGMA
    assert detection.status == Detection.Status.DRAFT
    assert detection.sigma_status == "test"
    assert detection.severity == "medium"
    assert detection.confidence == "medium"
    assert detection.platform == "Sigma"
    assert detection.authors == ["Ann Analyst", "Bob Builder"]
    assert detection.references == ["https://example.org/advisories/zlib-staging"]
    assert str(detection.date_created) == "2026-01-02"
    assert str(detection.date_modified) == "2026-02-03"
    assert detection.source_path == "rules/windows/proc_creation_win_python_zlib.yml"
    assert detection.version == 1
    assert detection.attack_ids == ["T1560", "T1560.002"]
    assert detection.mappings.get().tactic.attack_id == "TA0009"
    source = detection.data_sources.get()
    assert source.component.attack_id == "DC0032"
    assert source.log_source == "windows / process_creation"
    assert list(detection.false_positives.values_list("description", flat=True)) == [
        "Build servers packing release archives"
    ]


def test_rule_yaml_stored_as_written(catalogue, tmp_path):
    text = "# kept comment\n" + rule_text()
    path = write(tmp_path, "rule.yml", text)

    run_import("import_sigma", path)

    rule = SigmaRule.objects.get(detection__origin=Detection.Origin.SIGMA)
    assert rule.yaml_text == text
    assert rule.filename == "sigma/rule.yml"
    assert rule.kind == SigmaRule.Kind.RULE


def test_unknown_attack_ids_reported(catalogue, tmp_path):
    extra_tags = "    - attack.t1059.001\n    - attack.stealth\n"
    text = rule_text().replace("    - attack.t1560.002\n", "    - attack.t1560.002\n" + extra_tags)
    write(tmp_path, "rule.yml", text)

    summary = run_import("import_sigma", tmp_path)

    messages = {(item["message"], item["line"]) for item in summary["warnings"]}
    assert ("T1059.001 is not in the ATT&CK catalogue; not mapped", 13) in messages
    unknown_tactic = "tag attack.stealth names no tactic in the ATT&CK catalogue; not mapped"
    assert (unknown_tactic, 14) in messages
    detection = Detection.objects.get(origin=Detection.Origin.SIGMA)
    assert detection.attack_ids == ["T1560", "T1560.002"]
    stored_messages = detection.sigma_rules.get().messages
    assert "T1059.001 is not in the ATT&CK catalogue; not mapped" in stored_messages


def test_reimport_unchanged_skips(catalogue, tmp_path):
    write(tmp_path, "rule.yml", rule_text())
    run_import("import_sigma", tmp_path)
    renders = Render.objects.count()

    summary = run_import("import_sigma", tmp_path)

    assert summary["unchanged"] == 1
    assert summary["created"] == 0
    assert summary["updated"] == 0
    assert Render.objects.count() == renders


def test_reimport_changed_keeps_local_fields(catalogue, tmp_path):
    rule_id = str(uuid.uuid4())
    path = write(tmp_path, "rule.yml", rule_text(rule_id=rule_id))
    run_import("import_sigma", path)
    detection = Detection.objects.get(uuid=rule_id)
    detection.status = Detection.Status.PUBLISHED
    detection.tuning_notes = "Exclude the nightly build host."
    detection.save()
    slug = detection.slug
    write(tmp_path, "rule.yml", rule_text(rule_id=rule_id, title="Retitled Upstream", level="high"))

    summary = run_import("import_sigma", path)

    assert summary["updated"] == 1
    detection.refresh_from_db()
    assert detection.version == 2
    assert detection.title == "Retitled Upstream"
    assert detection.severity == "high"
    assert detection.slug == slug
    assert detection.status == Detection.Status.PUBLISHED
    assert detection.tuning_notes == "Exclude the nightly build host."
    assert detection.mappings.count() == 1
    assert detection.false_positives.count() == 1


def test_renders_queued_for_changed_only(catalogue, tmp_path):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    write(tmp_path, "a.yml", rule_text(rule_id=first, title="Rule A"))
    write(tmp_path, "b.yml", rule_text(rule_id=second, title="Rule B"))
    run_import("import_sigma", tmp_path)
    imported = Render.objects.filter(sigma_rule__rule_id__in=[first, second])
    imported.update(status=Render.Status.RENDERED)
    write(tmp_path, "b.yml", rule_text(rule_id=second, title="Rule B v2"))

    run_import("import_sigma", tmp_path)

    queued = Render.objects.filter(
        status=Render.Status.QUEUED, sigma_rule__detection__origin=Detection.Origin.SIGMA
    )
    assert set(queued.values_list("sigma_rule__rule_id", flat=True)) == {uuid.UUID(second)}


def test_retitled_rule_keeps_slug_and_new_gets_suffix(catalogue, tmp_path):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    write(tmp_path, "a.yml", rule_text(rule_id=first, title="Same Title"))
    write(tmp_path, "b.yml", rule_text(rule_id=second, title="Same Title"))

    run_import("import_sigma", tmp_path)

    slugs = {str(d.uuid): d.slug for d in Detection.objects.filter(origin=Detection.Origin.SIGMA)}
    assert slugs[first] == "same-title"
    assert slugs[second] == f"same-title-{second.replace('-', '')[:8]}"


@pytest.mark.parametrize(
    ("sigma_status", "expected"),
    [("stable", "draft"), ("deprecated", "deprecated"), ("unsupported", "deprecated")],
)
def test_initial_workflow_status(catalogue, tmp_path, sigma_status, expected):
    write(tmp_path, "rule.yml", rule_text(status=sigma_status))

    run_import("import_sigma", tmp_path)

    assert Detection.objects.get(origin=Detection.Origin.SIGMA).status == expected


def test_status_option_publishes(catalogue, tmp_path):
    write(tmp_path, "rule.yml", rule_text())

    run_import("import_sigma", tmp_path, status="published")

    assert Detection.objects.get(origin=Detection.Origin.SIGMA).status == "published"


def test_html_in_description_stored_as_written(catalogue, tmp_path, admin_client):
    payload = "'<script>alert(1)</script><img src=x onerror=alert(2)>'"
    write(tmp_path, "rule.yml", rule_text(description=payload))

    run_import("import_sigma", tmp_path)

    detection = Detection.objects.get(origin=Detection.Origin.SIGMA)
    assert detection.description == "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page = admin_client.get(detection.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in page
    assert "onerror=alert(2)>" not in page


def test_plain_text_references_kept(catalogue, tmp_path):
    """SigmaHQ writes some references as text; a URL after a space is not a scheme."""
    references = [
        "Internal Research",
        "malware analyse https://www.joesandbox.com/analysis/514608/0/html",
        "sha256=01a461ad68d11b5b5096f45eb54df9ba62c5af413fa9eb544eacb598373a26bc",
    ]
    listed = "".join(f"    - '{reference}'\n" for reference in references)
    text = rule_text().replace("    - https://example.org/advisories/zlib-staging\n", listed)
    write(tmp_path, "rule.yml", text)

    run_import("import_sigma", tmp_path)

    assert Detection.objects.get(origin=Detection.Origin.SIGMA).references == references


def test_zip_archive_imports_entries(catalogue, tmp_path):
    archive = tmp_path / "rules.zip"
    archive.write_bytes(
        zip_bytes({"rules/a.yml": rule_text(title="Rule A"), "README.md": "not a rule"})
    )

    summary = run_import("import_sigma", archive)

    assert summary["created"] == 1
    assert Detection.objects.get(origin=Detection.Origin.SIGMA).source_path == "rules/a.yml"


def test_bad_file_does_not_stop_others(catalogue, tmp_path):
    write(tmp_path, "a_bad.yml", "title: [unclosed\n")
    write(tmp_path, "b_good.yml", rule_text())

    summary = run_import("import_sigma", tmp_path, expect_failure=True)

    assert summary["created"] == 1
    assert summary["failed"][0]["file"] == f"{tmp_path.name}/a_bad.yml"


def test_text_summary_lists_failures(catalogue, tmp_path):
    write(tmp_path, "bad.yml", "- a list\n")
    stdout = io.StringIO()

    with pytest.raises(Exception) as error:
        call_command("import_sigma", str(tmp_path), stdout=stdout, stderr=io.StringIO())

    assert error.value.returncode == 1
    output = stdout.getvalue()
    assert "created: 0, updated: 0, unchanged: 0, failed: 1" in output
    reason = "a Sigma rule must be a YAML mapping, not a list"
    assert f"failed: {tmp_path.name}/bad.yml:1: {reason}" in output


def test_force_applies_new_catalogue(db, tmp_path):
    write(tmp_path, "rule.yml", rule_text())
    run_import("import_sigma", tmp_path)
    assert Detection.objects.get(origin=Detection.Origin.SIGMA).mappings.count() == 0
    call_command("load_content", str(CONTENT_DIR), verbosity=0)

    plain = run_import("import_sigma", tmp_path)
    forced = run_import("import_sigma", tmp_path, force=True)

    assert plain["unchanged"] == 1
    assert forced["unchanged"] == 1
    detection = Detection.objects.get(origin=Detection.Origin.SIGMA)
    assert detection.attack_ids == ["T1560", "T1560.002"]
    assert detection.version == 1


CORRELATION = """\
title: Many zlib Compressions From One Host
id: {correlation_id}
status: test
correlation:
    type: event_count
    rules:
        - python_zlib
        - {base_id}
        - missing_rule_name
    group-by:
        - ComputerName
    timespan: 1h
    condition:
        gte: 10
level: high
"""

FILTER = """\
title: Ignore Build Servers
id: {filter_id}
status: test
logsource:
    category: process_creation
    product: windows
filter:
    rules:
        - {base_id}
    selection:
        ComputerName|startswith: 'BUILD-'
    condition: not selection
"""


def test_correlation_and_filter_linked(catalogue, tmp_path):
    base_id, named_id = str(uuid.uuid4()), str(uuid.uuid4())
    correlation_id, filter_id = str(uuid.uuid4()), str(uuid.uuid4())
    write(tmp_path, "base.yml", rule_text(rule_id=base_id, title="Base Rule"))
    named = rule_text(rule_id=named_id, title="Named Rule")
    named = named.replace("status:", "name: python_zlib\nstatus:", 1)
    write(tmp_path, "named.yml", named)
    correlation_text = CORRELATION.format(correlation_id=correlation_id, base_id=base_id)
    write(tmp_path, "correlation.yml", correlation_text)
    write(tmp_path, "filter.yml", FILTER.format(filter_id=filter_id, base_id=base_id))

    summary = run_import("import_sigma", tmp_path)

    assert summary["created"] == 4
    correlation = SigmaRule.objects.get(rule_id=correlation_id)
    assert correlation.kind == SigmaRule.Kind.CORRELATION
    linked = set(correlation.referenced_rules.values_list("rule_id", flat=True))
    assert linked == {uuid.UUID(base_id), uuid.UUID(named_id)}
    sigma_filter = SigmaRule.objects.get(rule_id=filter_id)
    assert sigma_filter.kind == SigmaRule.Kind.FILTER
    filtered = list(sigma_filter.referenced_rules.values_list("rule_id", flat=True))
    assert filtered == [uuid.UUID(base_id)]
    unresolved = [item for item in summary["warnings"] if "missing_rule_name" in item["message"]]
    assert len(unresolved) == 1
    assert not Render.objects.filter(sigma_rule__in=[correlation, sigma_filter]).exists()


def test_correlation_before_its_rules(catalogue, tmp_path):
    base_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    correlation_text = CORRELATION.format(correlation_id=correlation_id, base_id=base_id)
    write(tmp_path / "first", "correlation.yml", correlation_text)
    run_import("import_sigma", tmp_path / "first")
    write(tmp_path / "second", "base.yml", rule_text(rule_id=base_id))

    run_import("import_sigma", tmp_path / "second")

    correlation = SigmaRule.objects.get(rule_id=correlation_id)
    linked = list(correlation.referenced_rules.values_list("rule_id", flat=True))
    assert linked == [uuid.UUID(base_id)]


def test_multi_document_file_each_rule(catalogue, tmp_path):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    first_text = rule_text(rule_id=first, title="First")
    second_text = rule_text(rule_id=second, title="Second")
    write(tmp_path, "pair.yml", first_text + "---\n" + second_text)

    summary = run_import("import_sigma", tmp_path)

    assert summary["created"] == 2
    stored = SigmaRule.objects.filter(rule_id__in=[first, second])
    rules = {str(rule.rule_id): rule for rule in stored}
    assert rules[first].yaml_text == first_text
    assert rules[second].yaml_text == second_text
    assert rules[second].filename == "sigma/pair-2.yml"


@override_settings(IMPORT_CHUNK_SIZE=2)
def test_chunks_cover_every_file(catalogue, tmp_path):
    for index in range(5):
        write(tmp_path, f"rule{index}.yml", rule_text(title=f"Rule {index}"))

    summary = run_import("import_sigma", tmp_path)

    assert summary["created"] == 5
    assert Detection.objects.filter(origin=Detection.Origin.SIGMA).count() == 5


@pytest.mark.parametrize(
    ("condition", "depth"),
    [
        ("selection", 0),
        ("selection and not filter", 1),
        ("not not not selection", 3),
        ("((a or b) and not (c))", 3),
        ("not (not (a))", 4),
        ("1 of selection_* and not 1 of filter_*", 1),
    ],
)
def test_condition_depth(condition, depth):
    assert condition_depth(condition) == depth


@pytest.mark.parametrize(
    ("path", "index", "expected"),
    [
        ("rules/windows/proc_creation_win_x.yml", 0, "sigma/proc_creation_win_x.yml"),
        ("a b/ünïcode rule.yaml", 0, "sigma/_n_code_rule.yml"),
        ("pair.yml", 2, "sigma/pair-3.yml"),
        ("..yml", 0, "sigma/rule.yml"),
    ],
)
def test_rule_filename(path, index, expected):
    assert rule_filename(path, index) == expected


def test_slug_from_title():
    slug = slug_from_title("Suspicious  PowerShell_Download -- Cradle")
    assert slug == "suspicious-powershell-download-cradle"
    assert slug_from_title("中文标题") == "sigma-rule"
    assert len(slug_from_title("x" * 300)) == 80


def test_split_authors():
    assert split_authors("Florian Roth (Nextron Systems), Markus Neis") == [
        "Florian Roth (Nextron Systems)",
        "Markus Neis",
    ]
    assert split_authors("") == []
