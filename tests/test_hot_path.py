"""The per-request shortcuts of docs/performance.md give what the code they replace gave.

Each one was made for speed (bench/breakdown.py measures them); these tests hold them to the slower,
obvious version, so a later change cannot trade correctness for the microseconds unnoticed.
"""
from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timezone

import pytest

from service import logs


# ---- the request log line (service/logs.py) --------------------------------------------------------

def test_utc_time_is_what_datetime_isoformat_gives():
    rng = random.Random(4)
    stamps = [0.0, 1.0, 1_795_000_000.0, 1_795_000_000.9995, 1_795_000_000.9999996,
              1_795_000_000.0005, 1_795_000_000.0004999, 1_795_000_059.999999, 951_782_399.9999999]
    stamps += [rng.uniform(0, 4_000_000_000) for _ in range(20_000)]
    stamps += [1_795_000_000 + rng.randrange(10**6) / 10**6 for _ in range(20_000)]
    for stamp in stamps:
        expected = (datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"))
        assert logs.utc_time(stamp) == expected, stamp


def general_format(record: logging.LogRecord) -> str:
    """The same record through JsonFormatter's general path (a plain LogRecord, same attributes)."""
    plain = logging.makeLogRecord(dict(vars(record)))
    assert type(plain) is logging.LogRecord
    return logs.JsonFormatter().format(plain)


@pytest.mark.parametrize("fields", [
    ("POST", "/fhir/QuestionnaireResponse/$triage", 200, 1.37, "1.0.0", "emergency"),
    ("GET", "/healthz", 200, 0.1, None, None),
    ("GET", logs.UNMATCHED, 404, None, None, None),
    ("DELETE", "/fhir/Questionnaire/<id>", 405, 12345.67, None, None),
    ("GE?T", logs.UNMATCHED, 404, 0.0, None, None),       # a '?' in the method: the message is redacted
    ('G"\\\u00e9\u2028\x01', logs.UNMATCHED, 400, 2.5, None, None),  # quotes, escapes, non-ASCII
])
def test_the_request_line_fast_path_writes_what_the_general_path_writes(fields):
    method, path, status, duration, version, disposition = fields
    record = logs.AccessRecord(f"{method} {path} {status}", method, path, status, duration,
                               version, disposition)
    fast = logs.JsonFormatter.format_access(record)
    assert logs.JsonFormatter().format(record) == fast  # the fast path is the one taken
    assert fast == general_format(record)
    entry = json.loads(fast)
    assert list(entry) == ["time", "level", "logger", "message", "event", "method", "path", "status",
                           "duration_ms", "rules_version", "disposition"]
    assert entry["logger"] == logs.ACCESS_LOGGER and entry["level"] == "info"
    assert "?" not in entry["message"].replace("?[redacted]", "")


def test_a_request_record_is_an_ordinary_record_for_other_handlers():
    record = logs.AccessRecord("GET /healthz 200", "GET", "/healthz", 200, 0.5, None, None)
    reference = logging.LogRecord(logs.ACCESS_LOGGER, logging.INFO, __file__, 0, "x", (), None)
    assert set(vars(reference)) <= set(vars(record))
    assert record.getMessage() == "GET /healthz 200" and record.levelname == "INFO"
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(process)d %(threadName)s "
                             "%(message)s").format(record)
    assert text.endswith("INFO legtriage.access %d MainThread GET /healthz 200" % record.process)


def test_a_record_a_filter_changed_takes_the_general_path():
    record = logs.AccessRecord("GET /healthz 200", "GET", "/healthz", 200, 0.5, None, None)
    record.request_id = "r-1"  # e.g. a filter adding a field: it must reach the line
    assert json.loads(logs.JsonFormatter().format(record))["request_id"] == "r-1"


# ---- the Bundle (service/fhir_io/outgoing.py) ------------------------------------------------------

def test_bundle_ids_are_the_uuid5_of_the_digest_and_the_part():
    import uuid

    from service.fhir_io.outgoing import ID_NAMESPACE, _IdMaker
    rng = random.Random(5)
    for i in range(5_000):
        digest = f"{rng.getrandbits(256):064x}"
        part = rng.choice(["Bundle", "RiskAssessment", "OperationOutcome", "ServiceRequest/mri-é", str(i)])
        assert _IdMaker(digest).make(part) == str(uuid.uuid5(ID_NAMESPACE, f"{digest}/{part}"))


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
