"""The detail page in headless Chromium: tabs switch, and Sigma rules and rendered queries
download byte for byte."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from detections.models import Render

# Playwright's sync API runs an asyncio event loop in this thread, and Django raises
# SynchronousOnlyOperation on database access from such a thread unless this is set.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    if not CHROMIUM_PATH.exists():
        pytest.fail(
            f"{CHROMIUM_PATH} is missing; install Debian's chromium package "
            "(apt-get install chromium) to run the browser tests."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_detail_page_sigma_tab_and_download(page, transactional_db, live_server, seed_detection):
    rule = seed_detection.sigma_rules.first()
    page.goto(live_server.url + seed_detection.get_absolute_url())

    expect(page.get_by_test_id("query-code-0")).to_be_visible()
    expect(page.get_by_test_id("query-code-0")).to_contain_text("index=wineventlog")
    sigma_block = page.get_by_test_id(f"sigma-code-{rule.rule_id}")
    expect(sigma_block).to_be_hidden()

    page.get_by_test_id("tab-sigma").click()
    expect(sigma_block).to_be_visible()
    expect(page.get_by_test_id("query-code-0")).to_be_hidden()

    with page.expect_download() as download_info:
        page.get_by_test_id(f"download-sigma-{rule.rule_id}").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".yml")
    assert Path(download.path()).read_bytes() == rule.yaml_text.encode("utf-8")


def test_copy_button_copies_spl(page, transactional_db, live_server, seed_detection):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(live_server.url + seed_detection.get_absolute_url())

    block = page.get_by_test_id("query-code-0")
    block.get_by_role("button", name="Copy").click()
    expect(block.get_by_role("status")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == seed_detection.queries.get().text


def test_detail_without_javascript_shows_panels(
    browser, transactional_db, live_server, seed_detection
):
    rule = seed_detection.sigma_rules.first()
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live_server.url + seed_detection.get_absolute_url())
        expect(page.get_by_test_id("query-code-0")).to_be_visible()
        expect(page.get_by_test_id(f"sigma-code-{rule.rule_id}")).to_be_visible()
        expect(page.get_by_test_id("tab-sigma")).to_be_hidden()
    finally:
        context.close()


def test_render_tab_shows_and_downloads_query(page, transactional_db, live_server, seed_detection):
    # --force renders each rule even though loading the content already queued it.
    call_command(
        "render_queries", "--inline", "--force", stdout=io.StringIO(), stderr=io.StringIO()
    )
    render = (
        Render.objects.filter(
            sigma_rule__detection=seed_detection, target="splunk", status=Render.Status.RENDERED
        )
        .select_related("sigma_rule")
        .order_by("sigma_rule__position")
        .first()
    )
    rule_id = render.sigma_rule.rule_id
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(live_server.url + seed_detection.get_absolute_url())

    block = page.get_by_test_id(f"render-code-splunk-{rule_id}")
    expect(block).to_be_hidden()
    expect(page.get_by_test_id("render-status")).to_have_count(0)

    page.get_by_role("tab", name="Splunk SPL", exact=True).click()
    expect(block).to_be_visible()
    expect(block.locator("pre")).to_have_text(render.query)
    expect(page.get_by_test_id("query-code-0")).to_be_hidden()

    block.get_by_role("button", name="Copy").click()
    expect(block.get_by_role("status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == render.query

    with page.expect_download() as download_info:
        page.get_by_test_id(f"download-render-splunk-{rule_id}").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".splunk.spl")
    assert Path(download.path()).read_bytes() == render.query.encode("utf-8")


def test_validation_started_from_detail_page(
    page, transactional_db, live_server, seed_detection, django_user_model
):
    from detections.models import ValidationRun
    from detections.validation.runs import validation_execute

    django_user_model.objects.create_user("analyst", password="a-long-password-1")
    page.goto(live_server.url + "/accounts/login/?next=" + seed_detection.get_absolute_url())
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "a-long-password-1")
    page.get_by_test_id("login-form").get_by_role("button", name="Sign in").click()

    page.get_by_test_id("validation-start").get_by_role("button", name="Run the tests").click()

    expect(page.get_by_test_id("run-pending")).to_be_visible()
    run = ValidationRun.objects.filter(trigger=ValidationRun.Trigger.WEB).get()
    # The test settings keep messages in memory, so the worker's part runs here.
    validation_execute(run.pk, task_id="browser-test")
    page.reload()
    expect(page.get_by_test_id("run-results")).to_contain_text("PowerShell GZipStream Decompression")
    expect(page.get_by_test_id("validation-badge")).to_have_text("failing 15/16")
    page.goto(live_server.url + seed_detection.get_absolute_url() + "#tests")
    expect(page.get_by_test_id("test-last-result").first).to_contain_text("2 of 5 recorded events matched")


def test_tuning_table_and_macro_download(page, transactional_db, live_server, seed_detection):
    from detections.downloads import macros_conf_text

    page.goto(live_server.url + seed_detection.get_absolute_url())

    rows = page.get_by_test_id("tuning-row")
    expect(rows).to_have_count(6)
    expect(rows.first).to_contain_text('User is "CORP\\svc_etl"')
    expect(page.get_by_test_id("tuned-query-code-0")).to_contain_text(
        "`detect_archive_via_library_in_splunk_filter`"
    )
    with page.expect_download() as download_info:
        page.get_by_test_id("download-macros").click()
    download = download_info.value
    assert download.suggested_filename == "archive-via-library-splunk-macros.conf"
    assert Path(download.path()).read_text(encoding="utf-8") == macros_conf_text(seed_detection)
