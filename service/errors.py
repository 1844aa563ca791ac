"""One error layer: every failure leaves the service as a FHIR OperationOutcome."""
from __future__ import annotations

import logging
import traceback
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from service.fhir_io.outcome import FhirError, Issue, fhir_response, operation_outcome, unavailable
from service.records import StoreUnavailable

log = logging.getLogger(__name__)


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
