"""Cross-site scripting payloads for Markdown fields, titles and references, and an HTML checker.

Each payload would run script in a browser if the portal let it through. They cover
script tags, event handler attributes, and `javascript:` and `data:` URLs, also
obfuscated with entities, case and whitespace. Others are SVG and MathML tricks and
markup that tries to break out of the sanitiser's parsing context.
"""

from html.parser import HTMLParser
from urllib.parse import urlsplit

MARKDOWN_PAYLOADS = [
    "<script>alert('script-tag')</script>",
    "<SCRIPT SRC=//127.0.0.1:9/x.js></SCRIPT>",
    "<img src=x onerror=alert('img-onerror')>",
    '<img src="x" ONERROR="alert(1)">',
    "[click](javascript:alert('md-link'))",
    "[click](JaVaScRiPt:alert('md-link-case'))",
    "[click](java&#x09;script:alert('md-link-tab'))",
    "[click]( javascript:alert('md-link-space'))",
    '<a href="javascript&colon;alert(1)">entity colon</a>',
    '<a href="&#106;avascript:alert(1)">entity j</a>',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![img](javascript:alert('md-image'))",
    "<svg onload=alert('svg-onload')></svg>",
    "<svg><script>alert('svg-script')</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text y="20">svg link</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<div style="position:fixed;inset:0">overlay</div>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<details open ontoggle=alert('details')>x</details>",
    '<form action="javascript:alert(1)"><button>submit</button></form>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:text/html,<script>alert(1)</script>">',
    '<base href="javascript:/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    "<style>body{background:red}</style>",
    "``` \n</code><script>alert('fence')</script>\n```",
    '"><img src=x onerror=alert(1)>',
]

# Values for a title or a reference: plain text fields that the templates escape.
TEXT_PAYLOADS = [
    "<script>alert('title')</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
]
REFERENCE_PAYLOADS = [
    "javascript:alert('reference')",
    " JavaScript:alert('reference-space')",
    "java\tscript:alert('reference-tab')",
    "data:text/html,<script>alert('reference-data')</script>",
    "vbscript:msgbox(1)",
]

SAFE_SCHEMES = {"http", "https", "mailto", ""}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"}
DANGEROUS_TAGS = {
    "script", "style", "iframe", "object", "embed", "svg", "math", "form", "base", "meta",
    "link", "noscript", "animate",
}  # fmt: skip


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in DANGEROUS_TAGS:
            self.problems.append(f"<{tag}> tag")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{name} attribute on <{tag}>")
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>")
            if name in URL_ATTRIBUTES and value is not None:
                cleaned = "".join(value.split()).lower()
                scheme = urlsplit(cleaned).scheme
                if scheme not in SAFE_SCHEMES:
                    self.problems.append(f"{name}={value!r} on <{tag}>")


def html_problems(html: str) -> list[str]:
    """Return every script-capable tag, handler, style or unsafe URL attribute in `html`."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.problems
