"""The service's own FHIR resources: CapabilityStatement and one Library per rule module version."""
from __future__ import annotations

from typing import Sequence

from service.catalog import BASE, Catalog
from service.fhir_io.narrative import with_text
from service.fhir_io.search import CAPABILITY_NOTE, CAPABILITY_PARAMS
from service.triage.rules import RuleModule

SOFTWARE_VERSION = "0.1.0"


def capability_statement(catalog: Catalog, public_base_url: str, date: str, auth_enabled: bool = False,
                         cors: bool = False, audit_search: Sequence[dict] | None = None) -> dict:
    """The CapabilityStatement; `audit_search`: the AuditEvent search parameters when the service
    keeps records (service/records/search.py), None when nothing is stored."""
    audit = audit_search is not None
    read = [{"code": "read"}, {"code": "search-type"}]
    rest: dict = {
        "mode": "server",
        "documentation": ("Triage with POST /fhir/QuestionnaireResponse/$triage. Each call leaves one "
                          "AuditEvent (references and codes only); searching them needs a token with "
                          "scope system/AuditEvent.rs or system/AuditEvent.read." if audit else
                          "Triage with POST /fhir/QuestionnaireResponse/$triage. Nothing is stored."),
    }
    if auth_enabled:
        rest["security"] = {
            "cors": cors,
            "description": "Bearer JWT (RFC 6750) required on every endpoint but /metadata: "
                           "signed by a trusted issuer's key (RS384, ES384 or RS256), with this "
                           "service in aud.",
        }
    url_search = CAPABILITY_PARAMS  # one search for all of them (service/fhir_io/search.py)
    return with_text({
        "resourceType": "CapabilityStatement",
        "id": "legtriage",
        "url": f"{BASE}/CapabilityStatement/legtriage",
        "name": "LegtriageServer",
        "title": "legtriage: leg numbness triage",
        "status": "active",
        "date": date,
        "publisher": "legtriage",
        "kind": "instance",
        "software": {"name": "legtriage"},
        "implementation": {"description": "Leg numbness triage service", "url": f"{public_base_url}/fhir"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            **rest,
            "resource": [
                {"type": "QuestionnaireResponse",
                 "operation": [{"name": "triage",
                                "definition": catalog.operation_definition["url"]}]},
                {"type": "Questionnaire", "interaction": read, "searchParam": url_search,
                 "documentation": "The leg-numbness Questionnaire, and the other hospitals' forms "
                                  "$triage accepts: " + ", ".join(
                                      [f"{catalog.questionnaire_url}|{catalog.questionnaire_version}"]
                                      + [f.form.canonical for f in catalog.forms.values()]) + "."
                                  + CAPABILITY_NOTE},
                {"type": "ConceptMap", "interaction": read, "searchParam": url_search,
                 "documentation": "How each other hospital's form maps onto the triage's facts."
                                  + CAPABILITY_NOTE},
                {"type": "Library", "interaction": read, "searchParam": url_search,
                 "documentation": "One Library per rule module version." + CAPABILITY_NOTE},
                {"type": "CodeSystem", "interaction": read, "searchParam": url_search,
                 "documentation": "Served: " + ", ".join(f"CodeSystem/{id}" for id in sorted(catalog.codesystems))
                                  + " (cds-override-reason: the overrideReasons of the CDS Hooks cards)."
                                  + CAPABILITY_NOTE},
                {"type": "OperationDefinition", "interaction": read, "searchParam": url_search,
                 "documentation": "$triage's." + CAPABILITY_NOTE},
                {"type": "StructureDefinition", "interaction": read, "searchParam": url_search,
                 "documentation": "The extensions the service emits: "
                                  + ", ".join(sd["url"] for sd in catalog.structure_definitions.values())
                                  + "." + CAPABILITY_NOTE},
                {"type": "ValueSet", "interaction": read, "searchParam": url_search,
                 "documentation": "The answer lists of the Questionnaire's choice items and the "
                                  "disposition codes: "
                                  + ", ".join(vs["url"] for vs in catalog.value_sets.values())
                                  + "." + CAPABILITY_NOTE},
            ] + ([{**AUDIT_EVENT, "searchParam": list(audit_search)}] if audit else []),
        }],
    })


AUDIT_EVENT = {
    "type": "AuditEvent",
    "documentation": "The audit trail, newest first, read-only. Paged: follow the next link. An "
                     "unsupported parameter is ignored and named in an OperationOutcome entry "
                     "(search.mode outcome) unless Prefer: handling=strict, which makes it a 400.",
    "interaction": [{"code": "search-type"}],
}


def library(module: RuleModule, signoffs=None) -> dict:
    """A Library describing one rule module version: its status, dates, what changed, its sources,
    and its clinical sign-off (`signoffs`, service/triage/signoff.py): a signed version has
    approvalDate and reviewer; an unsigned one has neither, and its description says sign-off is
    pending."""
    cited = sorted({c.file for r in module.rules for c in r.cites})
    canonical = f"{BASE}/Library/leg-numbness-rules"
    status = "active" if module.status == "active" else "retired"
    summary = (module.module.__doc__ or "").strip().split("\n\n")[0]
    state = (f"Retired on {module.retired}, superseded by {module.superseded_by}: still published and "
             "answering as it always did, pin it only to reproduce earlier results."
             if status == "retired" else f"Active since {module.date}.")
    if module.known_defects:
        state += "\n\nKnown defects:\n" + "\n".join(f"- {d}" for d in module.known_defects)
    lineage = [{"type": "predecessor", "display": f"Rule module {module.replaces}",
                "resource": f"{canonical}|{module.replaces}"}] if module.replaces else []
    if module.superseded_by:
        lineage.append({"type": "successor", "display": f"Rule module {module.superseded_by}",
                        "resource": f"{canonical}|{module.superseded_by}"})
    resource = {
        "resourceType": "Library",
        "id": module.id,
        "url": canonical,
        "version": module.version,
        "name": "LegNumbnessTriageRules",
        "title": f"{module.title} {module.version}",
        "status": status,
        "experimental": False,
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type",
                             "code": "logic-library", "display": "Logic Library"}]},
        # date: when the Library last changed (a retirement is a change)
        "date": module.retired or module.date,
        "publisher": "legtriage",
        "description": f"{summary}\n\n{state}\n\nWhat changed: {module.changes}",
        "relatedArtifact": lineage + [
            {"type": "citation", "label": name, "display": module.sources.get(name, name),
             "citation": f"shared/sources/{name}"}
            for name in cited
        ],
    }
    signed = signoffs.signed(module.version) if signoffs is not None else None
    if signed is not None:  # approvalDate, then lastReviewDate's place: R4's element order
        resource = _insert_after(resource, "publisher", {"approvalDate": signed.date.isoformat()})
        resource = _insert_after(resource, "approvalDate", {
            "reviewer": [{"name": f"{signed.reviewer} ({signed.role})"}]})
        resource["description"] += (f"\n\nClinical sign-off: {signed.reviewer}, {signed.role}, on "
                                    f"{signed.date.isoformat()}.")
    else:
        why = signoffs.why_unsigned(module.version) if signoffs is not None else "not checked"
        resource["description"] += f"\n\nClinical sign-off pending: {why}."
    return with_text(resource)


def _insert_after(resource: dict, key: str, new: dict) -> dict:
    out: dict = {}
    for k, v in resource.items():
        out[k] = v
        if k == key:
            out.update(new)
    return out

