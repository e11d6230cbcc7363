"""Server-rendered pages: the detection list with its filters, the detail page and downloads."""

import html
import io
import re
import uuid
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from detections.highlight import pygments_stylesheet
from detections.markdown import render_markdown
from detections.models import Detection, ExpectedTelemetry

from .conftest import FILES_DIR, REPO_ROOT

SPL_FILE = FILES_DIR / "T1560.002.spl"
LIST_URL = reverse("detections:detection_list")


def detail_url(detection: Detection) -> str:
    return reverse("detections:detection_detail", kwargs={"slug": detection.slug})


def listed(client, **params) -> list[Detection]:
    response = client.get(LIST_URL, params)
    assert response.status_code == 200
    return list(response.context["page_obj"].object_list)


def page_text(response) -> str:
    """Return the page with HTML entities decoded, for checks on visible text."""
    return html.unescape(response.content.decode())


def element_html(response, testid: str, closing_tag: str) -> str:
    """Return the HTML from the element with `data-testid` up to its first `closing_tag`."""
    pattern = rf'data-testid="{re.escape(testid)}".*?</{closing_tag}>'
    match = re.search(pattern, response.content.decode(), re.DOTALL)
    assert match, f"no element with data-testid={testid!r} in the page"
    return match.group(0)


def code_block_text(response, testid: str) -> str:
    """Return the text of the highlighted <pre> inside the code block `testid`."""
    block = element_html(response, testid, "pre")
    pre_content = re.search(r"<pre[^>]*>(.*)</pre>", block, re.DOTALL).group(1)
    return html.unescape(re.sub(r"<[^>]+>", "", pre_content))


@pytest.fixture
def detail_response(client, seed_detection):
    return client.get(detail_url(seed_detection))


@pytest.fixture
def other_detection(seed_detection) -> Detection:
    """A second published detection on another platform, with no content of its own."""
    return Detection.objects.create(
        slug="archive-via-library-sentinel",
        title="Detect Archive via Library in Sentinel",
        platform="Microsoft Sentinel",
        query_language="KQL",
        description="KQL version.",
        severity=Detection.Level.MEDIUM,
        confidence=Detection.Level.LOW,
        status=Detection.Status.PUBLISHED,
    )


# List page


def test_list_page_shows_detection(client, seed_detection):
    response = client.get(LIST_URL)
    assert response.status_code == 200
    assert seed_detection.title in page_text(response)
    assert f'href="{detail_url(seed_detection)}"' in response.content.decode()


def test_list_page_shows_row_facts(client, seed_detection):
    row = element_html(client.get(LIST_URL), "detection-table", "table")
    for attack_id in ("TA0009", "T1560", "T1560.002"):
        assert attack_id in row
    assert "Medium" in row
    assert "Process: Process Creation" in row
    assert "Published" in row


def test_list_filter_options_from_database(client, seed_detection):
    content = client.get(LIST_URL).content.decode()
    assert '<option value="TA0009">' in content
    assert '<option value="T1560.002">' in content
    assert '<option value="DC0032">' in content
    assert '<option value="Splunk">' in content


def test_list_keeps_typed_filter_value(client, seed_detection):
    content = client.get(LIST_URL, {"technique": "T1560.999"}).content.decode()
    assert '<option value="T1560.999" selected>' in content


def test_list_invalid_severity_not_offered(client, seed_detection):
    content = client.get(LIST_URL, {"severity": "bogus"}).content.decode()
    assert 'value="bogus"' not in content


def test_list_search_finds_query_text(client, seed_detection):
    assert listed(client, search="zlib.dll") == [seed_detection]


def test_list_search_nonexistent_term_finds_nothing(client, seed_detection):
    assert listed(client, search="nonexistent-term") == []


def test_list_search_returns_detection_once(client, seed_detection):
    # Each of the five Sigma rules contains this tag.
    assert listed(client, search="attack.t1560.002") == [seed_detection]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tactic", "TA0009"),
        ("tactic", "ta0009"),
        ("technique", "T1560"),
        ("technique", "T1560.002"),
        ("technique", "t1560"),
        ("severity", "medium"),
        ("data_source", "DC0032"),
        ("data_source", "Process Creation"),
        ("data_source", "process: process creation"),
        ("platform", "Splunk"),
        ("platform", "splunk"),
    ],
)
def test_list_filter_matches_seed(client, seed_detection, name, value):
    assert listed(client, **{name: value}) == [seed_detection]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tactic", "TA0001"),
        ("technique", "T1059"),
        ("technique", "T1560.001"),
        ("technique", "T156"),
        ("severity", "high"),
        ("data_source", "DC0001"),
        ("data_source", "Process"),
        ("platform", "Microsoft Sentinel"),
    ],
)
def test_list_filter_excludes_seed(client, seed_detection, name, value):
    assert listed(client, **{name: value}) == []


def test_list_filters_combine(client, seed_detection):
    assert listed(client, tactic="TA0009", technique="T1560", platform="Splunk") == [seed_detection]


def test_list_invalid_severity_is_reported(client, seed_detection):
    response = client.get(LIST_URL, {"severity": "bogus"})
    assert "Some filters were ignored" in page_text(response)


def test_list_orders_by_title(client, seed_detection, other_detection):
    assert listed(client) == [other_detection, seed_detection]


def test_list_hides_draft_from_anonymous(client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    assert listed(client) == []


def test_list_shows_draft_to_staff(admin_client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    assert listed(admin_client) == [seed_detection]


def test_list_status_filter_for_staff(admin_client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    assert listed(admin_client, status="draft") == [seed_detection]
    assert listed(admin_client, status="published") == []


def test_list_rejects_post(client, seed_detection):
    assert client.post(LIST_URL).status_code == 405


# Detail page


def test_detail_page_shows_spl_exactly(detail_response):
    expected = SPL_FILE.read_bytes()
    assert code_block_text(detail_response, "query-code-0").encode("utf-8") == expected


def test_detail_page_shows_sigma_yaml_exactly(detail_response, seed_detection):
    for rule in seed_detection.sigma_rules.all():
        assert code_block_text(detail_response, f"sigma-code-{rule.rule_id}") == rule.yaml_text


def test_detail_page_highlights_spl(detail_response):
    block = element_html(detail_response, "query-code-0", "pre")
    assert '<span class="k">eval</span>' in block


def test_detail_page_shows_header_facts(detail_response, seed_detection):
    text = page_text(detail_response)
    assert "Splunk · SPL" in text
    assert seed_detection.title in text
    assert str(seed_detection.uuid) in text
    assert "2026-12-04" in text


def test_detail_page_shows_attack_ids(detail_response):
    table = element_html(detail_response, "attack-table", "table")
    for attack_id in ("TA0009", "T1560", "T1560.002"):
        assert f'<span class="attack-id">{attack_id}</span>' in table


def test_detail_page_links_attack_urls(detail_response):
    table = element_html(detail_response, "attack-table", "table")
    assert 'href="https://attack.mitre.org/tactics/TA0009/"' in table
    assert 'href="https://attack.mitre.org/techniques/T1560/"' in table
    assert 'href="https://attack.mitre.org/techniques/T1560/002/"' in table


def test_detail_page_shows_sysmon_event_ids(detail_response):
    table = element_html(detail_response, "data-source-table", "table")
    for event_id in (1, 7, 11):
        assert f"<td>{event_id}</td>" in table


def test_detail_page_shows_data_components(detail_response):
    table = html.unescape(element_html(detail_response, "data-source-table", "table"))
    for label in ("Module: Module Load", "Process: Process Creation", "File: File Creation"):
        assert label in table


def test_detail_page_shows_false_positives(detail_response, seed_detection):
    items = element_html(detail_response, "false-positives", "ol")
    descriptions = list(seed_detection.false_positives.values_list("description", flat=True))
    assert len(descriptions) == 5
    for description in descriptions:
        # False positives are Markdown, rendered like the other text fields.
        assert f'<li class="prose">{render_markdown(description)}</li>' in items


def test_detail_page_shows_test_names(detail_response, seed_detection):
    text = page_text(detail_response)
    names = list(seed_detection.tests.values_list("name", flat=True))
    assert len(names) == 16
    for name in names:
        assert name in text


def test_detail_page_shows_artifact_paths(detail_response, seed_detection):
    text = page_text(detail_response)
    paths = set(
        ExpectedTelemetry.objects.filter(test__detection=seed_detection)
        .exclude(artifact_path="")
        .values_list("artifact_path", flat=True)
    )
    assert "%TEMP%\\stage_df00.zlib" in paths
    for path in paths:
        assert f'<code class="artifact-path">{path}</code>' in text


def test_detail_page_shows_telemetry_key_fields(detail_response):
    text = page_text(detail_response)
    assert "<code>import zlib</code>" in text
    assert "<dt>CommandLine</dt>" in text


def test_detail_page_shows_malware_families(detail_response):
    families = element_html(detail_response, "malware-families", "ul")
    for family in ("TajMahal", "LunarWeb", "SeaDuke", "BBSRAT", "InvisiMole", "Denis"):
        assert f"<li>{family}</li>" in families


def test_detail_shows_libraries_and_tools(detail_response):
    text = page_text(detail_response)
    assert "<code>System.IO.Compression</code>" in text
    assert "<code>GZipStream</code>" in text
    assert "<li>WinRAR</li>" in text


def test_detail_page_shows_branch_names(detail_response):
    table = element_html(detail_response, "branch-table", "table")
    for name in (
        "CompressionDllLoad",
        "PowerShellLibraryCompression",
        "PythonLibraryCompression",
        "StagedCompressedFileCreation",
    ):
        assert f'<strong class="branch-name">{name}</strong>' in table


def test_detail_page_shows_branch_lists(detail_response):
    table = html.unescape(element_html(detail_response, "branch-table", "table"))
    assert "<dt>DLL names</dt>" in table
    assert "<code>zlibwapi.dll</code>" in table
    assert "<dt>Staging paths</dt>" in table
    assert "<code>\\Users\\Public\\</code>" in table


def test_detail_page_links_branch_sigma_rule(detail_response):
    table = element_html(detail_response, "branch-table", "table")
    assert 'href="#sigma-760a8c60-5f71-4805-ada6-afde0a1bd1af"' in table


def test_detail_page_shows_query_fields(detail_response):
    text = page_text(detail_response)
    assert "<code>XmlWinEventLog:Microsoft-Windows-Sysmon/Operational</code>" in text
    assert "<code>ParentCommandLine</code>" in text


def test_detail_page_shows_sigma_rule_facts(detail_response, seed_detection):
    text = page_text(detail_response)
    for rule in seed_detection.sigma_rules.all():
        assert f"<h3>{rule.title}</h3>" in text
    assert "<code>attack.t1560.002</code>" in text
    assert "linux / auditd" in text


def test_detail_tab_and_download_ids(detail_response, seed_detection):
    content = detail_response.content.decode()
    rule = seed_detection.sigma_rules.first()
    assert 'id="tab-query"' in content
    assert 'id="tab-sigma"' in content
    assert "Download SPL (.spl)" in content
    assert f'id="download-sigma-{rule.rule_id}"' in content
    assert "Download all rules (.zip)" in content


def test_detail_page_renders_markdown(detail_response):
    tuning = element_html(detail_response, "tuning-notes", "h3")
    assert "<h3>Findings from reviewing the query against its tests</h3>" in tuning


def test_detail_shows_none_yet(detail_response):
    for testid in ("related-detections", "other-platforms"):
        assert "none yet" in element_html(detail_response, testid, "p")


def test_detail_page_links_related_detection(client, seed_detection, other_detection):
    seed_detection.related.add(other_detection)
    seed_detection.other_platforms.add(other_detection)
    response = client.get(detail_url(seed_detection))
    link = f'href="{detail_url(other_detection)}"'
    assert link in element_html(response, "related-detections", "ul")
    assert link in element_html(response, "other-platforms", "ul")


def test_detail_hides_draft_related_links(client, seed_detection, other_detection):
    Detection.objects.filter(pk=other_detection.pk).update(status=Detection.Status.DRAFT)
    seed_detection.related.add(other_detection)
    response = client.get(detail_url(seed_detection))
    assert detail_url(other_detection) not in response.content.decode()


def test_detail_page_shows_references(detail_response):
    assert '<a href="https://attack.mitre.org/techniques/T1560/002/">' in (
        detail_response.content.decode()
    )


def test_detail_page_sanitises_markdown(client, seed_detection):
    seed_detection.tuning_notes = (
        "Safe **bold**.\n\n<script>alert('tuning')</script>\n\n"
        '<img src="x" onerror="alert(1)"> [link](javascript:alert(2))'
    )
    seed_detection.save()
    content = client.get(detail_url(seed_detection)).content.decode()
    assert "<strong>bold</strong>" in content
    assert "<script>alert" not in content
    assert "onerror" not in content
    assert "javascript:alert" not in content


def test_detail_drops_non_http_links(client, seed_detection):
    seed_detection.references = ["javascript:alert(1)"]
    seed_detection.save()
    content = client.get(detail_url(seed_detection)).content.decode()
    assert 'href="javascript:' not in content


def test_detail_page_hides_draft_from_anonymous(client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    assert client.get(detail_url(seed_detection)).status_code == 404


def test_detail_page_shows_draft_to_staff(admin_client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    response = admin_client.get(detail_url(seed_detection))
    assert response.status_code == 200
    assert "only signed-in viewers, authors and reviewers can see it" in page_text(response)


def test_detail_unknown_slug_returns_404(client, seed_detection):
    url = reverse("detections:detection_detail", kwargs={"slug": "no-such-detection"})
    assert client.get(url).status_code == 404


def test_detail_uuid_url_redirects_to_slug(client, seed_detection):
    url = reverse(
        "detections:detection_detail_by_uuid", kwargs={"detection_uuid": seed_detection.uuid}
    )
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == detail_url(seed_detection)


def test_detail_unknown_uuid_returns_404(client, seed_detection):
    url = reverse("detections:detection_detail_by_uuid", kwargs={"detection_uuid": uuid.uuid4()})
    assert client.get(url).status_code == 404


def test_pages_load_nothing_from_other_hosts(client, detail_response):
    for response in (detail_response, client.get(LIST_URL)):
        content = response.content.decode()
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', content)


def test_pygments_stylesheet_is_up_to_date():
    committed = (REPO_ROOT / "static" / "css" / "pygments.css").read_text(encoding="utf-8")
    assert committed == pygments_stylesheet()


# Downloads


def query_download_url(detection: Detection, position: int = 0, ext: str = "spl") -> str:
    return reverse(
        "detections:query_download",
        kwargs={"slug": detection.slug, "position": position, "ext": ext},
    )


def sigma_download_url(detection: Detection, rule_id) -> str:
    return reverse("detections:sigma_download", kwargs={"slug": detection.slug, "rule_id": rule_id})


def zip_download_url(detection: Detection) -> str:
    return reverse("detections:sigma_zip_download", kwargs={"slug": detection.slug})


def test_spl_download_returns_exact_bytes(client, seed_detection):
    response = client.get(query_download_url(seed_detection))
    assert response.status_code == 200
    assert response.content == SPL_FILE.read_bytes()


def test_spl_download_headers(client, seed_detection):
    response = client.get(query_download_url(seed_detection))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    expected = 'attachment; filename="archive-via-library-splunk.spl"'
    assert response["Content-Disposition"] == expected


def test_spl_download_wrong_extension_returns_404(client, seed_detection):
    assert client.get(query_download_url(seed_detection, ext="kql")).status_code == 404


def test_spl_download_unknown_position_returns_404(client, seed_detection):
    assert client.get(query_download_url(seed_detection, position=5)).status_code == 404


def test_sigma_download_returns_exact_bytes(client, seed_detection):
    for rule in seed_detection.sigma_rules.all():
        response = client.get(sigma_download_url(seed_detection, rule.rule_id))
        assert response.status_code == 200
        assert response.content == rule.yaml_text.encode("utf-8")


def test_sigma_download_headers(client, seed_detection):
    for rule in seed_detection.sigma_rules.all():
        response = client.get(sigma_download_url(seed_detection, rule.rule_id))
        expected = f'attachment; filename="{Path(rule.filename).name}"'
        assert response["Content-Type"] == "application/yaml; charset=utf-8"
        assert response["Content-Disposition"] == expected


def test_sigma_download_unknown_rule_returns_404(client, seed_detection):
    assert client.get(sigma_download_url(seed_detection, uuid.uuid4())).status_code == 404


def test_sigma_zip_contains_every_rule(client, seed_detection):
    response = client.get(zip_download_url(seed_detection))
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    # Five rules and the Sigma filters of the six shipped tuning entries.
    assert len(names) == 11
    assert len([name for name in names if "/filters/tuning-" in name]) == 6
    assert all(name.endswith(".yml") for name in names)
    for rule in seed_detection.sigma_rules.all():
        member = f"{seed_detection.slug}/{Path(rule.filename).name}"
        assert archive.read(member) == rule.yaml_text.encode("utf-8")


def test_sigma_zip_headers(client, seed_detection):
    response = client.get(zip_download_url(seed_detection))
    assert response["Content-Type"] == "application/zip"
    expected = 'attachment; filename="archive-via-library-splunk-sigma.zip"'
    assert response["Content-Disposition"] == expected


def test_sigma_zip_without_rules_returns_404(client, other_detection):
    assert client.get(zip_download_url(other_detection)).status_code == 404


def test_downloads_unknown_slug_return_404(client, seed_detection):
    missing = Detection(slug="no-such-detection")
    rule_id = seed_detection.sigma_rules.first().rule_id
    assert client.get(query_download_url(missing)).status_code == 404
    assert client.get(sigma_download_url(missing, rule_id)).status_code == 404
    assert client.get(zip_download_url(missing)).status_code == 404


def test_downloads_hide_draft_from_anonymous(client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    rule_id = seed_detection.sigma_rules.first().rule_id
    assert client.get(query_download_url(seed_detection)).status_code == 404
    assert client.get(sigma_download_url(seed_detection, rule_id)).status_code == 404
    assert client.get(zip_download_url(seed_detection)).status_code == 404


def test_downloads_serve_draft_to_staff(admin_client, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    assert admin_client.get(query_download_url(seed_detection)).status_code == 200


@pytest.mark.parametrize("spelling", [str.upper, lambda value: value.replace("-", "")])
def test_detail_redirects_other_uuid_spellings(client, seed_detection, spelling):
    url = f"/detections/{spelling(str(seed_detection.uuid))}/"

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == seed_detection.get_absolute_url()
