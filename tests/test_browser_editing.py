"""Editing in headless Chromium: previews, saving, conflicts, history, permissions and XSS.

Each test signs its users in through Django's test client and hands the session
cookie to a browser context, so two contexts are two independent sessions.
"""

import os

import pytest
from django.test import Client
from django.urls import reverse

from detections import editing
from detections.models import Detection, FalsePositive, Preview
from detections.previews import preview_run
from playbooks.models import Playbook
from tests.test_browser import browser  # noqa: F401  (fixture)
from tests.xss_payloads import MARKDOWN_PAYLOADS, REFERENCE_PAYLOADS, TEXT_PAYLOADS

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

@pytest.fixture
def session_page(browser, live_server):  # noqa: F811
    """Return a function that opens a page in a new browser context signed in as `user`."""
    contexts = []

    def open_page(user=None):
        context = browser.new_context()
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies["sessionid"]
            context.add_cookies(
                [{"name": "sessionid", "value": cookie.value, "url": live_server.url}]
            )
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield open_page
    for context in contexts:
        context.close()


def edit_url(live_server, name: str, detection: Detection, *args) -> str:
    return live_server.url + reverse(f"detections:{name}", args=[detection.slug, *args])


def test_author_edits_tuning_notes_with_preview(session_page, live_server, author, seed_detection):
    page = session_page(author)
    page.goto(live_server.url + seed_detection.get_absolute_url())
    page.get_by_test_id("edit-tuning").click()

    page.fill("#id_tuning_notes", "Exclude **build servers** from `backup.exe`.")
    preview = page.get_by_test_id("preview-tuning_notes")
    expect(preview).to_contain_text("Exclude build servers from backup.exe.")
    expect(preview.locator("strong")).to_have_text(["build servers"])
    page.fill("#id_comment", "Tune for build servers")
    page.get_by_test_id("save").click()

    expect(page.get_by_test_id("message")).to_contain_text("Saved the tuning notes")
    expect(page.get_by_test_id("tuning-notes").locator("strong")).to_have_text(["build servers"])
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "Exclude **build servers** from `backup.exe`."
    assert editing.history(seed_detection)[0].comment == "Tune for build servers"
    assert page.dialogs == []


def test_conflict_between_two_sessions(session_page, live_server, author, reviewer, seed_detection):
    first = session_page(author)
    second = session_page(reviewer)
    url = edit_url(live_server, "tuning_edit", seed_detection)
    first.goto(url)
    second.goto(url)
    start = seed_detection.revision

    first.fill("#id_tuning_notes", "Notes from the first session.")
    first.get_by_test_id("save").click()
    expect(first.get_by_test_id("message")).to_contain_text("Saved")
    second.fill("#id_tuning_notes", "Long notes typed in the second session.")
    second.get_by_test_id("save").click()

    conflict = second.get_by_test_id("conflict")
    expect(conflict).to_contain_text(f"You started from revision {start}")
    expect(second.get_by_test_id("conflict-changes")).to_contain_text(
        "Notes from the first session."
    )
    expect(second.locator("#id_tuning_notes")).to_have_value(
        "Long notes typed in the second session."
    )
    save = second.get_by_test_id("save")
    expect(save).to_have_text(f"Save on top of revision {start + 1}")
    save.click()

    expect(second.get_by_test_id("message")).to_contain_text("Saved")
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "Long notes typed in the second session."
    assert seed_detection.revision == start + 2


def test_history_diff_and_restore(session_page, live_server, author, seed_detection):
    def set_notes(text):
        detection = Detection.objects.get(pk=seed_detection.pk)

        def mutate(locked):
            locked.tuning_notes = text
            locked.save()

        editing.edit(detection, user=author, expected_revision=detection.revision, mutate=mutate)

    set_notes("Version one of the notes.")
    set_notes("Version two of the notes.")
    page = session_page(author)
    page.goto(live_server.url + seed_detection.get_absolute_url())
    page.get_by_test_id("history-link").click()

    page.get_by_test_id("compare").click()
    diff = page.get_by_test_id("diff")
    expect(diff).to_contain_text("tuning_notes")
    expect(diff.get_by_test_id("diff-side")).to_contain_text("Version one of the notes.")
    expect(diff.get_by_test_id("diff-side")).to_contain_text("Version two of the notes.")
    page.select_option("#diff-view", "unified")
    page.get_by_test_id("compare").click()
    expect(page.get_by_test_id("diff-unified")).to_contain_text("+Version two of the notes.")

    current = Detection.objects.get(pk=seed_detection.pk).revision
    page.get_by_test_id(f"restore-{current - 1}").click()
    expect(page.get_by_test_id("diff-side")).to_contain_text("Version one of the notes.")
    page.fill("#restore-comment", "Back to version one")
    page.get_by_test_id("confirm-restore").click()

    expect(page.get_by_test_id("message")).to_contain_text(f"as revision {current + 1}")
    expect(page.get_by_test_id("history-row").first).to_contain_text("Back to version one")
    seed_detection.refresh_from_db()
    assert seed_detection.tuning_notes == "Version one of the notes."


def test_sigma_preview_shows_spl_and_errors(session_page, live_server, author, seed_detection):
    rule = seed_detection.sigma_rules.order_by("position").first()
    page = session_page(author)
    page.goto(edit_url(live_server, "sigma_edit", seed_detection, rule.rule_id))
    query = page.get_by_test_id("sigma-preview-query")
    status = page.get_by_test_id("sigma-preview-status")

    expect(status).to_contain_text("Converting on a worker")
    # The test settings keep Celery messages in memory, so the worker's part runs here.
    preview_run(Preview.objects.get().pk)
    expect(query).not_to_be_empty()
    expect(status).to_contain_text("Converted with pySigma")

    lines = rule.yaml_text.split("\n")
    number = next(index for index, line in enumerate(lines, 1) if line.startswith("level:"))
    lines[number - 1] = "level: apocalyptic"
    page.fill("#id_yaml_text", "\n".join(lines))
    expect(status).to_contain_text("Converting on a worker")
    preview_run(Preview.objects.order_by("-created_at").first().pk)
    expect(status).to_contain_text(f"Line {number}: invalid Sigma rule: 'apocalyptic'")

    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("yaml-error-line")).to_contain_text("level: apocalyptic")
    selected = page.evaluate(
        "(() => { const t = document.querySelector('#id_yaml_text');"
        " return t.value.substring(t.selectionStart, t.selectionEnd); })()"
    )
    assert selected == "level: apocalyptic"
    rule.refresh_from_db()
    assert "apocalyptic" not in rule.yaml_text


def test_viewer_refused_edit_page(session_page, live_server, viewer, seed_detection):
    page = session_page(viewer)

    response = page.goto(edit_url(live_server, "tuning_edit", seed_detection))

    assert response.status == 403
    page.goto(live_server.url + seed_detection.get_absolute_url())
    expect(page.get_by_test_id("edit-tuning")).to_have_count(0)
    expect(page.get_by_test_id("workflow-form")).to_have_count(0)


def test_outsider_sees_no_drafts(session_page, live_server, outsider, seed_detection):
    Detection.objects.filter(pk=seed_detection.pk).update(status=Detection.Status.DRAFT)
    page = session_page(outsider)

    page.goto(live_server.url + reverse("detections:detection_list"))
    expect(page.get_by_text(seed_detection.title)).to_have_count(0)
    response = page.goto(live_server.url + seed_detection.get_absolute_url())

    assert response.status == 404


def test_xss_payloads_render_inert(session_page, live_server, author, seed_detection):
    markdown = "\n\n".join(MARKDOWN_PAYLOADS)
    Detection.objects.filter(pk=seed_detection.pk).update(
        title=" ".join(TEXT_PAYLOADS),
        tuning_notes=markdown,
        description=markdown,
        references=REFERENCE_PAYLOADS,
        canonical_reference="javascript:alert('canonical')",
    )
    FalsePositive.objects.filter(detection=seed_detection).update(description=markdown)
    page = session_page(author)

    page.goto(live_server.url + seed_detection.get_absolute_url())
    page.wait_for_load_state("networkidle")
    expect(page.locator("h1")).to_contain_text("<script>alert('title')</script>")
    references = page.get_by_test_id("reference")
    expect(references).to_have_count(len(REFERENCE_PAYLOADS))
    expect(references.locator("a")).to_have_count(0)

    page.goto(edit_url(live_server, "tuning_edit", seed_detection))
    expect(page.get_by_test_id("preview-tuning_notes")).to_contain_text("entity colon")
    # An unclosed <style> in the payloads hides everything after it, so the marker
    # that shows the new preview arrived goes first.
    page.fill("#id_tuning_notes", "Typed in the browser\n\n" + markdown)
    expect(page.get_by_test_id("preview-tuning_notes")).to_contain_text("Typed in the browser")
    page.wait_for_load_state("networkidle")

    assert page.dialogs == []
    script_count = page.evaluate(
        "document.querySelectorAll('main script, main svg, main iframe').length"
    )
    assert script_count == 0


def test_author_edits_playbook_step(session_page, live_server, author, seed_detection):
    playbook = Playbook.objects.get()
    step = playbook.steps.first()
    page = session_page(author)
    page.goto(live_server.url + playbook.get_absolute_url())
    page.get_by_test_id(f"edit-step-{step.number}").click()

    page.fill("#id_action", "Isolate the host and **keep the memory image**.")
    expect(page.get_by_test_id("preview-action").locator("strong")).to_have_text(
        ["keep the memory image"]
    )
    page.fill("#id_comment", "Keep memory")
    page.get_by_test_id("save").click()

    expect(page.get_by_test_id("message")).to_contain_text(f"Saved response step {step.number}")
    expect(page.get_by_test_id("playbook-step").first).to_contain_text("keep the memory image")
    step.refresh_from_db()
    assert step.action == "Isolate the host and **keep the memory image**."
    assert editing.history(Playbook.objects.get())[0].comment == "Keep memory"
