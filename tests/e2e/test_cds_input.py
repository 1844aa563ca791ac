"""Issue 23, items 13-15: the CDS Hooks surface reads its input as strictly as $triage.

13: a validly signed CDS client JWT whose exp, iat or nbf is a numeric string is 401 (not 500).
14: a hook call or feedback body repeating a JSON key is 400 naming the key and where, as $triage
    says it (one body reader for both).
15: an id with a trailing newline ("x\\n") is refused naming the field, wherever ids are checked.
"""
from __future__ import annotations

import ast
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from service.config import ConfigError
from tests.support.cds import (ENCOUNTER_START, PATIENT_VIEW, PUBLIC, cds_example, fresh, post_hook,
                               trust_folder)
from tests.support import ROOT, example
from tests.support.keys import Key, jwks

ISS = "https://ehr.example.org"
AUD = f"{PUBLIC}/cds-services/leg-numbness-triage"


@pytest.fixture(scope="module")
def key() -> Key:
    return Key(ec.generate_private_key(ec.SECP384R1()), "ec-1", "ES384")


@pytest.fixture(scope="module")
def auth_client(tmp_path_factory, key, make_app):
    folder = trust_folder(tmp_path_factory.mktemp("cds-input"), ISS, jwks(key))
    return make_app(public_base_url=PUBLIC, cds_auth_enabled=True,
                    cds_issuers_file=str(folder / "issuers.json")).test_client()


@pytest.fixture(scope="module")
def client(make_app):
    return make_app(public_base_url=PUBLIC).test_client()


def signed(key: Key, **over) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": AUD, "sub": "ehr", "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(over)
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})


# ---- 13 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("over", [
    lambda now: {"exp": str(now + 300)},
    lambda now: {"iat": str(now)},
    lambda now: {"nbf": str(now - 10)},
    lambda now: {"exp": float(now + 300), "iat": True},
], ids=["exp-string", "iat-string", "nbf-string", "iat-boolean"])
def test_a_numeric_date_that_is_not_a_number_is_401(auth_client, key, over):
    token = signed(key, **over(int(time.time())))
    resp = post_hook(auth_client, fresh(cds_example("patient-view-urgent")), Authorization=f"Bearer {token}")
    assert resp.status_code == 401, resp.get_data(as_text=True)[:300]
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="legtriage-cds-hooks"'
    good = post_hook(auth_client, fresh(cds_example("patient-view-urgent")),
                     Authorization=f"Bearer {signed(key, exp=int(time.time()) + 300.5)}")
    assert good.status_code == 200  # a JSON number with a fraction is a NumericDate


# ---- 14 ---------------------------------------------------------------------------------------------

def _issue(resp) -> dict:
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    (issue,) = resp.get_json(force=True)["issue"]
    return issue


@pytest.mark.parametrize("body, where, key_name", [
    # the prefetch's QuestionnaireResponse says its status twice: the first would be silently dropped
    (lambda text: text.replace('"status": "completed"', '"status": "entered-in-error", "status": "completed"', 1),
     "prefetch.legNumbnessQR", "status"),
    (lambda text: text.replace('"patientId":', '"patientId": "someone-else", "patientId":', 1), "context", "patientId"),
    (lambda text: text.replace('{', '{"hook": "patient-view", ', 1), "$", "hook"),
], ids=["prefetch", "context", "top-level"])
def test_a_repeated_key_in_a_hook_call_is_400_naming_it(client, body, where, key_name):
    text = json.dumps(fresh(cds_example("patient-view-urgent")))
    resp = post_hook(client, body(text))
    issue = _issue(resp)
    assert issue["code"] == "structure" and f"has the key {key_name!r} more than once" in issue["diagnostics"]
    assert issue["expression"] == [f"{where}.{key_name}"]


def test_a_repeated_key_in_feedback_is_400_naming_it(client):
    text = json.dumps(cds_example("feedback-accepted")).replace('"outcome":', '"outcome": "overridden", "outcome":', 1)
    issue = _issue(post_hook(client, text, PATIENT_VIEW + "/feedback"))
    assert "'outcome' more than once" in issue["diagnostics"] and issue["expression"] == ["feedback[0].outcome"]


def test_cds_and_triage_read_bodies_alike(client):
    """The same reader: what $triage says of a body, a hook call says too (bar what each expects)."""
    for raw in (b"", b"   ", b"[1,", b'{"a": NaN}'):
        cds = post_hook(client, raw)
        fhir = client.post("/fhir/QuestionnaireResponse/$triage", data=raw,
                           headers={"Content-Type": "application/fhir+json"})
        assert cds.status_code == fhir.status_code == 400
        said = [r.get_json(force=True)["issue"][0]["diagnostics"] for r in (cds, fhir)]
        assert said[0].replace("a CDS Hooks request", "X") == said[1].replace("a QuestionnaireResponse", "X")
    resp = post_hook(client, b"{}", **{"Content-Type": "text/plain"})
    assert resp.status_code == 415 and "application/json" in resp.get_json(force=True)["issue"][0]["diagnostics"]


# ---- 15 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, field, value", [
    (PATIENT_VIEW, "context.patientId", "x\n"),
    (PATIENT_VIEW, "context.patientId", "example-1\n"),
    (ENCOUNTER_START, "context.encounterId", "enc-1\n"),
    (PATIENT_VIEW, "fhirAuthorization.patient", "example-1\n"),
])
def test_an_id_with_a_trailing_newline_is_400_naming_the_field(client, path, field, value):
    body = fresh(cds_example("encounter-start-emergency" if path == ENCOUNTER_START else "patient-view-urgent"))
    if field == "fhirAuthorization.patient":
        body.update({"fhirServer": "https://ehr.example.org/fhir", "fhirAuthorization": {
            "access_token": "t", "token_type": "Bearer", "expires_in": 60, "scope": "x", "subject": "s",
            "patient": value}})
    else:
        body["context"][field.split(".")[1]] = value
    resp = post_hook(client, body, path)
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    issues = resp.get_json(force=True)["issue"]
    assert [i["expression"] for i in issues] == [[field]] and "FHIR id" in issues[0]["diagnostics"]


def test_a_triage_subject_or_id_with_a_trailing_newline_is_refused(client):
    for field, value in (("id", "qr-1\n"), ("subject", {"reference": "Patient/p1\n"})):
        qr = example("qr-urgent-dvt")
        qr[field] = value
        resp = client.post("/fhir/QuestionnaireResponse/$triage", data=json.dumps(qr),
                           headers={"Content-Type": "application/fhir+json"})
        assert resp.status_code in (400, 422)
        assert resp.get_json(force=True)["issue"][0]["expression"][0].startswith(f"QuestionnaireResponse.{field}")


def test_settings_with_a_trailing_newline_are_refused(make_app):
    with pytest.raises(ConfigError, match="LEGTRIAGE_SMART_CLIENT_ID"):
        make_app(smart_client_id="legtriage-app\n", app_ehr_issuers="https://ehr.example.org/fhir")
    with pytest.raises(ConfigError, match="LEGTRIAGE_APP_CONNECT_SRC"):
        make_app(app_connect_src=["https://auth.example.org/\nx"])


def test_no_pattern_ends_with_a_dollar():
    """Every regex the service checks input with ends in \\Z or is used with fullmatch: `$` with
    match(), search() or marshmallow's Regexp also accepts a final newline."""
    found = []
    for path in sorted((ROOT / "service").rglob("*.py")):
        if "rules" in path.parts:
            continue  # published rule modules never change (and check no input with regexes)
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            pattern = node.args[0].value
            if name in ("compile", "Regexp", "match", "search") and isinstance(pattern, str) \
                    and pattern.endswith("$") and not pattern.endswith("\\$"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {pattern[:50]}")
    assert found == []
