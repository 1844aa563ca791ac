"""The audit trail over HTTP: one AuditEvent per $triage and CDS Hooks call, what it holds, who may
search it, and what a caller gets when the store cannot record (DESIGN.md, "Records")."""
from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit


import pytest

from service.records import StoreUnavailable
from service.records.search import AuditQuery
from tests.support.records_memory import feedback_on
from service.triage.engine import Registry
from tests.support.cds import PATIENT_VIEW, cds_example, fresh, post_hook
from tests.support import FHIR_JSON, example, legtriage, post_triage
from tests.e2e.test_auth import AUDIENCE, ISSUER, keys, sign  # noqa: F401 (fixture)
from tests.support.keys import jwks
from tests.support.fhir import assert_valid_fhir

AUDIT = "/fhir/AuditEvent"
PUBLIC = "https://triage.clinic.example"
STROKE = example("qr-emergency-stroke")


@pytest.fixture()
def lab(tmp_path, make_app):
    """Auth off, audit search opened for a lab, SQLite in a temp dir, a public URL unlike the Host."""
    return make_app(data_dir=str(tmp_path), audit_open_lab=True, public_base_url=PUBLIC)


def events(client, query: str = "", reads: bool = False, **headers) -> dict:
    """The search's Bundle; without the records of earlier reads of the trail itself (each read is
    recorded: test_reads_of_the_trail_and_refused_authentications_are_recorded) unless `reads`."""
    resp = client.get(AUDIT + query, headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == FHIR_JSON
    bundle = resp.get_json()
    if not reads:
        bundle["entry"] = [e for e in bundle["entry"]
                           if e["resource"].get("subtype", [{}])[0].get("code") != "search-type"]
    return bundle


def test_each_triage_call_leaves_one_audit_event_with_references_and_codes(lab):
    client = lab.test_client()
    qr = {**STROKE, "id": "qr-77"}
    assert post_triage(client, qr).status_code == 200
    bundle = events(client)
    assert len(bundle["entry"]) == 1
    event = bundle["entry"][0]["resource"]
    assert_valid_fhir(event)
    assert event["type"]["code"] == "rest" and event["subtype"][0]["code"] == "operation"
    assert (event["action"], event["outcome"], event["outcomeDesc"]) == ("E", "0", "HTTP 200")
    assert event["agent"] == [{"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                                    "code": "110153", "display": "Source Role ID"}]},
                               "who": {"display": "anonymous"}, "requestor": True}]
    assert event["source"]["site"] == PUBLIC and event["source"]["type"][0]["code"] == "4"
    what = [e["what"] for e in event["entity"]]
    assert what[0] == {"reference": STROKE["subject"]["reference"]}
    assert what[1] == {"reference": "QuestionnaireResponse/qr-77"}
    rules = Registry().default_version
    assert what[2]["reference"] == f"Library/leg-numbness-rules-{rules.replace('.', '-')}"
    assert event["entity"][2]["detail"] == [{"type": "rulesVersion", "valueString": rules},
                                            {"type": "disposition", "valueString": "emergency"}]


def test_nothing_of_the_answers_or_free_text_is_stored(lab, tmp_path):
    client = lab.test_client()
    qr = {**STROKE, "subject": {"reference": "Jane Doe, born 1950", "display": "Jane Doe"}}
    resp = post_triage(client, qr)
    assert resp.status_code in (200, 422)
    stored = (tmp_path / "legtriage.sqlite3").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("legtriage.sqlite3-*"))
    assert b"Jane" not in stored and b"1950" not in stored
    assert b"red-flags" not in stored and b"numbness.side" not in stored
    event = events(client)["entry"][0]["resource"]
    assert not any(e["role"]["code"] == "1" for e in event.get("entity", []))  # no patient reference kept


def test_refused_and_failed_calls_are_recorded_with_their_outcome(lab):
    client = lab.test_client()
    assert post_triage(client, {"resourceType": "Patient"}).status_code == 422
    assert post_triage(client, b"{not json").status_code == 400
    outcomes = [(e["resource"]["outcome"], e["resource"]["outcomeDesc"]) for e in events(client)["entry"]]
    assert outcomes == [("4", "HTTP 400"), ("4", "HTTP 422")]


def test_a_call_that_fails_inside_is_recorded_as_a_serious_failure(lab, monkeypatch):
    from service import pipeline

    def explode(module, facts):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "evaluate", explode)
    client = lab.test_client()
    assert post_triage(client, STROKE).status_code == 500
    event = events(client)["entry"][0]["resource"]
    assert (event["outcome"], event["outcomeDesc"]) == ("8", "HTTP 500")
    assert event["entity"][0]["what"] == {"reference": STROKE["subject"]["reference"]}


OVERRIDE_REASON = "http://legtriage.example.org/fhir/CodeSystem/cds-override-reason"


@pytest.fixture()
def sql_lab(database_url, tmp_path, make_app):
    """The lab on each SQL store: SQLite, and a fresh database on the test PostgreSQL."""
    app = make_app(data_dir=str(tmp_path), database_url=database_url, audit_open_lab=True,
                   public_base_url=PUBLIC)
    yield app
    app.extensions["legtriage"].records.close()  # no connection left for the garbage collector


def test_a_hook_call_leaves_one_audit_event_and_its_feedback_joins_its_card_in_the_report(
        sql_lab, database_url):
    """End to end on the SQL store (SQLite and PostgreSQL): the real CDS Hooks views, the audit
    trail over HTTP, and `legtriage report` reading what they left."""
    app = sql_lab
    client = app.test_client()
    rules = Registry().default_version
    resp = post_hook(client, fresh(cds_example("patient-view-urgent")))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    [card] = resp.get_json()["cards"]

    [entry] = events(client)["entry"]
    event = entry["resource"]
    assert_valid_fhir(event)
    assert event["subtype"] == [{"display": "CDS Hooks service call"}]
    assert (event["outcome"], event["outcomeDesc"]) == ("0", "HTTP 200")
    assert event["agent"][0]["who"] == {"display": "anonymous"}
    assert [e["what"].get("reference") for e in event["entity"]] == [
        "Patient/example-3", "QuestionnaireResponse/urgent-dvt", f"Library/leg-numbness-rules-{rules.replace('.', '-')}"]
    assert event["entity"][2]["detail"] == [{"type": "rulesVersion", "valueString": rules},
                                            {"type": "disposition", "valueString": "urgent"},
                                            {"type": "cdsService", "valueString": "leg-numbness-triage"}]

    feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                              "outcomeTimestamp": "2026-12-01T10:00:00Z",
                              "overrideReason": {"reason": {"code": "already-arranged", "system": OVERRIDE_REASON},
                                                 "userComment": "Seen in clinic today."}}]}
    assert post_hook(client, feedback, PATIENT_VIEW + "/feedback").status_code == 200
    assert len(events(client)["entry"]) == 1  # feedback is not an audited call
    [kept] = feedback_on(app.extensions["legtriage"].records, card["uuid"])
    assert (kept.override_code, kept.user_comment) == ("already-arranged", "Seen in clinic today.")

    run = lambda *a: legtriage(*a, database_url=database_url)  # noqa: E731
    md = run("report")
    assert md.returncode == 0, md.stderr
    assert f"| leg-numbness-triage | urgent | {rules} | 1 | 1 | 0 | 1 | 0.0 % | 100.0 % |" in md.stdout
    assert f"| leg-numbness-triage | urgent | {rules} | already-arranged | 1 |" in md.stdout
    [row] = json.loads(run("report", "--json").stdout)["rows"]
    assert (row["disposition"], row["rulesVersion"], row["cards"], row["cardsWithFeedback"],
            row["overridden"], row["overrideRate"]) == ("urgent", rules, 1, 1, 1, 1.0)
    assert "Seen in clinic" not in md.stdout  # the comment is kept, not reported


def test_calls_that_are_not_audited_leave_nothing(lab):
    client = lab.test_client()
    for path in ("/fhir/metadata", "/fhir/Library", "/healthz", "/readyz", AUDIT):
        client.get(path)
    assert events(client)["entry"] == []


def test_search_by_date_patient_outcome_and_paging_links_on_the_public_url(lab):
    client = lab.test_client()
    for i in range(5):
        post_triage(client, {**STROKE, "subject": {"reference": f"Patient/p{i % 2}"}})
    post_triage(client, {"resourceType": "Patient"})
    assert len(events(client, "?patient=Patient/p0")["entry"]) == 3
    assert len(events(client, "?patient=p1")["entry"]) == 2
    assert len(events(client, "?outcome=4")["entry"]) == 1
    assert len(events(client, "?outcome=http://hl7.org/fhir/audit-event-outcome|0,4")["entry"]) == 6
    recorded = [e["resource"]["recorded"] for e in events(client)["entry"]]
    assert len(events(client, f"?date=ge{recorded[-1][:10]}&date=le{recorded[0][:10]}")["entry"]) == 6
    assert events(client, "?date=lt2000-01-01")["entry"] == []
    assert len(events(client, f"?date=gt{recorded[1]}")["entry"]) == 1
    assert len(events(client, f"?date={recorded[2]}")["entry"]) == 1

    assert len(events(client, "?_count=4&patient=Patient/p0&outcome=0")["entry"]) == 3
    # paging walks every record once, the reads of the trail so far included (each is a record)
    page1 = events(client, "?_count=4&date=ge2000", reads=True, Host="evil.example")
    links = {link["relation"]: link["url"] for link in page1["link"]}
    assert links["self"] == f"{PUBLIC}/fhir/AuditEvent?_count=4&date=ge2000"
    nxt = urlsplit(links["next"])
    assert f"{nxt.scheme}://{nxt.netloc}{nxt.path}" == f"{PUBLIC}/fhir/AuditEvent"
    assert parse_qs(nxt.query)["date"] == ["ge2000"] and parse_qs(nxt.query)["_count"] == ["4"]
    walked, pages = list(page1["entry"]), 1
    while nxt is not None:
        page = events(client, "?" + nxt.query, reads=True)
        walked += page["entry"]
        pages += 1
        more = [link["url"] for link in page["link"] if link["relation"] == "next"]
        nxt = urlsplit(more[0]) if more else None
    ids = [e["resource"]["id"] for e in walked]
    assert len(ids) == len(set(ids)) and pages == -(-len(ids) // 4)
    assert sum(1 for e in walked if e["resource"]["subtype"][0]["code"] == "operation") == 6


@pytest.mark.parametrize("query, expression", [
    ("?date=yesterday", "date"), ("?date=2026-13-01", "date"), ("?date=ne2026-01-01", "date"),
    ("?outcome=1", "outcome"), ("?outcome=http://example.org|0", "outcome"), ("?_count=0", "_count"),
    ("?_count=x", "_count"), ("?_cursor=abc", "_cursor"), ("?patient=Jane%20Doe", "patient"),
    ("?patient=a&patient=b", "patient"),
])
def test_bad_search_parameters_get_400_naming_them(lab, query, expression):
    resp = lab.test_client().get(AUDIT + query)
    assert resp.status_code == 400
    issue = resp.get_json()["issue"][0]
    assert issue["expression"] == [expression], issue


def test_an_unsupported_parameter_is_ignored_and_named_unless_strict(lab):
    """As every search of the service (service/fhir_io/search.py): lenient by default."""
    client = lab.test_client()
    post_triage(client, STROKE)
    bundle = events(client, "?name=x&_count=1")
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    (outcome,) = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(matches) == 1 and outcome["issue"][0]["expression"] == ["name"]
    assert "name=" not in next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
    resp = client.get(AUDIT + "?name=x", headers={"Prefer": "handling=strict"})
    assert resp.status_code == 400 and resp.get_json()["issue"][0]["expression"] == ["name"]


def test_closed_when_auth_is_off_unless_a_lab_opens_it(tmp_path, make_app):
    resp = make_app(data_dir=str(tmp_path)).test_client().get(AUDIT)
    assert resp.status_code == 403 and resp.mimetype == FHIR_JSON
    assert "LEGTRIAGE_AUTH_ENABLED" in resp.get_json()["issue"][0]["diagnostics"]


def test_with_auth_on_it_needs_a_token_with_an_audit_scope(tmp_path, keys, make_app):  # noqa: F811
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(keys["RS384"])))
    app = make_app(data_dir=str(tmp_path), auth_enabled=True, auth_issuers=[ISSUER], cds_auth_enabled=False,
                   auth_audience=[AUDIENCE], auth_jwks_file=str(path),
                   audit_open_lab=True)  # the lab setting opens nothing once auth is on
    client = app.test_client()
    bearer = lambda **claims: {"Authorization": f"Bearer {sign(keys['RS384'], **claims)}"}  # noqa: E731
    assert post_triage(client, STROKE, **bearer(sub="ehr-client-7")).status_code == 200
    assert client.get(AUDIT).status_code == 401
    assert client.get(AUDIT, headers=bearer()).status_code == 403
    assert client.get(AUDIT, headers=bearer(scope="system/Patient.read user/AuditEvent.read")).status_code == 403
    for scope in ("system/AuditEvent.rs", "openid system/AuditEvent.read"):
        resp = client.get(AUDIT, headers=bearer(scope=scope))
        assert resp.status_code == 200, scope
    # each read of the trail and each refusal is a record too (issue 23, item 10), newest first
    entries = [e["resource"] for e in events(client, reads=True, **bearer(scope="system/AuditEvent.rs"))["entry"]]
    summary = [(e["type"].get("code") or e["type"]["display"], e["subtype"][0]["display"], e["outcomeDesc"],
                e["agent"][0]["who"]) for e in entries]
    caller = {"identifier": {"system": ISSUER, "value": "client-1"}}
    assert summary == [
        ("rest", "search-type", "HTTP 200", caller),
        ("rest", "search-type", "HTTP 200", caller),
        ("Security Alert", "search-type", "HTTP 403", caller),
        ("Security Alert", "search-type", "HTTP 403", caller),
        ("User Authentication", "search-type", "HTTP 401", {"display": "anonymous"}),
        ("rest", "operation", "HTTP 200", {"identifier": {"system": ISSUER, "value": "ehr-client-7"}})]
    assert all(e["outcome"] == ("4" if e["outcomeDesc"] in ("HTTP 401", "HTTP 403") else "0") for e in entries)
    for e in entries:
        assert_valid_fhir(e)


class DownStore:
    """A store whose database is gone: every write and read fails as SqlStore's do then."""

    def audit(self, record):
        raise StoreUnavailable("down")

    card_issued = feedback = search_audits = card = audit

    def ready(self):
        return False


def test_store_down_means_503_with_retry_after_never_an_unrecorded_200(tmp_path, make_app):
    app = make_app(data_dir=str(tmp_path), audit_open_lab=True)
    store = app.extensions["legtriage"].records
    app.extensions["legtriage"] = replace(app.extensions["legtriage"], records=DownStore())
    client = app.test_client()
    for resp in (post_triage(client, STROKE), post_triage(client, {"resourceType": "Patient"}),
                 post_hook(client, fresh(cds_example("patient-view-urgent"))), client.get(AUDIT),
                 post_hook(client, cds_example("feedback-accepted"), PATIENT_VIEW + "/feedback")):
        assert resp.status_code == 503, resp.get_data(as_text=True)[:300]
        assert resp.headers["Retry-After"] == "5" and resp.mimetype == FHIR_JSON
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.get_json()["issue"][0]["code"] == "transient"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["status"] == "store-unavailable"
    assert client.get("/healthz").status_code == 200  # alive: no restart would help
    assert store.search_audits(AuditQuery()) == []


def test_recording_off_records_nothing_and_has_no_audit_trail(tmp_path, make_app):
    app = make_app(data_dir=str(tmp_path / "d"), records_enabled=False, audit_open_lab=True)
    client = app.test_client()
    assert post_triage(client, STROKE).status_code == 200
    assert client.get(AUDIT).status_code == 404
    assert not (tmp_path / "d").exists()
    resources = client.get("/fhir/metadata").get_json()["rest"][0]["resource"]
    assert "AuditEvent" not in {r["type"] for r in resources}


def test_capability_statement_lists_the_audit_search(lab):
    cs = lab.test_client().get("/fhir/metadata").get_json()
    assert_valid_fhir(cs)
    [audit_event] = [r for r in cs["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert audit_event["interaction"] == [{"code": "search-type"}]
    assert {p["name"] for p in audit_event["searchParam"]} == {"date", "patient", "outcome", "_count"}


def test_what_a_caller_sends_longer_than_its_column_is_refused_not_a_503(sql_lab):
    """An unknown service id is not recorded (it is whatever the caller typed), and feedback
    values too long for the store are a 400 naming them, on PostgreSQL as on SQLite."""
    client = sql_lab.test_client()
    resp = post_hook(client, fresh(cds_example("patient-view-urgent")), "/cds-services/" + "x" * 80)
    assert resp.status_code == 404, resp.get_data(as_text=True)[:300]
    [entry] = events(client)["entry"]
    assert (entry["resource"]["outcomeDesc"], entry["resource"].get("entity")) == ("HTTP 404", None)
    reason = {"code": "already-arranged", "system": OVERRIDE_REASON}
    for field, item in (
            ("feedback[0].card", {"card": "c" * 65}),
            ("feedback[0].outcomeTimestamp", {"outcomeTimestamp": "2026-12-01T10:00:00." + "1" * 30 + "Z"}),
            ("feedback[0].overrideReason.reason.code", {"overrideReason": {"reason": {**reason, "code": "c" * 65}}}),
            ("feedback[0].overrideReason.reason.system",
             {"overrideReason": {"reason": {**reason, "system": "http://x.example/" + "s" * 240}}})):
        body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:00:00Z",
                              "overrideReason": {"reason": reason}, **item}]}
        resp = post_hook(client, body, PATIENT_VIEW + "/feedback")
        assert resp.status_code == 400, (field, resp.get_data(as_text=True)[:300])
        assert field in [e for i in resp.get_json(force=True)["issue"] for e in i.get("expression", [])]
