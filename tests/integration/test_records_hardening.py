"""Records, feedback and caching under attack (issue 23): feedback caps (item 5), feedback tied to the
cards issued (6), Cache-Control on patient data (9), security events audited (10), lengths enforced at
input the same on SQLite and PostgreSQL (12)."""
from __future__ import annotations

import json

import pytest

from service.config import ConfigError
from tests.support.cds import PATIENT_VIEW, PUBLIC, cds_example, fresh, post_hook
from tests.support import FHIR_JSON, TRIAGE, example, post_triage
from tests.integration.test_cds_auth import (ISS, TENANT_ISS, issuers_file, key_server, keys,  # noqa: F401 (fixtures)
                                             sign)
from tests.support.records_memory import feedback_on

FEEDBACK = PATIENT_VIEW + "/feedback"
AUDIT = "/fhir/AuditEvent"


@pytest.fixture()
def cds(database_url, tmp_path, issuers_file, make_app):  # noqa: F811
    """CDS auth on, on each SQL store, the audit trail open for reading in this lab."""
    app = make_app(public_base_url=PUBLIC, cds_auth_enabled=True, cds_issuers_file=str(issuers_file),
                   data_dir=str(tmp_path), database_url=database_url, audit_open_lab=True)
    yield app
    app.extensions["legtriage"].records.close()


def bearer(keys, path: str = PATIENT_VIEW, **claims) -> dict:  # noqa: F811
    return {"Authorization": f"Bearer {sign(keys['ES384'], aud=PUBLIC + path, **claims)}"}


def issue_card(client, keys, example_name: str = "patient-view-emergency", **claims) -> dict:  # noqa: F811
    body = fresh(cds_example(example_name))
    path = PATIENT_VIEW + ("-encounter" if body["hook"] == "encounter-start" else "")
    resp = post_hook(client, body, path, **bearer(keys, path, **claims))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_json()["cards"][0]


def accepted(card: dict, **extra) -> dict:
    return {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-12-01T10:00:00Z",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}], **extra}


def expressions(resp) -> list[str]:
    return [e for i in resp.get_json(force=True)["issue"] for e in i.get("expression", [])]


# ---- item 5: caps on every field of feedback ----------------------------------------------------

@pytest.mark.parametrize("edit, field", [
    (lambda f: f.update(outcome="overridden", acceptedSuggestions=None,
                        overrideReason={"userComment": "x" * 1001}), "feedback[0].overrideReason.userComment"),
    (lambda f: f.update(acceptedSuggestions=[{"id": "s" * 65}]), "feedback[0].acceptedSuggestions[0].id"),
    (lambda f: f.update(acceptedSuggestions=[{"id": f"s-{i}"} for i in range(21)]),
     "feedback[0].acceptedSuggestions"),
    (lambda f: f.update(outcome="overridden", acceptedSuggestions=None, overrideReason={"reason": {
        "system": "http://x.example", "code": "c", "display": "d" * 256}}),
     "feedback[0].overrideReason.reason.display"),
], ids=["comment", "suggestion-id", "suggestions", "reason-display"])
def test_feedback_fields_over_their_caps_are_400_naming_the_field(client, edit, field):
    item = {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-12-01T10:00:00Z",
            "acceptedSuggestions": [{"id": "s-1"}]}
    edit(item)
    item = {k: v for k, v in item.items() if v is not None}
    resp = post_hook(client, {"feedback": [item]}, FEEDBACK)
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert field in expressions(resp)


def test_more_feedback_items_than_the_cap_are_400(client):
    item = {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-12-01T10:00:00Z",
            "acceptedSuggestions": [{"id": "s-1"}]}
    resp = post_hook(client, {"feedback": [item] * 21}, FEEDBACK)
    assert resp.status_code == 400 and expressions(resp) == ["feedback"]


# ---- item 6: feedback is tied to the cards issued -----------------------------------------------

def test_feedback_on_a_card_never_issued_is_404_naming_it(cds, keys):  # noqa: F811
    client = cds.test_client()
    card = issue_card(client, keys)
    never = {**card, "uuid": "00000000-0000-5000-8000-000000000000"}
    resp = post_hook(client, {"feedback": [accepted(card), accepted(never)]}, FEEDBACK,
                     **bearer(keys, FEEDBACK))
    assert resp.status_code == 404 and expressions(resp) == ["feedback[1].card"]
    assert feedback_on(cds.extensions["legtriage"].records, card["uuid"]) == []  # all or nothing


def test_feedback_on_another_tenants_card_is_not_found(cds, keys):  # noqa: F811
    client = cds.test_client()
    card = issue_card(client, keys, tenant="north")
    store = cds.extensions["legtriage"].records
    assert store.card(card["uuid"]).tenant == "north"  # the tenant is kept with the card
    for claims in ({"tenant": "south"}, {}):
        resp = post_hook(client, {"feedback": [accepted(card)]}, FEEDBACK, **bearer(keys, FEEDBACK, **claims))
        assert resp.status_code == 404 and expressions(resp) == ["feedback[0].card"], claims
    ok = post_hook(client, {"feedback": [accepted(card)]}, FEEDBACK, **bearer(keys, FEEDBACK, tenant="north"))
    assert ok.status_code == 200
    assert [f.tenant for f in feedback_on(store, card["uuid"])] == ["north"]


def test_feedback_on_another_services_card_is_404(cds, keys):  # noqa: F811
    client = cds.test_client()
    card = issue_card(client, keys, "encounter-start-emergency")
    resp = post_hook(client, {"feedback": [accepted(card)]}, FEEDBACK, **bearer(keys, FEEDBACK))
    assert resp.status_code == 404


def test_the_same_feedback_item_twice_is_one_row(cds, keys):  # noqa: F811
    client = cds.test_client()
    card = issue_card(client, keys)
    for _ in range(3):
        resp = post_hook(client, {"feedback": [accepted(card), accepted(card)]}, FEEDBACK, **bearer(keys, FEEDBACK))
        assert resp.status_code == 200
    assert len(feedback_on(cds.extensions["legtriage"].records, card["uuid"])) == 1


# ---- item 9: no cache keeps patient data -------------------------------------------------------

def test_every_answer_about_a_patient_says_no_store_and_conformance_stays_cacheable(tmp_path, make_app):
    client = make_app(data_dir=str(tmp_path), audit_open_lab=True).test_client()
    hook = post_hook(client, fresh(cds_example("patient-view-urgent")))
    no_store = [post_triage(client, example("qr-urgent-dvt")), post_triage(client, {"resourceType": "Patient"}),
                hook, client.get(AUDIT), client.get(AUDIT + "?date=bad"),
                post_hook(client, {"feedback": [accepted(hook.get_json()["cards"][0])]}, FEEDBACK),
                client.get("/fhir/Patient/1")]
    for resp in no_store:
        assert resp.headers.get("Cache-Control") == "no-store", (resp.status_code, resp.request.path)
    for path in ("/fhir/metadata", "/fhir/Questionnaire/leg-numbness", "/fhir/ValueSet", "/cds-services"):
        resp = client.get(path)
        assert resp.status_code == 200 and "Cache-Control" not in resp.headers, path


# ---- item 10: security events leave an AuditEvent ----------------------------------------------

def _trail(app) -> list[dict]:
    from service.records.audit import audit_event
    from service.records.search import AuditQuery
    return [audit_event(r, PUBLIC, {}) for r in app.extensions["legtriage"].records.search_audits(AuditQuery())]


def test_refused_cds_authentications_are_audited(cds, keys):  # noqa: F811
    client = cds.test_client()
    assert post_hook(client, fresh(cds_example("patient-view-urgent"))).status_code == 401
    assert post_hook(client, {"feedback": []}, FEEDBACK, Authorization="Bearer forged.token.x").status_code == 401
    events = _trail(cds)
    assert [(e["type"], e["subtype"][0]["display"], e["outcome"], e["outcomeDesc"], e["agent"][0]["who"])
            for e in events] == [
        ({"display": "User Authentication"}, "CDS Hooks feedback", "4", "HTTP 401", {"display": "anonymous"}),
        ({"display": "User Authentication"}, "CDS Hooks service call", "4", "HTTP 401", {"display": "anonymous"})]
    assert all("entity" not in e for e in events)  # nothing of what the refused caller sent


def test_refused_fhir_api_calls_and_reads_of_the_trail_are_audited(tmp_path, keys, make_app):  # noqa: F811
    from tests.e2e.test_auth import AUDIENCE, ISSUER
    from tests.support.keys import jwks
    from tests.e2e.test_auth import sign as auth_sign
    key = keys["ES384"]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(key)))
    app = make_app(data_dir=str(tmp_path), auth_enabled=True, auth_issuers=[ISSUER],
                   auth_audience=[AUDIENCE], auth_jwks_file=str(path), cds_auth_enabled=False)
    client = app.test_client()
    assert client.post(TRIAGE, json=example("qr-urgent-dvt"), headers={"Content-Type": FHIR_JSON}).status_code == 401
    assert client.get("/fhir/Patient/1").status_code == 401
    token = {"Authorization": f"Bearer {auth_sign(key, scope='system/AuditEvent.rs', sub='auditor-1')}"}
    assert client.get(AUDIT + "?patient=Patient/p-9", headers=token).status_code == 200
    events = _trail(app)
    assert [(e["type"].get("code") or e["type"]["display"], e["subtype"][0]["display"], e["outcomeDesc"])
            for e in events] == [("rest", "search-type", "HTTP 200"),
                                 ("User Authentication", "FHIR API request", "HTTP 401"),
                                 ("User Authentication", "operation", "HTTP 401")]
    read = events[0]
    assert read["agent"][0]["who"] == {"identifier": {"system": ISSUER, "value": "auditor-1"}}
    assert read["entity"] == [{"what": {"reference": "Patient/p-9"}, "type": {
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}]


# ---- item 12: lengths enforced at input, the same on both stores -------------------------------

def test_a_subject_reference_longer_than_the_record_keeps_is_422_not_503(cds):
    client = cds.test_client()
    reference = "https://ehr.example.org/" + "/".join(["segment-" + "s" * 56] * 7) + "/Patient/" + "p" * 64
    assert len(reference) > 500
    qr = {**example("qr-urgent-dvt"), "subject": {"reference": reference}}
    resp = post_triage(client, qr)
    assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
    assert expressions(resp) == ["QuestionnaireResponse.subject.reference"]
    ok = post_triage(client, {**qr, "subject": {"reference": "https://ehr.example.org/fhir/Patient/p-1"}})
    assert ok.status_code == 200


@pytest.mark.parametrize("claims", [{"sub": "s" * 256}, {"tenant": "t" * 65}, {"tenant": 7}])
def test_cds_jwt_claims_longer_than_the_record_keeps_are_400(cds, keys, claims):  # noqa: F811
    client = cds.test_client()
    resp = post_hook(client, fresh(cds_example("patient-view-urgent")), **bearer(keys, **claims))
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert f"claim {next(iter(claims))}" in resp.get_json(force=True)["issue"][0]["diagnostics"]
    at_limit = {k: (v[:255] if k == "sub" else v[:64]) for k, v in claims.items() if isinstance(v, str)}
    if at_limit:
        assert post_hook(client, fresh(cds_example("patient-view-urgent")),
                         **bearer(keys, **at_limit)).status_code == 200


def test_an_audit_search_for_a_patient_reference_too_long_to_keep_is_400(cds):
    reference = "https://ehr.example.org/" + "/".join(["a" * 60] * 4) + "/Patient/p"  # a reference, 278 long
    client = cds.test_client()
    resp = client.get(AUDIT + "?patient=" + reference)
    assert resp.status_code == 400 and expressions(resp) == ["patient"]
    assert client.get(AUDIT + "?patient=" + reference.replace("a" * 60, "a" * 40)).status_code == 200


@pytest.mark.parametrize("entry, says", [({"iss": "https://" + "i" * 250 + ".example"}, "iss is longer than 255"),
                                         ({"iss": ISS, "tenants": ["t" * 65]}, "tenant is longer than 64")])
def test_a_cds_issuer_or_tenant_longer_than_the_record_keeps_stops_the_start(tmp_path, keys, entry,  # noqa: F811
                                                                            says, make_app):
    from tests.support.keys import jwks
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(keys["ES384"])))
    (tmp_path / "issuers.json").write_text(json.dumps([{**entry, "jwks_file": "jwks.json"}]))
    with pytest.raises(ConfigError, match=says):
        make_app(cds_auth_enabled=True, cds_issuers_file=str(tmp_path / "issuers.json"))


# ---- item 3, in the app: every kind of call answers 503 within about the store's wait ----------

def test_with_the_sqlite_database_locked_each_call_answers_503_within_the_wait(tmp_path, keys,  # noqa: F811
                                                                               make_app):
    import time

    from service.records.store import STORE_WAIT_SECONDS
    from tests.integration.test_store_faults import audit_table_locked
    app = make_app(data_dir=str(tmp_path), audit_open_lab=True)
    client = app.test_client()
    card = post_hook(client, fresh(cds_example("patient-view-emergency"))).get_json()["cards"][0]
    calls = {"$triage": lambda: post_triage(client, example("qr-urgent-dvt")),
             "hook": lambda: post_hook(client, fresh(cds_example("patient-view-urgent"))),
             "feedback": lambda: post_hook(client, {"feedback": [accepted(card)]}, FEEDBACK),
             "audit search": lambda: client.get(AUDIT)}
    with audit_table_locked(f"sqlite:///{tmp_path / 'legtriage.sqlite3'}"):
        for name, call in calls.items():
            started = time.monotonic()
            resp = call()
            took = time.monotonic() - started
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "5", name
            assert took <= STORE_WAIT_SECONDS + 1.0, (name, took)
