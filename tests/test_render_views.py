"""Rendered queries on the API and the detail page: lists, tabs, status line and downloads."""

import html
import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from detections.models import Detection, Render
from detections.pysigma.convert import render_targets

from .conftest import SEED_SLUG

API_DETAIL_URL = f"/api/v1/detections/{SEED_SLUG}/"
API_QUERIES_URL = f"/api/v1/detections/{SEED_SLUG}/queries/"
RENDER_FIELDS = {
    "rule_id",
    "rule_title",
    "target",
    "target_label",
    "status",
    "query",
    "warnings",
    "error",
    "pipelines",
    "output_format",
    "versions",
    "duration_ms",
    "finished_at",
    "filename",
    "download_url",
}
WARNING = {
    "code": "substring-match",
    "message": "The backend matches whole terms, so a substring in the rule may not match.",
}


@pytest.fixture
def rendered(seed_detection) -> Detection:
    """The seed detection with every Sigma rule rendered for every target in this process.

    --force renders each rule even though loading the content already queued it with
    the same input hash.
    """
    call_command(
        "render_queries", "--inline", "--force", stdout=io.StringIO(), stderr=io.StringIO()
    )
    return seed_detection


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def first_render(detection: Detection, target: str, status: str = "rendered") -> Render:
    render = (
        Render.objects.filter(sigma_rule__detection=detection, target=target, status=status)
        .select_related("sigma_rule")
        .order_by("sigma_rule__position")
        .first()
    )
    assert render is not None, f"no {status} render for {target}"
    return render


def rule_stem(render: Render) -> str:
    return render.sigma_rule.filename.rsplit("/", 1)[-1].removesuffix(".yml")


def joined_queries(renders) -> bytes:
    return ("\n\n".join(render.query.rstrip("\r\n") for render in renders) + "\n").encode()


def rendered_for(detection: Detection, target: str) -> list[Render]:
    return list(
        Render.objects.filter(
            sigma_rule__detection=detection, target=target, status=Render.Status.RENDERED
        ).order_by("sigma_rule__position")
    )


def api_render_url(target: str, rule_id) -> str:
    return f"{API_QUERIES_URL}{target}/{rule_id}/download/"


def api_target_url(target: str) -> str:
    return f"{API_QUERIES_URL}{target}/download/"


def web_render_url(detection: Detection, target: str, rule_id, ext: str) -> str:
    return reverse(
        "detections:render_download",
        kwargs={"slug": detection.slug, "target": target, "rule_id": rule_id, "ext": ext},
    )


def web_target_url(detection: Detection, target: str, ext: str) -> str:
    return reverse(
        "detections:render_target_download",
        kwargs={"slug": detection.slug, "target": target, "ext": ext},
    )


def detail_page(client, detection: Detection):
    response = client.get(detection.get_absolute_url())
    assert response.status_code == 200
    return response


def element_html(response, testid: str, closing_tag: str) -> str:
    """Return the HTML from the element with `data-testid` up to its first `closing_tag`."""
    pattern = rf'data-testid="{re.escape(testid)}".*?</{closing_tag}>'
    match = re.search(pattern, response.content.decode(), re.DOTALL)
    assert match, f"no element with data-testid={testid!r} in the page"
    return match.group(0)


def code_block_text(response, testid: str) -> str:
    block = element_html(response, testid, "pre")
    pre_content = re.search(r"<pre[^>]*>(.*)</pre>", block, re.DOTALL).group(1)
    return html.unescape(re.sub(r"<[^>]+>", "", pre_content))


def visible_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# API: list of renders


def test_queries_list_fields(rendered, api):
    response = api.get(API_QUERIES_URL)
    rows = response.json()

    assert response.status_code == 200
    assert len(rows) == rendered.sigma_rules.count() * len(render_targets())
    for row in rows:
        assert set(row) == RENDER_FIELDS


def test_queries_list_row_values(rendered, api):
    render = first_render(rendered, "splunk")
    rows = api.get(API_QUERIES_URL, {"target": "splunk"}).json()
    row = rows[0]

    assert row["rule_id"] == str(render.sigma_rule.rule_id)
    assert row["rule_title"] == render.sigma_rule.title
    assert row["target_label"] == "Splunk SPL"
    assert row["status"] == "rendered"
    assert row["query"] == render.query
    assert row["warnings"] == []
    assert row["error"] == ""
    assert row["pipelines"] == ["sysmon_pipeline", "splunk_windows_pipeline"]
    assert row["output_format"] == "default"
    assert row["versions"]["pySigma"]
    assert row["versions"]["pysigma-backend-splunk"]
    assert row["duration_ms"] is not None
    assert row["finished_at"]
    assert row["filename"] == f"{rule_stem(render)}.splunk.spl"
    assert row["download_url"].endswith(api_render_url("splunk", render.sigma_rule.rule_id))


def test_queries_list_order(rendered, api):
    rows = api.get(API_QUERIES_URL).json()
    target_keys = list(render_targets())
    rule_ids = [str(rule.rule_id) for rule in rendered.sigma_rules.all()]

    assert [row["target"] for row in rows[: len(target_keys)]] == target_keys
    assert [row["rule_id"] for row in rows[:: len(target_keys)]] == rule_ids


def test_queries_list_target_filter(rendered, api):
    rows = api.get(API_QUERIES_URL, {"target": "splunk_savedsearches"}).json()

    assert len(rows) == rendered.sigma_rules.count()
    assert {row["target"] for row in rows} == {"splunk_savedsearches"}
    assert {row["output_format"] for row in rows} == {"savedsearches"}


def test_queries_list_status_filter(rendered, api):
    Render.objects.filter(pk=first_render(rendered, "splunk").pk).update(status="queued")
    failed = Render.objects.filter(sigma_rule__detection=rendered, status="failed").count()
    rows = api.get(f"{API_QUERIES_URL}?status=queued&status=failed").json()

    assert failed > 0
    assert len(rows) == failed + 1
    assert {row["status"] for row in rows} == {"queued", "failed"}


def test_queries_list_failed_row(rendered, api):
    render = first_render(rendered, "sentinel_kql", status="failed")
    rows = api.get(API_QUERIES_URL, {"target": "sentinel_kql", "status": "failed"}).json()
    row = next(row for row in rows if row["rule_id"] == str(render.sigma_rule.rule_id))

    assert row["query"] == ""
    assert row["error"] == render.error
    assert row["download_url"] is None


def test_queries_list_warnings(rendered, api):
    render = first_render(rendered, "splunk")
    Render.objects.filter(pk=render.pk).update(warnings=[WARNING])
    rows = api.get(API_QUERIES_URL, {"target": "splunk"}).json()

    assert rows[0]["warnings"] == [WARNING]


@pytest.mark.parametrize("params", [{"target": "no_such_target"}, {"status": "done"}])
def test_queries_list_invalid_filter(rendered, api, params):
    response = api.get(API_QUERIES_URL, params)

    assert response.status_code == 400
    assert list(response.json()) == list(params)


def test_queries_list_unknown_detection(rendered, api):
    assert api.get("/api/v1/detections/no-such-detection/queries/").status_code == 404


def test_queries_list_hides_draft(rendered, api):
    Detection.objects.filter(pk=rendered.pk).update(status=Detection.Status.DRAFT)
    assert api.get(API_QUERIES_URL).status_code == 404


def test_queries_list_by_uuid(rendered, api):
    response = api.get(f"/api/v1/detections/{rendered.uuid}/queries/", {"target": "splunk"})

    assert response.status_code == 200
    assert len(response.json()) == rendered.sigma_rules.count()


def test_detail_renders_summary(rendered, api):
    summary = api.get(API_DETAIL_URL).json()["renders_summary"]
    renders = Render.objects.filter(sigma_rule__detection=rendered)

    assert summary["total"] == renders.count()
    for status in Render.Status.values:
        assert summary[status] == renders.filter(status=status).count(), status
    assert summary["rendered"] > 0
    assert summary["failed"] > 0


def test_detail_renders_summary_before_rendering(seed_detection, api):
    summary = api.get(API_DETAIL_URL).json()["renders_summary"]

    assert summary["queued"] == summary["total"]
    assert summary["rendered"] == 0


def test_detail_links_queries_list(rendered, api):
    body = api.get(API_DETAIL_URL).json()
    assert body["queries_url"].endswith(API_QUERIES_URL)


# API: downloads


@pytest.mark.parametrize(
    ("target", "extension"),
    [("splunk", "spl"), ("splunk_savedsearches", "conf"), ("defender_kql", "kql")],
)
def test_api_render_download(rendered, api, target, extension):
    render = first_render(rendered, target)
    response = api.get(api_render_url(target, render.sigma_rule.rule_id))
    filename = f"{rule_stem(render)}.{target}.{extension}"

    assert response.status_code == 200
    assert response.content == render.query.encode("utf-8")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'


def test_api_target_download(rendered, api):
    response = api.get(api_target_url("splunk"))

    assert response.status_code == 200
    assert response.content == joined_queries(rendered_for(rendered, "splunk"))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    expected = f'attachment; filename="{SEED_SLUG}.splunk.spl"'
    assert response["Content-Disposition"] == expected


def test_api_target_download_separates_queries(rendered, api):
    body = api.get(api_target_url("splunk")).content.decode()
    renders = rendered_for(rendered, "splunk")

    assert body.count("\n\n") >= len(renders) - 1
    for render in renders:
        assert render.query.rstrip("\n") in body


def test_api_target_download_skips_failed(rendered, api):
    renders = rendered_for(rendered, "sentinel_kql")
    failed = first_render(rendered, "sentinel_kql", status="failed")
    response = api.get(api_target_url("sentinel_kql"))

    assert len(renders) < rendered.sigma_rules.count()
    assert response.content == joined_queries(renders)
    assert response["Content-Disposition"].endswith(f'{SEED_SLUG}.sentinel_kql.kql"')
    assert failed.sigma_rule.title not in response.content.decode()


def test_api_render_download_failed_404(rendered, api):
    render = first_render(rendered, "sentinel_kql", status="failed")
    assert api.get(api_render_url("sentinel_kql", render.sigma_rule.rule_id)).status_code == 404


@pytest.mark.parametrize("status", ["queued", "running", "unavailable"])
def test_api_render_download_not_rendered_404(rendered, api, status):
    render = first_render(rendered, "splunk")
    Render.objects.filter(pk=render.pk).update(status=status)
    assert api.get(api_render_url("splunk", render.sigma_rule.rule_id)).status_code == 404


def test_api_render_download_unknown_target_404(rendered, api):
    rule = rendered.sigma_rules.first()
    assert api.get(api_render_url("no_such_target", rule.rule_id)).status_code == 404


def test_api_render_download_unknown_rule_404(rendered, api):
    rule_id = "00000000-0000-4000-8000-000000000000"
    assert api.get(api_render_url("splunk", rule_id)).status_code == 404


def test_api_target_download_unknown_target_404(rendered, api):
    assert api.get(api_target_url("no_such_target")).status_code == 404


def test_api_target_download_nothing_rendered_404(rendered, api):
    Render.objects.filter(target="splunk").update(status="failed", query="", error="broken")
    assert api.get(api_target_url("splunk")).status_code == 404


def test_api_downloads_hide_draft(rendered, api):
    render = first_render(rendered, "splunk")
    Detection.objects.filter(pk=rendered.pk).update(status=Detection.Status.DRAFT)

    assert api.get(api_render_url("splunk", render.sigma_rule.rule_id)).status_code == 404
    assert api.get(api_target_url("splunk")).status_code == 404


def test_schema_lists_render_paths(db, api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = response.json()["paths"]

    assert response.status_code == 200
    assert "/api/v1/detections/{slug}/queries/" in paths
    assert "/api/v1/detections/{slug}/queries/{target}/{rule_id}/download/" in paths
    assert "/api/v1/detections/{slug}/queries/{target}/download/" in paths


def test_schema_documents_queries_list(db, api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/detections/{slug}/queries/"]["get"]
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    render_fields = set(schema["components"]["schemas"]["Render"]["properties"])

    assert parameters == {"slug", "target", "status"}
    assert render_fields == RENDER_FIELDS
    assert "renders_summary" in schema["components"]["schemas"]["Detection"]["properties"]


# Web: detail page


def test_detail_page_tab_per_target(client, rendered):
    content = detail_page(client, rendered).content.decode()
    tab_ids = re.findall(r'role="tab"[^>]*id="tab-render-([^"]+)"', content)

    assert tab_ids == list(render_targets())
    for target in render_targets().values():
        tab = re.search(rf'id="tab-render-{target.key}"[^>]*>(.*?)</button>', content, re.DOTALL)
        assert visible_text(tab.group(1)).split(",")[0].strip() == target.label


def test_detail_page_tab_select_lists_targets(client, rendered):
    select = element_html(detail_page(client, rendered), "tab-select", "select")
    options = re.findall(r'<option value="([^"]+)">', select)

    assert options == ["tab-query", "tab-sigma"] + [f"tab-render-{key}" for key in render_targets()]


def test_detail_page_shows_rendered_queries(client, rendered):
    response = detail_page(client, rendered)

    for render in rendered_for(rendered, "splunk"):
        testid = f"render-code-splunk-{render.sigma_rule.rule_id}"
        assert code_block_text(response, testid) == render.query


def test_detail_page_highlights_with_target_lexer(client, rendered):
    response = detail_page(client, rendered)
    spl = first_render(rendered, "splunk")
    conf = first_render(rendered, "splunk_savedsearches")
    spl_block = element_html(response, f"render-code-splunk-{spl.sigma_rule.rule_id}", "pre")
    conf_testid = f"render-code-splunk_savedsearches-{conf.sigma_rule.rule_id}"
    conf_block = element_html(response, conf_testid, "pre")

    assert '<span class="vm">source</span>' in spl_block
    assert '<span class="k">[default]</span>' in conf_block


def test_detail_page_unknown_lexer_falls_back(client, rendered, settings):
    settings.RENDER_TARGETS = {
        key: {**entry, "lexer": "no-such-lexer"} if key == "splunk" else entry
        for key, entry in settings.RENDER_TARGETS.items()
    }
    render = first_render(rendered, "splunk")
    testid = f"render-code-splunk-{render.sigma_rule.rule_id}"
    response = detail_page(client, rendered)

    assert code_block_text(response, testid) == render.query
    assert '<span class="vm">' not in element_html(response, testid, "pre")


def test_detail_page_shows_render_facts(client, rendered):
    render = first_render(rendered, "splunk_savedsearches")
    testid = f"render-splunk_savedsearches-{render.sigma_rule.rule_id}"
    text = visible_text(element_html(detail_page(client, rendered), testid, "dl"))
    backend_version = render.versions["pysigma-backend-splunk"]

    assert render.sigma_rule.title in text
    assert "Splunk savedsearches.conf" in text
    assert "sigma.backends.splunk:SplunkBackend" in text
    assert "sysmon_pipeline" in text
    assert "splunk_windows_pipeline" in text
    assert "savedsearches" in text
    assert f"pysigma-backend-splunk {backend_version}" in text


def test_detail_page_render_download_links(client, rendered):
    render = first_render(rendered, "splunk")
    rule_id = render.sigma_rule.rule_id
    response = detail_page(client, rendered)
    block = element_html(response, f"render-code-splunk-{rule_id}", "pre")
    target_link = element_html(response, "download-render-target-splunk", "a")

    assert f'href="{web_render_url(rendered, "splunk", rule_id, "spl")}"' in block
    assert "Download .spl" in visible_text(block)
    assert f'href="{web_target_url(rendered, "splunk", "spl")}"' in response.content.decode()
    assert "Download all 5 queries (.spl)" in visible_text(target_link)


def test_detail_page_copy_button_per_render(client, rendered):
    render = first_render(rendered, "splunk")
    testid = f"render-code-splunk-{render.sigma_rule.rule_id}"
    block = element_html(detail_page(client, rendered), testid, "pre")

    assert f'data-copy-target="{testid}"' in block


def test_detail_page_shows_warnings(client, rendered):
    render = first_render(rendered, "splunk")
    Render.objects.filter(pk=render.pk).update(warnings=[WARNING])
    testid = f"render-warnings-splunk-{render.sigma_rule.rule_id}"
    content = detail_page(client, rendered).content.decode()
    box = re.search(rf'<div class="([^"]*)" data-testid="{testid}">(.*?)</div>', content, re.DOTALL)

    assert box, f"no warnings box {testid}"
    assert "notice-warning" in box.group(1).split()
    assert f'<code class="warning-code">{WARNING["code"]}</code>' in box.group(2)
    assert WARNING["message"] in visible_text(box.group(2))


def test_detail_page_shows_failed_error(client, rendered):
    render = first_render(rendered, "sentinel_kql", status="failed")
    rule_id = render.sigma_rule.rule_id
    response = detail_page(client, rendered)
    error = visible_text(element_html(response, f"render-error-sentinel_kql-{rule_id}", "pre"))

    assert "Rendering failed" in error
    assert render.error in error
    assert f"render-code-sentinel_kql-{rule_id}" not in response.content.decode()


def test_detail_page_shows_unavailable_error(client, rendered):
    render = first_render(rendered, "duckdb")
    message = "package pysigma-backend-duckdb is not installed; install it to render DuckDB SQL"
    Render.objects.filter(pk=render.pk).update(status="unavailable", query="", error=message)
    testid = f"render-error-duckdb-{render.sigma_rule.rule_id}"
    error = visible_text(element_html(detail_page(client, rendered), testid, "pre"))

    assert "Target unavailable" in error
    assert message in error


def test_detail_page_marks_tab_with_failures(client, rendered):
    content = detail_page(client, rendered).content.decode()
    sentinel_tab = re.search(r'id="tab-render-sentinel_kql".*?</button>', content, re.DOTALL)
    splunk_tab = re.search(r'id="tab-render-splunk".*?</button>', content, re.DOTALL)

    assert "tab-flag-problem" in sentinel_tab.group(0)
    assert "tab-flag" not in splunk_tab.group(0)


def test_detail_page_before_any_render(client, seed_detection):
    Render.objects.all().delete()
    content = detail_page(client, seed_detection).content.decode()

    assert "has not been scheduled for rendering yet" in content
    assert 'data-testid="render-status"' not in content
    assert 'data-testid="download-render-target-splunk"' not in content


def test_status_line_when_render_queued(client, rendered):
    Render.objects.filter(pk=first_render(rendered, "splunk").pk).update(status="queued")
    response = detail_page(client, rendered)
    line = element_html(response, "render-status", "p")
    poll_url = reverse("api:detection-queries", kwargs={"slug": rendered.slug})

    assert "1 render queued or running; this page refreshes when they finish." in visible_text(line)
    assert f'data-render-poll="{poll_url}?status=queued&amp;status=running"' in line


def test_status_line_counts_queued_and_running(client, rendered):
    renders = list(Render.objects.filter(target="splunk").values_list("pk", flat=True))
    Render.objects.filter(pk__in=renders[:2]).update(status="queued")
    Render.objects.filter(pk__in=renders[2:3]).update(status="running")
    line = element_html(detail_page(client, rendered), "render-status", "p")

    assert "3 renders queued or running" in visible_text(line)


def test_status_line_absent_when_finished(client, rendered):
    assert 'data-testid="render-status"' not in detail_page(client, rendered).content.decode()


def test_status_line_after_content_load(client, seed_detection):
    line = element_html(detail_page(client, seed_detection), "render-status", "p")
    total = Render.objects.filter(sigma_rule__detection=seed_detection).count()

    assert f"{total} renders queued or running" in visible_text(line)


# Web: downloads


def test_web_render_download(client, rendered):
    render = first_render(rendered, "splunk")
    response = client.get(web_render_url(rendered, "splunk", render.sigma_rule.rule_id, "spl"))

    assert response.status_code == 200
    assert response.content == render.query.encode("utf-8")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    expected = f'attachment; filename="{rule_stem(render)}.splunk.spl"'
    assert response["Content-Disposition"] == expected


def test_web_target_download(client, rendered):
    response = client.get(web_target_url(rendered, "splunk_savedsearches", "conf"))

    assert response.status_code == 200
    assert response.content == joined_queries(rendered_for(rendered, "splunk_savedsearches"))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    expected = f'attachment; filename="{SEED_SLUG}.splunk_savedsearches.conf"'
    assert response["Content-Disposition"] == expected


def test_web_and_api_downloads_match(client, api, rendered):
    render = first_render(rendered, "elasticsearch_lucene")
    rule_id = render.sigma_rule.rule_id
    web = client.get(web_render_url(rendered, "elasticsearch_lucene", rule_id, "lucene"))
    rest = api.get(api_render_url("elasticsearch_lucene", rule_id))

    assert web.content == rest.content
    assert web["Content-Disposition"] == rest["Content-Disposition"]


def test_web_render_download_wrong_extension_404(client, rendered):
    render = first_render(rendered, "splunk")
    url = web_render_url(rendered, "splunk", render.sigma_rule.rule_id, "kql")
    assert client.get(url).status_code == 404


def test_web_target_download_wrong_extension_404(client, rendered):
    assert client.get(web_target_url(rendered, "splunk", "txt")).status_code == 404


def test_web_render_download_failed_404(client, rendered):
    render = first_render(rendered, "sentinel_kql", status="failed")
    url = web_render_url(rendered, "sentinel_kql", render.sigma_rule.rule_id, "kql")
    assert client.get(url).status_code == 404


def test_web_downloads_unknown_target_404(client, rendered):
    rule = rendered.sigma_rules.first()
    assert client.get(web_render_url(rendered, "nope", rule.rule_id, "spl")).status_code == 404
    assert client.get(web_target_url(rendered, "nope", "spl")).status_code == 404


def test_web_downloads_hide_draft(client, admin_client, rendered):
    render = first_render(rendered, "splunk")
    Detection.objects.filter(pk=rendered.pk).update(status=Detection.Status.DRAFT)
    rule_url = web_render_url(rendered, "splunk", render.sigma_rule.rule_id, "spl")
    target_url = web_target_url(rendered, "splunk", "spl")

    assert client.get(rule_url).status_code == 404
    assert client.get(target_url).status_code == 404
    assert admin_client.get(rule_url).status_code == 200
    assert admin_client.get(target_url).status_code == 200


def test_web_downloads_reject_post(client, rendered):
    assert client.post(web_target_url(rendered, "splunk", "spl")).status_code == 405
