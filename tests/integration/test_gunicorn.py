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


def test_a_stop_right_after_the_start_does_not_wait_for_a_booting_worker(tmp_path):
    # SIGTERM to the process group (what servers.stop, a terminal's Ctrl-C and most supervisors
    # send) the moment the first worker answers, while the other still boots: that worker used
    # to lose the signal and the master waited out graceful_timeout (20 s) before killing it.
    import os
    import signal
    import time

    from tests.support import servers

    for attempt in range(2):
        running = servers.start(tmp_path / f"stop-{attempt}.log", workers=2)
        begun = time.monotonic()
        os.killpg(running.proc.pid, signal.SIGTERM)
        running.proc.wait(timeout=60)
        took = time.monotonic() - begun
        assert took < 10, f"stopped after {took:.1f} s (graceful_timeout is 20 s):\n{running.log()[-2000:]}"
