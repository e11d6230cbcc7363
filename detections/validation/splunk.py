"""Client for a connected Splunk: ingestion over the HTTP Event Collector, searches as jobs.

This module is the only code in the portal that talks to Splunk. Events go to HEC's
``/services/collector/event`` endpoint with a HEC token (``Authorization: Splunk <token>``).
Searches run as REST search jobs on the management port with an authentication token
(``Authorization: Bearer <token>``), always with ``output_mode=json``.

Every failure is raised as ``SplunkError`` with a ``kind`` that callers can act on. Only
transient faults are retried: connection failures, HTTP 502, 503 and 504 (which include
HEC's "Server is busy", code 9). Rejected tokens, rejected searches and rejected events
are raised at once.

Response shapes follow Splunk's REST API and HEC documentation. Management errors carry
``{"messages": [{"type": "FATAL", "text": "..."}]}``. HEC responds with
``{"text": ..., "code": N}`` and the codes of the HEC troubleshooting table (0 Success, 4 Invalid token, 6 Invalid data
format, 7 Incorrect index, 9 Server is busy, 12 Event field is required and so on).
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

ERROR_KINDS = frozenset(
    {
        "auth",
        "forbidden",
        "syntax",
        "job_failed",
        "timeout",
        "server",
        "hec_rejected",
        "unreachable",
        "bad_response",
    }
)
RETRYABLE_STATUS_CODES = frozenset({502, 503, 504})
HEC_EVENT_PATH = "/services/collector/event"
JOBS_PATH = "/services/search/jobs"
HEC_EVENT_KEYS = ("time", "host", "source", "sourcetype", "event")
# Splunk index names contain lowercase letters, digits, underscores and hyphens, and do
# not start with an underscore or hyphen (indexes.conf).
INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
# Scopes end up unquoted in a portal_scope::<scope> term, so they are kept to characters
# that need no quoting or escaping there.
SCOPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SEARCH_COMMAND_START = re.compile(r"\s*(?:search(?=\s|$)|\|)")


class SplunkNotConfigured(ImproperlyConfigured):
    """A Splunk setting is missing or invalid; the message names it and how to set it."""


class SplunkError(Exception):
    """A failed call to Splunk.

    ``kind`` is one of ERROR_KINDS, ``status_code`` the HTTP status (None when no response
    arrived) and ``message`` Splunk's own message text. ``hec_code`` is HEC's status code
    for HEC responses. ``str(error)`` is a complete sentence for logs and the user.
    """

    def __init__(
        self,
        kind: str,
        description: str,
        *,
        status_code: int | None = None,
        message: str = "",
        hec_code: int | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown SplunkError kind {kind!r}; use one of {sorted(ERROR_KINDS)}")
        super().__init__(description)
        self.kind = kind
        self.status_code = status_code
        self.message = message
        self.hec_code = hec_code


class SplunkClient:
    """Sends events to a Splunk test index and runs searches over them.

    ``url`` is the management base URL (https://splunk:8089), ``hec_url`` the HEC base URL
    (https://splunk:8088) and ``index`` the test index that the HEC token may write to.
    ``verify`` is True, False or the path of a CA bundle (file or folder). ``timeout``
    bounds each HTTP call and ``search_timeout`` each wait for a search job or for events
    to become searchable, both in seconds. ``poll_interval`` is the pause between polls.
    """

    def __init__(
        self,
        url: str,
        token: str,
        hec_url: str,
        hec_token: str,
        index: str,
        verify: bool | str | ssl.SSLContext,
        timeout: float,
        search_timeout: float,
        poll_interval: float = 0.5,
        *,
        max_attempts: int = 4,
        retry_backoff: float = 0.5,
        max_retry_backoff: float = 8.0,
        batch_size: int = 500,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not INDEX_NAME.fullmatch(index):
            raise ValueError(
                f"index {index!r} is not a valid Splunk index name; use lowercase letters, "
                "digits, underscores and hyphens, not starting with _ or -"
            )
        if max_attempts < 1 or batch_size < 1:
            raise ValueError("max_attempts and batch_size must be at least 1")
        self.url = url.rstrip("/")
        self.hec_url = hec_url.rstrip("/")
        self.index = index
        self.timeout = timeout
        self.search_timeout = search_timeout
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff
        self.batch_size = batch_size
        self._management_headers = {"Authorization": f"Bearer {token}"}
        self._hec_headers = {
            "Authorization": f"Splunk {hec_token}",
            "Content-Type": "application/json",
        }
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            verify=_ssl_verification(verify),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, **options: Any) -> SplunkClient:
        """Build a client from the SPLUNK_* settings, raising SplunkNotConfigured if one is missing.

        Keyword options go to the constructor unchanged.
        """
        required = (
            ("SPLUNK_URL", "the Splunk management URL, for example https://splunk.example:8089"),
            ("SPLUNK_TOKEN", "a Splunk authentication token whose user may run searches"),
            ("SPLUNK_HEC_URL", "the HTTP Event Collector URL, for example https://splunk.example:8088"),
            ("SPLUNK_HEC_TOKEN", "an HTTP Event Collector token allowed to write to SPLUNK_TEST_INDEX"),
        )
        for name, hint in required:
            value = getattr(settings, name, "")
            if not value:
                raise SplunkNotConfigured(f"{name} is not set: set it to {hint}")
            if name.endswith("_URL") and not re.match(r"https?://[^/]", value):
                raise SplunkNotConfigured(
                    f"{name}={value!r} is not an http or https URL: set it to {hint}"
                )
        index = getattr(settings, "SPLUNK_TEST_INDEX", "") or "portal_validation"
        if not INDEX_NAME.fullmatch(index):
            raise SplunkNotConfigured(
                f"SPLUNK_TEST_INDEX={index!r} is not a valid Splunk index name: use lowercase "
                "letters, digits, underscores and hyphens, not starting with _ or -"
            )
        return cls(
            settings.SPLUNK_URL,
            settings.SPLUNK_TOKEN,
            settings.SPLUNK_HEC_URL,
            settings.SPLUNK_HEC_TOKEN,
            index,
            _verify_setting(getattr(settings, "SPLUNK_VERIFY_TLS", "true")),
            _seconds_setting("SPLUNK_TIMEOUT", getattr(settings, "SPLUNK_TIMEOUT", 30)),
            _seconds_setting(
                "SPLUNK_SEARCH_TIMEOUT", getattr(settings, "SPLUNK_SEARCH_TIMEOUT", 120)
            ),
            **({"poll_interval": _seconds_setting(
                "SPLUNK_POLL_INTERVAL", getattr(settings, "SPLUNK_POLL_INTERVAL", 0.5)
            )} | options),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SplunkClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Ingestion

    def send_events(self, hec_events: Sequence[Mapping[str, Any]], scope: str) -> None:
        """Send events to the test index through HEC, tagged with the indexed field portal_scope.

        Each input has ``time`` (epoch seconds), ``host``, ``source``, ``sourcetype`` and
        ``event`` (a dict of the event's fields). Events go in batches of ``batch_size``
        concatenated JSON objects per request. A rejected batch raises SplunkError
        ``hec_rejected``, and the batches before it stay indexed.
        """
        _check_scope(scope)
        payloads = [self._hec_payload(position, event, scope) for position, event in enumerate(hec_events)]
        for start in range(0, len(payloads), self.batch_size):
            batch = payloads[start : start + self.batch_size]
            response = self._send(
                "POST",
                self.hec_url + HEC_EVENT_PATH,
                action="send events to the HTTP Event Collector",
                service="hec",
                headers=self._hec_headers,
                content="".join(batch).encode("utf-8"),
            )
            self._check_hec_response(response, start, len(payloads))
        logger.info(
            "Sent %d events to Splunk index %s for scope %s", len(payloads), self.index, scope
        )

    def _hec_payload(self, position: int, event: Mapping[str, Any], scope: str) -> str:
        payload = {key: event[key] for key in HEC_EVENT_KEYS if key in event}
        payload["index"] = self.index
        payload["fields"] = {"portal_scope": scope}
        try:
            return json.dumps(payload, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event {position} cannot be encoded as JSON for HEC: {exc}") from exc

    def _check_hec_response(self, response: httpx.Response, batch_start: int, total: int) -> None:
        body = _json_body(response, "send events to the HTTP Event Collector")
        code = body.get("code") if isinstance(body, dict) else None
        text = body.get("text", "") if isinstance(body, dict) else ""

        if not isinstance(code, int):
            raise SplunkError(
                "bad_response",
                f"HTTP Event Collector responded with HTTP {response.status_code} without the "
                f"documented text and code: {_excerpt(response.text)}",
                status_code=response.status_code,
            )
        message = f"{text} (code {code})"
        if response.is_success and code == 0:
            return

        if response.status_code >= 500:
            raise SplunkError(
                "server",
                f"HTTP Event Collector returned a server error ({response.status_code}): {message}",
                status_code=response.status_code,
                message=message,
                hec_code=code,
            )

        description = (
            f"HTTP Event Collector rejected the events ({response.status_code}, code {code}): {text}"
        )
        invalid_number = body.get("invalid-event-number")
        if isinstance(invalid_number, int):
            description += f"; the first invalid event is event {batch_start + invalid_number} of {total}"
        if batch_start:
            description += f"; the {batch_start} events before this batch were accepted"
        raise SplunkError(
            "hec_rejected",
            description,
            status_code=response.status_code,
            message=message,
            hec_code=code,
        )

    def wait_until_searchable(self, scope: str, expected: int) -> None:
        """Poll a count of the scope's events until it reaches ``expected``.

        Raises SplunkError ``timeout`` naming the scope and both counts when the count
        stays short for ``search_timeout`` seconds. Indexing is asynchronous, so events
        that HEC accepted can take a while to show up in searches.
        """
        spl = f"search {_scope_terms(scope, self.index)} | stats count"
        deadline = time.monotonic() + self.search_timeout
        seen = 0
        while True:
            try:
                rows = self._run_search(spl, deadline)
            except SplunkError as exc:
                if exc.kind != "timeout":
                    raise
                raise self._searchable_timeout(scope, seen, expected) from exc
            seen = _count_from_rows(rows)
            if seen >= expected:
                if seen > expected:
                    logger.warning(
                        "Scope %s has %d searchable events in index %s, more than the %d sent",
                        scope,
                        seen,
                        self.index,
                        expected,
                    )
                return
            if time.monotonic() + self.poll_interval >= deadline:
                raise self._searchable_timeout(scope, seen, expected)
            time.sleep(self.poll_interval)

    def _searchable_timeout(self, scope: str, seen: int, expected: int) -> SplunkError:
        return SplunkError(
            "timeout",
            f"Only {seen} of {expected} events of scope {scope} were searchable in index "
            f"{self.index} after {self.search_timeout:g} s; Splunk may be indexing slowly, "
            "or HEC dropped events",
            message=f"{seen} of {expected} events searchable",
        )

    # Searching

    def search(self, spl: str) -> list[dict[str, Any]]:
        """Run ``spl`` as a search job and return all its result rows.

        A query that starts with neither ``search`` nor ``|`` gets ``search `` prepended,
        as the REST API requires. The job runs over all time (``earliest_time=0``). Raises
        SplunkError ``syntax`` for rejected SPL, ``job_failed`` for a failed job and
        ``timeout`` when the job is not done within ``search_timeout`` seconds, after
        trying to cancel it.
        """
        return self._run_search(spl, time.monotonic() + self.search_timeout)

    def scope_query(self, spl: str, scope: str) -> str:
        """Rewrite ``spl`` to read only this client's test index and ``scope``; see scope_query."""
        return scope_query(spl, scope, self.index)

    def _run_search(self, spl: str, deadline: float) -> list[dict[str, Any]]:
        if not SEARCH_COMMAND_START.match(spl):
            spl = "search " + spl
        sid = self._create_job(spl)
        result_count = self._wait_for_job(sid, deadline)
        return self._read_results(sid, result_count, deadline)

    def _create_job(self, spl: str) -> str:
        action = "create a search job"
        response = self._send(
            "POST",
            self.url + JOBS_PATH,
            action=action,
            service="management",
            headers=self._management_headers,
            data={
                "search": spl,
                "output_mode": "json",
                "earliest_time": "0",
                "exec_mode": "normal",
            },
        )
        self._check_management_response(response, action, creating_job=True)
        body = _json_body(response, action)
        sid = body.get("sid") if isinstance(body, dict) else None
        if not isinstance(sid, str) or not sid:
            raise _bad_response(response, action, "no sid")
        logger.debug("Created Splunk search job %s", sid)
        return sid

    def _wait_for_job(self, sid: str, deadline: float) -> int | None:
        """Poll a job until it is done and return its resultCount, None if unreadable."""
        action = f"read search job {sid}"
        while True:
            response = self._send(
                "GET",
                f"{self.url}{JOBS_PATH}/{sid}",
                action=action,
                service="management",
                headers=self._management_headers,
                params={"output_mode": "json"},
            )
            self._check_management_response(response, action)
            content = _job_content(response, action)
            state = str(content.get("dispatchState", ""))
            if _flag(content.get("isFailed")) or state == "FAILED":
                message = _join_messages(_job_messages(content)) or "no message"
                raise SplunkError(
                    "job_failed",
                    f"Splunk search job {sid} failed: {message}",
                    status_code=response.status_code,
                    message=message,
                )
            if _flag(content.get("isDone")):
                try:
                    return int(content.get("resultCount"))
                except (TypeError, ValueError):
                    return None
            if time.monotonic() >= deadline:
                raise self._job_timeout(sid, state)
            time.sleep(max(0.0, min(self.poll_interval, deadline - time.monotonic())))

    def _job_timeout(self, sid: str, state: str) -> SplunkError:
        try:
            self._cancel_job(sid)
        except SplunkError as exc:
            logger.warning("Could not cancel timed-out Splunk search job %s: %s", sid, exc)
            outcome = f"cancelling it failed: {exc}"
        else:
            outcome = "the job was cancelled"
        return SplunkError(
            "timeout",
            f"Splunk search job {sid} was not done after {self.search_timeout:g} s "
            f"(dispatch state {state or 'unknown'}); {outcome}",
            message=f"dispatch state {state or 'unknown'}",
        )

    def _cancel_job(self, sid: str) -> None:
        action = f"cancel search job {sid}"
        response = self._send(
            "POST",
            f"{self.url}{JOBS_PATH}/{sid}/control",
            action=action,
            service="management",
            headers=self._management_headers,
            data={"action": "cancel", "output_mode": "json"},
        )
        self._check_management_response(response, action)
        logger.info("Cancelled Splunk search job %s", sid)

    def _read_results(
        self, sid: str, result_count: int | None, deadline: float
    ) -> list[dict[str, Any]]:
        """Read every result row of a done job.

        count=0 requests all rows, but Splunk caps the rows of one response at
        maxresultrows (limits.conf), so pages are read from increasing offsets until the
        job's resultCount is reached or a page comes back empty.
        """
        rows: list[dict[str, Any]] = []
        while True:
            page = self._read_results_page(sid, len(rows), deadline)
            rows.extend(page)
            if not page or result_count is None or len(rows) >= result_count:
                return rows

    def _read_results_page(self, sid: str, offset: int, deadline: float) -> list[dict[str, Any]]:
        action = f"read the results of search job {sid}"
        while True:
            response = self._send(
                "GET",
                f"{self.url}{JOBS_PATH}/{sid}/results",
                action=action,
                service="management",
                headers=self._management_headers,
                params={"output_mode": "json", "count": "0", "offset": str(offset)},
            )
            self._check_management_response(response, action)
            # 204 No Content: the job is done but its results are not readable yet.
            if response.status_code != 204:
                break
            if time.monotonic() >= deadline:
                raise self._job_timeout(sid, "DONE, results not ready")
            time.sleep(self.poll_interval)

        body = _json_body(response, action)
        rows = body.get("results") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise _bad_response(response, action, "no results list")
        for note in body.get("messages") or []:
            if isinstance(note, dict) and note.get("type") in {"WARN", "ERROR", "FATAL"}:
                logger.warning("Splunk search job %s: %s %s", sid, note.get("type"), note.get("text"))
        return rows

    def _check_management_response(
        self, response: httpx.Response, action: str, *, creating_job: bool = False
    ) -> None:
        status = response.status_code
        if response.is_success:
            return
        messages = _management_messages(response)
        message = _join_messages(messages) or response.reason_phrase
        if status == 401:
            raise SplunkError(
                "auth",
                f"Splunk rejected the token while trying to {action} (401): {message}; "
                "check SPLUNK_TOKEN",
                status_code=status,
                message=message,
            )
        if status == 403:
            raise SplunkError(
                "forbidden",
                f"Splunk denied permission to {action} (403): {message}; give the token's "
                "user the search capability and read access to the test index",
                status_code=status,
                message=message,
            )
        if creating_job and status == 400 and any(kind == "FATAL" for kind, _ in messages):
            raise SplunkError(
                "syntax",
                f"Splunk rejected the search ({status}): {message}",
                status_code=status,
                message=message,
            )
        if status >= 500:
            raise SplunkError(
                "server",
                f"Splunk returned a server error ({status}) while trying to {action}: {message}",
                status_code=status,
                message=message,
            )
        raise SplunkError(
            "job_failed",
            f"Splunk could not {action} ({status}): {message}",
            status_code=status,
            message=message,
        )

    # Transport

    def _send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        service: str,
        headers: Mapping[str, str],
        **request: Any,
    ) -> httpx.Response:
        """Send one request, retrying connection failures and 502, 503 and 504 with backoff.

        Returns the response unless it is a 502, 503 or 504 after the last attempt, which
        raises SplunkError ``server``. Raises ``unreachable`` or ``timeout`` when no
        response arrives.
        """
        attempt = 1
        while True:
            try:
                response = self._http.request(method, url, headers=headers, **request)
            except httpx.TransportError as exc:
                if attempt >= self.max_attempts or not _is_retryable(exc, method):
                    raise _transport_error(exc, action, url, attempt, self.timeout) from exc
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRYABLE_STATUS_CODES:
                    return response
                if attempt >= self.max_attempts:
                    raise _server_error(response, action, service, attempt)
                reason = f"HTTP {response.status_code}"
            delay = min(self.retry_backoff * 2 ** (attempt - 1), self.max_retry_backoff)
            logger.warning(
                "Could not %s (%s); attempt %d of %d, retrying in %.2f s",
                action,
                reason,
                attempt,
                self.max_attempts,
                delay,
            )
            time.sleep(delay)
            attempt += 1


def scope_query(spl: str, scope: str, index: str) -> str:
    """Rewrite the base search of ``spl`` to read only ``index`` and the events of ``scope``.

    Every ``index`` term of the base search (the text before the first pipe that is not
    inside a quoted string) is replaced by ``index="<index>" portal_scope::<scope>``. The
    forms ``index=x``, ``index="x"``, ``index = x``, ``index::x`` and ``index IN (...)`` are
    recognised. A base search that names no index gets the two terms in front.

    portal_scope is an indexed field that HEC adds and fields.conf does not declare. Splunk
    looks the value of ``portal_scope="<scope>"`` up among the terms of the raw event text
    first, where the scope never occurs, so only ``portal_scope::<scope>`` finds the events.

    The search command evaluates OR before AND, so a replaced term restricts the whole
    search only when it is at the top level and not next to OR. When an index term
    is inside parentheses or next to OR, the two terms also go in front of the whole base
    search, which is then put in parentheses.

    Raises ValueError for what cannot be scoped safely: a query that starts with a
    generating command (``| ...``), a subsearch (``[...]``) and a negated index term
    (``index!=x``, or NOT before the term or around its group).
    NOTE: macros in backticks are not expanded, so an index named inside one is not
    replaced. It is still combined with the scope terms by AND.
    Returns the rewritten query text, for callers to record what ran.
    """
    scope_terms = _scope_terms(scope, index)
    if spl.lstrip().startswith("|"):
        raise ValueError(
            "the query starts with a generating command; only queries that begin with a "
            "search can be scoped to the test index"
        )
    base_end = _base_search_end(spl)
    base, rest = spl[:base_end], spl[base_end:]
    keyword = re.match(r"\s*(?:search(?=\s|$)\s*)?", base)
    head, expression = base[: keyword.end()], base[keyword.end() :]

    terms, needs_prefix = _find_index_terms(expression)
    if not terms:
        separator = " " if expression.strip() else ""
        trailing = "" if expression.strip() or not rest else " "
        return f"{head}{scope_terms}{separator}{expression}{trailing}{rest}"

    pieces = []
    position = 0
    for start, end in terms:
        pieces.append(expression[position:start])
        pieces.append(scope_terms)
        position = end
    pieces.append(expression[position:])
    replaced = "".join(pieces)
    if needs_prefix:
        stripped = replaced.rstrip()
        trailing = replaced[len(stripped) :] or (" " if rest else "")
        replaced = f"{scope_terms} ({stripped.lstrip()}){trailing}"
    return f"{head}{replaced}{rest}"


INDEX_TERM = re.compile(
    r"""index(?:
        \s*(?P<operator>!=|=|::)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s()"]+)
        | \s+IN\s*\([^)]*\)
    )(?=[\s)]|$)""",
    re.IGNORECASE | re.VERBOSE,
)


def _skip_quoted(text: str, start: int) -> int:
    """Return the position after the double-quoted string that starts at ``start``."""
    position = start + 1
    while position < len(text):
        if text[position] == "\\":
            position += 2
        elif text[position] == '"':
            return position + 1
        else:
            position += 1
    raise ValueError(f"the query has an unterminated quoted string starting at {start}")


def _base_search_end(spl: str) -> int:
    """Return the position of the first pipe outside quoted strings, or len(spl)."""
    position = 0
    end = len(spl)
    while position < len(spl):
        char = spl[position]
        if char == '"':
            position = _skip_quoted(spl, position)
            continue
        if char == "[":
            raise ValueError("the query has a subsearch; scope_query cannot rewrite subsearches")
        if char == "|" and end == len(spl):
            end = position
        position += 1
    return end


def _find_index_terms(expression: str) -> tuple[list[tuple[int, int]], bool]:
    """Return the spans of the index terms in a search expression, and whether one of them
    is inside parentheses or next to OR."""
    terms: list[tuple[int, int]] = []
    needs_prefix = False
    negated_groups = [False]
    position = 0
    while position < len(expression):
        char = expression[position]
        if char == '"':
            position = _skip_quoted(expression, position)
            continue
        at_term_start = position == 0 or expression[position - 1] in " \t\r\n("
        if char == "(":
            negated_groups.append(negated_groups[-1] or _ends_with_keyword(expression[:position], "NOT"))
        elif char == ")" and len(negated_groups) > 1:
            negated_groups.pop()
        elif at_term_start and (match := INDEX_TERM.match(expression, position)):
            before, after = expression[:position], expression[match.end() :]
            if (
                match.group("operator") == "!="
                or negated_groups[-1]
                or _ends_with_keyword(before, "NOT")
            ):
                raise ValueError(
                    f"the index term {match.group(0)!r} is negated; a negated index "
                    "cannot be scoped to the test index"
                )
            if (
                len(negated_groups) > 1
                or _ends_with_keyword(before, "OR")
                or re.match(r"\s*OR(?=[\s(\"]|$)", after)
            ):
                needs_prefix = True
            terms.append((match.start(), match.end()))
            position = match.end()
            continue
        position += 1
    return terms, needs_prefix


def _ends_with_keyword(text: str, keyword: str) -> bool:
    return re.search(rf"(?:^|[\s(]){keyword}\s*$", text) is not None


def _check_scope(scope: str) -> None:
    if not SCOPE_NAME.fullmatch(scope):
        raise ValueError(
            f"scope {scope!r} is not valid: use 1 to 128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def _scope_terms(scope: str, index: str) -> str:
    """Return the search terms that select the events of ``scope`` in ``index``."""
    _check_scope(scope)
    if not INDEX_NAME.fullmatch(index):
        raise ValueError(f"index {index!r} is not a valid Splunk index name")
    return f'index="{index}" portal_scope::{scope}'


def _ssl_verification(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return verify


def _verify_setting(raw: object) -> bool | str:
    """Read SPLUNK_VERIFY_TLS: true, false or the path of a CA bundle."""
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip()
    if value.lower() in {"", "true", "1", "yes", "on"}:
        return True
    if value.lower() in {"false", "0", "no", "off"}:
        return False
    if not os.path.exists(value):
        raise SplunkNotConfigured(
            f"SPLUNK_VERIFY_TLS={value!r} is neither true, false nor an existing CA bundle: "
            "set it to true, false or the path of a PEM file or folder of CA certificates"
        )
    return value


def _seconds_setting(name: str, raw: object) -> float:
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = 0.0
    if seconds <= 0:
        raise SplunkNotConfigured(f"{name}={raw!r} is not a positive number of seconds: set it to one")
    return seconds


def _is_retryable(exc: httpx.TransportError, method: str) -> bool:
    """Return whether a transport error is transient and safe to repeat.

    A failed connection never reached Splunk, so any request can be repeated, except
    after a TLS failure, which repeats identically. Once a request was sent, only GET is
    repeated, because a repeated POST could create a second job or index events twice.
    """
    if isinstance(exc, httpx.ConnectError):
        return not _caused_by_tls(exc)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    return method == "GET" and isinstance(exc, httpx.TimeoutException | httpx.RemoteProtocolError)


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_error(
    exc: httpx.TransportError, action: str, url: str, attempts: int, timeout: float
) -> SplunkError:
    origin = str(httpx.URL(url).copy_with(path="/", query=None)).rstrip("/")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return SplunkError(
            "timeout",
            f"Splunk at {origin} sent no response within {timeout:g} s while trying to "
            f"{action}{tries}",
            message=str(exc),
        )
    cause = "TLS handshake failed" if _caused_by_tls(exc) else type(exc).__name__
    return SplunkError(
        "unreachable",
        f"Could not reach Splunk at {origin} to {action}{tries} ({cause}: {exc}); check the "
        "URL, that Splunk is running and, for HTTPS, SPLUNK_VERIFY_TLS",
        message=str(exc),
    )


def _server_error(
    response: httpx.Response, action: str, service: str, attempts: int
) -> SplunkError:
    hec_code = None
    if service == "hec":
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            hec_code = body["code"]
            message = f"{body.get('text', '')} (code {hec_code})"
        else:
            message = response.reason_phrase
    else:
        message = _join_messages(_management_messages(response)) or response.reason_phrase
    logger.error(
        "Splunk %s returned HTTP %d to all %d attempts", service, response.status_code, attempts
    )
    return SplunkError(
        "server",
        f"Splunk returned a server error ({response.status_code}) to all {attempts} attempts "
        f"to {action}: {message}",
        status_code=response.status_code,
        message=message,
        hec_code=hec_code,
    )


def _json_body(response: httpx.Response, action: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise _bad_response(response, action, "not JSON") from exc


def _bad_response(response: httpx.Response, action: str, problem: str) -> SplunkError:
    return SplunkError(
        "bad_response",
        f"Splunk responded with HTTP {response.status_code} and a body that is not the documented "
        f"JSON ({problem}) while trying to {action}: {_excerpt(response.text)}",
        status_code=response.status_code,
    )


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _management_messages(response: httpx.Response) -> list[tuple[str, str]]:
    """Return the (type, text) pairs of a management error body, or [] if it has none."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    return _messages_from(body.get("messages"))


def _job_content(response: httpx.Response, action: str) -> dict[str, Any]:
    body = _json_body(response, action)
    entries = body.get("entry") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise _bad_response(response, action, "no entry")
    content = entries[0].get("content")
    if not isinstance(content, dict) or "isDone" not in content:
        raise _bad_response(response, action, "no job content")
    return content


def _job_messages(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    return _messages_from(content.get("messages"))


def _messages_from(raw: Any) -> list[tuple[str, str]]:
    """Read Splunk messages as (type, text) pairs, errors first.

    JSON responses give a list of ``{"type", "text"}`` objects. A mapping from type to a
    list of texts is read as well, in case a server sends a job's messages in that layout.
    """
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and item.get("text"):
                pairs.append((str(item.get("type", "")).upper(), str(item["text"])))
    elif isinstance(raw, dict):
        for kind, texts in raw.items():
            for text in texts if isinstance(texts, list) else [texts]:
                if text:
                    pairs.append((str(kind).upper(), str(text)))
    severity = {"FATAL": 0, "ERROR": 1}
    return sorted(pairs, key=lambda pair: severity.get(pair[0], 2))


def _join_messages(messages: list[tuple[str, str]]) -> str:
    errors = [text for kind, text in messages if kind in {"FATAL", "ERROR"}]
    return " ".join(errors or [text for _, text in messages])


def _flag(value: Any) -> bool:
    """Read a job flag, which Splunk sends as a boolean in JSON and as 0/1 elsewhere."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true"}
    return bool(value)


def _count_from_rows(rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    value = rows[0].get("count")
    try:
        return int(float(value))
    except (TypeError, ValueError) as exc:
        raise SplunkError(
            "bad_response",
            f"the stats count search returned {rows[0]!r}, not a count",
        ) from exc
