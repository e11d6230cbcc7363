"""Markdown rendering of detection text, sanitised because content authors write raw HTML too.

Every page and the live preview of the edit forms render Markdown through
`render_markdown`, so the preview shows the same HTML that readers get.
"""

from urllib.parse import urlsplit

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]
URL_SCHEMES = {"http", "https", "mailto"}

# The tags Python-Markdown emits for the extensions above, plus the inline HTML an
# author may reasonably write. Everything else (script, style, iframe, svg, math,
# form, object, embed, base, link, meta) is removed: its content too for script and
# style, only the tag for the others.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
    "pre", "s", "samp", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
CLEAN_CONTENT_TAGS = {"script", "style"}
# No `style`, no `class`, no `id` and no event handler (`on*`) attribute on any tag.
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
}
# Links written by authors point outside the portal: the target page gets no referrer
# and no window.opener, and search engines do not count the link.
LINK_REL = "noopener noreferrer nofollow"


def render_markdown(text: str) -> SafeString:
    """Convert Markdown to HTML and remove every tag, attribute and URL outside the allow-lists.

    nh3 (the ammonia sanitiser) keeps only ALLOWED_TAGS with ALLOWED_ATTRIBUTES,
    drops <script> and <style> with their content, and removes `href` and `src`
    values whose scheme is not http, https or mailto, such as `javascript:` and
    `data:`, however they are encoded.
    """
    html = markdown_lib.markdown(text or "", extensions=MARKDOWN_EXTENSIONS)
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=CLEAN_CONTENT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )
    return mark_safe(cleaned)


# A browser removes C0 controls and spaces at both ends of a URL, and tabs and line
# breaks anywhere in it, before it reads the scheme (WHATWG URL standard, basic URL
# parser), so " java\tscript:alert(1)" is a javascript: URL.
URL_EDGE_CHARACTERS = "".join(chr(code) for code in range(0x21))
URL_REMOVED_CHARACTERS = str.maketrans("", "", "\t\n\r")
WEB_SCHEMES = {"http", "https"}


def web_url(value: object) -> str:
    """Return `value` as a URL if a browser would read it as http(s), else ""."""
    text = str(value or "").strip(URL_EDGE_CHARACTERS).translate(URL_REMOVED_CHARACTERS)
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() in WEB_SCHEMES and parts.netloc:
        return text
    return ""
