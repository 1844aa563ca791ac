"""Every resource the service sends carries a generated narrative that is valid FHIR XHTML and readable.

Valid: fhir.resources and the HL7 R4 JSON schema accept the resource; the div parses as XML, is an
XHTML <div>, and holds only the plain formatting elements FHIR's txt-1 allows, without attributes,
scripts or links; it has text (txt-2); dom-6 (`text.div.exists()`) holds, evaluated by fhirpathpy.
Readable: it says what the resource's own elements say (the disposition, each cause, the proposal,
each issue). Escaped: hostile strings from a request come out as text, never as markup.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from service.fhir_io import narrative
from tests.support import EXAMPLES, example, post_triage, questionnaire_response
from tests.support.fhir import assert_valid_fhir, check_narrative

CONFORMANCE_PATHS = ["/fhir/metadata", "/fhir/Questionnaire/leg-numbness", "/fhir/Library",
                     "/fhir/Library/leg-numbness-rules-1-0-0", "/fhir/OperationDefinition/triage",
                     "/fhir/CodeSystem/triage-disposition", "/fhir/CodeSystem/leg-numbness-answers",
                     "/fhir/StructureDefinition", "/fhir/ValueSet", "/fhir/Questionnaire"]


def resources_in(body: dict):
    if body["resourceType"] == "Bundle":
        for entry in body.get("entry", []):
            yield from resources_in(entry["resource"])
    else:
        yield body


def words(root: ET.Element) -> str:
    return " ".join("".join(root.itertext()).split())


def outputs(client) -> list[dict]:
    """Bundles of every example, a warning, and error OperationOutcomes of each kind."""
    bodies = [post_triage(client, path.read_bytes()).get_json(force=True)
              for path in sorted(EXAMPLES.glob("*.json"))]
    warned = example("qr-urgent-dvt")
    warned["item"].append({"linkId": "not-asked", "answer": [{"valueBoolean": True}]})
    bodies.append(post_triage(client, warned).get_json(force=True))
    errors = [post_triage(client, b"{"), post_triage(client, {"resourceType": "Patient"}),
              post_triage(client, questionnaire_response({"numbness.side": "left"})),
              client.get("/fhir/Patient/1"), client.get("/fhir/QuestionnaireResponse/$triage"),
              client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}),
              post_triage(client, b"{}", **{"Content-Type": "text/plain"})]
    assert all(r.status_code >= 400 for r in errors)
    return bodies + [r.get_json(force=True) for r in errors]


def test_every_output_resource_has_a_valid_narrative(client):
    seen = set()
    for body in outputs(client):
        for resource in resources_in(body):
            check_narrative(resource)
            seen.add(resource["resourceType"])
        assert_valid_fhir(body)
    assert seen == {"RiskAssessment", "ServiceRequest", "OperationOutcome"}


@pytest.mark.parametrize("path", CONFORMANCE_PATHS)
def test_every_conformance_resource_has_a_valid_narrative(client, path):
    body = client.get(path).get_json(force=True)
    found = list(resources_in(body))
    assert found
    for resource in found:
        check_narrative(resource)
    assert_valid_fhir(body)


def test_the_risk_assessment_narrative_says_what_the_data_says(client):
    bundle = post_triage(client, example("qr-emergency-stroke")).get_json(force=True)
    ra = bundle["entry"][0]["resource"]
    text = words(check_narrative(ra))
    assert "Triage: Emergency" in text and "not a diagnosis" in text
    for prediction in ra["prediction"]:
        assert f"{prediction['outcome']['text']}: {prediction['qualitativeRisk']['coding'][0]['display']}" in text
    for sr in [e["resource"] for e in bundle["entry"][1:]]:
        said = words(check_narrative(sr))
        assert f"Proposed: {sr['code']['text']} (priority {sr['priority']})" in said
        assert "not an order" in said


def test_a_narrative_made_once_per_content_follows_every_element_it_says(client):
    """The RiskAssessment and ServiceRequest narratives are made once per distinct content (issue 21):
    one that differs from a narrative already made in any element it says gets its own; one that
    differs only in what it never says (id, subject, time) gets the same."""
    bundle = post_triage(client, example("qr-urgent-dvt")).get_json(force=True)
    ra, sr = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    ra, sr = ({k: v for k, v in r.items() if k != "text"} for r in (ra, sr))
    first = {"RiskAssessment": narrative.div(ra), "ServiceRequest": narrative.div(sr)}
    assert narrative.div({**ra, "id": "other", "subject": {"reference": "Patient/other"},
                          "occurrenceDateTime": "2030-01-01T00:00:00Z"}) == first["RiskAssessment"]
    assert narrative.div({**sr, "id": "other", "authoredOn": "2030-01-01T00:00:00Z"}) == first["ServiceRequest"]
    disposition = {"url": ra["extension"][0]["url"], "valueCodeableConcept": {"text": "Changed disposition"}}
    changed_ra = {
        "extension": [disposition],
        "method": {"text": "Changed method"},
        "prediction": [{**ra["prediction"][0], "outcome": {"text": "Changed cause"}}],
        "mitigation": ra["mitigation"] + "\nChanged advice",
        "note": [{"text": "Changed note"}],
    }
    changed_sr = {"code": {"text": "Changed code"}, "priority": "stat", "status": "active",
                  "intent": "plan", "reasonCode": [{"text": "Changed reason"}],
                  "note": [{"text": "Changed note"}]}
    for resource, changes in ((ra, changed_ra), (sr, changed_sr)):
        for key, value in changes.items():
            changed = narrative.div({**resource, key: value})
            assert changed != first[resource["resourceType"]], key
            assert "Changed" in changed or value in changed, key


def test_an_error_narrative_names_the_problem_and_where(client):
    qr = questionnaire_response({"numbness.onset": "sudden"})
    outcome = post_triage(client, qr).get_json(force=True)
    text = words(check_narrative(outcome))
    for issue in outcome["issue"]:
        assert " ".join(issue["diagnostics"].split()) in text
        for expression in issue.get("expression", []):
            assert expression in text


HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"]]><b>&amp;</b>',
           "a\u0001b\u000bc\ufffe", "\ud800 lone surrogate"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_stay_text(hostile):
    outcome = narrative.with_text({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": f"Unknown linkId {hostile}",
         "expression": [hostile]}]})
    root = check_narrative(outcome)
    shown = "".join(root.itertext())
    clean = "".join(c if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                    else "\ufffd" for c in hostile)
    assert f"Unknown linkId {clean}" in shown


def test_hostile_strings_from_a_request_stay_text(client):
    """What a caller sends and the service quotes back (an unknown linkId, a search parameter)."""
    qr = example("qr-urgent-dvt")
    qr["item"].append({"linkId": "<script>alert('x')</script>", "answer": [{"valueBoolean": True}]})
    bundle = post_triage(client, qr).get_json(force=True)
    outcome = bundle["entry"][-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert "<script>" in json.dumps(outcome["issue"]) and "&lt;script&gt;" in outcome["text"]["div"]
    check_narrative(outcome)
    ignored = client.get("/fhir/ValueSet?<b>onmouseover=x</b>=1").get_json(force=True)
    (outcome,) = [e["resource"] for e in ignored["entry"] if e["search"]["mode"] == "outcome"]
    assert "&lt;b&gt;" in outcome["text"]["div"]
    check_narrative(outcome)
    error = client.get("/fhir/ValueSet?<b>onmouseover=x</b>=1",
                       headers={"Prefer": "handling=strict"}).get_json(force=True)
    assert "&lt;b&gt;" in error["text"]["div"]
    check_narrative(error)


def test_a_narrative_already_there_is_kept_and_text_follows_the_id():
    kept = {"resourceType": "CodeSystem", "id": "x", "text": {"status": "extensions", "div": "<div/>"}}
    assert narrative.with_text(kept) is kept
    made = narrative.with_text({"resourceType": "ValueSet", "id": "y", "status": "active"})
    assert list(made) == ["resourceType", "id", "text", "status"]
