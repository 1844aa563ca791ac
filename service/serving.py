"""gunicorn's own answers, to requests it refuses before the app sees them, as OperationOutcomes;
and its logger, which builds no access line nobody writes.

gunicorn answers a request it cannot parse itself (a bad request line, a URL over
limit_request_line: 414, too many or too large headers: 431, broken chunked framing, raw
non-ASCII in the URL) with a small HTML page written by gunicorn.util.write_error; every worker
class calls that one function, so gunicorn.conf.py replaces it with install(). gunicorn's message
is not repeated: it quotes the request (a URL can carry patient data).
"""
from __future__ import annotations

import logging

import orjson
from gunicorn import glogging, util

from service.fhir_io.outcome import FHIR_JSON, Issue, operation_outcome

_ISSUES = {
    400: ("structure", "The request is not valid HTTP/1.1 (request line, headers, or chunked framing); "
                       "URLs must be ASCII, with other characters percent-encoded."),
    403: ("forbidden", "The request is forbidden."),
    414: ("too-long", "The request line (the URL) is longer than this server accepts."),
    417: ("not-supported", "The Expect header is not supported."),
    431: ("too-long", "The request headers are too many or too large."),
    501: ("not-supported", "The Transfer-Encoding is not supported: send the body with Content-Length "
                           "or chunked."),
}


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """What gunicorn.util.write_error writes, as FHIR JSON (same status line, connection closed)."""
    code, text = _ISSUES.get(status_int, ("exception" if status_int >= 500 else "processing",
                                          "The request could not be processed."))
    body = orjson.dumps(operation_outcome([Issue(code, text)]))
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: {FHIR_JSON}\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    util.write_error = write_error


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, whose access line is built only when gunicorn.access would write it.

    With a logconfig_dict gunicorn counts its access log as on and, after every request, gathers the
    request's atoms (headers, times, the request line) and formats them for gunicorn.access, which
    service.logs.gunicorn_logconfig_dict switches off: ~3 % of a worker's CPU on a `$triage`
    (docs/performance.md), for a line that is dropped. legtriage.access is the service's one line.
    """

    @property
    def access_log_enabled(self) -> bool:
        return super().access_log_enabled and self.access_log.isEnabledFor(logging.INFO)
