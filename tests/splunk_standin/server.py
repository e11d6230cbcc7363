"""A local stand-in for Splunk's REST search API and HTTP Event Collector, for tests.

``SplunkStandIn`` serves two plain-HTTP ports on 127.0.0.1, as Splunk serves the
management port (8089) and HEC (8088):

- ``POST /services/collector/event`` (also ``/services/collector`` and
  ``/services/collector/event/1.0``) takes concatenated JSON event objects with a
  ``Authorization: Splunk <hec token>`` header. It responds with HEC's ``{"text", "code"}``
  bodies and the codes and HTTP statuses of Splunk's HEC troubleshooting table.
- ``POST /services/search/jobs``, ``GET /services/search/jobs/<sid>``,
  ``GET /services/search/jobs/<sid>/results`` and ``POST .../control`` (``action=cancel``)
  take ``Authorization: Bearer <token>`` and answer in the JSON shapes of
  ``output_mode=json``. Errors carry ``{"messages": [{"type", "text"}]}``.

Stored events get ``_time``, ``host``, ``source``, ``sourcetype``, ``index``, ``_raw``
(the event's JSON text), their indexed fields, and at search time the fields of the JSON
event, flattened as Splunk's automatic JSON extraction names them (``a.b``, ``list{}``).
Searches run through ``spl``, which documents the SPL subset. The methods named
``fail_*``, ``hang_jobs``, ``reject_hec`` and ``garble_responses`` and the attribute
``indexing_delay`` inject faults.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import spl
from .errors import SPLRuntimeError, SPLSyntaxError
from .events import StoredEvent
from .values import render_row, to_number

logger = logging.getLogger(__name__)

JOBS_PATH = "/services/search/jobs"
HEC_PATHS = frozenset(
    {"/services/collector", "/services/collector/event", "/services/collector/event/1.0"}
)
# HEC status codes with their HTTP status and text, from Splunk's HEC troubleshooting table.
HEC_STATUS = {
    0: (200, "Success"),
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
}
# HEC codes about one event of a request, which come with invalid-event-number.
EVENT_ERROR_CODES = frozenset({6, 7, 12, 13, 15})
# Splunk's text for a management call without a valid token.
UNAUTHENTICATED_TEXT = "call not properly authenticated"


@dataclass
class Job:
    sid: str
    search: str
    created: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ""
    hangs: bool = False
    status_reads: int = 0


class HecRejection(Exception):
    def __init__(self, code: int, invalid_event: int | None = None) -> None:
        super().__init__(HEC_STATUS[code][1])
        self.code = code
        self.invalid_event = invalid_event


class SplunkStandIn:
    """Serves the stand-in on two loopback ports; use it as a context manager.

    ``url`` is the management base URL and ``hec_url`` the HEC base URL. ``index`` is the
    test index the HEC token may write to, with ``main`` as the only other index and the
    default search index. ``requests`` records (service, method, path) of every request,
    ``searches`` the search string of every created job and ``cancelled`` the cancelled sids.
    ``clock`` returns the current time of searches in epoch seconds. Relative ``earliest``
    and ``latest`` values count from it, so a test can search recorded events as of the
    time they were recorded.
    """

    def __init__(
        self,
        *,
        token: str = "standin-management-token",
        hec_token: str = "standin-hec-token",
        index: str = "portal_validation",
        polls_until_done: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.hec_token = hec_token
        self.index = index
        self.indexes = frozenset({index, "main"})
        self.default_indexes = ("main",)
        # A job reports RUNNING to this many status reads before it is DONE.
        self.polls_until_done = polls_until_done
        self.clock = clock
        # Rows per results response at most, like maxresultrows in Splunk's limits.conf.
        self.max_result_rows = 50000
        self.indexing_delay = 0.0
        self.requests: list[tuple[str, str, str]] = []
        self.searches: list[str] = []
        self.cancelled: list[str] = []
        self._lock = threading.Lock()
        self._events: list[StoredEvent] = []
        self._jobs: dict[str, Job] = {}
        self._sids = itertools.count(1)
        self._auth_failure: int | None = None
        self._job_failure = ""
        self._jobs_hang = False
        self._hec_rejection: int | None = None
        self._server_errors = {"management": (0, 503), "hec": (0, 503)}
        self._garbled = False
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []

    # Lifecycle

    def start(self) -> SplunkStandIn:
        for service in ("management", "hec"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self, service))
            server.daemon_threads = True
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"splunk-standin-{service}",
                daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        logger.info("Splunk stand-in listening at %s and %s", self.url, self.hec_url)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> SplunkStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return _base_url(self._servers[0])

    @property
    def hec_url(self) -> str:
        return _base_url(self._servers[1])

    # Fault switches

    def fail_auth(self, status: int) -> None:
        """Respond to every management call with 401 (token rejected) or 403 (permission denied)."""
        if status not in {401, 403}:
            raise ValueError("fail_auth takes 401 or 403")
        self._auth_failure = status

    def fail_jobs(self, message: str) -> None:
        """Make new jobs end FAILED with ``message`` as their FATAL message."""
        self._job_failure = message

    def hang_jobs(self) -> None:
        """Keep new jobs RUNNING until they are cancelled."""
        self._jobs_hang = True

    def fail_next(self, count: int, *, service: str = "management", status: int = 503) -> None:
        """Respond to the next ``count`` requests to ``service`` with ``status``, then recover.

        HEC sends code 9 "Server is busy" with a 503 and code 8 with a 500.
        """
        self._server_errors[service] = (count, status)

    def reject_hec(self, code: int) -> None:
        """Reject every HEC request with ``code`` from the HEC status table, such as 6."""
        if code not in HEC_STATUS or code == 0:
            raise ValueError(f"unknown HEC error code {code}")
        self._hec_rejection = code

    def garble_responses(self) -> None:
        """Respond to management calls with HTML instead of JSON, as a proxy error page would."""
        self._garbled = True

    # Data

    def index_event(
        self,
        event: Any,
        *,
        index: str = "main",
        time_: float | None = None,
        host: str = "standin-host",
        source: str = "http:standin",
        sourcetype: str = "httpevent",
        indexed_fields: dict[str, str | list[str]] | None = None,
    ) -> None:
        """Store an event directly, as if it had been indexed, for searches to find."""
        raw = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
        stored = StoredEvent(
            time=time.time() if time_ is None else time_,
            host=host,
            source=source,
            sourcetype=sourcetype,
            index=index,
            raw=raw,
            indexed_fields=dict(indexed_fields or {}),
            searchable_at=time.monotonic() + self.indexing_delay,
        )
        with self._lock:
            self._events.append(stored)

    def events(self, index: str | None = None) -> list[StoredEvent]:
        with self._lock:
            return [event for event in self._events if index is None or event.index == index]

    def run_search(self, query: str) -> list[dict[str, Any]]:
        """Parse and run a query over the searchable events, without HTTP."""
        pipeline = spl.parse(query)
        now = time.monotonic()
        with self._lock:
            searchable = [event for event in self._events if event.searchable_at <= now]
        return pipeline.run(
            (event.search_fields() for event in searchable), self.default_indexes, now=self.clock()
        )

    # Request handling, called from the handler threads

    def take_server_error(self, service: str) -> int | None:
        with self._lock:
            remaining, status = self._server_errors[service]
            if remaining <= 0:
                return None
            self._server_errors[service] = (remaining - 1, status)
            return status

    def receive_hec(self, body: bytes) -> int | None:
        """Index the events of one HEC request; raises HecRejection for a bad event.

        Returns None on success. As the ``invalid-event-number`` of HEC's error body
        suggests, the events before an invalid one are indexed.
        NOTE: that partial indexing follows HEC's documented error body and has not been
        observed on a real Splunk.
        """
        if self._hec_rejection is not None:
            code = self._hec_rejection
            raise HecRejection(code, 0 if code in EVENT_ERROR_CODES else None)
        text = body.decode("utf-8", errors="replace")
        if not text.strip():
            raise HecRejection(5)
        decoder = json.JSONDecoder()
        position = 0
        number = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return None
            try:
                item, position = decoder.raw_decode(text, position)
            except ValueError:
                raise HecRejection(6, number) from None
            self._index_hec_item(item, number)
            number += 1

    def _index_hec_item(self, item: Any, number: int) -> None:
        if not isinstance(item, dict):
            raise HecRejection(6, number)
        if "event" not in item:
            raise HecRejection(12, number)
        event = item["event"]
        if event in ("", None) or event == {}:
            raise HecRejection(13, number)
        index = item.get("index", self.index)
        if index not in self.indexes:
            raise HecRejection(7, number)
        fields = item.get("fields", {})
        if not isinstance(fields, dict) or not all(
            _is_indexed_value(value) for value in fields.values()
        ):
            raise HecRejection(15, number)
        event_time = to_number(item.get("time")) if "time" in item else None
        if "time" in item and event_time is None:
            raise HecRejection(6, number)
        self.index_event(
            event,
            index=index,
            time_=float(event_time) if event_time is not None else None,
            host=str(item.get("host", "standin-host")),
            source=str(item.get("source", "http:standin")),
            sourcetype=str(item.get("sourcetype", "httpevent")),
            indexed_fields=fields,
        )

    def create_job(self, search: str) -> Job:
        """Parse a search and run it; raises SPLSyntaxError for a query to reject with 400."""
        if not re.match(r"\s*(?:search(?=\s|$)|\|)", search):
            # The REST API reads the first word as a command name, so "index=main x"
            # fails as the unknown command 'index'.
            first = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", search)
            name = first.group(1) if first else search.strip()[:20]
            if name.lower() in spl.COMMAND_PARSERS:
                raise SPLSyntaxError(f"Error in '{name}' command: This command must follow a search.")
            raise SPLSyntaxError(f"Unknown search command '{name}'.")
        pipeline = spl.parse(search)
        job = Job(sid=f"standin.{next(self._sids)}", search=search, created=time.time())
        if self._job_failure:
            job.failure = self._job_failure
        elif self._jobs_hang:
            job.hangs = True
        else:
            now = time.monotonic()
            with self._lock:
                searchable = [event for event in self._events if event.searchable_at <= now]
            try:
                job.rows = pipeline.run(
                    (event.search_fields() for event in searchable),
                    self.default_indexes,
                    now=self.clock(),
                )
            except SPLRuntimeError as exc:
                job.failure = str(exc)
        with self._lock:
            self._jobs[job.sid] = job
            self.searches.append(search)
        return job

    def job(self, sid: str) -> Job | None:
        with self._lock:
            return self._jobs.get(sid)

    def cancel_job(self, sid: str) -> bool:
        with self._lock:
            job = self._jobs.pop(sid, None)
            if job is not None:
                self.cancelled.append(sid)
            return job is not None

    def is_done(self, job: Job) -> bool:
        with self._lock:
            reads = job.status_reads
        return bool(job.failure) or (not job.hangs and reads > self.polls_until_done)

    def job_status(self, job: Job) -> dict[str, Any]:
        """Return a job's status entry. Each call counts as one status read."""
        with self._lock:
            job.status_reads += 1
        failed = bool(job.failure)
        done = self.is_done(job)
        if failed:
            state = "FAILED"
        elif done:
            state = "DONE"
        else:
            state = "RUNNING"
        messages = [{"type": "FATAL", "text": job.failure}] if failed else []
        published = _iso(job.created)
        return {
            "links": {},
            "origin": f"{self.url}{JOBS_PATH}",
            "updated": _iso(time.time()),
            "generator": {"build": "standin", "version": "0"},
            "entry": [
                {
                    "name": job.search,
                    "id": f"{self.url}{JOBS_PATH}/{job.sid}",
                    "updated": _iso(time.time()),
                    "links": {
                        "alternate": f"{JOBS_PATH}/{job.sid}",
                        "results": f"{JOBS_PATH}/{job.sid}/results",
                        "control": f"{JOBS_PATH}/{job.sid}/control",
                    },
                    "published": published,
                    "author": "admin",
                    "content": {
                        "sid": job.sid,
                        "dispatchState": state,
                        "isDone": done,
                        "isFailed": failed,
                        "isFinalized": False,
                        "isPaused": False,
                        "isZombie": False,
                        "doneProgress": 1.0 if done else 0.5,
                        "eventCount": len(job.rows),
                        "resultCount": len(job.rows),
                        "search": job.search,
                        "messages": messages,
                    },
                }
            ],
            "paging": {"total": 1, "perPage": 0, "offset": 0},
        }

    def job_results(self, job: Job, offset: int, count: int) -> dict[str, Any]:
        if count == 0 or count > self.max_result_rows:
            count = self.max_result_rows
        end = offset + count
        rows = [render_row(row) for row in job.rows[offset:end]]
        names = list(dict.fromkeys(name for row in rows for name in row))
        return {
            "preview": False,
            "init_offset": offset,
            "messages": [],
            "fields": [{"name": name} for name in names],
            "results": rows,
            "highlighted": {},
        }


def _is_indexed_value(value: Any) -> bool:
    """Return whether a value fits HEC's ``fields``: a string or a list of strings."""
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def _base_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def _handler_class(standin: SplunkStandIn, service: str) -> type[BaseHTTPRequestHandler]:
    base = _HecHandler if service == "hec" else _ManagementHandler
    return type(f"{base.__name__}ForStandIn", (base,), {"standin": standin, "service": service})


class _Handler(BaseHTTPRequestHandler):
    standin: SplunkStandIn
    service: str

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.service, format % args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> str:
        path = urlsplit(self.path).path.rstrip("/")
        with self.standin._lock:
            self.standin.requests.append((self.service, self.command, path))
        return path


class _HecHandler(_Handler):
    def do_POST(self) -> None:
        path = self._record()
        body = self._body()
        if path not in HEC_PATHS:
            self._send_json(404, {"text": "The requested URL was not found on this server.", "code": 404})
            return
        status = self.standin.take_server_error("hec")
        if status is not None:
            self._send_hec_status(8 if status == 500 else 9, status=status)
            return
        authorization = self.headers.get("Authorization")
        if not authorization:
            self._send_hec_status(2)
            return
        scheme, _, token = authorization.partition(" ")
        if scheme != "Splunk" or not token:
            self._send_hec_status(3)
            return
        if token != self.standin.hec_token:
            self._send_hec_status(4)
            return
        try:
            self.standin.receive_hec(body)
        except HecRejection as rejection:
            self._send_hec_status(rejection.code, invalid_event=rejection.invalid_event)
            return
        self._send_hec_status(0)

    def _send_hec_status(
        self, code: int, *, status: int | None = None, invalid_event: int | None = None
    ) -> None:
        default_status, text = HEC_STATUS[code]
        if code != 0:
            logger.info("Stand-in HEC rejected a request with code %d: %s", code, text)
        payload: dict[str, Any] = {"text": text, "code": code}
        if invalid_event is not None:
            payload["invalid-event-number"] = invalid_event
        self._send_json(status or default_status, payload)


class _ManagementHandler(_Handler):
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _messages(self, status: int, kind: str, text: str) -> None:
        if status >= 400:
            logger.info("Stand-in management %s %s failed with %d: %s", self.command, self.path, status, text)
        self._send_json(status, {"messages": [{"type": kind, "text": text}]})

    def _handle(self, method: str) -> None:
        path = self._record()
        parts = urlsplit(self.path)
        parameters = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if method == "POST":
            form = parse_qs(self._body().decode("utf-8"), keep_blank_values=True)
            parameters.update({key: values[-1] for key, values in form.items()})

        standin = self.standin
        status = standin.take_server_error("management")
        if status is not None:
            self._messages(status, "ERROR", "The stand-in is answering with a simulated server error.")
            return
        if standin._garbled:
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return

        if self.headers.get("Authorization") != f"Bearer {standin.token}":
            self._messages(401, "WARN", UNAUTHENTICATED_TEXT)
            return
        if standin._auth_failure == 401:
            self._messages(401, "WARN", UNAUTHENTICATED_TEXT)
            return
        if standin._auth_failure == 403:
            self._messages(403, "ERROR", "Permission denied: the user lacks the capability to search.")
            return
        if parameters.get("output_mode") != "json":
            self._messages(400, "ERROR", "The stand-in answers only output_mode=json.")
            return
        self._route(method, path, parameters)

    def _route(self, method: str, path: str, parameters: dict[str, str]) -> None:
        if path == JOBS_PATH and method == "POST":
            self._create_job(parameters)
            return
        if not path.startswith(JOBS_PATH + "/"):
            self._messages(404, "ERROR", f"Not Found: {path}")
            return
        sid, _, action = path[len(JOBS_PATH) + 1 :].partition("/")
        job = self.standin.job(sid)
        if job is None:
            self._messages(404, "ERROR", "Unknown sid.")
            return
        if method == "GET" and action == "":
            self._send_json(200, self.standin.job_status(job))
        elif method == "GET" and action == "results":
            self._results(job, parameters)
        elif method == "POST" and action == "control":
            if parameters.get("action") != "cancel":
                self._messages(400, "ERROR", "The stand-in supports only action=cancel.")
                return
            self.standin.cancel_job(sid)
            self._messages(200, "INFO", "Search job cancelled.")
        else:
            self._messages(404, "ERROR", f"Not Found: {path}")

    def _create_job(self, parameters: dict[str, str]) -> None:
        search = parameters.get("search", "")
        if parameters.get("earliest_time", "0") not in {"0", ""}:
            self._messages(400, "FATAL", "The stand-in supports only earliest_time=0.")
            return
        if parameters.get("exec_mode", "normal") not in {"normal", "blocking"}:
            self._messages(400, "FATAL", "The stand-in supports exec_mode normal and blocking.")
            return
        try:
            job = self.standin.create_job(search)
        except SPLSyntaxError as exc:
            self._messages(400, "FATAL", str(exc))
            return
        self._send_json(201, {"sid": job.sid})

    def _results(self, job: Job, parameters: dict[str, str]) -> None:
        if not self.standin.is_done(job):
            # Splunk responds 204 No Content while a job's results are not ready.
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            offset = int(parameters.get("offset", "0"))
            count = int(parameters.get("count", "100"))
        except ValueError:
            self._messages(400, "ERROR", "offset and count must be integers.")
            return
        self._send_json(200, self.standin.job_results(job, offset, count))
