"""The service's own FHIR resources: CapabilityStatement and one Library per rule module version."""
from __future__ import annotations

from service.catalog import Catalog
from service.fhir_io.narrative import with_text
from service.fhir_io.outgoing import BASE
from service.triage.rules import RuleModule

SOFTWARE_VERSION = "0.1.0"


def capability_statement(catalog: Catalog, public_base_url: str, date: str,
                         auth_enabled: bool = False, cors: bool = False, audit: bool = True) -> dict:
    read = [{"code": "read"}]
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
    url_search = [{"name": "url", "type": "uri"}, {"name": "version", "type": "token"}]
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
                {"type": "Questionnaire", "interaction": read + [{"code": "search-type"}],
                 "searchParam": [{"name": "url", "type": "uri"}, {"name": "version", "type": "token"}],
                 "documentation": "The leg-numbness Questionnaire, and the other hospitals' forms "
                                  "$triage accepts: " + ", ".join(
                                      [f"{catalog.questionnaire_url}|{catalog.questionnaire_version}"]
                                      + [f.form.canonical for f in catalog.forms.values()]) + "."},
                {"type": "ConceptMap", "interaction": read + [{"code": "search-type"}],
                 "documentation": "How each other hospital's form maps onto the triage's facts."},
                {"type": "Library", "interaction": read + [{"code": "search-type"}]},
                {"type": "CodeSystem", "interaction": read,
                 "documentation": "Served: " + ", ".join(f"CodeSystem/{id}" for id in sorted(catalog.codesystems))
                                  + " (cds-override-reason: the overrideReasons of the CDS Hooks cards)."},
                {"type": "OperationDefinition", "interaction": read},
                {"type": "StructureDefinition", "interaction": read + [{"code": "search-type"}],
                 "searchParam": url_search,
                 "documentation": "The extensions the service emits: "
                                  + ", ".join(sd["url"] for sd in catalog.structure_definitions.values())},
                {"type": "ValueSet", "interaction": read + [{"code": "search-type"}],
                 "searchParam": url_search,
                 "documentation": "The answer lists of the Questionnaire's choice items and the "
                                  "disposition codes: "
                                  + ", ".join(vs["url"] for vs in catalog.value_sets.values())},
            ] + ([AUDIT_EVENT] if audit else []),
        }],
    })


AUDIT_EVENT = {
    "type": "AuditEvent",
    "documentation": "The audit trail, newest first, read-only. Paged: follow the next link.",
    "interaction": [{"code": "search-type"}],
    "searchParam": [
        {"name": "date", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-date",
         "type": "date", "documentation": "When recorded; prefixes eq, ge, le, gt, lt"},
        {"name": "patient", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-patient",
         "type": "reference", "documentation": "Patient/123 or 123"},
        {"name": "outcome", "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-outcome",
         "type": "token", "documentation": "0, 4, 8 or 12 (audit-event-outcome), comma-separated"},
        {"name": "_count", "type": "number", "documentation": "page size, 1 to 1000 (default 50)"},
    ],
}


def library(module: RuleModule) -> dict:
    """A Library describing one rule module version: its status, dates, what changed, its sources."""
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
        # date: when the Library last changed (a retirement is a change); approvalDate: published
        "date": module.retired or module.date,
        "publisher": "legtriage",
        "description": f"{summary}\n\n{state}\n\nWhat changed: {module.changes}",
        "approvalDate": module.date,
        "relatedArtifact": lineage + [
            {"type": "citation", "label": name, "display": module.sources.get(name, name),
             "citation": f"shared/sources/{name}"}
            for name in cited
        ],
    }
    return with_text(resource)


def searchset(resources: list[dict], self_url: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources],
    }
