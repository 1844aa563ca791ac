"""Every resource the service sends is valid FHIR R4: by fhir.resources and by the official HL7 JSON schema."""
from __future__ import annotations

import pytest

from tests.support import example, post_triage, questionnaire_response
from tests.support.fhir import assert_valid_fhir, hl7_validator
from tests.e2e.test_vignettes import VIGNETTES

def _bundles(client):
    for name in ("qr-emergency-stroke", "qr-emergency-cauda-equina", "qr-urgent-dvt",
                 "qr-routine-diabetes", "qr-routine-sciatica", "qr-self-care-fell-asleep"):
        yield name, post_triage(client, example(name)).get_json(force=True)
    for case in VIGNETTES[::4]:
        yield case["id"], post_triage(client, questionnaire_response(case["answers"])).get_json(force=True)
    warned = questionnaire_response({"numbness.side": "left", "numbness.onset": "gradual"})
    warned["item"].append({"linkId": "unknown-item"})
    yield "with-warning", post_triage(client, warned).get_json(force=True)
    no_id = questionnaire_response({"numbness.side": "both", "numbness.onset": "sudden"},
                                   subject="https://ehr.example.org/fhir/Patient/0b4b2f0e-4a59-4f7e-9d0b-6d3c1a5c2b11")
    yield "no-id", post_triage(client, no_id).get_json(force=True)


def test_triage_bundles_are_valid_r4(client):
    checked = 0
    for name, bundle in _bundles(client):
        assert bundle["resourceType"] == "Bundle", name
        assert_valid_fhir(bundle)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("path", [
    "/fhir/metadata", "/fhir/Questionnaire/leg-numbness",
    "/fhir/Questionnaire?url=http://legtriage.example.org/fhir/Questionnaire/leg-numbness",
    "/fhir/OperationDefinition/triage", "/fhir/Library", "/fhir/Library/leg-numbness-rules-1-0-0",
    "/fhir/CodeSystem/triage-disposition", "/fhir/CodeSystem/leg-numbness-answers",
])
def test_served_resources_are_valid_r4(client, path):
    assert_valid_fhir(client.get(path).get_json(force=True))


@pytest.mark.parametrize("request_args", [
    {"path": "/fhir/nothing", "method": "GET"},
    {"path": "/fhir/QuestionnaireResponse/$triage", "method": "POST", "data": b"{",
     "headers": {"Content-Type": "application/fhir+json"}},
    {"path": "/fhir/QuestionnaireResponse/$triage", "method": "POST", "data": b"{}",
     "headers": {"Content-Type": "application/fhir+json"}},
])
def test_errors_are_valid_operation_outcomes(client, request_args):
    response = client.open(**request_args)
    assert response.status_code >= 400
    assert_valid_fhir(response.get_json(force=True))


@pytest.mark.parametrize("name", ["qr-emergency-stroke", "qr-self-care-fell-asleep"])
def test_examples_are_valid_r4(name):
    assert_valid_fhir(example(name))


def test_the_checks_reject_what_fhir_forbids():
    """Controls: the HL7 schema catches a code outside a required value set, which fhir.resources
    lets through; both catch an element R4 does not have."""
    bad_code = {"resourceType": "Bundle", "type": "bogus"}
    assert list(hl7_validator().iter_errors(bad_code))
    unknown = {"resourceType": "RiskAssessment", "status": "preliminary", "unknownElement": 1,
               "subject": {"reference": "Patient/1"}}
    assert list(hl7_validator().iter_errors(unknown))
    with pytest.raises(ValueError):
        assert_valid_fhir(unknown)
