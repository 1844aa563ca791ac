"""Ready to store: the triage's `collection` Bundle as a `transaction` an EHR can post as it is.

Made from the collection form (service/fhir_io/outgoing.py builds the content; this only changes
the Bundle's shape), so the two never say different things:

* each RiskAssessment and ServiceRequest becomes a conditional create: `request.method` POST,
  `request.url` its type, `request.ifNoneExist` `identifier=<OUTPUT_SYSTEM>|{id}`, and the resource
  carries that identifier instead of an id (a create gets its id from the server), so posting the
  same transaction twice creates nothing new;
* `fullUrl` stays `urn:uuid:{id}`, so the ServiceRequests' reference to the RiskAssessment resolves
  inside the Bundle, and the server rewrites it to the id it assigns;
* the QuestionnaireResponse: referenced as `QuestionnaireResponse/{id}` when it has an id (the EHR
  has it), else itself a conditional create in the Bundle, keyed on its own identifier, or on one
  derived from its content (`OUTPUT_SYSTEM|uuid5`) that it then carries, and referred to by its
  `urn:uuid:` fullUrl;
* no OperationOutcome entry: a transaction stores what it holds, and warnings are not clinical
  data (the collection form keeps them).

`ehr_resource` turns an entry of this transaction into a resource for a CDS Hooks `create` action,
where nothing inside a Bundle can be referred to: the references become the EHR's own.
"""
from __future__ import annotations

import copy
import hashlib
import uuid
from urllib.parse import quote

import orjson

from service.catalog import BASE

OUTPUT_SYSTEM = f"{BASE}/sid/triage-output"
STORED_TYPES = ("RiskAssessment", "ServiceRequest")
_NAMESPACE = uuid.UUID("5b0f6c1e-8f0a-4b61-9a38-0f1e2c7d9a11")  # outgoing.ID_NAMESPACE


def transaction(collection: dict, qr: dict) -> dict:
    """The transaction form of the `collection` Bundle that triaging `qr` produced."""
    entries = []
    qr_entry = None
    if not qr.get("id"):
        qr_entry = _qr_entry(qr)
        entries.append(qr_entry)
    for entry in collection["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] not in STORED_TYPES:
            continue  # the OperationOutcome of warnings
        out = stored(resource)
        if qr_entry is not None:
            out = _basis_to(out, qr_entry["fullUrl"])
        entries.append(_create(entry["fullUrl"], out, _token(OUTPUT_SYSTEM, resource["id"])))
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NAMESPACE, f"{collection['id']}/transaction")),
        "type": "transaction",
        "timestamp": collection["timestamp"],
        "entry": entries,
    }


def stored(resource: dict) -> dict:
    """A RiskAssessment or ServiceRequest of the collection as the transaction holds it: without its
    id, carrying the identifier OUTPUT_SYSTEM|id instead (its references to the QuestionnaireResponse
    as the collection has them; `transaction` points them at the Bundle's QuestionnaireResponse
    where it carries one)."""
    return _with_identifier(resource, resource["id"])


def ehr_resource(resource: dict, patient_id: str, qr_id: str | None) -> dict:
    """A ServiceRequest of the transaction as a resource for an EHR outside any Bundle: subject
    `Patient/{patient_id}`, supportingInfo only `QuestionnaireResponse/{qr_id}` (no `urn:uuid:`
    and no RiskAssessment, which the EHR does not have). It keeps its identifier."""
    out = dict(resource)  # shallow: only top-level fields change
    out["subject"] = {"reference": f"Patient/{patient_id}"}
    if qr_id:
        out["supportingInfo"] = [{"reference": f"QuestionnaireResponse/{qr_id}",
                                  "type": "QuestionnaireResponse"}]
    else:
        out.pop("supportingInfo", None)
    return out


def _create(full_url: str, resource: dict, token: str) -> dict:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"],
                        "ifNoneExist": f"identifier={token}"}}


def _qr_entry(qr: dict) -> dict:
    """The QuestionnaireResponse (it has no id) as a conditional create on its identifier."""
    derived = str(uuid.uuid5(_NAMESPACE, hashlib.sha256(
        orjson.dumps(qr, option=orjson.OPT_SORT_KEYS)).hexdigest() + "/QuestionnaireResponse"))
    resource = copy.deepcopy(qr)
    ident = resource.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        token = _token(ident.get("system"), ident["value"])
    else:
        resource = _with_identifier(resource, derived, single=True)
        token = _token(OUTPUT_SYSTEM, derived)
    return _create(f"urn:uuid:{derived}", resource, token)


def _with_identifier(resource: dict, value: str, single: bool = False) -> dict:
    """`resource` without its id, carrying the identifier OUTPUT_SYSTEM|value (QuestionnaireResponse
    has a single identifier, the others a list), placed after the narrative."""
    ident = {"system": OUTPUT_SYSTEM, "value": value}
    out: dict = {}
    for key, item in resource.items():
        if key in ("id", "identifier"):
            continue
        out[key] = item
        if key == "text" or (key == "resourceType" and "text" not in resource):
            out["identifier"] = ident if single else [ident] + list(resource.get("identifier", []))
    return out


def _basis_to(resource: dict, qr_url: str) -> dict:
    """References to the QuestionnaireResponse (basis, supportingInfo) made to its fullUrl."""
    def swap(ref: dict) -> dict:
        return ({"reference": qr_url, "type": "QuestionnaireResponse"}
                if ref.get("type") == "QuestionnaireResponse" else ref)

    out = dict(resource)
    for key in ("basis", "supportingInfo"):
        if key in out:
            out[key] = [swap(r) for r in out[key]]
    return out


def _token(system: str | None, value: str) -> str:
    """A token search value (system|value), its |, $ and , escaped as R4 search says, URL-encoded."""
    def esc(text: str) -> str:
        return quote(text.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,")
                     .replace("$", "\\$"), safe=":/.-_~@")
    return f"{esc(system)}|{esc(value)}" if system else esc(value)
