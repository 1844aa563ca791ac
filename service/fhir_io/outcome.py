"""The FHIR vocabulary of answers: an OperationOutcome's issues, the refusal a request gets
(`FhirError`, said by service/errors.py), and the FHIR JSON response that carries either."""
from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from flask import Response

from service.fhir_io.narrative import with_text

FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
RETRY_AFTER_SECONDS = 5  # what a 503 of the records store asks the caller to wait


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


def unavailable(text: str) -> Response:
    """503 with Retry-After: the records store cannot take or give what this call needs."""
    issue = Issue("transient", text)
    return fhir_response(operation_outcome([issue]), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
