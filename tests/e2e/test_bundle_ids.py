"""Bundle ids (uuid5 of the input's digest and the part) and the order of each entry's keys."""
from __future__ import annotations

import json


def test_bundle_ids_are_the_uuid5_of_the_input_digest_and_the_part(client):
    import hashlib
    import uuid

    import orjson

    from service.fhir_io.outgoing import ID_NAMESPACE
    from tests.support import FHIR_JSON, TRIAGE, example
    qr = example("qr-urgent-dvt")
    resp = client.post(TRIAGE + "?rules-version=1.0.0", data=json.dumps(qr), content_type=FHIR_JSON)
    bundle = resp.get_json()
    digest = hashlib.sha256(orjson.dumps(qr, option=orjson.OPT_SORT_KEYS) + b"|1.0.0").hexdigest()
    assert bundle["id"] == str(uuid.uuid5(ID_NAMESPACE, f"{digest}/Bundle"))
    assert bundle["entry"][0]["resource"]["id"] == str(uuid.uuid5(ID_NAMESPACE, f"{digest}/RiskAssessment"))


def test_every_entry_starts_with_resource_type_then_id(client):
    from tests.support import FHIR_JSON, TRIAGE, questionnaire_response
    body = questionnaire_response({"numbness.side": "left", "numbness.onset": "sudden",
                                   "history.age": 50})
    body["item"].append({"linkId": "no-such-question"})  # a warning: the OperationOutcome entry
    resp = client.post(TRIAGE, data=json.dumps(body), content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    entries = resp.get_json()["entry"]
    assert "OperationOutcome" in [e["resource"]["resourceType"] for e in entries]
    for entry in entries:
        assert list(entry["resource"])[:2] == ["resourceType", "id"]
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
