"""Tuning entries: validation, the Splunk filter macro, Sigma filters, renders and runs."""

import datetime
import shutil
import uuid

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from detections.models import Detection, Query, Render, SigmaRule, TuningEntry, ValidationRun
from detections.pysigma.convert import render_targets, target_versions
from detections.pysigma.embedded import compile_rule
from detections.pysigma.rules import convert_to_splunk
from detections.pysigma.tuning import splunk_expression
from detections.rendering import render_input_hash, renders_schedule
from detections.tuning import (
    condition_lines,
    detection_macro,
    filter_files,
    filters_by_rule,
    macro_name,
    pipe_positions,
    tuned_spl,
)
from detections.validation.embedded import run_rules
from detections.validation.runs import validation_execute, validation_request

from .conftest import CONTENT_DIR, SEED_SLUG
from .import_helpers import rule_text, run_import, write

SYSMON = "Microsoft-Windows-Sysmon/Operational"
PYTHON_BRANCH_RULE = "ab7116e8-ec2f-4e7f-a339-c6ba361c529b"
DLL_RULE = "760a8c60-5f71-4805-ada6-afde0a1bd1af"
AUDITD_RULE_FILE = "sigma/linux_python_compression_auditd.yml"
CONDA_TEST = "Conda Install Loads zlib.dll from the Environment Library Folder"
FIRST_ATTACK_TEST = "Python zlib Compression of Sensitive File Collection"


def new_entry(detection, condition, **fields) -> TuningEntry:
    values = {"reason": "Benign in this estate.", "owner": "SOC Tuning"} | fields
    return TuningEntry(detection=detection, condition=condition, **values)


def run_embedded(detection) -> ValidationRun:
    run = validation_request(detection, enqueue=False)
    return validation_execute(run.pk, task_id="test")


# Model validation


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Image|endwith": "\\pip.exe"}, "Unknown modifier 'endwith'"),
        ({}, "the condition is empty"),
        ({"Image": ""}, "has an empty value ''"),
        ({"Image": None}, "has an empty value (null)"),
        ({"Image|endswith": []}, "has an empty list"),
        ({"Image": "*"}, "matches every value of the field"),
        ({"Image|contains": "*"}, "matches every value of the field"),
        ({"Image": "pip?.exe"}, "single-character wildcard '?'"),
        ({"Image": "a\\*b"}, "escaped '*'"),
        (
            {"Image": "C:\\Tools\\*\\agent.exe"},
            "Write \\\\* for a backslash followed by a wildcard",
        ),
        ({"Image|re": "pip[0-9]?\\.exe"}, "uses the re modifier"),
        ({"Image name": "pip.exe"}, "the field name 'Image name'"),
        ({"Image": {"nested": "map"}}, "of type dict"),
        (["Image", "pip.exe"], "must be a mapping"),
    ],
)
def test_entry_rejects_bad_condition(seed_detection, condition, expected):
    before = TuningEntry.objects.count()

    with pytest.raises(ValidationError) as error:
        new_entry(seed_detection, condition).save()

    assert any(expected in message for message in error.value.messages), error.value.messages
    assert TuningEntry.objects.count() == before


def test_entry_message_names_value_and_fix(seed_detection):
    with pytest.raises(ValidationError) as error:
        new_entry(seed_detection, {"Image|endwith": "\\pip.exe"}).save()

    message = error.value.messages[0]
    assert "Image|endwith: '\\\\pip.exe'" in message
    assert "use Sigma modifiers such as contains, startswith, endswith" in message


def test_invalid_update_keeps_stored_entry(seed_detection):
    entry = new_entry(seed_detection, {"Image|endswith": "\\pip.exe"})
    entry.save()

    entry.condition = {"Image|endswith": ""}
    with pytest.raises(ValidationError):
        entry.save()

    entry.refresh_from_db()
    assert entry.condition == {"Image|endswith": "\\pip.exe"}
    assert entry.spl == 'Image="*\\\\pip.exe"'


def test_entry_rejects_unknown_branch_and_rule(seed_detection):
    entry = new_entry(
        seed_detection,
        {"Image|endswith": "\\pip.exe"},
        branches=["NoSuchBranch"],
        rules=["00000000-0000-4000-8000-000000000000"],
    )

    with pytest.raises(ValidationError) as error:
        entry.save()

    messages = " ".join(error.value.messages)
    assert "'NoSuchBranch' is not a branch" in messages
    assert "CompressionDllLoad" in messages
    assert "is not the id of a Sigma rule of this detection" in messages


def test_entry_requires_reason_and_owner(seed_detection):
    entry = new_entry(seed_detection, {"Image|endswith": "\\pip.exe"}, reason=" ", owner="")

    with pytest.raises(ValidationError) as error:
        entry.save()

    assert "reason: say why the excluded events are benign" in error.value.messages
    assert "owner: name the team or person who owns the entry" in error.value.messages


# The Splunk filter macro


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Archive via Library", "archive_via_library_filter"),
        ("Detect Archive via Library in Splunk", "detect_archive_via_library_in_splunk_filter"),
        ("T1560.002 - Zip/Tar", "t1560_002___zip_tar_filter"),
    ],
)
def test_macro_name_follows_security_content(title, expected):
    assert macro_name(Detection(title=title)) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Image|endswith": "\\pip.exe"}, 'Image="*\\\\pip.exe"'),
        ({"User": "CORP\\svc_etl"}, 'User="CORP\\\\svc_etl"'),
        ({"CommandLine|contains": 'say "hi"'}, 'CommandLine="*say \\"hi\\"*"'),
        # Sigma reads \\* as a backslash followed by a wildcard.
        ({"Image": "C:\\Tools\\\\*\\agent.exe"}, 'Image="C:\\\\Tools\\\\*\\\\agent.exe"'),
        (
            {"Image|endswith": ["\\pip.exe", "\\pip3.exe"]},
            'Image IN ("*\\\\pip.exe", "*\\\\pip3.exe")',
        ),
        (
            {"CommandLine|contains|all": ["-m", "pip"]},
            'CommandLine="*-m*" CommandLine="*pip*"',
        ),
    ],
)
def test_spl_expression_escaping(condition, expected):
    assert splunk_expression(condition) == expected


def test_macro_without_entries_is_search_star(seed_detection):
    seed_detection.tuning_entries.all().delete()
    query = seed_detection.queries.get()

    macro = detection_macro(seed_detection)

    assert macro.definition == "search *"
    assert macro.stanza == (
        "[detect_archive_via_library_in_splunk_filter]\ndefinition = search *\niseval = 0\n"
    )
    assert tuned_spl(query, macro) == query.text


def test_macro_scopes_branch_entries(seed_detection):
    macro = detection_macro(seed_detection)

    assert macro.definition.startswith(
        'search NOT ((DetectionSource="StagedCompressedFileCreation" '
        'Image="C:\\\\Program Files\\\\Python311\\\\python.exe" '
    )
    assert macro.definition.count('DetectionSource="CompressionDllLoad"') == 3
    assert macro.skipped == []
    assert macro.scoped is True


def test_tuned_spl_after_branch_field(seed_detection):
    query = seed_detection.queries.get()

    text = tuned_spl(query, detection_macro(seed_detection))

    call = "| `detect_archive_via_library_in_splunk_filter`\n"
    assert text.replace(call, "") == query.text
    # After the branch field is set and before the raw fields are renamed or dropped.
    assert text.index("| eval DetectionSource=case(") < text.index(call)
    assert text.index(call) < text.index('| eval ProcessPath=coalesce(Image, "")')
    assert seed_detection.queries.get().text == query.text


def test_tuned_spl_unscoped_after_base_search(seed_detection):
    seed_detection.tuning_entries.all().delete()
    new_entry(seed_detection, {"Image|endswith": "\\pip.exe"}).save()
    query = seed_detection.queries.get()

    text = tuned_spl(query, detection_macro(seed_detection), expand=True)

    base_end = pipe_positions(query.text)[0]
    assert text[:base_end] == query.text[:base_end]
    expected = '| search NOT ((Image="*\\\\pip.exe"))\n| eval DetectionSource'
    assert text[base_end:].startswith(expected)


def test_tuned_spl_without_pipe_appends(seed_detection):
    seed_detection.tuning_entries.all().delete()
    new_entry(seed_detection, {"Image|endswith": "\\pip.exe"}).save()
    query = Query(detection=seed_detection, language="SPL", text='index=main Image="a|b"\n')

    text = tuned_spl(query, detection_macro(seed_detection))

    assert text == 'index=main Image="a|b"\n| `detect_archive_via_library_in_splunk_filter`\n'


def test_pipe_positions_skip_quotes_macros_subsearches():
    spl = 'index=x a="1|2" `m(a|b)` [search b | head 1] | stats count'

    assert pipe_positions(spl) == [spl.rindex("|")]


def test_rule_only_entry_skipped_in_macro(seed_detection):
    auditd = seed_detection.sigma_rules.get(filename=AUDITD_RULE_FILE)
    entry = new_entry(seed_detection, {"exe": "/usr/bin/python3.11"}, rules=[str(auditd.rule_id)])
    entry.save()

    macro = detection_macro(seed_detection)

    assert [skipped for skipped, _ in macro.skipped] == [entry]
    assert "/usr/bin/python3.11" not in macro.definition


def test_expired_entry_leaves_macro(seed_detection):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    seed_detection.tuning_entries.update(expires=yesterday)

    assert detection_macro(seed_detection).definition == "search *"
    assert filter_files(seed_detection) == []


def test_condition_lines_readable():
    lines = condition_lines(
        {"Image|endswith": ["\\pip.exe", "\\pip3.exe"], "CommandLine|contains|all": ["-m", "pip"]}
    )

    # Sorted by field, as PostgreSQL does not keep the written order.
    assert lines == [
        'CommandLine contains "-m" and "pip"',
        'Image ends with "\\pip.exe" or "\\pip3.exe"',
    ]


# Sigma filters applied by pySigma


def test_filter_applied_to_rendered_spl(seed_detection):
    rule = seed_detection.sigma_rules.get(rule_id=DLL_RULE)
    filters = filters_by_rule([rule])[rule.pk]

    raw = convert_to_splunk(rule.yaml_text, source=rule.filename)[0]
    tuned = convert_to_splunk(rule.yaml_text, source=rule.filename, filters=filters)[0]

    assert raw in tuned
    assert 'NOT (Image="C:\\\\opt\\\\fluent\\\\bin\\\\ruby.exe"' in tuned
    assert "miniconda3" in tuned
    assert "SalesETL" not in tuned


def test_filter_excludes_event_in_embedded_engine(seed_detection):
    rule = seed_detection.sigma_rules.get(rule_id=DLL_RULE)
    filters = filters_by_rule([rule])[rule.pk]
    fluentd = {
        "Channel": SYSMON,
        "EventID": 7,
        "Image": "C:\\opt\\fluent\\bin\\ruby.exe",
        "ImageLoaded": "C:\\opt\\fluent\\bin\\ruby_builtin_dlls\\zlib1.dll",
        "User": "NT AUTHORITY\\SYSTEM",
    }
    other = fluentd | {"Image": "C:\\Users\\mallory\\ruby.exe"}
    raw = compile_rule(rule.yaml_text, source="raw")
    tuned = compile_rule(rule.yaml_text, source="tuned", filters=filters)

    assert run_rules([raw], [fluentd, other]).matched == {0, 1}
    assert run_rules([tuned], [fluentd, other]).matched == {1}


def test_unscoped_entry_splits_filters_by_logsource(seed_detection):
    seed_detection.tuning_entries.all().delete()
    new_entry(seed_detection, {"User": "CORP\\svc_backup"}).save()

    files = filter_files(seed_detection)

    logsources = sorted(str(item.document["logsource"]) for item in files)
    assert logsources == ["{'product': 'linux', 'service': 'auditd'}", "{'product': 'windows'}"]
    assert sum(len(item.rule_ids) for item in files) == 5
    assert len({item.document["id"] for item in files}) == 2
    assert all(item.filename.startswith("filters/tuning-") for item in files)


def test_filter_file_is_valid_sigma(seed_detection):
    from sigma.collection import SigmaCollection

    documents = [item.document for item in filter_files(seed_detection)]
    collection = SigmaCollection.from_dicts(documents, collect_filters=True)

    assert len(collection.filters) == 6
    assert all(not sigma_filter.errors for sigma_filter in collection.filters)


# Renders


def test_render_hash_includes_filters(seed_detection):
    rule = seed_detection.sigma_rules.get(rule_id=DLL_RULE)
    target = render_targets()["splunk"]
    versions = target_versions(target)
    filters = filters_by_rule([rule])[rule.pk]

    plain = render_input_hash(rule.yaml_text, target, versions)
    tuned = render_input_hash(rule.yaml_text, target, versions, filters)
    fewer = render_input_hash(rule.yaml_text, target, versions, filters[:1])

    assert len({plain, tuned, fewer}) == 3
    assert render_input_hash(rule.yaml_text, target, versions, []) == plain


def test_saving_entry_requeues_only_its_rule(transactional_db):
    # Committed for real, so the save's on-commit callback runs as in production.
    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    seed_detection = Detection.objects.get(slug=SEED_SLUG)
    Render.objects.update(status=Render.Status.RENDERED)
    python_rule = seed_detection.sigma_rules.get(rule_id=PYTHON_BRANCH_RULE)

    new_entry(
        seed_detection,
        {"ParentImage|endswith": "\\jupyter-lab.exe"},
        branches=["PythonLibraryCompression"],
    ).save()

    queued = Render.objects.filter(status=Render.Status.QUEUED)
    assert set(queued.values_list("sigma_rule_id", flat=True)) == {python_rule.pk}
    assert queued.count() == len(render_targets())


def test_unchanged_entries_do_not_requeue(seed_detection):
    Render.objects.update(status=Render.Status.RENDERED)
    rule_ids = list(seed_detection.sigma_rules.values_list("pk", flat=True))

    assert renders_schedule(rule_ids=rule_ids, enqueue=False) == []


# Validation runs


def test_entry_silencing_attack_test_fails(seed_detection):
    entry = new_entry(
        seed_detection,
        {"Image|endswith": "\\python.exe"},
        branches=["PythonLibraryCompression"],
    )
    entry.save()

    run = run_embedded(seed_detection)

    result = run.results.get(name=FIRST_ATTACK_TEST)
    rows = [row for row in result.tuning if row["entry"] == str(entry.uuid)]
    assert run.status == ValidationRun.Status.FAILED
    assert result.passed is False
    assert result.error == ""
    assert len(rows) == 1
    assert rows[0]["suppressed_events"]
    assert "of this attack test; narrow the entry's condition" in rows[0]["problem"]
    assert result.raw_matches > result.matches


def test_false_positive_suppressed_attack_fires(seed_detection):
    run = run_embedded(seed_detection)

    conda = run.results.get(name=CONDA_TEST)
    attack = run.results.get(name=FIRST_ATTACK_TEST)
    assert conda.passed is True
    assert conda.raw_matches == 2
    assert conda.matches == 0
    assert attack.passed is True
    assert attack.matches == attack.raw_matches == 2
    assert attack.tuning == []


def test_expired_entry_has_no_effect(seed_detection):
    seed_detection.tuning_entries.filter(owner="Developer Platform").update(
        expires=timezone.localdate()
    )

    run = run_embedded(seed_detection)

    conda = run.results.get(name=CONDA_TEST)
    assert conda.matches == conda.raw_matches == 2
    assert conda.tuning == []
    assert conda.passed is True


def test_disabled_entry_has_no_effect(seed_detection):
    seed_detection.tuning_entries.update(enabled=False)

    run = run_embedded(seed_detection)

    assert all(result.matches == result.raw_matches for result in run.results.all())
    assert all(result.tuning == [] for result in run.results.all())


def test_entry_field_missing_from_events_is_no_error(seed_detection):
    new_entry(
        seed_detection, {"OriginalFileName": "pip.exe"}, branches=["PythonLibraryCompression"]
    ).save()

    run = run_embedded(seed_detection)

    assert all(result.error == "" for result in run.results.all())
    assert run.results.get(name=FIRST_ATTACK_TEST).passed is True


# Content as code


def test_portal_entry_exported_and_reloaded(seed_detection, tmp_path):
    entry = new_entry(
        seed_detection,
        {"ParentImage|endswith": "\\jupyter-lab.exe", "CommandLine|contains": "import gzip"},
        branches=["PythonLibraryCompression"],
        expires=datetime.date(2027, 6, 30),
        ticket="https://tickets.example.org/SOC-1234",
        enabled=False,
    )
    entry.save()
    call_command("export_content", str(tmp_path), verbosity=0)
    document = yaml.safe_load(
        (tmp_path / "detections" / SEED_SLUG / "detection.yml").read_text(encoding="utf-8")
    )
    TuningEntry.objects.filter(pk=entry.pk).delete()

    call_command("load_content", str(tmp_path), "--force", verbosity=0)

    assert document["tuning"][-1] == {
        "id": str(entry.uuid),
        "condition": {
            "CommandLine|contains": "import gzip",
            "ParentImage|endswith": "\\jupyter-lab.exe",
        },
        "branches": ["PythonLibraryCompression"],
        "reason": "Benign in this estate.",
        "owner": "SOC Tuning",
        "expires": datetime.date(2027, 6, 30),
        "ticket": "https://tickets.example.org/SOC-1234",
        "enabled": False,
    }
    reloaded = TuningEntry.objects.get(uuid=entry.uuid)
    assert reloaded.condition == entry.condition
    assert reloaded.expires == datetime.date(2027, 6, 30)
    assert reloaded.enabled is False
    assert reloaded.spl == 'CommandLine="*import gzip*" ParentImage="*\\\\jupyter-lab.exe"'


def test_load_unchanged_files_keeps_portal_entry(seed_detection):
    entry = new_entry(seed_detection, {"ParentImage|endswith": "\\jupyter-lab.exe"})
    entry.save()

    call_command("load_content", str(CONTENT_DIR), verbosity=0)

    assert TuningEntry.objects.filter(uuid=entry.uuid).exists()
    assert seed_detection.tuning_entries.count() == 7


def test_reload_keeps_rows_and_creator(seed_detection, django_user_model, tmp_path):
    user = django_user_model.objects.create_user("tuner")
    first = seed_detection.tuning_entries.first()
    first.created_by = user
    first.save()
    call_command("export_content", str(tmp_path), verbosity=0)

    call_command("load_content", str(tmp_path), "--force", verbosity=0)

    first.refresh_from_db()
    assert first.created_by == user
    assert seed_detection.tuning_entries.count() == 6


def test_content_rejects_bad_condition(seed_detection, tmp_path):
    shutil.copytree(CONTENT_DIR, tmp_path / "content")
    path = tmp_path / "content" / "detections" / SEED_SLUG / "detection.yml"
    text = path.read_text(encoding="utf-8")
    broken = text.replace("TargetFilename|startswith:", "TargetFilename|startwith:", 1)
    path.write_text(broken, encoding="utf-8")
    before = list(TuningEntry.objects.values_list("uuid", "condition"))

    with pytest.raises(CommandError) as error:
        call_command("load_content", str(tmp_path / "content"), "--force", verbosity=0)

    message = str(error.value)
    assert f"detections/{SEED_SLUG}/detection.yml: tuning[0].condition:" in message
    assert "Unknown modifier 'startwith'" in message
    assert list(TuningEntry.objects.values_list("uuid", "condition")) == before


def test_content_rejects_unknown_rule_id(seed_detection, tmp_path):
    shutil.copytree(CONTENT_DIR, tmp_path / "content")
    path = tmp_path / "content" / "detections" / SEED_SLUG / "detection.yml"
    text = path.read_text(encoding="utf-8")
    missing = "00000000-0000-4000-8000-000000000000"
    path.write_text(
        text.replace(
            "  branches:\n  - StagedCompressedFileCreation\n", f"  rules:\n  - {missing}\n", 1
        ),
        encoding="utf-8",
    )

    with pytest.raises(CommandError) as error:
        call_command("load_content", str(tmp_path / "content"), "--force", verbosity=0)

    expected = f"tuning[0].rules[0]: {missing} is not the id of any rule in sigma_rules"
    assert expected in str(error.value)


def test_import_sigma_update_keeps_entries(seed_detection, tmp_path):
    rule_id = str(uuid.uuid4())
    path = write(tmp_path, "rule.yml", rule_text(rule_id=rule_id))
    run_import("import_sigma", path)
    detection = Detection.objects.get(uuid=rule_id)
    entry = new_entry(detection, {"ParentImage|endswith": "\\jupyter-lab.exe"}, rules=[rule_id])
    entry.save()
    write(tmp_path, "rule.yml", rule_text(rule_id=rule_id, title="Retitled Upstream"))

    summary = run_import("import_sigma", path)

    assert summary["updated"] == 1
    assert list(detection.tuning_entries.values_list("uuid", flat=True)) == [entry.uuid]
    rule = SigmaRule.objects.get(rule_id=rule_id)
    render = rule.renders.get(target="splunk")
    filters = filters_by_rule([rule])[rule.pk]
    assert render.status == Render.Status.QUEUED
    assert render.input_hash == render_input_hash(
        rule.yaml_text, render_targets()["splunk"], render.versions, filters
    )


# API and page


def test_api_detail_has_entries_and_macro(seed_detection, client):
    seed_detection.tuning_entries.filter(owner="Observability").update(
        expires=datetime.date(2020, 1, 1)
    )

    data = client.get(f"/api/v1/detections/{SEED_SLUG}/").json()

    entries = {entry["owner"]: entry for entry in data["tuning_entries"]}
    assert len(data["tuning_entries"]) == 6
    assert entries["Observability"]["expired"] is True
    assert entries["Observability"]["active"] is False
    assert entries["Observability"]["filter_urls"] == []
    assert entries["Data Engineering"]["condition_text"].startswith('Image is "C:\\Program Files')
    assert len(entries["Data Engineering"]["filter_urls"]) == 1
    assert data["tuning_macro"]["name"] == "detect_archive_via_library_in_splunk_filter"
    assert "ruby_builtin_dlls" not in data["tuning_macro"]["definition"]
    assert "| `detect_archive_via_library_in_splunk_filter`" in data["queries"][0]["tuned_text"]
    assert data["queries"][0]["text"] == seed_detection.queries.get().text


def test_macros_conf_download(seed_detection, client):
    response = client.get(f"/api/v1/detections/{SEED_SLUG}/download/macros.conf/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "[detect_archive_via_library_in_splunk_filter]\ndefinition = search NOT ((" in body
    assert body.endswith("iseval = 0\n")


def test_page_shows_entries_and_expiry(seed_detection, client):
    seed_detection.tuning_entries.filter(owner="Observability").update(
        expires=datetime.date(2020, 1, 1)
    )

    page = client.get(f"/detections/{SEED_SLUG}/").content.decode()

    assert page.count('data-testid="tuning-row"') == 6
    assert page.count('data-testid="tuning-expired"') == 1
    assert "ImageLoaded is &quot;C:\\opt\\fluent\\bin\\ruby_builtin_dlls\\zlib1.dll&quot;" in page
    assert "[detect_archive_via_library_in_splunk_filter]" in page
    assert 'data-testid="tuned-query-code-0"' in page
    assert "The ZIP also holds 5 Sigma filters under" in page


def test_admin_rejects_and_records_creator(seed_detection, admin_client, admin_user):
    form = {
        "detection": seed_detection.pk,
        "uuid": "11111111-2222-4333-8444-555555555555",
        "position": "",
        "condition": '{"Image|endwith": "\\\\pip.exe"}',
        "rules": "[]",
        "branches": "[]",
        "reason": "Developer workstations install packages.",
        "owner": "Developer Platform",
        "ticket": "SOC-1234",
        "enabled": "on",
    }

    rejected = admin_client.post("/admin/detections/tuningentry/add/", form)
    form["condition"] = '{"Image|endswith": "\\\\pip.exe"}'
    accepted = admin_client.post("/admin/detections/tuningentry/add/", form)

    assert rejected.status_code == 200
    assert "Unknown modifier &#x27;endwith&#x27;" in rejected.content.decode()
    assert accepted.status_code == 302
    entry = TuningEntry.objects.get(uuid=form["uuid"])
    assert entry.created_by == admin_user
    assert entry.position == 6
    assert entry.spl == 'Image="*\\\\pip.exe"'


def test_daily_task_rerenders_expired_entries(seed_detection):
    from detections.tasks import validate_published

    Render.objects.update(status=Render.Status.RENDERED)
    seed_detection.tuning_entries.filter(owner="Observability").update(
        expires=timezone.localdate()
    )
    dll_rule = seed_detection.sigma_rules.get(rule_id=DLL_RULE)

    validate_published()

    queued = Render.objects.filter(status=Render.Status.QUEUED)
    assert set(queued.values_list("sigma_rule_id", flat=True)) == {dll_rule.pk}


def test_command_reports_tuning_failure(seed_detection, capsys):
    new_entry(
        seed_detection, {"Image|endswith": "\\python.exe"}, branches=["PythonLibraryCompression"]
    ).save()

    with pytest.raises(SystemExit):
        call_command("validate_detection", SEED_SLUG, "--inline")

    output = capsys.readouterr().out
    assert f"FAIL  {FIRST_ATTACK_TEST}  expect fires >= 1, matched 1 (2 before tuning)" in output
    assert "of this attack test; narrow the entry's condition" in output
    assert "pass  Scheduled Python ETL Job Writes Gzip Exports to ProgramData" in output


def test_branch_entry_skipped_without_branch_eval(seed_detection):
    query = seed_detection.queries.get()
    query.text = query.text.replace(
        "| eval DetectionSource=case(", "| table *\n| eval DetectionSource=case("
    )
    query.save()

    macro = detection_macro(seed_detection)

    assert macro.definition == "search *"
    assert len(macro.skipped) == 6
    assert all("sets no branch field" in reason for _, reason in macro.skipped)
