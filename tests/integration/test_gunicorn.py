"""The service under a real gunicorn on 127.0.0.1, called with requests and with the fhirpy client."""
from __future__ import annotations

import pytest
import requests

from tests.support.servers import gunicorn
from tests.support import example


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as running:
        yield running.base


def test_triage_over_http(server):
    response = requests.post(f"{server}/fhir/QuestionnaireResponse/$triage",
                             json=example("qr-emergency-stroke"),
                             headers={"Content-Type": "application/fhir+json"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    bundle = response.json()
    ra = bundle["entry"][0]["resource"]
    assert ra["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "emergency"


def test_errors_over_http_are_operation_outcomes(server):
    response = requests.post(f"{server}/fhir/QuestionnaireResponse/$triage", data=b"not json",
                             headers={"Content-Type": "application/fhir+json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Traceback" not in response.text


def test_fhirpy_client_works_unchanged(server):
    """An integration engineer's FHIR client: read resources and call the operation."""
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(f"{server}/fhir")
    questionnaire = client.reference("Questionnaire", "leg-numbness").to_resource()
    assert questionnaire["url"] == "http://legtriage.example.org/fhir/Questionnaire/leg-numbness"
    found = client.resources("Questionnaire").search(url=questionnaire["url"]).fetch()
    assert [q["id"] for q in found] == ["leg-numbness"]
    libraries = client.resources("Library").fetch()
    assert libraries[0]["version"] == "1.0.0"
    bundle = client.execute("QuestionnaireResponse/$triage", method="post",
                            data=example("qr-urgent-dvt"))
    assert bundle["resourceType"] == "Bundle"
    assert bundle["entry"][0]["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] \
        == "urgent"
