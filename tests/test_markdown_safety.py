"""The Markdown sanitiser and the link filters against cross-site scripting payloads."""

import re
from pathlib import Path

import pytest

from detections.markdown import render_markdown, web_url
from detections.templatetags.detection_tags import external_link
from tests.xss_payloads import MARKDOWN_PAYLOADS, REFERENCE_PAYLOADS, html_problems


@pytest.mark.parametrize("payload", MARKDOWN_PAYLOADS)
def test_markdown_payload_rendered_inert(payload):
    html = render_markdown(f"Before\n\n{payload}\n\nAfter")

    assert html_problems(html) == []
    assert "javascript:" not in html.lower()
    assert "<script" not in html.lower()


def test_markdown_keeps_ordinary_formatting():
    html = render_markdown(
        "# Heading\n\n*em* **strong** `code`\n\n- item\n\n"
        "[link](https://example.org/a?b=1)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )

    assert "<h1>Heading</h1>" in html
    assert "<em>em</em>" in html
    assert "<strong>strong</strong>" in html
    assert "<code>code</code>" in html
    assert "<li>item</li>" in html
    assert '<a href="https://example.org/a?b=1" rel="noopener noreferrer nofollow">link</a>' in html
    assert "<table>" in html


def test_markdown_escapes_text_of_removed_tags():
    html = render_markdown("<svg><text>inside</text></svg> &lt;b&gt;")

    assert "<svg" not in html
    assert "&lt;b&gt;" in html


@pytest.mark.parametrize("reference", REFERENCE_PAYLOADS)
def test_web_url_rejects_script_schemes(reference):
    assert web_url(reference) == ""


@pytest.mark.parametrize(
    "url", ["https://attack.mitre.org/techniques/T1560/002/", "http://example.org/x"]
)
def test_web_url_keeps_web_links(url):
    assert web_url(url) == url


def test_external_link_shows_script_reference_as_text():
    html = external_link("javascript:alert(1)")

    assert "<a" not in html
    assert html == '<span class="inert-link">javascript:alert(1)</span>'


def test_external_link_escapes_label_and_url():
    html = external_link('https://example.org/?q="><script>', "<b>name</b>")

    assert "<script>" not in html
    assert "&lt;b&gt;name&lt;/b&gt;" in html
    assert 'href="https://example.org/?q=&quot;&gt;&lt;script&gt;"' in html


@pytest.mark.django_db
def test_detail_page_payloads_inert(client, viewer, seed_detection):
    from detections.models import Detection, FalsePositive
    from tests.xss_payloads import TEXT_PAYLOADS

    markdown = "\n\n".join(MARKDOWN_PAYLOADS)
    Detection.objects.filter(pk=seed_detection.pk).update(
        title=" ".join(TEXT_PAYLOADS),
        description=markdown,
        summary=markdown,
        tuning_notes=markdown,
        references=REFERENCE_PAYLOADS,
        canonical_reference="javascript:alert(1)",
    )
    FalsePositive.objects.filter(detection=seed_detection).update(description=markdown)
    client.force_login(viewer)

    page = client.get(seed_detection.get_absolute_url()).content.decode()

    for section in ("description", "how-it-works", "false-positives", "tuning", "references"):
        match = re.search(rf'<section id="{section}".*?</section>', page, re.DOTALL)
        assert match, f"no section {section!r} on the page"
        assert html_problems(match.group(0)) == [], section
    references = re.search(r'<section id="references".*?</section>', page, re.DOTALL).group(0)
    assert "<a " not in references
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in page
    assert "<script>alert(" not in page


TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"\sstyle\s*=", re.IGNORECASE)


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES_DIR.rglob("*.html")), ids=lambda path: path.name
)
def test_template_has_no_inline_script_or_style(template):
    # A Content Security Policy without 'unsafe-inline' blocks all three.
    text = template.read_text(encoding="utf-8")

    assert INLINE_SCRIPT.findall(text) == []
    assert INLINE_HANDLER.findall(text) == []
    assert INLINE_STYLE.findall(text) == []
