"""Tuning entries in headless Chromium: an author adds one from the detection page."""

import os

import pytest

from detections.models import Detection
from tests.test_browser import browser  # noqa: F401  (fixture)
from tests.test_browser_editing import session_page  # noqa: F401  (fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_author_adds_tuning_entry(session_page, live_server, author, seed_detection):  # noqa: F811
    page = session_page(author)
    console_errors = []
    page.on(
        "console",
        lambda message: message.type == "error" and console_errors.append(message.text),
    )
    page.goto(live_server.url + seed_detection.get_absolute_url())
    page.get_by_test_id("add-tuning-entry").click()

    page.fill("#id_condition", "Image|endswith:\n  - '\\restic.exe'\nUser: svc-backup\n")
    page.fill("#id_reason", "The **restic** backup job compresses user files.")
    page.fill("#id_owner", "Backup Team")
    page.fill("#id_ticket", "SOC-4711")
    page.fill("#id_comment", "Exclude the restic backup job")
    page.get_by_test_id("save").click()

    expect(page.get_by_test_id("message")).to_contain_text("Added the tuning entry")
    rows = page.get_by_test_id("tuning-row")
    expect(rows.filter(has_text="Backup Team")).to_contain_text('Image ends with "\\restic.exe"')
    expect(rows.filter(has_text="Backup Team")).to_contain_text('User is "svc-backup"')
    macro = page.locator("#tuning-macro-code")
    expect(macro).to_contain_text('User="svc-backup"')
    expect(macro).to_contain_text("restic.exe")
    detection = Detection.objects.get(pk=seed_detection.pk)
    assert detection.tuning_entries.filter(owner="Backup Team", ticket="SOC-4711").exists()
    assert console_errors == []
