"""CDS Hooks security (issue 13): the CDS client's JWT, CORS, and no secrets or patient data in logs.

Checks 22-26, 28 and 29 of ../shared/cds-hooks.md. Keys are made per module; the hostile tokens
(alg none, HS256 keyed with the public key, no typ) are assembled by hand as an attacker would.
JWKS URLs (a jku allow-listed for an issuer, and one that is not) are test doubles on 127.0.0.1
that record every request.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.config import ConfigError
from tests.support.cds import (PATIENT_VIEW, PUBLIC, FakeEhr, cds_example, fresh, hook_call, post_hook,
                               searchset)
from tests.support.servers import gunicorn
from tests.support import example
from tests.support.keys import Key, hand_made, jwks

ISS = "https://ehr.example.org"
JKU_ISS = "https://sandbox.cds-hooks.org"
TENANT_ISS = "https://tenanted.example.org"
SERVICE_AUD = f"{PUBLIC}/cds-services/leg-numbness-triage"
DISCOVERY_AUD = f"{PUBLIC}/cds-services"


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "ES384": Key(ec.generate_private_key(ec.SECP384R1()), "ec-1", "ES384"),
        "RS384": Key(rsa_key, "rsa-1", "RS384"),
        "forged": Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-1", "RS384"),
        "jku": Key(ec.generate_private_key(ec.SECP384R1()), "jku-1", "ES384"),
    }


@pytest.fixture(scope="module")
def key_server(keys):
    server = FakeEhr(bundle=jwks(keys["jku"])).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rogue_key_server(keys):
    server = FakeEhr(bundle=jwks(keys["jku"], keys["forged"])).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def issuers_file(tmp_path_factory, keys, key_server):
    folder = tmp_path_factory.mktemp("cds-trust")
    (folder / "ehr-jwks.json").write_text(json.dumps(jwks(keys["ES384"], keys["RS384"])))
    (folder / "issuers.json").write_text(json.dumps([
        {"iss": ISS, "jwks_file": "ehr-jwks.json"},
        {"iss": JKU_ISS, "jku": [key_server.base + "/.well-known/jwks.json"]},
        {"iss": TENANT_ISS, "jwks_file": str(folder / "ehr-jwks.json"), "tenants": ["north"]},
    ]))
    return folder / "issuers.json"


@pytest.fixture(scope="module")
def cds_app(make_app):
    """cds_app(issuers_file, **over): the app with CDS client auth on, trusting issuers_file."""
    def make(issuers_file, **over):
        return make_app(**{"public_base_url": PUBLIC, "cds_auth_enabled": True,
                           "cds_issuers_file": str(issuers_file), **over})
    return make


@pytest.fixture(scope="module")
def client(issuers_file, cds_app):
    return cds_app(issuers_file).test_client()


def claims(**over) -> dict:
    now = int(time.time())
    base = {"iss": ISS, "aud": SERVICE_AUD, "sub": "ehr-client", "iat": now, "exp": now + 300,
            "jti": str(uuid.uuid4())}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, headers: dict | None = None, **over) -> str:
    return jwt.encode(claims(**over), key.private, algorithm=key.alg,
                      headers={"kid": key.kid, "typ": "JWT", **(headers or {})})


def call(client, token: str | None, body: dict | None = None, path: str = PATIENT_VIEW):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return post_hook(client, body or fresh(cds_example("patient-view-urgent")), path, **headers)


def assert_401(resp) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)[:300]
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="legtriage-cds-hooks"'
    body = resp.get_json(force=True)
    assert body.pop("text")["status"] == "generated"  # the narrative every OperationOutcome carries
    assert body == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "Authentication is required."}]}


# ---- accepted (check 22) ------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["ES384", "RS384"])
@pytest.mark.parametrize("aud", ["string", "array"])
def test_es384_and_rs384_with_aud_as_string_or_array(client, keys, alg, aud):
    """Check 22."""
    audience = SERVICE_AUD if aud == "string" else ["https://elsewhere.example.org", SERVICE_AUD]
    resp = call(client, sign(keys[alg], aud=audience))
    assert resp.status_code == 200 and len(resp.get_json()["cards"]) == 1


def test_the_caller_is_recorded_in_the_audit(issuers_file, keys, cds_app):
    from service.records.search import AuditQuery

    app = cds_app(issuers_file)
    with app.test_request_context(PATIENT_VIEW, method="POST", json=fresh(cds_example("patient-view-urgent")),
                                  headers={"Authorization": f"Bearer {sign(keys['ES384'])}"}):
        resp = app.full_dispatch_request()
        assert resp.status_code == 200
    [kept] = app.extensions["legtriage"].records.search_audits(AuditQuery(count=1))  # the newest
    assert (kept.kind, kept.agent_iss, kept.agent_sub, kept.service) == (
        "cds-hook", ISS, "ehr-client", "leg-numbness-triage")


# ---- refused (checks 23-25) -----------------------------------------------------------------------

def _hs256_with_public_key(key: Key) -> str:
    secret = key.public_pem()
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    return hand_made(header, claims(), lambda data: hmac.new(secret, data, hashlib.sha256).digest())


@pytest.mark.parametrize("make", [
    lambda k: None,
    lambda k: "",
    lambda k: "not-a-jwt",
    lambda k: hand_made({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims()),
    lambda k: _hs256_with_public_key(k["RS384"]),
    lambda k: sign(k["ES384"], headers={"kid": "unknown-kid"}),
    lambda k: sign(k["forged"]),
    lambda k: sign(k["ES384"], iss="https://impostor.example.org"),
    lambda k: sign(k["ES384"], jti=None),
    lambda k: sign(k["ES384"], exp=None),
    lambda k: sign(k["ES384"], iat=None),
    lambda k: sign(k["ES384"], aud=None),
    lambda k: sign(k["ES384"], iss=None),
    lambda k: jwt.encode(claims(), k["ES384"].private, algorithm="ES384", headers={"typ": "JWT"}),  # no kid
    lambda k: _without_typ(k["ES384"]),
], ids=["no-header", "empty", "not-a-jwt", "alg-none", "hs256-public-key", "unknown-kid", "forged-signature",
        "wrong-iss", "no-jti", "no-exp", "no-iat", "no-aud", "no-iss", "no-kid", "no-typ"])
def test_bad_tokens_get_401_without_a_reason(client, keys, make):
    """Check 23."""
    assert_401(call(client, make(keys)))


def _without_typ(key: Key) -> str:
    token = jwt.encode(claims(), key.private, algorithm="ES384", headers={"kid": key.kid, "typ": None})
    assert "typ" not in jwt.get_unverified_header(token)  # validly signed, only typ is missing
    return token


# Times are relative to when the test runs, not to when pytest collected it (minutes earlier in CI).
@pytest.mark.parametrize("over", [
    lambda now: {"aud": DISCOVERY_AUD},
    lambda now: {"aud": f"{SERVICE_AUD}/feedback"},
    lambda now: {"aud": "http://localhost:8080/cds-services/leg-numbness-triage"},  # the request's host, not the public URL
    lambda now: {"exp": now - 120, "iat": now - 400},
    lambda now: {"iat": now + 120, "exp": now + 400},
    lambda now: {"nbf": now + 120},
    lambda now: {"exp": now + 7200},  # lives two hours
], ids=["discovery-aud", "feedback-aud", "internal-aud", "expired", "iat-ahead", "nbf-ahead", "long-lived"])
def test_wrong_audience_or_time_is_401(client, keys, over):
    """Check 24."""
    assert_401(call(client, sign(keys["ES384"], **over(int(time.time())))))


def test_a_little_clock_skew_is_tolerated(client, keys):
    now = int(time.time())
    assert call(client, sign(keys["ES384"], iat=now + 30, exp=now + 300)).status_code == 200


def test_replayed_jti_is_401(client, keys):
    """Check 25."""
    token = sign(keys["ES384"])
    assert call(client, token).status_code == 200
    assert_401(call(client, token))
    other_jti_same_everything = sign(keys["ES384"])
    assert call(client, other_jti_same_everything).status_code == 200


# ---- jku (check 26) ----------------------------------------------------------------------------------

def test_allow_listed_jku_is_fetched_and_trusted(client, keys, key_server):
    token = sign(keys["jku"], headers={"jku": key_server.base + "/.well-known/jwks.json"}, iss=JKU_ISS)
    assert call(client, token).status_code == 200
    assert [s.path for s in key_server.seen][:1] == ["/fhir/.well-known/jwks.json"]


def test_jku_not_allow_listed_is_401_and_never_contacted(client, keys, rogue_key_server, key_server):
    """Check 26: for this issuer, and for an issuer that has no jku list at all."""
    rogue = rogue_key_server.base + "/.well-known/jwks.json"
    for iss in (JKU_ISS, ISS):
        assert_401(call(client, sign(keys["forged"], headers={"jku": rogue}, iss=iss)))
    # an allow-listed jku of another issuer does not count for this one
    assert_401(call(client, sign(keys["jku"], headers={"jku": key_server.base + "/.well-known/jwks.json"})))
    assert rogue_key_server.seen == []


def test_an_allow_listed_jku_redirecting_to_another_key_set_is_refused(tmp_path, keys, rogue_key_server,
                                                                       cds_app):
    """Issue 23, item 2: a 302 from the allow-listed jku is a failed fetch; the rogue keys are never
    fetched, so a token they sign is never trusted."""
    redirecting = FakeEhr(status=302, location=rogue_key_server.base + "/.well-known/jwks.json").start()
    try:
        jku = redirecting.base + "/.well-known/jwks.json"
        (tmp_path / "issuers.json").write_text(json.dumps([{"iss": JKU_ISS, "jku": [jku]}]))
        client = cds_app(tmp_path / "issuers.json").test_client()
        seen_before = len(rogue_key_server.seen)
        for key in ("forged", "jku"):
            resp = call(client, sign(keys[key], headers={"jku": jku}, iss=JKU_ISS))
            assert resp.status_code in (401, 503), resp.get_data(as_text=True)[:300]
        assert [s.path for s in redirecting.seen][:1] == ["/fhir/.well-known/jwks.json"]
        assert len(rogue_key_server.seen) == seen_before  # never followed
    finally:
        redirecting.stop()


def test_tenants_when_the_issuer_lists_them(client, keys):
    assert call(client, sign(keys["ES384"], iss=TENANT_ISS, tenant="north")).status_code == 200
    assert_401(call(client, sign(keys["ES384"], iss=TENANT_ISS, tenant="south")))
    assert_401(call(client, sign(keys["ES384"], iss=TENANT_ISS)))


# ---- feedback and discovery audiences (check 27) --------------------------------------------------

def test_feedback_with_the_feedback_audience(client, keys):
    """Check 27: the sandbox signs {service}/feedback; the service URL itself is accepted too."""
    issued = call(client, sign(keys["ES384"]), fresh(cds_example("patient-view-emergency")))
    body = cds_example("feedback-accepted")
    body["feedback"][0]["card"] = issued.get_json()["cards"][0]["uuid"]  # feedback is on a card issued
    path = PATIENT_VIEW + "/feedback"
    for aud in (f"{SERVICE_AUD}/feedback", SERVICE_AUD):
        assert call(client, sign(keys["ES384"], aud=aud), body, path).status_code == 200
    assert_401(call(client, sign(keys["ES384"], aud=DISCOVERY_AUD), body, path))
    assert_401(call(client, None, body, path))


def test_discovery_is_open_unless_configured(client, issuers_file, keys, cds_app):
    assert client.get("/cds-services").status_code == 200
    closed = cds_app(issuers_file, cds_discovery_auth=True).test_client()
    assert_401(closed.get("/cds-services"))
    assert_401(closed.get("/cds-services", headers={"Authorization": f"Bearer {sign(keys['ES384'])}"}))
    ok = closed.get("/cds-services", headers={"Authorization": f"Bearer {sign(keys['ES384'], aud=DISCOVERY_AUD)}"})
    assert ok.status_code == 200


def test_unknown_service_with_a_token_for_it_is_404(client, keys):
    token = sign(keys["ES384"], aud=f"{PUBLIC}/cds-services/nothing")
    assert call(client, token, path="/cds-services/nothing").status_code == 404


# ---- the FHIR API's auth and CDS auth side by side ---------------------------------------------------

def test_fhir_api_auth_does_not_demand_its_token_on_cds_services(issuers_file, keys, tmp_path, make_app,
                                                                 cds_app):
    fhir_jwks = tmp_path / "fhir-jwks.json"
    fhir_jwks.write_text(json.dumps(jwks(keys["RS384"])))
    fhir_auth = {"auth_enabled": True, "auth_jwks_file": str(fhir_jwks), "auth_issuers": [ISS],
                 "auth_audience": [PUBLIC], "public_base_url": PUBLIC}
    both = cds_app(issuers_file, **fhir_auth).test_client()
    assert call(both, sign(keys["ES384"])).status_code == 200
    fhir_token = sign(keys["RS384"], aud=PUBLIC)
    assert_401(call(both, fhir_token))  # the FHIR API's token is not a CDS client's JWT
    assert both.get("/fhir/Library", headers={"Authorization": f"Bearer {sign(keys['RS384'])}"}).status_code == 401
    assert both.get("/fhir/Library", headers={"Authorization": f"Bearer {fhir_token}"}).status_code == 200
    # CDS auth explicitly off, FHIR auth on: the CDS endpoints are open (a warning at start says so)
    open_cds = make_app(**fhir_auth, cds_auth_enabled=False).test_client()
    assert call(open_cds, None).status_code == 200
    # ... but never by default: not set either way, the service does not start
    with pytest.raises(ConfigError, match=r"^invalid configuration: LEGTRIAGE_CDS_AUTH_ENABLED: must be set"):
        make_app(**fhir_auth)


def test_with_fhir_auth_on_cds_auth_must_be_decided_in_the_environment(tmp_path, issuers_file):
    from service.config import load_settings

    env = {"LEGTRIAGE_AUTH_ENABLED": "true", "LEGTRIAGE_AUTH_JWKS_URL": "https://ehr.example.org/jwks",
           "LEGTRIAGE_AUTH_ISSUERS": ISS, "LEGTRIAGE_AUTH_AUDIENCE": PUBLIC, "LEGTRIAGE_PUBLIC_BASE_URL": PUBLIC}
    for unset in ({}, {"LEGTRIAGE_CDS_AUTH_ENABLED": ""}):
        with pytest.raises(ConfigError) as err:
            load_settings({**env, **unset})
        assert len(str(err.value).splitlines()) == 1 and "LEGTRIAGE_CDS_AUTH_ENABLED" in str(err.value)
    assert load_settings({**env, "LEGTRIAGE_CDS_AUTH_ENABLED": "false"}).cds_auth_enabled is False
    assert load_settings({**env, "LEGTRIAGE_CDS_AUTH_ENABLED": "true",
                          "LEGTRIAGE_CDS_ISSUERS_FILE": str(issuers_file)}).cds_auth_enabled is True
    assert load_settings({}).cds_auth_enabled is False  # FHIR auth off: CDS auth off by default too


# ---- configuration --------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, says", [
    (None, "LEGTRIAGE_CDS_ISSUERS_FILE"),
    ("[]", "non-empty JSON list"),
    ("{", "LEGTRIAGE_CDS_ISSUERS_FILE"),
    ('[{"iss": "https://a"}]', "jwks_file, jwks_url or jku"),
    ('[{"iss": "https://a", "jku": ["not a url"]}]', "jku"),
    ('[{"iss": "https://a", "jwks_file": "missing.json"}]', "missing.json"),
    ('[{"iss": "https://a", "jku": ["https://a/k"]}, {"iss": "https://a", "jku": ["https://a/k"]}]', "repeats"),
    ('[{"iss": "https://a", "jku": ["https://a/k"], "colour": "blue"}]', "colour"),
    ('[{"iss": "https://a", "jku": ["https://a/k", "http://a/k"]}]', "http:// would carry tokens or keys in cleartext"),
    ('[{"iss": "https://a", "jwks_url": "http://a/jwks.json"}]', "jwks_url"),
])
def test_bad_trust_configuration_stops_the_start(tmp_path, content, says, make_app):
    config = {"cds_auth_enabled": True}
    if content is not None:
        (tmp_path / "issuers.json").write_text(content)
        config["cds_issuers_file"] = str(tmp_path / "issuers.json")
    with pytest.raises(ConfigError, match="LEGTRIAGE_CDS_ISSUERS_FILE") as err:
        make_app(**config)
    assert says in str(err.value)


def test_a_private_key_in_an_issuers_jwks_stops_the_start(tmp_path, keys, make_app):
    private = jwt.algorithms.ECAlgorithm.to_jwk(keys["ES384"].private, as_dict=True)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**private, "kid": "x"}]}))
    (tmp_path / "issuers.json").write_text(json.dumps([{"iss": ISS, "jwks_file": "jwks.json"}]))
    with pytest.raises(ConfigError, match="private"):
        make_app(cds_auth_enabled=True, cds_issuers_file=str(tmp_path / "issuers.json"))


def test_cds_settings_from_the_environment():
    from service.config import load_settings

    loopback = load_settings({"LEGTRIAGE_CDS_FHIR_SERVERS": "http://localhost:9/fhir,http://[::1]:9/fhir",
                              "LEGTRIAGE_AUTH_JWKS_URL": "http://127.0.0.2/jwks.json",
                              "LEGTRIAGE_PUBLIC_BASE_URL": "http://localhost:8080",
                              "LEGTRIAGE_CDS_AUTH_ENABLED": "true", "LEGTRIAGE_CDS_ISSUERS_FILE": "/x.json"})
    assert loopback.cds_fhir_servers == ("http://localhost:9/fhir", "http://[::1]:9/fhir")
    assert load_settings({"LEGTRIAGE_PUBLIC_BASE_URL": "http://triage.lab"}).public_base_url  # no auth: no tokens
    s = load_settings({"LEGTRIAGE_CDS_FHIR_SERVERS": "https://ehr.example.org/fhir/, http://127.0.0.1:9/fhir",
                       "LEGTRIAGE_CDS_FRESHNESS_HOURS": "24", "LEGTRIAGE_CDS_AUTH_ENABLED": "false"})
    assert s.cds_fhir_servers == ("https://ehr.example.org/fhir", "http://127.0.0.1:9/fhir")
    assert (s.cds_freshness_hours, s.cds_auth_enabled, s.cds_prompt_in_progress) == (24, False, False)


# ---- CORS (check 28) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/cds-services", PATIENT_VIEW, PATIENT_VIEW + "/feedback"])
def test_cors_preflight_allows_authorization_and_content_type(issuers_file, path, cds_app):
    """Check 28, with CDS auth on: a preflight carries no token and must still pass."""
    origin = "https://sandbox.cds-hooks.org"
    client = cds_app(issuers_file, cors_origins=[origin]).test_client()
    resp = client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "authorization,content-type"})
    assert 200 <= resp.status_code < 300
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    other = client.options(path, headers={"Origin": "https://evil.example.org",
                                          "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers


# ---- logs (check 29) -----------------------------------------------------------------------------------------

def test_logs_hold_no_jwt_token_patient_id_or_answers(tmp_path, keys, issuers_file):
    """Check 29, under a real gunicorn at debug level with CDS auth on and a FHIR fetch."""
    mark = uuid.uuid4().hex
    access_token = f"token-{mark}"
    qr = example("qr-urgent-dvt")
    qr["id"] = f"qr-{mark}"
    qr["subject"] = {"reference": f"Patient/p-{mark}", "display": f"{mark} Doe"}
    qr["item"].append({"linkId": f"{mark}-link", "answer": [{"valueString": f"{mark}-answer"}]})
    ehr = FakeEhr(bundle=searchset()).start()
    try:
        env = {"LEGTRIAGE_LOG_LEVEL": "debug", "LEGTRIAGE_PUBLIC_BASE_URL": PUBLIC,
               "LEGTRIAGE_CDS_AUTH_ENABLED": "true", "LEGTRIAGE_CDS_ISSUERS_FILE": str(issuers_file),
               "LEGTRIAGE_CDS_FHIR_SERVERS": ehr.base}
        with gunicorn(tmp_path / "server.log", env=env, workers=1) as server:
            url = server.base + PATIENT_VIEW
            tokens = []

            def post(body, path=url, **over):
                token = sign(keys["ES384"], sub=f"user-{mark}", **over)
                tokens.append(token)
                return requests.post(path, json=body, timeout=10, headers={"Authorization": f"Bearer {token}"})

            body = hook_call(qr, f"p-{mark}")
            first = post(body)
            assert first.status_code == 200
            ehr.bundle = body["prefetch"]["legNumbnessQR"]
            fetch = hook_call(None, f"p-{mark}", fhirServer=ehr.base, fhirAuthorization={
                "access_token": access_token, "token_type": "Bearer", "expires_in": 300, "scope": "x",
                "subject": "legtriage", "patient": f"p-{mark}"})
            assert post(fetch).status_code == 200
            ehr.status = 401
            assert post(fetch).status_code == 412
            bad = json.loads(json.dumps(body))
            bad["context"]["patientId"] = f"bad/{mark}"
            assert post(bad).status_code == 400
            feedback = {"feedback": [{"card": first.json()["cards"][0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-20T08:20:00Z",
                                      "overrideReason": {"userComment": f"{mark} comment"}}]}
            assert post(feedback, url + "/feedback", aud=SERVICE_AUD + "/feedback").status_code == 200
            assert requests.post(url, json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {mark}.{mark}.{mark}"}).status_code == 401
            time.sleep(0.3)
            log = server.log()
    finally:
        ehr.stop()
    assert ehr.seen and all(s.authorization == f"Bearer {access_token}" for s in ehr.seen)
    assert "POST /cds-services/<id> 200" in log and "POST /cds-services/<id>/feedback 200" in log
    assert mark not in log, [line for line in log.splitlines() if mark in line][:3]
    for token in tokens:
        assert token not in log and token.split(".")[2] not in log
