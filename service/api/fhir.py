"""FHIR REST endpoints and the $triage operation."""
from __future__ import annotations

from flask import Blueprint, g, request

from service.errors import FhirError, fhir_response
from service.fhir_io import incoming
from service.fhir_io.conformance import capability_statement, library, searchset
from service.state import state
from service.triage.engine import UnknownRulesVersion, evaluate
from service.triage.facts import ValidationError, load_facts

bp = Blueprint("fhir", __name__, url_prefix="/fhir")


@bp.before_request
def negotiate() -> None:
    incoming.check_accept(request)


@bp.post("/QuestionnaireResponse/$triage")
def triage():
    """Triage a QuestionnaireResponse: returns a Bundle with a RiskAssessment and ServiceRequest proposals."""
    s = state()
    body = incoming.read_json(request)
    query_version = request.args.get("rules-version") if request.query_string else None
    given = incoming.unwrap(body, query_version)
    qr, root = given.qr, given.root
    incoming.validate_structure(qr, root)
    answers = incoming.check_against_questionnaire(qr, root, s.catalog)
    try:
        module = s.registry.get(given.rules_version)
    except UnknownRulesVersion as err:
        raise FhirError.one(422, "not-supported", f"Unknown rules version {err.requested[:40]!r}; "
                            f"published versions: {', '.join(err.available)}.",
                            given.rules_version_where) from None
    try:
        facts = load_facts(incoming.answers_to_fact_values(answers, s.catalog))
    except ValidationError as err:  # the Questionnaire checks should have caught it
        raise FhirError.one(422, "value", f"Answers out of range: {err.messages}") from None
    assessment = evaluate(module, facts)
    g.rules_version, g.disposition = module.version, assessment.disposition.code
    return fhir_response(s.builder.build(assessment, module, qr, answers.warnings))


@bp.get("/metadata")
def metadata():
    """The CapabilityStatement (FHIR 4.0.1)."""
    s = state()
    return fhir_response(capability_statement(s.catalog, s.settings.public_base_url, s.started,
                                              auth_enabled=s.settings.auth_enabled,
                                              cors=bool(s.settings.cors_origins)))


@bp.get("/Questionnaire/<id>")
def read_questionnaire(id: str):
    """The leg-numbness Questionnaire."""
    return _read(state().catalog.questionnaire, id)


@bp.get("/Questionnaire")
def search_questionnaire():
    """Search Questionnaires by url (and version)."""
    cat = state().catalog
    url, version = request.args.get("url"), request.args.get("version")
    unknown = set(request.args) - {"url", "version", "_format"}
    if unknown:
        raise FhirError.one(400, "not-supported", f"Unsupported search parameter(s): "
                            f"{', '.join(sorted(unknown))[:120]}; use url or version.")
    if url and "|" in url:
        url, version = url.split("|", 1)
    found = [cat.questionnaire] if (url in (None, cat.questionnaire_url)
                                    and version in (None, cat.questionnaire_version)) else []
    return fhir_response(searchset(found, request.url))


@bp.get("/OperationDefinition/<id>")
def read_operation_definition(id: str):
    """The $triage OperationDefinition."""
    return _read(state().catalog.operation_definition, id)


@bp.get("/Library")
def search_library():
    """One Library per rule module version."""
    libraries = [library(m) for m in state().registry.modules.values()]
    return fhir_response(searchset(libraries, request.url))


@bp.get("/Library/<id>")
def read_library(id: str):
    """The Library of one rule module version."""
    for module in state().registry.modules.values():
        if module.id == id:
            return fhir_response(library(module))
    raise FhirError.one(404, "not-found", f"No Library {id[:64]!r}.")


@bp.get("/CodeSystem/<id>")
def read_code_system(id: str):
    """The disposition and answer CodeSystems."""
    codesystems = state().catalog.codesystems
    return _read(codesystems.get(id, {"resourceType": "CodeSystem"}), id)


def _read(resource: dict, id: str):
    """The resource if `id` is its id, else 404 naming the type and the id asked for."""
    if id != resource.get("id"):
        raise FhirError.one(404, "not-found", f"No {resource['resourceType']} {id[:64]!r}.")
    return fhir_response(resource)
