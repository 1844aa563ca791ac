"""FHIR REST endpoints and the $triage operation."""
from __future__ import annotations

from flask import Blueprint, g, request

from service import pipeline, records
from service.errors import FhirError, fhir_response
from service.fhir_io import incoming
from service.fhir_io.concept_maps import concept_map
from service.fhir_io.conformance import capability_statement, library, searchset
from service.state import state

bp = Blueprint("fhir", __name__, url_prefix="/fhir")


@bp.before_request
def negotiate() -> None:
    incoming.check_accept(request)


@bp.post("/QuestionnaireResponse/$triage")
def triage():
    """Triage a QuestionnaireResponse: returns a Bundle with a RiskAssessment and ServiceRequest proposals."""
    records.note(kind="triage")
    given = incoming.unwrap(incoming.read_json(request), request.args.get("rules-version"))
    result = pipeline.triage(given.qr, given.root, given.rules_version, given.rules_version_where)
    g.rules_version, g.disposition = result.module.version, result.assessment.disposition.code
    return fhir_response(result.bundle)


@bp.get("/metadata")
def metadata():
    """The CapabilityStatement (FHIR 4.0.1)."""
    s = state()
    return fhir_response(capability_statement(s.catalog, s.settings.public_base_url, s.started,
                                              auth_enabled=s.settings.auth_enabled,
                                              cors=bool(s.settings.cors_origins)))


@bp.get("/Questionnaire/<id>")
def read_questionnaire(id: str):
    """The leg-numbness Questionnaire, or another hospital's form that the service maps."""
    return _read(_questionnaires().get(id, {"resourceType": "Questionnaire"}), id)


@bp.get("/Questionnaire")
def search_questionnaire():
    """Search Questionnaires by url (and version)."""
    url, version = request.args.get("url"), request.args.get("version")
    unknown = set(request.args) - {"url", "version", "_format"}
    if unknown:
        raise FhirError.one(400, "not-supported", f"Unsupported search parameter(s): "
                            f"{', '.join(sorted(unknown))[:120]}; use url or version.")
    if url and "|" in url:
        url, version = url.split("|", 1)
    found = [q for q in _questionnaires().values()
             if url in (None, q["url"]) and version in (None, q["version"])]
    return fhir_response(searchset(found, request.url))


def _questionnaires() -> dict[str, dict]:
    """Ours first, then each foreign form, by id."""
    cat = state().catalog
    return {cat.questionnaire["id"]: cat.questionnaire,
            **{f.form.questionnaire["id"]: f.form.questionnaire for f in cat.forms.values()}}


@bp.get("/ConceptMap")
def search_concept_map():
    """One ConceptMap per foreign form's mapping file."""
    return fhir_response(searchset(list(_concept_maps().values()), request.url))


@bp.get("/ConceptMap/<id>")
def read_concept_map(id: str):
    """How one foreign form's answers become the triage's facts."""
    return _read(_concept_maps().get(id, {"resourceType": "ConceptMap"}), id)


def _concept_maps() -> dict[str, dict]:
    cat = state().catalog
    maps = (concept_map(f.form, cat) for f in cat.forms.values())
    return {m["id"]: m for m in maps}


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
