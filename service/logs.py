"""JSON-lines logging to stdout, for the app and for gunicorn.

One line per request, written after the response is made::

    {"time": "2026-11-21T14:10:31.123Z", "level": "info", "logger": "legtriage.access",
     "message": "GET /fhir/Library/<id> 200", "event": "request",
     "method": "GET", "path": "/fhir/Library/<id>", "status": 200,
     "duration_ms": 1.3, "rules_version": null, "disposition": null}

``path`` is the route that answered (its pattern, so ids in the URL stay out:
``/fhir/Library/<id>``; for the fixed routes such as ``/fhir/QuestionnaireResponse/$triage``
that is the path itself) or ``<unmatched>`` when no route did (404, 405); ``method`` is the
request's method when it is a standard one, else ``OTHER``. ``rules_version`` and
``disposition`` come from ``flask.g`` (the $triage view sets them) and are ``null`` on other
requests. What is never logged: request or response bodies (the QuestionnaireResponse, its
subject reference), ids and anything else the client put in the URL (a query string in any other
message is replaced by ``?[redacted]``), headers (Authorization, cookies) and client addresses.
Exceptions are logged by type and stack frames only: their messages can quote the input.

Under gunicorn, ``legtriage.access`` is the one request line: gunicorn's own access log is
switched off (its line carries the client address and the raw request line), and
``GunicornErrorFilter`` rewrites gunicorn's warnings about requests it could not parse or serve
("Invalid request from ip=…: Invalid HTTP method: '…'") down to the kind of error; its other messages keep their words, with
only a client address (``ip=…``) or a query string in them redacted. The werkzeug
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
import re
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, request
from flask.logging import default_handler

ACCESS_LOGGER = "legtriage.access"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
UNMATCHED = "<unmatched>"  # the `path` of a request no route answered (404, 405)
# Any other method is logged as OTHER: the method is the one word of the request line a client
# could otherwise write into the log as it likes.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                           "CONNECT"})
OTHER_METHOD = "OTHER"

# "/some/path?anything" up to whitespace or a quote: the query part is dropped.
_QUERY = re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]+")
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode
# Attributes every LogRecord has (those the logging docs list, read from a record rather than
# copied here); anything else was passed with extra={...}.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _level(name: str | int | None) -> int:
    if isinstance(name, int):
        return name
    return LEVELS.get(str(name or "info").strip().lower(), logging.INFO)


def redact_query(text: str) -> str:
    """Replace the query string of every path or URL in `text` by '?[redacted]'.

    Only a '?' that follows a path and has something after it is a query: gunicorn's own sentences
    ("Perhaps out of memory?") stay as they are.
    """
    return _QUERY.sub(r"\1?[redacted]", text) if "?" in text else text


def utc_time(created: float) -> str:
    """A record's time as '2026-11-21T14:10:31.123Z'."""
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then any `extra` fields.

    Written here rather than taken from python-json-logger: its formatter puts the exception's
    text (the message, which may quote the request) in every line and lets a bad %-format raise;
    with those, the time format, the field names and the redaction overridden, nothing of it
    would be left but a json.dumps call, for a dependency more in the image.
    """

    def format(self, record: logging.LogRecord) -> str:
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
        for key, value in vars(record).items():
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
        return _ENCODE(entry)


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
        g.legtriage_t0 = time.perf_counter()

    def log_request(response: Response) -> Response:
        t0 = g.get("legtriage_t0")
        duration = None if t0 is None else round((time.perf_counter() - t0) * 1000, 2)
        # The route's pattern, not the path as sent: /fhir/Library/<id>, never the id itself.
        path = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        method = request.method if request.method in KNOWN_METHODS else OTHER_METHOD
        status = response.status_code
        access.info(f"{method} {path} {status}", extra={
            "event": "request", "method": method, "path": path, "status": status,
            "duration_ms": duration, "rules_version": g.get("rules_version"),
            "disposition": g.get("disposition")})
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
# A fragment gunicorn quotes with %r: what the client sent. An unclosed quote runs to the end.
_QUOTED = re.compile(r"'[^']*(?:'|$)|\"[^\"]*(?:\"|$)")


def _error_kind(error: str) -> str:
    """The kind of a parse error, without what the client sent ("Invalid HTTP method: 'GxT'").

    gunicorn's words stay readable: only the quoted fragment goes ("Proxy request from '10.1.2.3'
    not allowed" -> "Proxy request from [redacted] not allowed").
    """
    kind = _QUOTED.sub("[redacted]", error.split(": ", 1)[0])
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
