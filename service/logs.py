"""JSON-lines logging to stdout, for the app and for gunicorn.

One line per request, written after the response is made::

    {"time": "2026-11-21T14:10:31.123Z", "level": "info", "logger": "legtriage.access",
     "message": "GET /fhir/Library/<id> 200", "event": "request",
     "method": "GET", "path": "/fhir/Library/<id>", "status": 200,
     "duration_ms": 1.3, "rules_version": null, "disposition": null}

``path`` is the route that answered (its pattern, so ids in the URL stay out:
``/fhir/Library/<id>``; for the fixed routes such as ``/fhir/QuestionnaireResponse/$triage``
that is the path itself) or ``<unmatched>`` when no route did (404, 405). ``rules_version`` and
``disposition`` come from ``flask.g`` (the $triage view sets them) and are ``null`` on other
requests. What is never logged: request or response bodies (the QuestionnaireResponse, its
subject reference), ids and anything else the client put in the URL (a query string in any other
message is replaced by ``?[redacted]``), headers (Authorization, cookies) and client addresses.
Exceptions are logged by type and stack frames only: their messages can quote the input.

Under gunicorn, ``legtriage.access`` is the one request line: gunicorn's own access log is
switched off (its line carries the client address and the raw request line), and
``GunicornErrorFilter`` rewrites gunicorn's warnings about requests it could not parse or serve
("Invalid request from ip=…: Invalid HTTP method: '…'") down to the kind of error. The werkzeug
development server (``flask run``) is not covered: its own request lines carry the address and
path; use it for development only.

Use:

* the app factory calls ``init_app(app)``;
* gunicorn.conf.py sets ``logconfig_dict = gunicorn_logconfig_dict(loglevel)`` and leaves
  ``accesslog`` unset, so gunicorn's own messages are JSON lines on stdout too.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import threading
import time
import traceback
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) quotes strings with
from typing import Any

from flask import Flask, Response, g, request
from flask.logging import default_handler

ACCESS_LOGGER = "legtriage.access"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
_T0 = "legtriage.t0"  # the request's start (perf_counter), in the WSGI environ
UNMATCHED = "<unmatched>"  # the `path` of a request no route answered (404, 405)
MAX_METHOD_CHARS = 20  # gunicorn refuses longer methods; the development server does not

# "/some/path?anything" up to whitespace or a quote: the query part is dropped.
_QUERY = re.compile(r"\?[^\s\"'<>]*")
# Attributes every LogRecord has; anything else was passed with extra={...}.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _level(name: str | int | None) -> int:
    if isinstance(name, int):
        return name
    return LEVELS.get(str(name or "info").strip().lower(), logging.INFO)


def redact_query(text: str) -> str:
    """Replace every query string in `text` by '?[redacted]'."""
    return _QUERY.sub("?[redacted]", text) if "?" in text else text


_second_cache: tuple[int, str] = (-1, "")


def utc_time(created: float) -> str:
    """`created` as '2026-11-21T14:10:31.123Z': what datetime.fromtimestamp(created, utc)
    .isoformat(timespec="milliseconds") gives, at a fraction of its cost (the date and time of the
    second are formatted once per second; one line per request made that call measurable)."""
    global _second_cache
    frac, whole = math.modf(created)
    micros = round(frac * 1e6)  # datetime rounds to microseconds half-even, as round() does
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    second = int(whole)
    cached_second, prefix = _second_cache  # one tuple: read and replaced atomically across threads
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    return f"{prefix}.{micros // 1000:03d}Z"


class AccessRecord(logging.LogRecord):
    """The request line's LogRecord, made without logging's per-call work.

    Logger.info would look up the caller's frame (findCaller) and LogRecord.__init__ would split the
    source path and ask threading and multiprocessing for names: together ~15 µs per request for
    attributes JsonFormatter never writes. This sets the same attributes (so any handler, filter or
    formatter sees an ordinary record) from values fixed once per process, and carries the request
    fields as record attributes in the order `extra=` gave them before.
    """

    _fixed: dict[str, Any] = {}
    _fixed_pid = -1

    def __init__(self, message: str, method: str, path: str, status: int, duration_ms: float | None,
                 rules_version: str | None, disposition: str | None) -> None:
        now = time.time()
        pid = os.getpid()
        if pid != AccessRecord._fixed_pid:  # per process: gunicorn forks workers after import
            AccessRecord._fixed = _fixed_record_attributes()
            AccessRecord._fixed_pid = pid
        self.__dict__.update(AccessRecord._fixed)
        self.msg = message
        self.created = now
        self.msecs = int((now - int(now)) * 1000) + 0.0
        self.relativeCreated = (now - logging._startTime) * 1000
        self.thread = threading.get_ident()
        self.threadName = threading.current_thread().name  # gthread workers serve on several
        # the request fields (formerly extra={...}), in this order
        self.event = "request"
        self.method = method
        self.path = path
        self.status = status
        self.duration_ms = duration_ms
        self.rules_version = rules_version
        self.disposition = disposition


_ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "rules_version", "disposition")


def _fixed_record_attributes() -> dict[str, Any]:
    """The attributes of a request-line record that are the same on every request of this process."""
    template = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "", (), None,
                                 "log_request")
    fixed = dict(vars(template))
    for name in ("msg", "created", "msecs", "relativeCreated", "thread"):
        del fixed[name]
    return fixed


def _json_value(value: Any) -> str:
    # json.dumps(ensure_ascii=False) for the values a request line holds
    if value is None:
        return "null"
    if isinstance(value, str):
        return encode_basestring(value)
    return repr(value)  # int (the status), float (duration_ms): json writes them as repr does


_ACCESS_ATTR_COUNT = len(vars(logging.makeLogRecord({}))) + 7  # the standard ones + the 7 fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        if (type(record) is AccessRecord and len(record.__dict__) == _ACCESS_ATTR_COUNT
                and not record.args):  # untouched by filters: the fields are the ones it was made with
            return self.format_access(record)
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the line
            message = str(record.msg)
        entry: dict[str, Any] = {
            "time": utc_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_query(message),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _exc, tb = record.exc_info
            entry["exc_type"] = f"{exc_type.__module__}.{exc_type.__qualname__}"
            # Frames only: an exception's message may quote the request body.
            entry["exc_frames"] = [f"{f.filename}:{f.lineno} in {f.name}"
                                   for f in traceback.extract_tb(tb)]
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)

    @staticmethod
    def format_access(record: AccessRecord) -> str:
        """The request line, byte for byte what the general path above makes of the same record
        (tests/test_logs_shutdown.py compares them), in a few µs instead of ~15: the fields are
        known, so no scan of the record's attributes and no JSONEncoder set up per call. The message
        is redacted like any other (a method sent with a '?' in it)."""
        return (f'{{"time": "{utc_time(record.created)}", "level": "{record.levelname.lower()}", '
                f'"logger": {encode_basestring(record.name)}, '
                f'"message": {encode_basestring(redact_query(record.msg))}, "event": "request", '
                f'"method": {encode_basestring(record.method)}, '
                f'"path": {encode_basestring(record.path)}, "status": {record.status!r}, '
                f'"duration_ms": {_json_value(record.duration_ms)}, '
                f'"rules_version": {_json_value(record.rules_version)}, '
                f'"disposition": {_json_value(record.disposition)}}}')


class StdoutHandler(logging.StreamHandler):
    """A StreamHandler on whatever sys.stdout is when a record is emitted."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.setFormatter(JsonFormatter())

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _ensure_handler(logger: logging.Logger, level: int) -> None:
    """Give `logger` exactly one JSON stdout handler (idempotent), its own level, no propagation."""
    if not any(isinstance(h, StdoutHandler) for h in logger.handlers):
        logger.addHandler(StdoutHandler())
    logger.setLevel(level)
    logger.propagate = False


def init_app(app: Flask, level: str | int | None = None) -> None:
    """Log one JSON line per request; the app's own logger logs at the service's level, as JSON.

    `level` defaults to the service settings' log_level (LEGTRIAGE_LOG_LEVEL), else info.
    """
    if app.extensions.get("legtriage.logs"):
        return  # already initialised: one line per request, not two
    app.extensions["legtriage.logs"] = True
    if level is None:
        state = app.extensions.get("legtriage")
        level = getattr(getattr(state, "settings", None), "log_level", None)
    lvl = _level(level)
    access = logging.getLogger(ACCESS_LOGGER)
    _ensure_handler(access, lvl)
    # The app's own messages go to the root logger: under gunicorn its handler is the JSON one
    # (gunicorn_logconfig_dict); with no logging set up at all (flask run), add that handler
    # ourselves, like logging.basicConfig would; test runners keep their capturing handlers.
    if default_handler in app.logger.handlers:
        app.logger.removeHandler(default_handler)
    app.logger.setLevel(lvl)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(StdoutHandler())
        root.setLevel(lvl)

    def start_timer() -> None:
        request.environ[_T0] = time.perf_counter()

    def log_request(response: Response) -> Response:
        if access.isEnabledFor(logging.INFO):
            req = request._get_current_object()  # one proxy lookup, not one per attribute
            t0 = req.environ.get(_T0)
            duration = None if t0 is None else round((time.perf_counter() - t0) * 1000, 2)
            # The route's pattern, not the path as sent: /fhir/Library/<id>, never the id itself.
            rule = req.url_rule
            path = rule.rule if rule is not None else UNMATCHED
            method = req.method[:MAX_METHOD_CHARS]
            status = response.status_code
            outcome = g._get_current_object()
            # Logger.handle: the logger's filters and handlers as Logger.info would, without its
            # caller lookup and record set-up (AccessRecord says why).
            access.handle(AccessRecord(f"{method} {path} {status}", method, path, status, duration,
                                       getattr(outcome, "rules_version", None),
                                       getattr(outcome, "disposition", None)))
        return response

    # First before-request hook, so the time covers the others (and a request they reject).
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    # after_request hooks run in reverse order: registered first, this one runs last.
    app.after_request_funcs.setdefault(None, []).insert(0, log_request)


# gunicorn.error messages that quote the request (its path or URI, or the bytes read so far): a fixed
# text replaces them. An exception's type and frames still go to the log.
_GUNICORN_REWRITES = {
    "%s %s": "Request received",  # the default pre_request hook, at debug: method and path
    "Error handling request %s %s": "Error handling request",
    "Error handling request %s": "Error handling request",
    "Ignored premature client disconnection. %s": "Ignored premature client disconnection",
    "Closing connection. %s": "Closing connection",
}
# gunicorn's one warning per unparsable request: "Invalid request from ip=<addr>: <error>", the error
# quoting the offending request line, method, header or chunk. An IPv6 address has no ": " in it.
_INVALID_REQUEST = re.compile(r"Invalid request from ip=.*?: (?P<error>.*)", re.S)
_CLIENT_IP = re.compile(r"\bip=\S*")


def _error_kind(error: str) -> str:
    """The kind of a parse error, without what the client sent ("Invalid HTTP method: 'GxT'")."""
    kind = error.split(": ", 1)[0]
    quotes = [i for i in (kind.find("'"), kind.find('"')) if i >= 0]
    if quotes:  # e.g. "Proxy request from '10.1.2.3' not allowed"
        kind = (kind[:min(quotes)].rstrip() + " [redacted]").lstrip()
    return kind[:120]


class GunicornErrorFilter(logging.Filter):
    """Keeps client addresses and request fragments out of gunicorn's own messages (gunicorn.error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _GUNICORN_REWRITES:
            record.msg, record.args = _GUNICORN_REWRITES[record.msg], ()
        elif isinstance(record.msg, str) and "ip=" in record.msg:
            message = record.getMessage()
            match = _INVALID_REQUEST.fullmatch(message)
            record.msg = (f"Invalid request: {_error_kind(match['error'])}" if match
                          else _CLIENT_IP.sub("ip=[redacted]", message))
            record.args = ()
        return True


def gunicorn_logconfig_dict(level: str | int | None = "info") -> dict[str, Any]:
    """A logging.config dict for gunicorn's `logconfig_dict`: its logs as JSON lines on stdout."""
    lvl = logging.getLevelName(_level(level))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"gunicorn_error": {"()": GunicornErrorFilter}},
        "handlers": {
            "stdout": {"()": StdoutHandler, "formatter": "json"},
            "null": {"class": "logging.NullHandler"},
        },
        # the app's logger ("service", at its own level) and libraries (warnings up) end here
        "root": {"level": "WARNING", "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": lvl, "handlers": ["stdout"], "filters": ["gunicorn_error"],
                               "propagate": False},
            # Off: with a logging config, gunicorn writes an access line per request (client address,
            # request line with ids and query) whatever `accesslog` says. legtriage.access is the one.
            "gunicorn.access": {"level": logging.CRITICAL + 1, "handlers": ["null"], "propagate": False},
        },
    }
