"""CDS Hooks 2.0.1 endpoints: discovery, the two triage services, feedback.

Bodies are application/json as CDS Hooks says, not FHIR; refusals are FHIR OperationOutcomes like
everywhere else in the service. The triage is the same core as $triage (service/pipeline.py).

Authentication: when LEGTRIAGE_CDS_AUTH_ENABLED is on, the CDS client's JWT (service/cds/trust.py)
is checked on the services and on feedback, and on discovery when LEGTRIAGE_CDS_DISCOVERY_AUTH is
on too (discovery says nothing about patients, and the CDS Hooks sandbox probes it without a
token). The FHIR API's bearer check (service/auth.py) does not apply here: a CDS client's JWT has a
per-endpoint audience that it cannot express.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request

from service import pipeline, records
from service.cds import answers, schemas
from service.cds.cards import CardMaker
from service.cds.services import IN_PROGRESS_KEY, QR_KEY, SERVICES
from service.config import ConfigError, Settings
from service.fhir_io.outcome import RETRY_AFTER_SECONDS, FhirError, Issue
from service.fhir_io import incoming
from service.records import CardRecord, FeedbackRecord, StoreUnavailable
from service.state import state

if TYPE_CHECKING:
    from service.cds.trust import CdsVerifier

bp = Blueprint("cds_hooks", __name__, url_prefix="/cds-services")
EXTENSION = "legtriage.cds"
JSON = "application/json"
BODY_TYPES = {"application/json", "application/fhir+json"}
COMPLETED = ("completed", "amended")


class CdsState:
    def __init__(self, cards: CardMaker, verifier: CdsVerifier | None) -> None:
        self.cards, self.verifier = cards, verifier
        # marshmallow schemas are reusable; building one per call cost more than loading with it
        self.request_schemas = {s.id: schemas.HookRequestSchema(s.hook, s.context_fields)
                                for s in SERVICES.values()}
        self.feedback_schema = schemas.FeedbackSchema()
        # What "now" is for the freshness window; the OpenAPI examples pin it so that the dated
        # example questionnaires stay fresh (scripts/gen-openapi-examples).
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


# What the records store keeps of a CDS client (service/records/schema.py): longer values are refused
# where they come in, the same on SQLite and PostgreSQL (issue 23).
MAX_ISS, MAX_SUB, MAX_TENANT = 255, 255, 64


def init_app(app: Flask, settings: Settings) -> None:
    """The card maker and, when CDS auth is on, the trusted issuers (checked now, at start)."""
    verifier = None
    if settings.cds_auth_enabled:  # the issuers file is read only when CDS auth is on (like the JWKS)
        # and the JWT check, PyJWT and cryptography are loaded only then
        from service.cds.trust import CdsVerifier, load_issuers
        from service.keys import replay_guard

        issuers = load_issuers(settings.cds_issuers_file)
        for i, issuer in enumerate(issuers.values()):
            long_tenants = [t for t in issuer.tenants if len(t) > MAX_TENANT]
            if len(issuer.iss) > MAX_ISS or long_tenants:
                raise ConfigError(f"invalid configuration: LEGTRIAGE_CDS_ISSUERS_FILE: "
                                  f"{settings.cds_issuers_file}: [{i}] "
                                  + (f"iss is longer than {MAX_ISS} characters" if len(issuer.iss) > MAX_ISS
                                     else f"a tenant is longer than {MAX_TENANT} characters")
                                  + " (what the audit trail keeps)")
        verifier = CdsVerifier(issuers, replay_guard(app.extensions["legtriage"].records))
    app.extensions[EXTENSION] = CdsState(CardMaker(app.extensions["legtriage"].catalog,
                                                   settings.public_base_url), verifier)
    app.register_blueprint(bp)


def _cds() -> CdsState:
    return current_app.extensions[EXTENSION]


@bp.before_request
def authenticate() -> None:
    verifier = _cds().verifier
    if verifier is None or request.method == "OPTIONS":
        return  # preflights carry no credentials by design
    settings = state().settings
    base = f"{settings.public_base_url}/cds-services"
    if request.endpoint == "cds_hooks.discovery":
        if not settings.cds_discovery_auth:
            return
        audiences: tuple[str, ...] = (base,)
    else:
        service = f"{base}/{(request.view_args or {}).get('id', '')}"
        # Feedback: the CDS Hooks sandbox signs {service}/feedback, others sign the service URL.
        audiences = (service,) if request.endpoint == "cds_hooks.call" else (f"{service}/feedback", service)
    g.cds_claims = claims = verifier.verify(request.headers.get("Authorization"), audiences)
    # A signed token from a trusted client, whose sub or tenant is longer than the records keep:
    # said plainly (400), never cut or left to the database (a 503 on PostgreSQL, kept on SQLite).
    for name, limit in (("sub", MAX_SUB), ("tenant", MAX_TENANT)):
        value = claims.get(name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= limit):
            raise FhirError.one(400, "too-long" if isinstance(value, str) and value else "invalid",
                                f"The CDS client's JWT claim {name} must be a string of 1 to {limit} "
                                "characters.")


@bp.get("")
def discovery():
    """The CDS services offered (CDS Hooks discovery)."""
    prompt = state().settings.cds_prompt_in_progress
    return _json({"services": [s.discovery(prompt) for s in SERVICES.values()]})


@bp.post("/<id>")
def call(id: str):
    """A hook call: a card for the patient's latest completed leg-numbness questionnaire."""
    # only a known id is recorded: an unknown one is whatever the caller typed
    records.note(kind="cds-hook", service=id if id in SERVICES else None)
    service = _service(id)
    s = state()
    body, depth = _read_body()
    req = schemas.load(_cds().request_schemas[service.id], body)
    context = req["context"]
    patient_id = context["patientId"]
    records.note(patient=f"Patient/{patient_id}")
    hook_instance = str(req["hookInstance"])
    prefetch = req.get("prefetch") or {}
    where = f"prefetch.{QR_KEY}"
    within = None  # how deep the JSON holding the answers nests, when it is this call's body
    if QR_KEY in prefetch:
        value, within = prefetch[QR_KEY], depth
    elif "fhirServer" in req and "fhirAuthorization" in req:
        access = req["fhirAuthorization"]
        if access.get("patient", patient_id) != patient_id:
            raise answers.precondition_failed("fhirAuthorization.patient is not context.patientId: the "
                                              "questionnaire is not fetched.", "fhirAuthorization.patient")
        query = answers.search_query(service.prefetch()[QR_KEY], context)
        value = answers.fetch(req["fhirServer"], query, access["access_token"], s.settings.cds_fhir_servers,
                              where)
    else:
        raise answers.precondition_failed(f"The {QR_KEY} prefetch is missing and the call gives no "
                                          "fhirServer with fhirAuthorization to read it: the "
                                          "questionnaire cannot be obtained.", where)
    freshness = timedelta(hours=s.settings.cds_freshness_hours)
    cards = []
    found = None
    if value is not None:
        candidates = [c for c in answers.resources_of(value, where) if c[0].get("status") in COMPLETED]
        try:
            found = answers.choose(candidates, patient_id, freshness, _cds().clock())
        except answers.NoData:
            pass
    # the web app's SMART launch (/app/launch) works only with the client id the EHR registered
    smart = "app" in current_app.blueprints and bool(state().settings.smart_client_id)
    if found is not None:
        incoming.check_depth(found.qr, found.root, within)
        result = pipeline.triage(found.qr, found.root)
        version, disposition = result.module.version, result.assessment.disposition.code
        g.rules_version, g.disposition = version, disposition
        records.note(rules_version=version, disposition=disposition,
                     questionnaire_response=f"QuestionnaireResponse/{found.id}" if found.id else None)
        card = _cds().cards.triage_card(result, hook_instance, patient_id, found.id, smart)
        cards.append((card, disposition, version))
    elif smart and s.settings.cds_prompt_in_progress and prefetch.get(IN_PROGRESS_KEY) is not None:
        started = _in_progress(prefetch[IN_PROGRESS_KEY], patient_id, freshness)
        if started is not None:
            cards.append((_cds().cards.in_progress_card(hook_instance, started.id), "in-progress", ""))
    tenant = (g.get("cds_claims") or {}).get("tenant")  # checked in authenticate(); None without CDS auth
    for card, disposition, version in cards:
        _store(lambda: s.records.card_issued(CardRecord(card["uuid"], hook_instance, id, disposition,
                                                        version, tenant=tenant)))
    return _json({"cards": [c for c, _, _ in cards]})


@bp.post("/<id>/feedback")
def feedback(id: str):
    """What the clinician did with the cards: accepted suggestions or overridden."""
    _service(id)
    data = schemas.load(_cds().feedback_schema, _read_body()[0])
    claims = g.get("cds_claims") or {}
    iss = claims.get("iss") if isinstance(claims.get("iss"), str) else None
    tenant = claims.get("tenant")  # checked in authenticate(); None without CDS auth
    _check_cards(id, [item["card"] for item in data["feedback"]], tenant)
    items = []
    for item in data["feedback"]:
        reason = (item.get("overrideReason") or {}).get("reason") or {}
        items.append(FeedbackRecord(
            card_uuid=item["card"], service=id, outcome=item["outcome"],
            outcome_timestamp=item["outcomeTimestamp"],
            accepted_suggestions=tuple(s["id"] for s in item.get("acceptedSuggestions", ())),
            override_code=reason.get("code"), override_system=reason.get("system"), iss=iss,
            tenant=tenant, user_comment=(item.get("overrideReason") or {}).get("userComment")))
    _store(lambda: state().records.feedback(items))
    return Response(status=200)


def _check_cards(service_id: str, uuids: list[str], tenant: str | None) -> None:
    """Feedback is kept only on a card this service issued, to this tenant: 404 naming each other
    card. Another tenant's card is "not found" too, so that its existence is not told."""
    s = state()
    if not s.settings.records_enabled:
        return  # nothing is kept, so there is nothing to tie to
    issued: dict[str, bool] = {}
    for uuid in uuids:
        if uuid not in issued:
            card = s.records.card(uuid)  # StoreUnavailable: 503 (service/errors.py)
            issued[uuid] = card is not None and card.service == service_id and card.tenant == tenant
    unknown = [i for i, uuid in enumerate(uuids) if not issued[uuid]]
    if unknown:
        raise FhirError(404, [Issue("not-found", f"feedback[{i}].card: no card {uuids[i]!r} was issued by "
                                    f"this CDS service{' to this tenant' if tenant else ''}.",
                                    f"feedback[{i}].card") for i in unknown[:20]])


def _in_progress(value, patient_id: str, freshness: timedelta):
    try:
        candidates = [c for c in answers.resources_of(value, f"prefetch.{IN_PROGRESS_KEY}")
                      if c[0].get("status") == "in-progress"]
        return answers.choose(candidates, patient_id, freshness, _cds().clock())
    except (answers.NoData, FhirError):
        return None  # prompting is a convenience: a bad optional prefetch only means no prompt


def _service(id: str):
    service = SERVICES.get(id)
    if service is None:
        raise FhirError.one(404, "not-found", f"No CDS service {id[:64]!r}: GET /cds-services lists them.")
    return service


def _store(write) -> None:
    try:
        write()
    except StoreUnavailable:
        g.store_failed = True  # the audit record of this 503 is not waited for again (service/records/audit.py)
        raise FhirError(503, [Issue("transient", "The record store is unavailable: nothing was issued; "
                                    "try again shortly.")],
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None


def _read_body():
    # The body and how deep it nests, by $triage's body reader: the same 413, and 400 for broken
    # framing, bad JSON or a repeated key
    return incoming.read_json_with_depth(request, BODY_TYPES, "application/json (CDS Hooks)",
                                         "a CDS Hooks request", root="$")


def _json(value) -> Response:
    return Response(orjson.dumps(value), status=200, content_type=JSON)
