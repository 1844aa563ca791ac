"""One error layer: every failure leaves the service as a FHIR OperationOutcome."""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from service.triage.engine import UnknownRulesVersion
from service.triage.facts import InvalidFacts
from service.triage.signoff import UnsignedRulesVersion

from service.fhir_io.narrative import with_text
from service.records import StoreUnavailable

FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
RETRY_AFTER_SECONDS = 5  # what a 503 of the records store asks the caller to wait
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what is wrong and where (a FHIRPath expression)."""

    code: str  # http://hl7.org/fhir/issue-type
    diagnostics: str
    expression: str | None = None
    severity: str = "error"

    def to_fhir(self) -> dict:
        issue = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass
class FhirError(Exception):
    """A request the service refuses, with the HTTP status and the issues to report."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def one(cls, status: int, code: str, diagnostics: str, expression: str | None = None,
            **kwargs) -> "FhirError":
        return cls(status, [Issue(code, diagnostics, expression)], **kwargs)

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)


# A small request can be wrong (or odd) in thousands of places; the first ones say enough, and the
# answer stays small (10,000 wrong answers gave a 2.2 MB OperationOutcome before this cap).
MAX_ISSUES = 100


def operation_outcome(issues: list[Issue]) -> dict:
    shown = [i.to_fhir() for i in issues[:MAX_ISSUES]]
    if len(issues) > MAX_ISSUES:
        rest = issues[MAX_ISSUES:]
        errors = sum(1 for i in rest if i.severity in ("error", "fatal"))
        shown.append({"severity": "information", "code": "informational",
                      "diagnostics": f"... and {len(rest)} more issue(s) not listed ({errors} error(s), "
                                     f"{len(rest) - errors} warning(s)): fix the ones above first."})
    return with_text({"resourceType": "OperationOutcome", "issue": shown})


def fhir_response(resource: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(resource), status=status, headers=headers, content_type=FHIR_JSON)


# Werkzeug's HTTP errors, said the FHIR way (issue-type codes from http://hl7.org/fhir/issue-type).
_HTTP_ISSUE = {
    400: ("structure", "The request is malformed."),
    401: ("login", "Authentication is required."),
    403: ("forbidden", "Not allowed."),
    404: ("not-found", "No such resource or endpoint."),
    405: ("not-supported", "Method not allowed on this endpoint."),
    406: ("not-supported", "The requested response format is not supported: use application/fhir+json."),
    413: ("too-costly", "The request body is larger than this service accepts."),
    415: ("not-supported", "Unsupported content type: send application/fhir+json or application/json."),
    429: ("throttled", "Too many requests."),
}


def _slash_route_method(app: Flask) -> MethodNotAllowed | None:
    """The 405 for a wrong method on a route written with a trailing slash (/docs/) called without
    it: werkzeug matches /docs to /docs/ only for the route's own methods, and says 404 otherwise."""
    try:
        app.url_map.bind_to_environ(request.environ).match(request.path + "/", method=request.method)
    except MethodNotAllowed as wrong_method:
        return wrong_method
    except HTTPException:
        return None
    return None


def register(app: Flask) -> None:
    """Turn every error, expected or not, into an OperationOutcome with the right status."""

    @app.before_request
    def relative_redirects() -> Response | None:
        # Werkzeug redirects a path with doubled slashes (308) to an absolute URL built from the
        # client's Host header, in HTML; answer with a relative Location instead, the FHIR way.
        redirect = request.routing_exception
        if not isinstance(redirect, RequestRedirect):
            return None
        parts = urlsplit(redirect.new_url)
        location = "/" + parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        issue = Issue("informational", f"This resource is at {location[:200]}.", severity="information")
        return fhir_response(operation_outcome([issue]), redirect.code, {"Location": location})

    @app.errorhandler(FhirError)
    def handle_fhir_error(err: FhirError) -> Response:
        return fhir_response(operation_outcome(err.issues), err.status, err.headers)

    @app.errorhandler(UnknownRulesVersion)
    def handle_unknown_rules_version(err: UnknownRulesVersion) -> Response:
        return handle_fhir_error(FhirError.one(
            422, "not-supported", f"Unknown rules version {err.requested[:40]!r}; published versions: "
            f"{', '.join(err.available)}.", err.asked_by))

    @app.errorhandler(UnsignedRulesVersion)
    def handle_unsigned_rules_version(err: UnsignedRulesVersion) -> Response:
        return handle_fhir_error(FhirError.one(
            422, "business-rule", f"Rules version {err.version} has no clinical sign-off here and "
            f"this service runs only signed-off versions: {err.why}.", err.asked_by))

    @app.errorhandler(InvalidFacts)
    def handle_invalid_facts(err: InvalidFacts) -> Response:
        # The Questionnaire checks should have caught it: the answers reached facts out of range.
        return handle_fhir_error(FhirError.one(422, "value", f"Answers out of range: {err.messages}"))

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(err: StoreUnavailable) -> Response:
        # A view that needs the store while it is down (a CDS card to remember, feedback to keep)
        # answers 503 with Retry-After, not 500; its audit record is not waited for again.
        g.store_failed = True
        return unavailable("The records store cannot be reached right now. Try again shortly.")

    @app.errorhandler(HTTPException)
    def handle_http_error(err: HTTPException) -> Response:
        if isinstance(err, NotFound) and not request.path.endswith("/"):
            err = _slash_route_method(app) or err
        status = err.code or 500
        code, text = _HTTP_ISSUE.get(status, ("processing", err.description or "Request failed."))
        if status == 413:
            text = f"The request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes."
        headers = {}
        if status == 405 and getattr(err, "valid_methods", None):
            headers["Allow"] = ", ".join(err.valid_methods)
        return fhir_response(operation_outcome([Issue(code, text)]), status, headers)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception) -> Response:
        # The trace goes to the log, never to the caller; the exception's message is left out
        # because it may quote request content (patient data).
        log.error("unhandled %s\n%s", type(err).__name__, "".join(traceback.format_tb(err.__traceback__)))
        issue = Issue("exception", "Internal error: the request could not be processed.")
        return fhir_response(operation_outcome([issue]), 500)


def unavailable(text: str) -> Response:
    """503 with Retry-After: the records store cannot take or give what this call needs."""
    issue = Issue("transient", text)
    return fhir_response(operation_outcome([issue]), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
