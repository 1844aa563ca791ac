"""Ready to store (DESIGN.md "The output"): `bundle-type=transaction` gives a Bundle an EHR posts as
it is, proved on a real FHIR engine (Medplum's, tests/support/fhir_server.py), not a stand-in.

On the engine: every example's transaction applies (every entry 201), the stored RiskAssessment
and ServiceRequests point at the ids the server assigned, posting the same transaction again
creates nothing (every entry 200, the same counts by search), and a QuestionnaireResponse without
an id goes in with them. Here: the shape (conditional creates on the triage-output identifier,
references inside the Bundle, no OperationOutcome), the Parameters part, and the 400s.
"""
from __future__ import annotations

import copy
import json
from urllib.parse import quote

import pytest

from service.fhir_io.store_ready import OUTPUT_SYSTEM
from tests.support.fhir import assert_valid_fhir, check_narrative
from tests.support import EXAMPLES, example, post_triage, resources

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.json"))
TRANSACTION = "?bundle-type=transaction"


def the_qr(body: dict) -> dict:
    return body if body["resourceType"] == "QuestionnaireResponse" else body["parameter"][0]["resource"]


def without_id(body: dict) -> dict:
    body = copy.deepcopy(body)
    the_qr(body).pop("id")
    return body


def transaction_of(client, body: dict) -> dict:
    answer = post_triage(client, body, TRANSACTION)
    assert answer.status_code == 200, answer.get_json()
    bundle = answer.get_json()
    assert bundle["type"] == "transaction"
    return bundle


def count(server, rtype: str, identifier: str) -> int:
    return server.search(f"{rtype}?identifier={quote(OUTPUT_SYSTEM + '|' + identifier)}&_total=accurate")["total"]


# ---- the shape --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_the_transaction_is_the_collection_as_conditional_creates(client, name, monkeypatch):
    # one clock for both calls: two calls a second apart would differ in their timestamps alone
    monkeypatch.setattr("service.fhir_io.outgoing.now_iso", lambda: "2026-12-01T10:00:00Z")
    body = example(name)
    collection = post_triage(client, body).get_json()
    bundle = transaction_of(client, body)
    assert_valid_fhir(bundle)
    stored = [e["resource"] for e in collection["entry"]
              if e["resource"]["resourceType"] in ("RiskAssessment", "ServiceRequest")]
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"urn:uuid:{r['id']}" for r in stored]
    qr_id = the_qr(body)["id"]
    for entry, before in zip(bundle["entry"], stored):
        resource, rid = entry["resource"], before["id"]
        assert entry["request"] == {"method": "POST", "url": before["resourceType"],
                                    "ifNoneExist": f"identifier={OUTPUT_SYSTEM}|{rid}"}
        assert resource["identifier"] == [{"system": OUTPUT_SYSTEM, "value": rid}]
        assert "id" not in resource  # a create gets its id from the server
        assert {k: v for k, v in resource.items() if k != "identifier"} == \
            {k: v for k, v in before.items() if k != "id"}, "the content is the collection's"
        check_narrative(resource)
    ra_url = bundle["entry"][0]["fullUrl"]
    assert resources(bundle, "RiskAssessment")[0]["basis"] == [
        {"reference": f"QuestionnaireResponse/{qr_id}", "type": "QuestionnaireResponse"}]
    for sr in resources(bundle, "ServiceRequest"):
        assert sr["supportingInfo"] == [
            {"reference": ra_url, "type": "RiskAssessment"},
            {"reference": f"QuestionnaireResponse/{qr_id}", "type": "QuestionnaireResponse"}]


def test_no_operation_outcome_even_with_warnings(client):
    warned = example("qr-urgent-dvt")
    warned["item"].append({"linkId": "not-asked", "answer": [{"valueBoolean": True}]})
    assert resources(post_triage(client, warned).get_json(), "OperationOutcome"), "a warning"
    bundle = transaction_of(client, warned)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"RiskAssessment", "ServiceRequest"}


def test_a_questionnaire_response_without_id_is_a_conditional_create_in_the_bundle(client):
    body = without_id(example("qr-urgent-dvt"))
    bundle = transaction_of(client, body)
    first = bundle["entry"][0]
    qr = first["resource"]
    assert qr["resourceType"] == "QuestionnaireResponse"
    derived = first["fullUrl"].removeprefix("urn:uuid:")
    assert qr["identifier"] == {"system": OUTPUT_SYSTEM, "value": derived}
    assert first["request"] == {"method": "POST", "url": "QuestionnaireResponse",
                                "ifNoneExist": f"identifier={OUTPUT_SYSTEM}|{derived}"}
    assert {k: v for k, v in qr.items() if k != "identifier"} == body
    ref = {"reference": first["fullUrl"], "type": "QuestionnaireResponse"}
    assert resources(bundle, "RiskAssessment")[0]["basis"] == [ref]
    assert all(sr["supportingInfo"][1] == ref for sr in resources(bundle, "ServiceRequest"))
    assert transaction_of(client, body) == bundle, "deterministic: the same input, the same Bundle"
    assert_valid_fhir(bundle)


def test_a_questionnaire_response_with_its_own_identifier_is_keyed_on_it(client):
    body = without_id(example("qr-urgent-dvt"))
    body["identifier"] = {"system": "http://hospital.example.org/sid/qr", "value": "form|7,a"}
    first = transaction_of(client, body)["entry"][0]
    assert first["resource"]["identifier"] == body["identifier"]
    # R4 search escapes | , $ and \ inside a token value with a backslash; then URL-encoded
    assert first["request"]["ifNoneExist"] == \
        "identifier=http://hospital.example.org/sid/qr|form%5C%7C7%5C%2Ca"


def test_parameters_part_bundle_type(client):
    body = example("parameters-urgent-dvt")
    by_query = transaction_of(client, body)
    body["parameter"].append({"name": "bundleType", "valueCode": "transaction"})
    answer = post_triage(client, body)
    assert answer.status_code == 200
    timeless = [{k: v for k, v in b.items() if k != "timestamp"} for b in (answer.get_json(), by_query)]
    assert [e["fullUrl"] for e in answer.get_json()["entry"]] == [e["fullUrl"] for e in by_query["entry"]]
    assert timeless[0]["id"] == timeless[1]["id"]
    body["parameter"][-1]["valueCode"] = "collection"
    assert post_triage(client, body).get_json()["type"] == "collection"


def test_collection_is_the_default(client):
    body = example("qr-routine-sciatica")
    default = post_triage(client, body).get_json()
    asked = post_triage(client, body, "?bundle-type=collection").get_json()
    assert asked["type"] == default["type"] == "collection"
    assert {k: v for k, v in asked.items() if k != "timestamp"} | {"entry": None} == \
        {k: v for k, v in default.items() if k != "timestamp"} | {"entry": None}
    assert [e["fullUrl"] for e in asked["entry"]] == [e["fullUrl"] for e in default["entry"]]


@pytest.mark.parametrize("query, where", [
    ("?bundle-type=batch", "bundle-type"), ("?bundle-type=", "bundle-type"),
    ("?bundle-type=Transaction", "bundle-type"),
    ("?bundle-type=transaction&bundle-type=collection", "bundle-type"),
])
def test_an_unknown_bundle_type_is_a_400_naming_the_parameter(client, query, where):
    answer = post_triage(client, example("qr-urgent-dvt"), query)
    assert answer.status_code == 400
    issue = answer.get_json()["issue"][0]
    assert issue["expression"] == [where] and "bundle-type" in issue["diagnostics"]


@pytest.mark.parametrize("part", [{"name": "bundleType", "valueCode": "searchset"},
                                  {"name": "bundleType", "valueString": "transaction"},
                                  {"name": "bundleType"}])
def test_an_unknown_bundle_type_part_is_a_400_naming_it(client, part):
    body = example("parameters-urgent-dvt")
    body["parameter"].append(part)
    answer = post_triage(client, body)
    assert answer.status_code == 400
    where = f"Parameters.parameter[{len(body['parameter']) - 1}].valueCode"
    assert answer.get_json()["issue"][0]["expression"] == [where]


def test_query_and_part_that_disagree_are_refused(client):
    body = example("parameters-urgent-dvt")
    body["parameter"].append({"name": "bundleType", "valueCode": "collection"})
    answer = post_triage(client, body, TRANSACTION)
    assert answer.status_code == 422 and answer.get_json()["issue"][0]["code"] == "conflict"
    body["parameter"].append({"name": "bundleType", "valueCode": "collection"})
    assert post_triage(client, body).status_code == 422  # the part twice


# ---- on Medplum's FHIR engine -----------------------------------------------------------------

def apply(server, bundle: dict) -> list[dict]:
    status, answer = server.post_bundle(bundle)
    assert status == 200, json.dumps(answer)[:2000]
    assert answer["type"] == "transaction-response"
    assert len(answer["entry"]) == len(bundle["entry"])
    return answer["entry"]


def located(entry: dict) -> str:
    """`Type/id` of where a transaction-response entry says the resource is."""
    return "/".join(entry["response"]["location"].split("/")[:2])


@pytest.mark.parametrize("drop_id", [False, True], ids=["qr-with-id", "qr-without-id"])
def test_every_example_applies_on_medplum_and_again_creates_nothing(client, fhir_server, drop_id):
    created, forms_seen = 0, set()
    for name in EXAMPLE_NAMES:
        body = without_id(example(name)) if drop_id else example(name)
        bundle = transaction_of(client, body)
        first = apply(fhir_server, bundle)
        expected = ["201"] * len(first)
        if drop_id:
            # parameters-urgent-dvt holds the same form as qr-urgent-dvt (triaged with other rules):
            # the form is stored once, each triage of it anew
            form = bundle["entry"][0]["resource"]["identifier"]["value"]
            expected[0] = "200" if form in forms_seen else "201"
            forms_seen.add(form)
        assert [e["response"]["status"].split()[0] for e in first] == expected, name
        created += expected.count("201")
        where = {e["fullUrl"]: located(r) for e, r in zip(bundle["entry"], first)}
        qr_ref = where.get(bundle["entry"][0]["fullUrl"]) if drop_id else \
            f"QuestionnaireResponse/{the_qr(body)['id']}"
        assert qr_ref.startswith("QuestionnaireResponse/")
        ra_ref = next(v for v in where.values() if v.startswith("RiskAssessment/"))
        # what the server stored points at the server's ids
        status, ra = fhir_server.request("GET", ra_ref)
        assert status == 200 and ra["basis"] == [{"reference": qr_ref, "type": "QuestionnaireResponse"}]
        srs = [v for v in where.values() if v.startswith("ServiceRequest/")]
        assert srs or "self-care" in name, name  # self-care proposes nothing
        for sr_ref in srs:
            status, sr = fhir_server.request("GET", sr_ref)
            assert status == 200
            assert sr["supportingInfo"] == [{"reference": ra_ref, "type": "RiskAssessment"},
                                            {"reference": qr_ref, "type": "QuestionnaireResponse"}]
            assert sr["subject"] == the_qr(body)["subject"]
        if drop_id:
            status, qr = fhir_server.request("GET", qr_ref)
            assert status == 200 and qr["item"] == the_qr(body)["item"]
        # posting the same transaction again: nothing new, every entry names what is there
        again = apply(fhir_server, bundle)
        assert [e["response"]["status"].split()[0] for e in again] == ["200"] * len(again), name
        assert [located(e) for e in again] == [located(e) for e in first]
        for entry in bundle["entry"]:
            ident = entry["resource"]["identifier"]
            value = (ident if isinstance(ident, dict) else ident[0])["value"]
            assert count(fhir_server, entry["resource"]["resourceType"], value) == 1
    print(f"{len(EXAMPLE_NAMES)} examples applied, {created} entries created")


def test_the_second_triage_of_a_form_reuses_what_is_stored(client, fhir_server):
    """The same answers triaged again (a new `authored`, so a new input) store a new triage; the
    same request re-sent (a retry) stores nothing new."""
    body = without_id(example("qr-routine-diabetes"))
    bundle = transaction_of(client, body)
    apply(fhir_server, bundle)
    retry = apply(fhir_server, transaction_of(client, body))
    assert {e["response"]["status"].split()[0] for e in retry} == {"200"}
    body["authored"] = "2026-01-02T10:00:00Z"
    fresh = apply(fhir_server, transaction_of(client, body))
    assert {e["response"]["status"].split()[0] for e in fresh} == {"201"}


def test_medplum_refuses_what_is_not_r4(fhir_server):
    """The engine validates each resource a transaction writes (elements, types, invariants), so
    the 201s above mean something."""
    entry = {"fullUrl": "urn:uuid:7d3a2f8e-0c1b-4c8e-9b1a-2f3e4d5c6b7a",
             "resource": {"resourceType": "RiskAssessment", "status": "preliminary",
                          "subject": {"reference": "Patient/x"},
                          "prediction": [{"probabilityDecimal": 150}]},
             "request": {"method": "POST", "url": "RiskAssessment"}}
    status, answer = fhir_server.post_bundle({"resourceType": "Bundle", "type": "transaction",
                                              "entry": [entry]})
    assert status == 400 and "ras-2" in json.dumps(answer)
    entry["resource"] = {"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
                         "subject": {"reference": "Patient/x"}, "reasonReference": "RiskAssessment/1"}
    entry["request"]["url"] = "ServiceRequest"
    status, answer = fhir_server.post_bundle({"resourceType": "Bundle", "type": "transaction",
                                              "entry": [entry]})
    assert status == 400 and "ServiceRequest.reasonReference" in json.dumps(answer)


def test_the_operation_definition_says_so(client):
    """bundleType is an in parameter (code); the definition says that subject is required and that
    unknown query parameters are refused, as they are."""
    opdef = client.get("/fhir/OperationDefinition/triage").get_json()
    params = {p["name"]: p for p in opdef["parameter"]}
    assert (params["bundleType"]["use"], params["bundleType"]["type"], params["bundleType"]["max"]) == \
        ("in", "code", "1")
    assert "transaction" in params["bundleType"]["documentation"]
    assert "subject is required" in params["questionnaireResponse"]["documentation"]
    assert "query parameter it does not know" in opdef["description"]
    assert "transaction" in params["return"]["documentation"]
    assert_valid_fhir(opdef)
    # and the service does what it says
    no_subject = example("qr-urgent-dvt")
    no_subject.pop("subject")
    answer = post_triage(client, no_subject)
    assert answer.status_code == 422
    assert any("subject" in e for i in answer.get_json()["issue"] for e in i.get("expression", []))
    assert post_triage(client, example("qr-urgent-dvt"), "?rules_version=1.0.0").status_code == 400
