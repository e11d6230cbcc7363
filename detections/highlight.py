"""Syntax highlighting of queries and Sigma rules with Pygments."""

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

# static/css/pygments.css is generated from this style by `pygments_stylesheet`.
PYGMENTS_STYLE = "default"
CSS_CLASS = "highlight"


def highlight_code(text: str, language: str) -> SafeString:
    """Render `text` as highlighted HTML, or as plain escaped text for an unknown language.

    The lexer keeps leading and trailing newlines, so the text of the <pre> block equals
    `text`. NOTE: Pygments turns CRLF and CR line ends into LF, so only the download
    keeps a query's original line ends.
    """
    options = {"stripnl": False, "ensurenl": False}
    try:
        lexer = get_lexer_by_name(language.lower(), **options)
    except ClassNotFound:
        lexer = get_lexer_by_name("text", **options)
    formatter = HtmlFormatter(cssclass=CSS_CLASS, wrapcode=True)
    html = highlight(text, lexer, formatter)
    if not text.endswith("\n"):
        # HtmlFormatter ends the last line with a newline even where the text has none.
        head, end_tags, tail = html.rpartition("\n</code></pre>")
        if end_tags:
            html = head + "</code></pre>" + tail
    # Pygments escapes every token, so its output is safe to insert as HTML.
    return mark_safe(html)


def pygments_stylesheet() -> str:
    """Build the CSS that static/css/pygments.css must contain."""
    formatter = HtmlFormatter(style=PYGMENTS_STYLE, cssclass=CSS_CLASS)
    header = (
        f'/* Generated from Pygments\' "{PYGMENTS_STYLE}" style by '
        "detections.highlight.pygments_stylesheet; do not edit by hand. */\n"
    )
    return header + formatter.get_style_defs(f".{CSS_CLASS}") + "\n"
