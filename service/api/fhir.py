"""FHIR REST endpoints and the $triage operation."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from flask import Blueprint, g, request

from service import pipeline, records
from service.fhir_io.outcome import FhirError, fhir_response, unavailable
from service.records import StoreUnavailable, audit
from service.records import search as search_params
from service.fhir_io import incoming, store_ready
from service.fhir_io.concept_maps import concept_map
from service.fhir_io.narrative import with_text
from service.fhir_io.conformance import capability_statement, library
from service.fhir_io.search import ignored_outcome, search
from service.state import state

bp = Blueprint("fhir", __name__, url_prefix="/fhir")


@bp.before_request
def negotiate() -> None:
    incoming.check_accept(request)


@bp.post("/QuestionnaireResponse/$triage")
def triage():
    """Triage a QuestionnaireResponse: returns a Bundle with a RiskAssessment and ServiceRequest proposals."""
    records.note(kind="triage")
    query_version, query_name = incoming.query_rules_version(request.args)
    query_type = incoming.query_bundle_type(request.args)
    body, depth = incoming.read_json_with_depth(request)
    given = incoming.unwrap(body, query_version, depth)
    if query_type and given.bundle_type and query_type != given.bundle_type:
        raise FhirError.one(422, "conflict", "The bundle-type query parameter and the bundleType "
                            "parameter disagree.", "Parameters.parameter")
    records.note(**audit.qr_references(given.qr))
    where = query_name if given.rules_version_where == "rules-version" else given.rules_version_where
    result = pipeline.triage(given.qr, given.root, given.rules_version, where)
    g.rules_version, g.disposition = result.module.version, result.assessment.disposition.code
    records.note(rules_version=g.rules_version, disposition=g.disposition)
    if (given.bundle_type or query_type) == "transaction":
        return fhir_response(store_ready.transaction(result.bundle, given.qr))
    return fhir_response(result.bundle)


@bp.get("/metadata")
def metadata():
    """The CapabilityStatement (FHIR 4.0.1)."""
    s = state()
    return fhir_response(capability_statement(s.catalog, s.settings.public_base_url, s.started,
                                              auth_enabled=s.settings.auth_enabled,
                                              cors=bool(s.settings.cors_origins),
                                              audit_search=search_params.CAPABILITY if s.settings.records_enabled
                                              else None))


@bp.get("/Questionnaire/<id>")
def read_questionnaire(id: str):
    """The leg-numbness Questionnaire, or another hospital's form that the service maps."""
    return _read(_questionnaires().get(id, {"resourceType": "Questionnaire"}), id)


@bp.get("/Questionnaire")
def search_questionnaire():
    """Search Questionnaires: ours and the other hospitals' forms."""
    return _search("Questionnaire", list(_questionnaires().values()))


def _questionnaires() -> dict[str, dict]:
    """Ours first, then each foreign form, by id."""
    cat = state().catalog
    return {cat.questionnaire["id"]: cat.questionnaire,
            **{f.form.questionnaire["id"]: with_text(f.form.questionnaire) for f in cat.forms.values()}}


@bp.get("/ConceptMap")
def search_concept_map():
    """One ConceptMap per foreign form's mapping file."""
    return _search("ConceptMap", list(_concept_maps().values()))


@bp.get("/ConceptMap/<id>")
def read_concept_map(id: str):
    """How one foreign form's answers become the triage's facts."""
    return _read(_concept_maps().get(id, {"resourceType": "ConceptMap"}), id)


def _concept_maps() -> dict[str, dict]:
    cat = state().catalog
    maps = (with_text(concept_map(f.form, cat)) for f in cat.forms.values())
    return {m["id"]: m for m in maps}


@bp.get("/OperationDefinition")
def search_operation_definition():
    """Search the OperationDefinitions: $triage's."""
    return _search("OperationDefinition", [state().catalog.operation_definition])


@bp.get("/OperationDefinition/<id>")
def read_operation_definition(id: str):
    """The $triage OperationDefinition."""
    return _read(state().catalog.operation_definition, id)


@bp.get("/Library")
def search_library():
    """One Library per rule module version."""
    return _search("Library", [library(m, state().signoffs) for m in state().registry.modules.values()])


@bp.get("/Library/<id>")
def read_library(id: str):
    """The Library of one rule module version."""
    modules = list(state().registry.modules.values())
    for module in modules:
        if module.id == id:
            return fhir_response(library(module, state().signoffs))
    raise FhirError.one(404, "not-found", f"No Library {id[:64]!r}. A Library id is "
                        f"leg-numbness-rules- and the rule version with dashes (1.0.0 -> "
                        f"leg-numbness-rules-1-0-0); published: {', '.join(m.id for m in modules)}.")


@bp.get("/CodeSystem")
def search_code_system():
    """Search the CodeSystems the service serves."""
    return _search("CodeSystem", list(state().catalog.codesystems.values()))


@bp.get("/CodeSystem/<id>")
def read_code_system(id: str):
    """The disposition and answer CodeSystems."""
    codesystems = state().catalog.codesystems
    return _read(codesystems.get(id, {"resourceType": "CodeSystem"}), id)


@bp.get("/StructureDefinition/<id>")
def read_structure_definition(id: str):
    """The definition of an extension the service emits."""
    definitions = state().catalog.structure_definitions
    return _read(definitions.get(id, {"resourceType": "StructureDefinition"}), id)


@bp.get("/StructureDefinition")
def search_structure_definition():
    """Search the StructureDefinitions of the extensions the service emits."""
    return _search("StructureDefinition", list(state().catalog.structure_definitions.values()))


@bp.get("/ValueSet/<id>")
def read_value_set(id: str):
    """A ValueSet: the answers of one Questionnaire item, or the dispositions."""
    return _read(state().catalog.value_sets.get(id, {"resourceType": "ValueSet"}), id)


@bp.get("/ValueSet")
def search_value_set():
    """Search the ValueSets."""
    return _search("ValueSet", list(state().catalog.value_sets.values()))


def _search(rtype: str, resources: list[dict]):
    """Every search of the service's own resources: service/fhir_io/search.py."""
    return fhir_response(search(resources, rtype, request.args, request.headers.get("Prefer"),
                                state().settings.public_base_url))


def _read(resource: dict, id: str):
    """The resource if `id` is its id, else 404 naming the type and the id asked for."""
    if id != resource.get("id"):
        raise FhirError.one(404, "not-found", f"No {resource['resourceType']} {id[:64]!r}.")
    return fhir_response(resource)


@bp.get("/AuditEvent")
def search_audit_event():
    """The audit trail, newest first: search by date, patient, outcome; paged by _count and next links."""
    s = state()
    if s.settings.records_enabled:
        records.note(kind="audit-search")  # each read of the trail is recorded, refused ones too
    else:
        raise FhirError.one(404, "not-found", "Recording is off (LEGTRIAGE_RECORDS_ENABLED=false): "
                            "there is no audit trail.")
    if s.settings.auth_enabled:
        if not audit.AUDIT_SCOPES & audit.token_scopes(g.get("token_claims")):
            raise FhirError.one(403, "forbidden", "Reading the audit trail needs a token whose scope "
                                "holds system/AuditEvent.rs or system/AuditEvent.read.")
    elif not s.settings.audit_open_lab:
        raise FhirError.one(403, "forbidden", "The audit trail is closed while authentication is off: "
                            "turn on LEGTRIAGE_AUTH_ENABLED and use a token with scope "
                            "system/AuditEvent.rs (or, in a lab only, LEGTRIAGE_AUDIT_OPEN_LAB=true).")
    query = search_params.parse_search(request.args, request.headers.get("Prefer"))
    records.note(patient=query.patient)  # whose trail was read (a reference, checked by parse_search)
    try:
        found = s.records.search_audits(replace(query, count=query.count + 1))
    except StoreUnavailable:
        g.store_failed = True
        return unavailable("The audit store cannot be read right now. Try again shortly.")
    page, more = found[:query.count], len(found) > query.count
    base = f"{s.settings.public_base_url}/fhir/AuditEvent"
    applied = [(k, v) for k, v in request.args.items(multi=True) if k not in query.ignored]
    params = [(k, v) for k, v in applied if k != "_cursor"]
    links = [{"relation": "self", "url": _url(base, applied)}]
    if more:
        links.append({"relation": "next",
                      "url": _url(base, params + [("_cursor", search_params.cursor_of(page[-1]))])})
    library_ids = {m.version: m.id for m in s.registry.modules.values()}
    return fhir_response({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        # No read interaction: the ids are urn:uuid, not URLs this server resolves.
        "entry": [{"fullUrl": f"urn:uuid:{r.id}",
                   "resource": audit.audit_event(r, s.settings.public_base_url, library_ids),
                   "search": {"mode": "match"}} for r in page]
                 + ([ignored_outcome(query.ignored, "AuditEvent")] if query.ignored else []),
    })


def _url(base: str, params) -> str:
    """A link on the public base URL (LEGTRIAGE_PUBLIC_BASE_URL), never the request's Host."""
    params = list(params)
    return f"{base}?{urlencode(params)}" if params else base
