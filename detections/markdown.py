"""Markdown rendering of detection text, sanitised because content authors write raw HTML too."""

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> SafeString:
    """Convert Markdown to HTML and remove every tag and attribute outside nh3's allow-list.

    nh3 drops <script> and <style> together with their content, event-handler
    attributes and links with schemes other than http, https and mailto.
    """
    html = markdown_lib.markdown(text or "", extensions=MARKDOWN_EXTENSIONS)
    return mark_safe(nh3.clean(html, url_schemes=URL_SCHEMES))
