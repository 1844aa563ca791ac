"""The per-request work that was shaped for speed (docs/performance.md) still gives what the obvious
version gives: Bundle ids and entry order, the partial facts load, Facts.known()."""
from __future__ import annotations

import json
import random

import pytest


# ---- the Bundle (service/fhir_io/outgoing.py) ------------------------------------------------------

def test_bundle_ids_are_the_uuid5_of_the_input_digest_and_the_part(client):
    import hashlib
    import uuid

    import orjson

    from service.fhir_io.outgoing import ID_NAMESPACE
    from tests.support import FHIR_JSON, TRIAGE, example
    qr = example("qr-urgent-dvt")
    resp = client.post(TRIAGE, data=json.dumps(qr), content_type=FHIR_JSON)
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


# ---- the facts (service/triage/facts.py) -----------------------------------------------------------

def test_load_facts_accepts_and_refuses_what_a_full_load_does():
    """load_facts skips unreported facts (partial=True): the outcome must be a full load's."""
    from marshmallow import ValidationError

    from service.triage import facts as F
    samples = {name: [True, False, None, 1, "yes", 0] for name in F.FACT_NAMES}
    samples.update({
        "side": list(F.SIDES) + ["middle", None, 1, ""], "onset": list(F.ONSETS) + ["slow", True],
        "duration": list(F.DURATIONS) + ["years"], "pattern": list(F.PATTERNS) + [["constant"]],
        "progression": list(F.PROGRESSIONS) + [None], "diabetes": list(F.DIABETES) + [False],
        "age": [0, 50, 130, -1, 131, 50.0, "50", True, None],
        "locations": [["toes"], ["toes", "sole"], [], ["nose"], "toes", None, [1]],
        "sensations": [["tingling"], [], ["itchy"]], "medications": [["none"], ["hiv", "none"], [None]],
    })
    rng = random.Random(6)
    schema = F.FactsSchema()
    for _ in range(3_000):
        data = {name: rng.choice(samples[name])
                for name in rng.sample(F.FACT_NAMES, rng.randint(0, len(F.FACT_NAMES)))}
        if rng.random() < 0.05:
            data["not_a_fact"] = True
        try:
            expected = schema.load(dict(data))
        except ValidationError as err:
            with pytest.raises(ValidationError) as got:
                F.load_facts(data)
            assert got.value.messages == err.messages
        else:
            assert F.load_facts(data) == expected


def test_known_facts_are_the_reported_fields_in_field_order():
    from dataclasses import fields

    from service.triage.facts import Facts
    facts = Facts(age=40, side="left", weakness=False, medications=frozenset({"none"}))
    assert facts.known() == {f.name: getattr(facts, f.name) for f in fields(facts)
                             if getattr(facts, f.name) is not None}
    assert list(facts.known()) == ["side", "weakness", "age", "medications"]
    assert Facts().known() == {}
