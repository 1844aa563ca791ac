"""The QuestionnaireResponse a hook call is about: from the prefetch, or fetched from the EHR.

CDS Hooks 2.0.1, "Prefetch": a client may satisfy some, all or none of the prefetch templates; a
key it could not satisfy is omitted; ``null`` (or a searchset with no entries) means there is no
such data; an OperationOutcome says the query failed. The service fetches what is missing itself
when the call gives it access (``fhirServer`` and ``fhirAuthorization``), and SHALL answer 412 when
it cannot get the data it needs.

Fetching is the risky part: the address comes from the caller. Only servers listed in
LEGTRIAGE_CDS_FHIR_SERVERS are contacted, with exactly the query the prefetch template describes,
once, within a total of FETCH_BUDGET_SECONDS enforced on the socket, at most FETCH_MAX_PER_SERVER
at a time per server and process (a trickling EHR cannot hold up the calls naming other EHRs),
without following redirects and without any proxy from the environment (either would hand the
access token to a third party; service/fetching.py). The token is sent in
the Authorization header of that one request and nowhere else: it is not logged, stored, or put in
any error message.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import orjson

from service.fhir_io.outcome import FhirError, Issue

FETCH_BUDGET_SECONDS = 2.0
FETCH_MAX_BYTES = 1_048_576
# Fetches one process keeps open to one fhirServer at a time; more calls naming it get 412 at once.
FETCH_MAX_PER_SERVER = 4
# A QuestionnaireResponse authored in the future by more than this is clock trouble, not fresh data.
FUTURE_SKEW = timedelta(minutes=5)


class NoData(Exception):
    """The prefetch or the EHR says there is no questionnaire for this patient."""


@dataclass(frozen=True)
class Found:
    """The QuestionnaireResponse chosen, where it sits (FHIRPath for error messages) and its id."""

    qr: dict
    root: str
    id: str | None


def precondition_failed(text: str, expression: str | None = None) -> FhirError:
    return FhirError(412, [Issue("processing", text, expression)])


def search_query(template: str, context: dict) -> str:
    """The prefetch template with its {{context.x}} tokens filled in (URL-encoded)."""
    query = template
    for name, value in context.items():
        if isinstance(value, str):
            query = query.replace("{{context.%s}}" % name, quote(value, safe=""))
    if "{{" in query:
        raise precondition_failed("The prefetch template needs context the call did not give.")
    return query


def resources_of(value: Any, where: str) -> list[tuple[dict, str]]:
    """The QuestionnaireResponses in a prefetch value (a searchset Bundle or one resource)."""
    if not isinstance(value, dict):
        raise FhirError.one(400, "structure", "A prefetch value must be a FHIR resource or null.", where)
    rtype = value.get("resourceType")
    if rtype == "OperationOutcome":
        raise precondition_failed("The client's prefetch query failed (it sent an OperationOutcome); "
                                  "the questionnaire cannot be read.", where)
    if rtype == "QuestionnaireResponse":
        return [(value, where)]
    if rtype == "Bundle":
        entries = value.get("entry") or []
        if not isinstance(entries, list):
            raise FhirError.one(400, "structure", "Bundle.entry must be a list.", f"{where}.entry")
        found = []
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == "QuestionnaireResponse":
                found.append((resource, f"{where}.entry[{i}].resource"))
        return found
    raise FhirError.one(400, "structure", "This prefetch must be a QuestionnaireResponse or a Bundle of "
                        "them.", f"{where}.resourceType")


def choose(candidates: list[tuple[dict, str]], patient_id: str, freshness: timedelta,
           now: datetime | None = None) -> Found:
    """The newest QuestionnaireResponse of this patient that is recent enough; NoData if none is.

    A response about another patient never gives a card (a mix-up in the EHR's query must not put
    one patient's urgency on another's chart); one older than the freshness window describes how
    the patient was, not how they are.
    """
    now = now or datetime.now(timezone.utc)
    mine = []
    for qr, where in candidates:
        if _subject_id(qr) != patient_id:
            continue
        authored = _instant(qr.get("authored"))
        if authored is None or not (now - freshness <= authored <= now + FUTURE_SKEW):
            continue
        mine.append((authored, qr, where))
    if not mine:
        raise NoData()
    _, qr, where = max(mine, key=lambda t: t[0])
    return Found(qr, where, qr.get("id") if isinstance(qr.get("id"), str) else None)


def _subject_id(qr: dict) -> str | None:
    subject = qr.get("subject")
    ref = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(ref, str):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "Patient" else None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None  # a date without a time cannot be placed in a window of hours
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def fetch(fhir_server: str, query: str, token: str, allowed: tuple[str, ...], where: str) -> Any:
    """One GET of `query` on an allow-listed `fhir_server` with the bearer token; the JSON it
    returns. 412 when the server is not allowed, busy, fails, is too slow or sends something else."""
    from service import fetching  # see fetching.py: imported where it is first used

    base = fhir_server.rstrip("/")
    if base not in allowed:
        raise precondition_failed("The prefetch is missing and this service may not query the given "
                                  "fhirServer (not in LEGTRIAGE_CDS_FHIR_SERVERS).", "fhirServer")
    failed = precondition_failed("The prefetch is missing and the EHR's FHIR server did not answer "
                                 "the query in time with a Bundle.", where)
    if not _IN_FLIGHT.enter(base):
        # One slow server gets at most its share: the calls naming other EHRs keep working.
        raise precondition_failed("The prefetch is missing and this service is already waiting on the "
                                  "EHR's FHIR server for other calls; send the prefetch, or try again "
                                  "shortly.", where)
    try:
        # The budget is the whole exchange, enforced on the socket (service/fetching.py).
        body = fetching.get(f"{base}/{query}", {"Accept": "application/fhir+json",
                                                "Authorization": f"Bearer {token}"},
                            FETCH_BUDGET_SECONDS, FETCH_MAX_BYTES)
    except fetching.Refused:
        raise failed from None
    finally:
        _IN_FLIGHT.leave(base)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise failed from None
    # What the EHR sent is not the caller's request: anything but a resource of the kinds asked for
    # is the EHR failing to answer (412), never a malformed call (400).
    if not isinstance(value, dict) or value.get("resourceType") not in ("Bundle", "QuestionnaireResponse",
                                                                        "OperationOutcome"):
        raise failed
    return value


class _InFlight:
    """How many fetches this process has open to each server, capped per server."""

    def __init__(self, per_server: int) -> None:
        self.per_server = per_server
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()  # never held across I/O

    def enter(self, server: str) -> bool:
        with self._lock:
            if self._open.get(server, 0) >= self.per_server:
                return False
            self._open[server] = self._open.get(server, 0) + 1
            return True

    def leave(self, server: str) -> None:
        with self._lock:
            left = self._open[server] - 1
            if left:
                self._open[server] = left
            else:
                del self._open[server]


_IN_FLIGHT = _InFlight(FETCH_MAX_PER_SERVER)
