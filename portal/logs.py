"""Log filter that keeps secrets, tokens, passwords, cookies and credentials out of logs."""

import logging
import re

REDACTED = "[redacted]"

# Names of record attributes and of key=value pairs whose value is never logged.
SECRET_NAME = re.compile(
    r"(?i)(authorization|cookie|password|passwd|secret|token|api[_-]?key|sessionid|csrf)"
)
_PATTERNS = [
    # Credentials inside URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@"), r"\1:" + REDACTED + "@"),
    # HTTP authorization schemes written out: "Bearer abc", "Token abc", "Basic abc"
    (re.compile(r"(?i)\b(bearer|token|basic|digest)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # Header lines and key=value or key: value pairs with a secret-looking name.
    (
        re.compile(
            r"(?i)((?:authorization|cookie|set-cookie|x-api-key|[a-z0-9_-]*(?:password|passwd"
            r"|secret|token|api[_-]?key|sessionid|csrftoken)[a-z0-9_-]*)[\"']?\s*[=:]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s&;,\"']+)"
        ),
        r"\1" + REDACTED,
    ),
]


def redact(text: str) -> str:
    """Replace credentials, tokens and secret key=value pairs in text."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Scrub every record before a handler formats it.

    Django's request loggers attach the request object, whose text form carries the
    query string, so it is replaced by the method and path. The message, its
    arguments, the traceback text and string attributes added with `extra` are
    scrubbed with `redact`, and attributes with a secret-looking name are dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = record.__dict__.pop("request", None)
        if request is not None and hasattr(request, "path"):
            record.method = getattr(request, "method", "")
            record.path = request.path
        record.msg = redact(record.getMessage())
        record.args = ()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD_ATTRIBUTES:
                continue
            if SECRET_NAME.search(key):
                record.__dict__[key] = REDACTED
            elif isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}
