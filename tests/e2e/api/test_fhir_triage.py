"""$triage through the Flask test client: the contract of DESIGN.md."""
from __future__ import annotations

import json
import uuid

import pytest

from service.triage.engine import Registry
from tests.support import (EXAMPLES, disposition, example, parameters, post_triage,
                           questionnaire_response, resources, risk_assessment)

EXPECTED = {
    "qr-emergency-stroke": "emergency",
    "qr-emergency-cauda-equina": "emergency",
    "qr-urgent-dvt": "urgent",
    "qr-routine-diabetes": "routine",
    "qr-routine-sciatica": "routine",
    "qr-self-care-fell-asleep": "self-care",
}
PRIORITY = {"emergency": "stat", "urgent": "urgent", "routine": "routine"}


def test_every_example_has_an_expected_disposition():
    assert {p.stem for p in EXAMPLES.glob("qr-*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_examples_get_their_disposition_and_the_contract_shape(client, name):
    qr = example(name)
    response = post_triage(client, qr)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    bundle = response.get_json(force=True)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert disposition(bundle) == EXPECTED[name]
    entries = bundle["entry"]
    assert entries[0]["resource"]["resourceType"] == "RiskAssessment"
    for entry in entries:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
        uuid.UUID(entry["resource"]["id"])
    ra = risk_assessment(bundle)
    assert ra["status"] == "preliminary"
    assert ra["subject"] == qr["subject"]
    assert ra["basis"][0]["reference"] == f"QuestionnaireResponse/{qr['id']}"
    assert ra["method"]["coding"][0]["version"] == "1.2.0"  # the default: newest active (1.1.0 retired)
    assert ra["mitigation"]
    clinical = getattr(Registry().get(), "explanations", "legacy") == "clinical"
    for prediction in ra["prediction"]:
        assert prediction["qualitativeRisk"]["coding"][0]["system"] == \
            "http://terminology.hl7.org/CodeSystem/risk-probability"
        if clinical:  # the source by its title (DESIGN.md "Explanations")
            assert "From \u201c" in prediction["rationale"] and ".txt" not in prediction["rationale"]
        else:  # as 1.0.0 and 1.1.0 publish it
            assert "Source 00" in prediction["rationale"] and ".txt" in prediction["rationale"]
    srs = resources(bundle, "ServiceRequest")
    if EXPECTED[name] == "self-care":
        assert srs == []
        return
    main = srs[0]
    assert main["priority"] == PRIORITY[EXPECTED[name]]
    for sr in srs:
        assert (sr["status"], sr["intent"]) == ("draft", "proposal")
        assert sr["subject"] == qr["subject"]
        assert sr["supportingInfo"][0]["reference"] == entries[0]["fullUrl"]
        assert sr["supportingInfo"][1]["reference"] == f"QuestionnaireResponse/{qr['id']}"
        assert sr["note"][0]["text"] and sr["code"]
    kinds = [e["resource"]["resourceType"] for e in entries]
    assert kinds == ["RiskAssessment"] + ["ServiceRequest"] * len(srs)


def test_emergency_main_request_is_the_emergency_referral(client):
    bundle = post_triage(client, example("qr-emergency-stroke")).get_json(force=True)
    main = resources(bundle, "ServiceRequest")[0]
    assert main["code"]["coding"][0]["code"] == "306104004"
    assert main["priority"] == "stat"
    assert {c["coding"][0]["code"] for c in main["reasonCode"] if "coding" in c} >= {"230690007"}


def test_ids_are_deterministic_and_depend_on_input_and_version(client):
    qr = example("qr-routine-sciatica")
    first = post_triage(client, qr).get_json(force=True)
    again = post_triage(client, qr).get_json(force=True)
    ids = lambda b: [e["resource"]["id"] for e in b["entry"]]  # noqa: E731
    assert ids(first) == ids(again) and first["id"] == again["id"]
    qr["item"][0]["item"][0]["answer"][0]["valueCoding"]["code"] = "right"
    changed = post_triage(client, qr).get_json(force=True)
    assert set(ids(changed)).isdisjoint(ids(first))


def test_parameters_body_with_rules_version(client):
    response = post_triage(client, parameters(example("qr-urgent-dvt"), "1.0.0"))
    assert response.status_code == 200
    assert disposition(response.get_json(force=True)) == "urgent"


def test_plain_application_json_is_accepted(client):
    response = post_triage(client, example("qr-urgent-dvt"), **{"Content-Type": "application/json"})
    assert response.status_code == 200


@pytest.mark.parametrize("query, version", [("?rules-version=1.0.0", "1.0.0"),
                                            ("?rules-version=1.1.0", "1.1.0"),
                                            ("?rules-version=1.2.0", "1.2.0"), ("", "1.2.0")])
def test_query_rules_version(client, query, version):
    """1.2.0 is the default (newest active); the retired 1.0.0 and 1.1.0 stay pinnable."""
    response = post_triage(client, example("qr-urgent-dvt"), query)
    assert response.status_code == 200
    assert risk_assessment(response.get_json(force=True))["method"]["coding"][0]["version"] == version


def test_unknown_rules_version_names_the_published_ones(client):
    response = post_triage(client, example("qr-urgent-dvt"), "?rules-version=9.9.9")
    assert response.status_code == 422
    issue = response.get_json(force=True)["issue"][0]
    assert "1.0.0" in issue["diagnostics"] and "9.9.9" in issue["diagnostics"]
    assert issue["expression"] == ["rules-version"]


def test_unknown_rules_version_in_parameters_names_the_parameter(client):
    response = post_triage(client, parameters(example("qr-urgent-dvt"), "0.9.0"))
    assert response.status_code == 422
    assert response.get_json(force=True)["issue"][0]["expression"] == ["Parameters.parameter[1].valueString"]


def test_unknown_link_ids_become_a_warning_entry(client):
    qr = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual"})
    qr["item"].append({"linkId": "favourite-colour", "answer": [{"valueString": "blue"}]})
    bundle = post_triage(client, qr).get_json(force=True)
    outcome = bundle["entry"][-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "warning"
    assert "favourite-colour" in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"] == ["QuestionnaireResponse.item[1].linkId"]


def test_canonical_without_version_and_without_subject_reference_type(client):
    qr = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual"},
                                questionnaire="http://legtriage.example.org/fhir/Questionnaire/leg-numbness")
    assert post_triage(client, qr).status_code == 200


@pytest.mark.parametrize("answers, missing", [
    ({"numbness.side": "left"}, "numbness.onset"),
    ({"numbness.onset": "sudden"}, "numbness.side"),
])
def test_required_answers(client, answers, missing):
    response = post_triage(client, questionnaire_response(answers))
    assert response.status_code == 422
    assert missing in json.dumps(response.get_json(force=True))


@pytest.mark.parametrize("mutate, expression", [
    (lambda q: q["item"][0]["item"][0]["answer"][0].update(valueCoding={
        "system": "http://legtriage.example.org/fhir/CodeSystem/leg-numbness-answers", "code": "middle"}),
     "QuestionnaireResponse.item[0].item[0].answer[0].valueCoding"),
    (lambda q: q["item"][0]["item"][0].update(answer=[{"valueBoolean": True}]),
     "QuestionnaireResponse.item[0].item[0].answer[0]"),
    (lambda q: q.pop("subject"), "QuestionnaireResponse.subject"),
    (lambda q: q.update(subject={"reference": "Group/5"}), "QuestionnaireResponse.subject.reference"),
    (lambda q: q.update(questionnaire="http://example.org/Questionnaire/other"),
     "QuestionnaireResponse.questionnaire"),
    (lambda q: q.update(status="bogus"), "QuestionnaireResponse.status"),
    (lambda q: q.update(authored="yesterday"), "QuestionnaireResponse.authored"),
])
def test_invalid_responses_name_the_element(client, mutate, expression):
    qr = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual"})
    mutate(qr)
    response = post_triage(client, qr)
    assert response.status_code == 422
    outcome = response.get_json(force=True)
    assert outcome["resourceType"] == "OperationOutcome"
    assert expression in [e for i in outcome["issue"] for e in i.get("expression", [])]


def test_repeats_are_respected(client):
    qr = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual"})
    qr["item"][0]["item"][0]["answer"].append(
        {"valueCoding": {"system": "http://legtriage.example.org/fhir/CodeSystem/leg-numbness-answers",
                         "code": "right"}})
    assert post_triage(client, qr).status_code == 422
    ok = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual",
                                 "numbness.location": ["toes", "sole"]})
    assert post_triage(client, ok).status_code == 200


def test_age_out_of_range(client):
    qr = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual", "history.age": 131})
    response = post_triage(client, qr)
    assert response.status_code == 422
    assert "history.age" in response.get_json(force=True)["issue"][0]["diagnostics"]


def test_medications_none_with_a_medicine_keeps_the_medicine(client, terminology):
    qr = questionnaire_response({"numbness.side": "both", "numbness.onset": "gradual",
                                 "history.medications": ["none", "chemotherapy"]})
    bundle = post_triage(client, qr).get_json(force=True)
    texts = [p["outcome"]["text"] for p in risk_assessment(bundle)["prediction"]]
    assert terminology["conditions"]["drug-induced-neuropathy"]["text"] in texts
    assert bundle["entry"][-1]["resource"]["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("content_type, status", [("text/plain", 415), ("application/xml", 415)])
def test_content_type(client, content_type, status):
    assert post_triage(client, example("qr-urgent-dvt"),
                       **{"Content-Type": content_type}).status_code == status


@pytest.mark.parametrize("accept, status", [
    ("application/fhir+json", 200), ("application/json", 200), ("*/*", 200),
    ("application/fhir+json; fhirVersion=4.0", 200), ("application/fhir+xml", 406),
    ("application/fhir+json; fhirVersion=5.0", 406), ("text/html", 406)])
def test_accept(client, accept, status):
    assert post_triage(client, example("qr-urgent-dvt"), Accept=accept).status_code == status


def test_malformed_json_is_400(client):
    response = post_triage(client, b'{"resourceType": ')
    assert response.status_code == 400
    assert response.get_json(force=True)["resourceType"] == "OperationOutcome"


def test_body_limit_is_configurable(app, make_app):
    small = make_app(max_body_bytes=2048).test_client()
    response = post_triage(small, example("qr-emergency-stroke"))
    assert response.status_code == 413
    assert "2048" in response.get_json(force=True)["issue"][0]["diagnostics"]


def test_unknown_path_and_wrong_method(client):
    assert client.get("/fhir/Nothing").status_code == 404
    response = client.get("/fhir/QuestionnaireResponse/$triage")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.get_json(force=True)["resourceType"] == "OperationOutcome"
