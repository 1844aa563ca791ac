"""The audit trail: the after_request hook that writes one record per $triage and CDS Hooks call,
per read of the trail and per refused authentication (401/403), and the FHIR R4 AuditEvent a record
shows as. A call whose record the store cannot take gets 503 with Retry-After instead of its result:
no answer goes out whose record is missing. A refusal keeps only what it leaves certain (endpoint,
status, time), never what the unverified token claims.
"""
from __future__ import annotations

import logging
import re

from flask import Flask, Response, g, request

from service.fhir_io.outcome import unavailable
from service.records import AuditRecord, StoreUnavailable, outcome_code

log = logging.getLogger(__name__)
AUDIT_SCOPES = frozenset({"system/AuditEvent.rs", "system/AuditEvent.read"})

# Codes from the value sets the R4 AuditEvent binds (https://hl7.org/fhir/R4/auditevent.html): type
# audit-event-type `rest`; subtype restful-interaction (`operation` for $triage, `search-type` for a
# read of the trail; the CDS Hooks calls have no code there: display only); action `E`; outcome
# audit-event-outcome by HTTP status; agent.type DICOM `110153` Source Role ID; source.type
# security-source-type `4`; entity.type audit-entity-type and entity.role object-role. The rules
# version, disposition and CDS service id are entity.detail of the rule-module entity (R4 has no
# coded element for them). A refusal's type is text only: DICOM's 110114 "User Authentication" and
# 110113 "Security Alert" are the usual codes but not among those this project has checked.
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
OUTCOMES = {"0": "Success", "4": "Minor failure", "8": "Serious failure", "12": "Major failure"}
TYPE_REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
             "display": "RESTful Operation"}
SUBTYPE = {
    "triage": {"system": "http://hl7.org/fhir/restful-interaction", "code": "operation",
               "display": "operation"},
    "cds-hook": {"display": "CDS Hooks service call"},
    "audit-search": {"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type",
                     "display": "search-type"},
    "cds-feedback": {"display": "CDS Hooks feedback"},
    "cds-discovery": {"display": "CDS Hooks discovery"},
    "fhir": {"display": "FHIR API request"},
}
# What a refused call is, by its status: text only (see the module's docstring).
SECURITY_TYPE = {401: {"display": "User Authentication"}, 403: {"display": "Security Alert"}}
REFUSED = frozenset(SECURITY_TYPE)
SOURCE_TYPE = {"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
               "display": "Application Server"}
CALLER = {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]}
PERSON = {"system": ENTITY_TYPE, "code": "1", "display": "Person"}
SYSTEM_OBJECT = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
ROLE_PATIENT = {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
ROLE_DOMAIN_RESOURCE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}

# What may be stored of a reference a client sent: `Type/id` (optionally absolute, or with a
# version) or a urn:uuid, within FHIR's id rules. Anything else is not kept: it may be free text.
_REFERENCE = re.compile(r"(?:https?://[A-Za-z0-9.\-:]{1,100}(?:/[A-Za-z0-9\-._~%]{1,64}){0,6}/)?"
                        r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
                        r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


MAX_REFERENCE = 255  # audit_event.patient and .questionnaire_response (service/records/schema.py)


def reference(value: object) -> str | None:
    """`value` if it is a plain FHIR reference the records can keep, else None."""
    return (value if isinstance(value, str) and len(value) <= MAX_REFERENCE and _REFERENCE.fullmatch(value)
            else None)


def qr_references(qr: object) -> dict:
    """note() fields for a QuestionnaireResponse: its own reference (when it has an id) and its subject's."""
    if not isinstance(qr, dict):
        return {}
    subject = qr.get("subject")
    qr_id = qr.get("id")
    return {"patient": reference(subject.get("reference")) if isinstance(subject, dict) else None,
            "questionnaire_response": (f"QuestionnaireResponse/{qr_id}"
                                       if isinstance(qr_id, str) and _ID.fullmatch(qr_id) else None)}


def init_app(app: Flask) -> None:
    """Write the audit record of each call whose view noted one (to state().records), before its
    response leaves."""

    @app.after_request
    def record_audit(response: Response) -> Response:
        noted = g.get("audit_fields")  # what the view noted (service.records.note)
        refused = response.status_code in REFUSED and request.method != "OPTIONS"
        if noted is None:
            kind = refused_kind(request.path) if refused else None
            if kind is None:
                return response
            noted = {"kind": kind}  # stopped before its view: only the endpoint is certain
        if g.get("store_failed"):
            # The store already failed this call after its wait: a 503 went out instead of the result,
            # and waiting as long again for its record would only double the caller's wait.
            log.warning("audit: a 503 answered because the store is unavailable is not recorded")
            return response
        # the caller: the FHIR API's bearer token, or the CDS client's JWT (service/cds/views.py)
        claims = g.get("token_claims") or g.get("cds_claims") or {}
        record = AuditRecord(**{**noted, "status": response.status_code,
                                "agent_iss": noted.get("agent_iss") or _claim(claims, "iss"),
                                "agent_sub": noted.get("agent_sub") or _claim(claims, "sub")})
        try:
            app.extensions["legtriage"].records.audit(record)
        except StoreUnavailable:
            if refused:  # the refusal stands: nothing was given out; the operator is told
                log.error("audit: a refused call (HTTP %d) could not be recorded: the store is "
                          "unavailable", response.status_code)
                return response
            return unavailable("The audit store cannot record this call right now, so its result "
                               "is withheld. Try again shortly.")
        return response


def refused_kind(path: str) -> str | None:
    """The record kind of a refused call to `path`: the FHIR API or the CDS Hooks endpoints; None
    elsewhere (the web app's files, health: nothing there is refused for want of credentials)."""
    if path == "/fhir/QuestionnaireResponse/$triage":
        return "triage"
    if path.rstrip("/") == "/fhir/AuditEvent":
        return "audit-search"
    if path.startswith("/fhir/") or path == "/fhir":
        return "fhir"
    parts = path.rstrip("/").split("/")
    if parts[:2] == ["", "cds-services"]:
        return {2: "cds-discovery", 3: "cds-hook"}.get(len(parts), "cds-feedback")
    return None


def _claim(claims: dict, name: str) -> str | None:
    value = claims.get(name)
    return value[:255] if isinstance(value, str) and value else None


def token_scopes(claims: dict | None) -> set[str]:
    """The scopes of a token: SMART's space-separated `scope`, or a `scope`/`scp` list."""
    if not claims:
        return set()
    scopes: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(v for v in value if isinstance(v, str))
    return scopes


def audit_event(record: AuditRecord, public_base_url: str, library_ids: dict[str, str]) -> dict:
    """The FHIR R4 AuditEvent of a stored record (codes above)."""
    outcome = outcome_code(record.status)
    who = ({"identifier": {k: v for k, v in (("system", record.agent_iss), ("value", record.agent_sub)) if v}}
           if record.agent_iss or record.agent_sub else {"display": "anonymous"})
    entities = []
    if record.patient:
        entities.append({"what": {"reference": record.patient}, "type": PERSON, "role": ROLE_PATIENT})
    if record.questionnaire_response:
        entities.append({"what": {"reference": record.questionnaire_response}, "type": SYSTEM_OBJECT,
                         "role": ROLE_DOMAIN_RESOURCE})
    if record.rules_version or record.disposition or record.service:
        detail = [{"type": name, "valueString": value} for name, value in (
            ("rulesVersion", record.rules_version), ("disposition", record.disposition),
            ("cdsService", record.service)) if value]
        what = ({"reference": f"Library/{library_ids[record.rules_version]}"}
                if record.rules_version in library_ids else {})
        what["display"] = f"rule module {record.rules_version or '(none ran)'}"
        entities.append({"what": what, "type": SYSTEM_OBJECT, "role": ROLE_DOMAIN_RESOURCE,
                         "detail": detail})
    event = {
        "resourceType": "AuditEvent",
        "id": record.id,
        "type": SECURITY_TYPE.get(record.status, TYPE_REST),
        "subtype": [SUBTYPE.get(record.kind, {"display": record.kind})],
        "action": "E",
        "recorded": record.recorded,
        "outcome": outcome,
        "outcomeDesc": f"HTTP {record.status}",
        "agent": [{"type": CALLER, "who": who, "requestor": True}],
        "source": {"site": public_base_url, "observer": {"display": "legtriage"}, "type": [SOURCE_TYPE]},
    }
    if entities:
        event["entity"] = entities
    return event
