"""CDS Hooks 2.0.1 (issue 13): discovery, cards, prefetch and FHIR fetch, feedback.

Numbers in the test names' docstrings ("check 4") are the acceptance checks of ../shared/cds-hooks.md.
The EHR is a test double on 127.0.0.1 (tests/support/cds.py) that records every request and its
Authorization header; a second one, the canary, is given as fhirServer where nothing must be fetched.
"""
from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import replace

import pytest

from service.fhir_io.store_ready import OUTPUT_SYSTEM
from service.records import StoreUnavailable
from tests.support.cds import (ENCOUNTER_START, PATIENT_VIEW, PUBLIC, FakeEhr, action_resources,
                               assert_no_empty, assert_valid_card, authored, cds_example, fresh,
                               hook_call, post_hook, searchset)
from tests.support import example, post_triage, questionnaire_response
from tests.support.records_memory import feedback_on
from tests.support.fhir import assert_valid_fhir
from tests.e2e.test_vignettes import VIGNETTES

TOKEN = "ehr-access-token-" + uuid.uuid4().hex
QR_SEARCH = ("QuestionnaireResponse?patient={{context.patientId}}&questionnaire=http://legtriage.example.org"
             "/fhir/Questionnaire/leg-numbness&status=completed&_sort=-authored&_count=1")
EXAMPLE_DISPOSITION = {"patient-view-emergency": ("emergency", "critical"),
                       "patient-view-urgent": ("urgent", "warning"),
                       "patient-view-routine": ("routine", "info"),
                       "patient-view-self-care": ("self-care", "info"),
                       "encounter-start-emergency": ("emergency", "critical")}

from service.triage.engine import Registry  # noqa: E402

RULES = Registry().default_version  # the cards speak of the default rules version


@pytest.fixture(scope="module")
def ehr():
    server = FakeEhr().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def canary():
    server = FakeEhr().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def reset(ehr, canary):
    for server in (ehr, canary):
        server.seen.clear()
        server.status, server.delay, server.location, server.drip = 200, 0.0, None, 0.0
    yield
    assert canary.seen == [], "the canary server must receive nothing"


@pytest.fixture(scope="module")
def app(ehr, make_app):
    return make_app(public_base_url=PUBLIC, cds_fhir_servers=[ehr.base])


@pytest.fixture()
def client(app):
    return app.test_client()


def card_of(resp) -> dict:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:600]
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert_no_empty(body)
    assert len(body["cards"]) == 1, body
    assert_valid_card(body["cards"][0])
    return body["cards"][0]


def access(ehr_base: str, patient: str | None = None) -> dict:
    auth = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/QuestionnaireResponse.read", "subject": "legtriage"}
    if patient:
        auth["patient"] = patient
    return {"fhirServer": ehr_base, "fhirAuthorization": auth}


def assert_412(resp) -> dict:
    assert resp.status_code == 412, resp.get_data(as_text=True)[:400]
    body = resp.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    assert_valid_fhir(body)
    return body


# ---- discovery (checks 1-3) -----------------------------------------------------------------------

def test_discovery_lists_the_two_services(client):
    """Checks 1-3."""
    resp = client.get("/cds-services")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    assert_no_empty(body)
    services = body["services"]
    for s in services:
        for name in ("hook", "id", "description", "title"):
            assert isinstance(s[name], str) and s[name], name
    ids = [s["id"] for s in services]
    assert len(ids) == len(set(ids)) == 2
    by_id = {s["id"]: s for s in services}
    pv = by_id["leg-numbness-triage"]
    assert pv["hook"] == "patient-view"
    assert pv["prefetch"] == {"patient": "Patient/{{context.patientId}}", "legNumbnessQR": QR_SEARCH}
    es = by_id["leg-numbness-triage-encounter"]
    assert es["hook"] == "encounter-start"
    assert es["prefetch"] == {"patient": "Patient/{{context.patientId}}",
                              "legNumbnessQR": QR_SEARCH + "&encounter={{context.encounterId}}"}
    import re
    for s in services:
        for template in s["prefetch"].values():
            assert set(re.findall(r"\{\{([^}]*)\}\}", template)) <= {"context.patientId", "context.encounterId"}


def test_prompting_adds_the_in_progress_prefetch(make_app):
    app = make_app(cds_prompt_in_progress=True)
    services = app.test_client().get("/cds-services").get_json()["services"]
    assert services[0]["prefetch"]["legNumbnessQRInProgress"] == QR_SEARCH.replace("completed", "in-progress")


# ---- cards from the examples (checks 4-12) ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXAMPLE_DISPOSITION))
def test_each_example_call_gives_the_card_the_contract_describes(client, name):
    """Checks 4, 5, 6, 7, 8, 9, 10, 11."""
    body = fresh(cds_example(name))
    path = ENCOUNTER_START if body["hook"] == "encounter-start" else PATIENT_VIEW
    card = card_of(post_hook(client, body, path))
    disposition, indicator = EXAMPLE_DISPOSITION[name]
    assert card["indicator"] == indicator
    assert disposition.upper() in card["summary"]
    assert card["source"]["label"] == f"legtriage rules {RULES}"
    assert card["source"]["topic"]["code"] == disposition
    assert card["source"]["url"] == f"{PUBLIC}/fhir/Library/leg-numbness-rules-{RULES.replace('.', '-')}"
    assert uuid.UUID(card["uuid"])
    # a source is cited "Source: title (file)" by the versions published so, and by its title alone
    # ("From “title”") where the default is written in clinical words (DESIGN.md "Explanations")
    default = Registry().get()
    cited = "From \u201c" if getattr(default, "explanations", "legacy") == "clinical" else "Source:"
    for needed in ("**Why**", cited, f"Leg numbness triage rules {RULES}",
                   "Decision support, not a diagnosis"):
        assert needed in card["detail"], needed
    if disposition != "self-care":
        assert "**Likely causes**" in card["detail"]
    reasons = card["overrideReasons"]
    assert reasons and all(r["system"] == "http://legtriage.example.org/fhir/CodeSystem/cds-override-reason"
                           for r in reasons)

    qr = [q for v in body["prefetch"].values() for q in _qrs(v)][0]
    bundle = post_triage(client, qr).get_json(force=True)
    service_requests = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    ra = bundle["entry"][0]["resource"]
    assert ra["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == disposition
    patient = body["context"]["patientId"]
    if disposition == "self-care":
        assert "suggestions" not in card and "selectionBehavior" not in card
        assert "**Advice**" in card["detail"]
        assert service_requests == []
        return
    assert card["selectionBehavior"] == "any"
    suggestions = card["suggestions"]
    assert [s["label"] for s in suggestions] == [sr["code"]["text"] for sr in service_requests]
    assert [bool(s.get("isRecommended")) for s in suggestions] == \
        [i == 0 for i in range(len(service_requests))]
    assert service_requests[0]["code"]["text"] == suggestions[0]["label"]  # the main referral first
    for s, sr in zip(suggestions, service_requests):
        (action,) = s["actions"]
        assert action["type"] == "create" and action["description"]
        resource = action["resource"]
        assert resource["subject"] == {"reference": f"Patient/{patient}"}
        assert resource["supportingInfo"] == [{"reference": f"QuestionnaireResponse/{qr['id']}",
                                               "type": "QuestionnaireResponse"}]
        assert (resource["status"], resource["intent"]) == ("draft", "proposal")
        # the ServiceRequest of the Ready to store transaction: no id, the triage-output identifier
        expected = {k: v for k, v in sr.items() if k not in ("id", "subject", "supportingInfo")}
        expected["identifier"] = [{"system": OUTPUT_SYSTEM, "value": sr["id"]}]
        assert {k: v for k, v in resource.items() if k not in ("subject", "supportingInfo")} == expected
        text = json.dumps(resource)
        assert "urn:uuid:" not in text and "RiskAssessment" not in text
        assert_valid_fhir(resource)


def _qrs(value):
    if value.get("resourceType") == "QuestionnaireResponse":
        return [value]
    return [e["resource"] for e in value.get("entry", []) if e["resource"]["resourceType"] == "QuestionnaireResponse"]


def test_emergency_referral_is_the_recommended_suggestion(client):
    """Check 10."""
    card = card_of(post_hook(client, fresh(cds_example("patient-view-emergency"))))
    recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
    assert len(recommended) == 1
    resource = recommended[0]["actions"][0]["resource"]
    assert resource["priority"] == "stat" and resource["code"]["coding"][0]["code"] == "306104004"


def test_every_vignette_card_follows_the_rules_and_matches_triage(client):
    """Checks 6, 7, 8, 9 over the clinical vignettes."""
    checked = 0
    for i, case in enumerate(VIGNETTES):
        qr = questionnaire_response(case["answers"], subject=f"Patient/v{i}", id=f"qr-{i}",
                                    authored=authored())
        expected = post_triage(client, qr).get_json(force=True)
        want = expected["entry"][0]["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        card = card_of(post_hook(client, hook_call(qr, f"v{i}")))
        assert card["source"]["topic"]["code"] == want, case["id"]
        assert card["indicator"] == {"emergency": "critical", "urgent": "warning"}.get(want, "info")
        srs = [e["resource"] for e in expected["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
        assert len(card.get("suggestions", [])) == len(srs), case["id"]
        for resource in action_resources(card):
            assert resource["subject"] == {"reference": f"Patient/v{i}"}
            assert "urn:uuid:" not in json.dumps(resource) and "RiskAssessment" not in json.dumps(resource)
            if i % 4 == 0:
                assert_valid_fhir(resource)
        checked += 1
    assert checked == len(VIGNETTES) >= 20


@pytest.mark.parametrize("levels", [0, 19])
def test_prefetched_answers_nested_too_deep_are_refused_as_in_triage(client, levels):
    """The depth limit holds for the prefetched QuestionnaireResponse too: a body within the limit is
    not walked again (issue 21), a deeper one is, and the answers 40 levels down are refused (422)."""
    qr = example("qr-urgent-dvt")
    inner: dict = {"linkId": "numbness"}
    for _ in range(levels):
        inner = {"linkId": "numbness", "item": [inner]}
    if levels:
        qr["item"] = [inner]
    resp = post_hook(client, hook_call(qr, "example-3"))
    if levels:
        assert resp.status_code == 422, resp.get_data(as_text=True)[:400]
        assert any("deeper than 40" in i["diagnostics"] for i in resp.get_json(force=True)["issue"])
    else:
        assert resp.status_code == 200 and card_of(resp)["indicator"]


def test_without_a_qr_id_no_supporting_info(client):
    qr = example("qr-urgent-dvt")
    del qr["id"]
    card = card_of(post_hook(client, hook_call(qr, "example-3")))
    for resource in action_resources(card):
        assert "supportingInfo" not in resource
        assert_valid_fhir(resource)


def test_same_call_same_uuids_new_hook_instance_new_card(client):
    """Check 12."""
    body = fresh(cds_example("patient-view-emergency"))
    first, again = card_of(post_hook(client, body)), card_of(post_hook(client, body))
    assert first["uuid"] == again["uuid"]
    assert [s["uuid"] for s in first["suggestions"]] == [s["uuid"] for s in again["suggestions"]]
    other = card_of(post_hook(client, {**body, "hookInstance": str(uuid.uuid4())}))
    assert other["uuid"] != first["uuid"]
    assert not {s["uuid"] for s in other["suggestions"]} & {s["uuid"] for s in first["suggestions"]}


def test_cards_are_recorded_as_issued(app, client):
    body = fresh(cds_example("patient-view-urgent"))
    card = card_of(post_hook(client, body))
    record = app.extensions["legtriage"].records.card(card["uuid"])
    assert (record.hook_instance, record.service, record.disposition, record.rules_version) == \
        (body["hookInstance"], "leg-numbness-triage", "urgent", RULES)


# ---- the smart link (checks 11, 20) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_with_web_app(ehr, make_app):
    """The service with the web app's SMART launch configured (its client id at the EHR)."""
    return make_app(public_base_url=PUBLIC, cds_prompt_in_progress=True, smart_client_id="legtriage-app",
                    app_ehr_issuers=["https://ehr.example.org/fhir"])


def test_smart_link_only_when_the_web_app_exists(client, app_with_web_app):
    """Check 11."""
    body = fresh(cds_example("patient-view-routine"))
    assert "links" not in card_of(post_hook(client, body))
    card = card_of(post_hook(app_with_web_app.test_client(), body))
    (link,) = card["links"]
    assert link["type"] == "smart" and link["url"] == f"{PUBLIC}/app/launch"
    context = json.loads(link["appContext"])
    assert context == {"questionnaire": "http://legtriage.example.org/fhir/Questionnaire/leg-numbness|1.0.0",  # the form's version
                       "questionnaireResponse": "QuestionnaireResponse/routine-diabetes"}


def test_in_progress_questionnaire_with_prompting_gives_an_info_card(app_with_web_app, make_app):
    """Check 20."""
    started = example("qr-routine-sciatica")
    started.update(status="in-progress", authored=authored(0.5))
    body = hook_call(None, "example-5", prefetch={"legNumbnessQR": searchset(),
                                                  "legNumbnessQRInProgress": searchset(started)})
    card = card_of(post_hook(app_with_web_app.test_client(), body))
    assert card["indicator"] == "info" and "suggestions" not in card
    (link,) = card["links"]
    assert link["type"] == "smart"
    assert json.loads(link["appContext"])["questionnaireResponse"] == "QuestionnaireResponse/routine-sciatica"
    # prompting off (the default app): nothing to say
    plain = make_app(public_base_url=PUBLIC)
    assert post_hook(plain.test_client(), body).get_json() == {"cards": []}


# ---- prefetch and fetch (checks 13-19) ------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, searchset()], ids=["null", "empty-bundle"])
def test_no_questionnaire_no_card_no_fetch(app, canary, value, make_app):
    """Check 13: even with access to a server that would answer."""
    allowed = make_app(public_base_url=PUBLIC, cds_fhir_servers=[canary.base])
    body = hook_call(None, "example-1", prefetch={"legNumbnessQR": value}, **access(canary.base))
    resp = post_hook(allowed.test_client(), body)
    assert resp.status_code == 200 and resp.get_json() == {"cards": []}


def test_key_absent_without_fhir_server_is_412(client):
    """Check 14."""
    body = hook_call(None, "example-1")
    assert "OperationOutcome" == assert_412(post_hook(client, body))["resourceType"]
    body["fhirServer"] = "https://ehr.example.org/fhir"  # a server but no token: still no way in
    assert_412(post_hook(client, body))


def test_key_absent_fetches_once_from_the_allow_listed_server(client, ehr):
    """Check 15."""
    prefetched = fresh(cds_example("patient-view-emergency"))
    ehr.bundle = prefetched["prefetch"]["legNumbnessQR"]
    body = copy.deepcopy(prefetched)
    del body["prefetch"]["legNumbnessQR"]
    body.update(access(ehr.base, patient="example-1"))
    fetched = card_of(post_hook(client, body))
    assert len(ehr.seen) == 1
    seen = ehr.seen[0]
    assert seen.authorization == f"Bearer {TOKEN}"
    assert seen.path == ("/fhir/QuestionnaireResponse?patient=example-1&questionnaire=http://legtriage.example.org"
                         "/fhir/Questionnaire/leg-numbness&status=completed&_sort=-authored&_count=1")
    direct = card_of(post_hook(client, prefetched))
    assert _timeless(fetched) == _timeless(direct)


def _timeless(card: dict) -> dict:
    card = copy.deepcopy(card)
    for resource in action_resources(card):
        resource.pop("authoredOn")
    return card


def test_the_fetch_query_encodes_the_patient_id_and_adds_the_encounter(client, ehr):
    body = fresh(cds_example("encounter-start-emergency"))
    ehr.bundle = body["prefetch"].pop("legNumbnessQR")
    body.update(access(ehr.base))
    card_of(post_hook(client, body, ENCOUNTER_START))
    assert ehr.seen[0].path.endswith("&_count=1&encounter=example-encounter-2")


def test_non_allow_listed_fhir_server_is_412_and_not_contacted(client, canary):
    """Check 16."""
    body = hook_call(None, "example-1", **access(canary.base))
    assert "LEGTRIAGE_CDS_FHIR_SERVERS" in assert_412(post_hook(client, body))["issue"][0]["diagnostics"]


def test_another_patients_token_is_not_used(client, ehr):
    body = hook_call(None, "example-1", **access(ehr.base, patient="someone-else"))
    assert_412(post_hook(client, body))
    assert ehr.seen == []


@pytest.mark.parametrize("status, delay, drip", [(401, 0, 0), (500, 0, 0), (200, 5.0, 0), (200, 0, 0.2)],
                         ids=["401", "500", "slow", "drip-feed"])
def test_a_failing_ehr_server_is_412_within_the_budget(client, ehr, status, delay, drip):
    """Check 17; the drip-feed server answers at once, then a byte every 0.2 s: the 2 s budget is
    for the whole exchange, not per read."""
    ehr.status, ehr.delay, ehr.drip = status, delay, drip
    body = hook_call(None, "example-1", **access(ehr.base))
    started = time.monotonic()
    resp = post_hook(client, body)
    elapsed = time.monotonic() - started
    assert_412(resp)
    assert elapsed < 2.5, elapsed
    assert len(ehr.seen) == 1
    assert TOKEN not in resp.get_data(as_text=True)


@pytest.mark.parametrize("answer", ["not a bundle", {"resourceType": "Patient", "id": "example-1"},
                                    {"resourceType": "OperationOutcome", "issue": [{"severity": "error",
                                                                                     "code": "forbidden"}]}])
def test_an_ehr_answer_that_is_not_a_bundle_is_412(client, ehr, answer):
    ehr.bundle = answer  # a JSON string: valid JSON, not a resource; a Patient; an OperationOutcome
    body = hook_call(None, "example-1", **access(ehr.base))
    assert_412(post_hook(client, body))


def test_the_token_goes_nowhere_else_no_redirect_no_proxy(client, ehr, canary, monkeypatch):
    """The canary (autouse fixture) must see nothing: not followed as a redirect, not used as a proxy."""
    ehr.status, ehr.location = 302, canary.base + "/QuestionnaireResponse"
    assert_412(post_hook(client, hook_call(None, "example-1", **access(ehr.base))))
    proxy = canary.base.removesuffix("/fhir")
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    ehr.status, ehr.location = 200, None
    ehr.bundle = searchset(dict(example("qr-urgent-dvt"), authored=authored()))
    card_of(post_hook(client, hook_call(None, "example-3", **access(ehr.base))))
    assert len(ehr.seen) == 2 and all(s.authorization == f"Bearer {TOKEN}" for s in ehr.seen)


def test_prefetched_operation_outcome_is_412_without_fetch(app, canary, make_app):
    """Check 18."""
    allowed = make_app(public_base_url=PUBLIC, cds_fhir_servers=[canary.base])
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]}
    body = hook_call(None, "example-1", prefetch={"legNumbnessQR": outcome}, **access(canary.base))
    assert_412(post_hook(allowed.test_client(), body))


@pytest.mark.parametrize("edit", [
    lambda qr: qr.update(subject={"reference": "Patient/someone-else"}),
    lambda qr: qr.update(authored=authored(73)),
    lambda qr: qr.update(authored=authored(-2)),  # two hours in the future
    lambda qr: qr.update(authored="2026-11-20"),  # a date alone cannot be placed in the window
    lambda qr: qr.pop("authored"),
    lambda qr: qr.update(status="in-progress"),
], ids=["other-patient", "73h-old", "future", "date-only", "no-authored", "not-completed"])
def test_no_actionable_card_for_another_patient_or_stale_answers(client, edit):
    """Check 19."""
    body = fresh(cds_example("patient-view-emergency"))
    edit(body["prefetch"]["legNumbnessQR"]["entry"][0]["resource"])
    resp = post_hook(client, body)
    assert resp.status_code == 200 and resp.get_json() == {"cards": []}


def test_freshness_window_is_configurable(make_app):
    app = make_app(cds_freshness_hours=100)
    body = fresh(cds_example("patient-view-emergency"), hours_ago=90)
    assert len(post_hook(app.test_client(), body).get_json()["cards"]) == 1


def test_the_newest_of_several_responses_is_triaged(client):
    older, newer = example("qr-emergency-stroke"), example("qr-self-care-fell-asleep")
    older["authored"], newer["authored"] = authored(5), authored(1)
    newer["subject"] = older["subject"]
    body = hook_call(None, "example-1", prefetch={"legNumbnessQR": searchset(older, newer)})
    assert card_of(post_hook(client, body))["source"]["topic"]["code"] == "self-care"


def test_an_invalid_prefetched_questionnaire_response_is_422_naming_it(client):
    body = fresh(cds_example("patient-view-urgent"))
    qr = body["prefetch"]["legNumbnessQR"]
    qr["item"] = [g for g in qr["item"] if g["linkId"] != "numbness"]
    resp = post_hook(client, body)
    assert resp.status_code == 422
    assert resp.get_json(force=True)["issue"][0]["expression"][0].startswith("prefetch.legNumbnessQR")


# ---- malformed calls (check 21) ---------------------------------------------------------------------------

def _good() -> dict:
    return fresh(cds_example("patient-view-urgent"))


@pytest.mark.parametrize("edit, field", [
    (lambda b: b.pop("hook"), "hook"),
    (lambda b: b.pop("hookInstance"), "hookInstance"),
    (lambda b: b.update(hookInstance="not-a-uuid"), "hookInstance"),
    (lambda b: b.pop("context"), "context"),
    (lambda b: b["context"].pop("patientId"), "context.patientId"),
    (lambda b: b["context"].update(patientId="../Patient/x?y"), "context.patientId"),
    (lambda b: b["context"].update(userId=""), "context.userId"),
    (lambda b: b.update(hook="order-sign"), "hook"),
    (lambda b: b.update(fhirAuthorization=access("https://ehr.example.org/fhir")["fhirAuthorization"]),
     "fhirServer"),
    (lambda b: b.update(fhirServer="ftp://ehr.example.org"), "fhirServer"),
    (lambda b: b.update(access("https://ehr.example.org/fhir"), fhirAuthorization={"token_type": "Bearer"}),
     "fhirAuthorization.access_token"),
    (lambda b: b.update(prefetch=[]), "prefetch"),
    (lambda b: b["prefetch"].update(legNumbnessQR="text"), "prefetch.legNumbnessQR"),
    (lambda b: b["prefetch"].update(legNumbnessQR={"resourceType": "Patient"}), "prefetch.legNumbnessQR.resourceType"),
], ids=["no-hook", "no-hookInstance", "bad-hookInstance", "no-context", "no-patientId", "bad-patientId",
        "empty-userId", "wrong-hook", "auth-without-server", "bad-server", "auth-without-token",
        "prefetch-list", "prefetch-text", "prefetch-patient"])
def test_a_malformed_call_is_400_naming_the_field(client, edit, field):
    """Check 21."""
    body = _good()
    edit(body)
    resp = post_hook(client, body)
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    outcome = resp.get_json(force=True)
    assert_valid_fhir(outcome)
    assert field in [e for i in outcome["issue"] for e in i.get("expression", [])], outcome


def test_encounter_start_needs_the_encounter(client):
    body = fresh(cds_example("encounter-start-emergency"))
    del body["context"]["encounterId"]
    resp = post_hook(client, body, ENCOUNTER_START)
    assert resp.status_code == 400
    assert resp.get_json(force=True)["issue"][0]["expression"] == ["context.encounterId"]


@pytest.mark.parametrize("data, content_type, status", [
    (b"{", "application/json", 400), (b"", "application/json", 400), (b"[]", "application/json", 400),
    (b"{}", "text/plain", 415),
])
def test_bodies_that_are_not_a_request(client, data, content_type, status):
    resp = client.post(PATIENT_VIEW, data=data, headers={"Content-Type": content_type})
    assert resp.status_code == status
    assert_valid_fhir(resp.get_json(force=True))


def test_unknown_service_404_and_wrong_method_405(client):
    """Check 21."""
    resp = post_hook(client, _good(), "/cds-services/no-such-service")
    assert resp.status_code == 404 and resp.get_json(force=True)["resourceType"] == "OperationOutcome"
    assert post_hook(client, {"feedback": []}, "/cds-services/no-such-service/feedback").status_code == 404
    resp = client.get(PATIENT_VIEW)
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    assert_valid_fhir(resp.get_json(force=True))
    assert client.post("/cds-services").status_code == 405
    assert client.get(PATIENT_VIEW + "/feedback").status_code == 405


# ---- feedback (check 27) ------------------------------------------------------------------------------------

def test_feedback_round_trip(app, client):
    """Check 27: the card, then accepted and overridden feedback stored with it."""
    card = card_of(post_hook(client, fresh(cds_example("patient-view-emergency"))))
    store = app.extensions["legtriage"].records
    before = len(feedback_on(store, card["uuid"]))
    accepted = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                              "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                              "outcomeTimestamp": "2026-11-20T08:20:00Z"}]}
    resp = post_hook(client, accepted, PATIENT_VIEW + "/feedback")
    assert resp.status_code == 200 and resp.data == b""
    overridden = cds_example("feedback-overridden")
    overridden["feedback"][0]["card"] = card["uuid"]
    overridden["feedback"][0]["overrideReason"].pop("reason")["display"]  # comment only is allowed
    assert post_hook(client, overridden, PATIENT_VIEW + "/feedback").status_code == 200
    code_only = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-20T08:22:00+01:00",
                               "overrideReason": {"reason": {"code": "already-arranged", "system":
                                                  "http://legtriage.example.org/fhir/CodeSystem/cds-override-reason"}}}]}
    assert post_hook(client, code_only, PATIENT_VIEW + "/feedback").status_code == 200
    new = feedback_on(store, card["uuid"])[before:]
    assert [f.outcome for f in new] == ["accepted", "overridden", "overridden"]
    assert new[0].accepted_suggestions == (card["suggestions"][0]["uuid"],)
    assert all(f.card_uuid == card["uuid"] and f.service == "leg-numbness-triage" for f in new)
    assert store.card(card["uuid"]).disposition == "emergency"
    assert new[1].user_comment == "Ambulance already called." and new[1].override_code is None
    assert (new[2].override_code, new[2].override_system) == \
        ("already-arranged", "http://legtriage.example.org/fhir/CodeSystem/cds-override-reason")
    # repeats happen (CDS Hooks): answered 200 again, and kept once (issue 23, item 6)
    assert post_hook(client, accepted, PATIENT_VIEW + "/feedback").status_code == 200
    assert len(feedback_on(store, card["uuid"])) == before + 3


@pytest.mark.parametrize("edit, field", [
    (lambda f: f.update(outcome="rejected"), "feedback[0].outcome"),
    (lambda f: f.pop("acceptedSuggestions"), "feedback[0].acceptedSuggestions"),
    (lambda f: f.update(acceptedSuggestions=[]), "feedback[0].acceptedSuggestions"),
    (lambda f: f.update(acceptedSuggestions=[{}]), "feedback[0].acceptedSuggestions[0].id"),
    (lambda f: f.pop("card"), "feedback[0].card"),
    (lambda f: f.pop("outcomeTimestamp"), "feedback[0].outcomeTimestamp"),
    (lambda f: f.update(outcomeTimestamp="yesterday"), "feedback[0].outcomeTimestamp"),
    (lambda f: f.update(outcomeTimestamp="2026-11-20T08:20:00"), "feedback[0].outcomeTimestamp"),
    (lambda f: f.update(overrideReason={"userComment": "x"}), "feedback[0].overrideReason"),
    (lambda f: f.update(outcome="overridden", overrideReason={}), "feedback[0].overrideReason"),
    (lambda f: f.update(outcome="overridden"), "feedback[0].acceptedSuggestions"),
], ids=["rejected", "accepted-without-suggestions", "empty-suggestions", "suggestion-without-id", "no-card",
        "no-timestamp", "bad-timestamp", "timestamp-without-zone", "accepted-with-reason", "empty-reason",
        "overridden-with-suggestions"])
def test_malformed_feedback_is_400_naming_the_field(client, edit, field):
    """Check 27."""
    body = cds_example("feedback-accepted")
    edit(body["feedback"][0])
    resp = post_hook(client, body, PATIENT_VIEW + "/feedback")
    assert resp.status_code == 400, resp.get_data(as_text=True)
    issues = resp.get_json(force=True)["issue"]
    assert field in [e for i in issues for e in i.get("expression", [])], issues


def test_feedback_needs_a_list(client):
    for body in ({}, {"feedback": []}, {"feedback": {}}):
        resp = post_hook(client, body, PATIENT_VIEW + "/feedback")
        assert resp.status_code == 400 and resp.get_json(force=True)["issue"][0]["expression"] == ["feedback"]


# ---- the store is down ------------------------------------------------------------------------------------

class DownStore:
    def audit(self, record):
        raise StoreUnavailable()

    card_issued = feedback = card = audit

    def ready(self):
        return False


def test_store_unavailable_is_503_with_retry_after(make_app):
    app = make_app(public_base_url=PUBLIC)
    app.extensions["legtriage"] = replace(app.extensions["legtriage"], records=DownStore())
    client = app.test_client()
    for resp in (post_hook(client, fresh(cds_example("patient-view-urgent"))),
                 post_hook(client, cds_example("feedback-accepted"), PATIENT_VIEW + "/feedback")):
        assert resp.status_code == 503 and resp.headers["Retry-After"]
        assert resp.get_json(force=True)["resourceType"] == "OperationOutcome"
    # a call that issues no card is still audited (DESIGN.md, "Records"): no unrecorded answer either
    empty = hook_call(None, "x", prefetch={"legNumbnessQR": None})
    resp = post_hook(client, empty)
    assert resp.status_code == 503 and resp.headers["Retry-After"]


def test_audit_note_says_what_the_call_concerned(app):
    from flask import g

    from service.records import AuditRecord

    body = fresh(cds_example("patient-view-urgent"))
    with app.test_request_context(PATIENT_VIEW, method="POST", json=body):
        from service.cds import views
        resp = views.call("leg-numbness-triage")
        assert resp.status_code == 200
        note = AuditRecord(**g.audit_fields)
    assert (note.kind, note.service, note.patient, note.questionnaire_response, note.rules_version,
            note.disposition) == ("cds-hook", "leg-numbness-triage", "Patient/example-3",
                                  "QuestionnaireResponse/urgent-dvt", RULES, "urgent")


def test_override_reasons_come_from_a_served_code_system(client):
    cs = client.get("/fhir/CodeSystem/cds-override-reason").get_json(force=True)
    assert_valid_fhir(cs)
    card = card_of(post_hook(client, fresh(cds_example("patient-view-urgent"))))
    assert [(r["code"], r["display"]) for r in card["overrideReasons"]] == \
        [(c["code"], c["display"]) for c in cs["concept"]]
    resources = client.get("/fhir/metadata").get_json(force=True)["rest"][0]["resource"]
    (served,) = [r for r in resources if r["type"] == "CodeSystem"]
    assert "CodeSystem/cds-override-reason" in served["documentation"]


def test_the_readme_worked_call_gives_a_card(client):
    import re
    import subprocess

    from tests.support import ROOT

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(sed .*?)\|\ncurl .*?/cds-services/leg-numbness-triage", readme, re.S)
    assert block, "the README's worked CDS Hooks call changed: keep this test in step"
    out = subprocess.run(["bash", "-c", block.group(1).replace("\\\n", " ")], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    card = card_of(post_hook(client, out))
    assert card["indicator"] == "critical"


# ---- the EHR's FHIR server is a real FHIR engine (Medplum's, tests/support/fhir_server.py) ------------

def test_the_fetch_and_the_suggestions_work_on_a_real_fhir_engine(fhir_server, make_app):
    """The prefetch key absent: the service runs its query against Medplum's engine, which holds
    the patient's forms; the card's create actions then go into the same server as they are, and
    again (with If-None-Exist on their identifier) create nothing new."""
    app = make_app(public_base_url=PUBLIC, cds_fhir_servers=[fhir_server.base])
    patient = f"medplum-{uuid.uuid4().hex[:8]}"
    stored = {}
    for name, hours in (("qr-routine-sciatica", 30), ("qr-urgent-dvt", 2), ("qr-emergency-stroke", 1)):
        qr = dict(example(name), subject={"reference": f"Patient/{patient}"}, authored=authored(hours))
        qr.pop("id")
        # Medplum's in-memory search matches a canonical exactly, so `questionnaire=<url>` (the
        # contract's query) finds forms stored with the unversioned canonical only
        qr["questionnaire"] = qr["questionnaire"].partition("|")[0]
        if name == "qr-emergency-stroke":
            qr["status"] = "in-progress"  # the newest, but not completed: the query leaves it out
        status, created = fhir_server.request("POST", "QuestionnaireResponse", qr)
        assert status == 201, created
        stored[name] = created
    other = dict(stored["qr-emergency-stroke"], subject={"reference": "Patient/someone-else"},
                 status="completed")
    other.pop("id"), other.pop("meta")
    assert fhir_server.request("POST", "QuestionnaireResponse", other)[0] == 201
    body = hook_call(None, patient, **access(fhir_server.base, patient=patient))
    card = card_of(post_hook(app.test_client(), body))
    newest = stored["qr-urgent-dvt"]
    assert card["indicator"] == "warning" and "URGENT" in card["summary"], card["summary"]
    resources = action_resources(card)
    assert resources
    for resource in resources:
        assert resource["supportingInfo"] == [{"reference": f"QuestionnaireResponse/{newest['id']}",
                                               "type": "QuestionnaireResponse"}]
        (ident,) = resource["identifier"]
        condition = {"If-None-Exist": f"identifier={OUTPUT_SYSTEM}|{ident['value']}"}
        status, created = fhir_server.request("POST", "ServiceRequest", resource, condition)
        assert status == 201, created
        assert created["subject"] == {"reference": f"Patient/{patient}"}
        status, again = fhir_server.request("POST", "ServiceRequest", resource, condition)
        assert status == 200 and again["id"] == created["id"]
    found = fhir_server.search(f"ServiceRequest?subject=Patient/{patient}")
    assert found["total"] == len(resources)
