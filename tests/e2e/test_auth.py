"""Bearer-JWT auth (issue #6, item 3): real tokens signed with test keys, and the ways they go wrong.

Keys are made per test session with `cryptography`; tokens are signed with PyJWT, except the
hostile ones (alg none, HS256 keyed with the public key) which PyJWT refuses to make and are
assembled by hand, the way an attacker would.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service import keys as keys_module
from service.config import ConfigError
from tests.support import FHIR_JSON, TRIAGE, example, post_triage
from tests.support.keys import Key, b64, hand_made, jwks

ISSUER = "https://ehr.example.org"
AUDIENCE = "https://legtriage.example.org"
GOOD = example("qr-emergency-stroke")


# ---- keys and tokens ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "RS384": Key(rsa_key, "rsa-1", "RS384"),
        "RS256": Key(rsa_key, "rsa-1", "RS256"),
        "ES384": Key(ec.generate_private_key(ec.SECP384R1()), "ec-1", "ES384"),
        # Same kid as the trusted RSA key, different key material: a forger's key.
        "forged": Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-1", "RS384"),
        "other": Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-2", "RS384"),
    }


def claims(**over) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "client-1", "iat": now, "nbf": now,
            "exp": now + 120, "jti": str(uuid.uuid4())}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, alg: str | None = None, kid: str | None = "default", **over) -> str:
    headers = {"kid": key.kid if kid == "default" else kid}
    if headers["kid"] is None:
        headers = {}
    return jwt.encode(claims(**over), key.private, algorithm=alg or key.alg, headers=headers)


# ---- apps ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory, keys):
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(jwks(keys["RS384"], keys["ES384"])))
    return path


@pytest.fixture(scope="module")
def auth_app(make_app):
    """auth_app(jwks_source, **over): the app with bearer auth on, keys from jwks_source."""
    def make(jwks_source: dict, **over):
        return make_app(**{"auth_enabled": True, "auth_issuers": [ISSUER, "https://other-ehr.example.org"],
                           "auth_audience": [AUDIENCE], "cds_auth_enabled": False, **jwks_source, **over})
    return make


@pytest.fixture(scope="module")
def client(jwks_file, auth_app):
    return auth_app({"auth_jwks_file": jwks_file}).test_client()


def triage(client, token: str | None, **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return post_triage(client, GOOD, **headers)


def assert_401(resp, code: str = "security", error: str | None = "invalid_token", says: str = ""):
    assert resp.status_code == 401, resp.get_data(as_text=True)[:400]
    assert resp.mimetype == FHIR_JSON
    body = resp.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["code"] == code and issue["severity"] == "error"
    assert says.lower() in issue["diagnostics"].lower(), issue["diagnostics"]
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="legtriage"')
    if error:
        assert f'error="{error}"' in challenge
    else:
        assert "error=" not in challenge
    return issue


# ---- off by default -------------------------------------------------------------------------------

def test_auth_is_off_by_default(app):
    resp = triage(app.test_client(), None)
    assert resp.status_code == 200
    assert "legtriage.auth" not in app.extensions


# ---- good tokens --------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["RS384", "ES384", "RS256"])
def test_a_good_token_is_let_in(client, keys, alg):
    resp = triage(client, sign(keys[alg]))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:400]
    assert resp.get_json(force=True)["resourceType"] == "Bundle"


def test_a_token_without_kid_works_when_one_key_fits(client, keys):
    # The JWKS holds one RSA key and one EC key: an ES384 token can only mean the EC key.
    assert triage(client, sign(keys["ES384"], kid=None)).status_code == 200


def test_a_second_issuer_of_the_allow_list_is_let_in(client, keys):
    assert triage(client, sign(keys["RS384"], iss="https://other-ehr.example.org")).status_code == 200


def test_small_clock_skew_is_tolerated(client, keys):
    now = int(time.time())
    token = sign(keys["RS384"], nbf=now + 10, iat=now + 10, exp=now - 10 + 120)
    assert triage(client, token).status_code == 200


# ---- missing and bad tokens ------------------------------------------------------------------

def test_no_token_is_401_with_a_challenge(client):
    issue = assert_401(triage(client, None), code="login", error=None, says="bearer token is required")
    assert "expression" not in issue


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc", "bearer"])
def test_other_schemes_and_empty_bearer_are_401(client, header):
    assert_401(post_triage(client, GOOD, Authorization=header), code="login", error=None)


def test_garbage_token_is_401(client):
    assert_401(triage(client, "not-a-jwt"), says="not a JWT")


def test_an_overlong_token_is_401(client):
    assert_401(triage(client, "a" * 20_000), says="too long")


def test_wrong_key_is_401(client, keys):
    assert_401(triage(client, sign(keys["forged"])), says="signature does not verify")


def test_unknown_kid_is_401(client, keys):
    assert_401(triage(client, sign(keys["other"])), says="signing key")


def test_wrong_audience_is_401(client, keys):
    assert_401(triage(client, sign(keys["RS384"], aud="https://someone-else.example.org")),
               says="audience")


def test_untrusted_issuer_is_401(client, keys):
    assert_401(triage(client, sign(keys["RS384"], iss="https://evil.example.org")), says="issuer")


def test_expired_token_is_401(client, keys):
    now = int(time.time())
    token = sign(keys["RS384"], iat=now - 600, nbf=now - 600, exp=now - 60)  # beyond the 30 s leeway
    assert_401(triage(client, token), code="expired", says="expired")


def test_not_yet_valid_token_is_401(client, keys):
    now = int(time.time())
    assert_401(triage(client, sign(keys["RS384"], nbf=now + 600, exp=now + 900)), says="not valid yet")


@pytest.mark.parametrize("claim", ["exp", "iss", "aud"])
def test_a_token_without_a_required_claim_is_401(client, keys, claim):
    assert_401(triage(client, sign(keys["RS384"], **{claim: None})), says=claim)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_401(client, alg):
    token = hand_made({"alg": alg, "typ": "JWT"}, claims())
    assert_401(triage(client, token), says="not accepted")


def test_hs256_signed_with_the_public_key_is_401(client, keys):
    # The classic key-confusion attack: the public key (which anyone has) used as an HMAC secret.
    for secret in (keys["RS384"].public_pem(), json.dumps(keys["RS384"].jwk()).encode()):
        token = hand_made({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(),
                          lambda data: hmac.new(secret, data, hashlib.sha256).digest())
        assert_401(triage(client, token), says="not accepted")


def test_an_rsa_token_claiming_the_ec_kid_is_401(client, keys):
    assert_401(triage(client, sign(keys["RS384"], kid="ec-1")), says="signing key")


def test_a_tampered_payload_is_401(client, keys):
    header, payload, signature = sign(keys["RS384"]).split(".")
    forged = b64(json.dumps(claims(sub="admin")).encode())
    assert_401(triage(client, f"{header}.{forged}.{signature}"), says="signature")


def test_an_algorithm_outside_the_configured_list_is_401(jwks_file, keys, auth_app):
    client = auth_app({"auth_jwks_file": jwks_file}, auth_algorithms=["ES384"]).test_client()
    assert triage(client, sign(keys["ES384"])).status_code == 200
    assert_401(triage(client, sign(keys["RS384"])), says="not accepted")


# ---- which paths need a token -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/fhir/metadata", "/fhir/metadata/", "/docs/"])
def test_public_paths_stay_open(client, path):
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.status_code)


def test_the_openapi_spec_stays_open(client):
    assert client.get("/openapi.yaml").status_code != 401


@pytest.mark.parametrize("method,path", [
    ("GET", "/fhir/Questionnaire/leg-numbness"),
    ("GET", "/fhir/Questionnaire?url=x"),
    ("GET", "/fhir/Library"),
    ("GET", "/fhir/OperationDefinition/triage"),
    ("GET", "/fhir/CodeSystem/triage-disposition"),
    ("GET", "/fhir/no-such-thing"),  # 401 before 404: no probing for paths without a token
    ("GET", TRIAGE),  # 401 before 405
    # /cds-services is not here: CDS Hooks calls carry the CDS client's JWT, checked against the
    # CDS trust configuration (tests/integration/test_cds_auth.py), not the FHIR API's bearer token.
    ("GET", "/fhir/%6Detadata-not"),
])
def test_everything_else_needs_a_token(client, method, path):
    assert_401(client.open(path, method=method), code="login", error=None)


@pytest.mark.parametrize("path", ["/docs/../fhir/Library", "/docs/%2e%2e/fhir/Library",
                                  "/healthz/../fhir/Library", "/fhir/metadata/../Library"])
def test_public_prefixes_do_not_open_other_paths(client, path):
    resp = client.get(path)
    assert resp.status_code in (401, 404), (path, resp.status_code)
    assert "Library" not in resp.get_data(as_text=True) or resp.status_code == 401


def test_auth_comes_before_content_negotiation(client):
    # Without a token a caller learns nothing, not even which formats are served.
    resp = post_triage(client, "<xml/>", **{"Content-Type": "application/fhir+xml",
                                            "Accept": "application/fhir+xml"})
    assert_401(resp, code="login", error=None)


def test_a_good_token_reads_the_other_fhir_endpoints(client, keys):
    resp = client.get("/fhir/Questionnaire/leg-numbness",
                      headers={"Authorization": f"Bearer {sign(keys['ES384'])}"})
    assert resp.status_code == 200


# ---- jti replay window --------------------------------------------------------------------------

@pytest.fixture()
def replay_client(jwks_file, auth_app):
    return auth_app({"auth_jwks_file": jwks_file}, auth_jti_window_seconds=300).test_client()


def test_a_replayed_token_is_401(replay_client, keys):
    token = sign(keys["RS384"])
    assert triage(replay_client, token).status_code == 200
    assert_401(triage(replay_client, token), says="already used")
    assert triage(replay_client, sign(keys["RS384"])).status_code == 200  # a fresh jti is fine


def test_the_same_jti_from_another_issuer_is_not_a_replay(replay_client, keys):
    jti = str(uuid.uuid4())
    assert triage(replay_client, sign(keys["RS384"], jti=jti)).status_code == 200
    assert triage(replay_client, sign(keys["RS384"], jti=jti,
                                      iss="https://other-ehr.example.org")).status_code == 200


def test_with_a_window_jti_is_required(replay_client, keys):
    assert_401(triage(replay_client, sign(keys["RS384"], jti=None)), says="jti")


def test_with_a_window_long_lived_tokens_are_401(replay_client, keys):
    # A replay cache that forgot a token before it expired would let it be replayed.
    assert_401(triage(replay_client, sign(keys["RS384"], exp=int(time.time()) + 3600)),
               says="lives longer")


def test_without_a_window_a_token_may_be_reused(client, keys):
    token = sign(keys["RS384"], jti=None)
    assert triage(client, token).status_code == 200
    assert triage(client, token).status_code == 200


def test_the_replay_cache_forgets_expired_tokens():
    cache = keys_module.ReplayCache()
    assert cache.first_use("iss", "a", time.time() + 60)
    assert not cache.first_use("iss", "a", time.time() + 60)
    assert cache.first_use("iss", "b", time.time() - 1)  # already expired: not kept
    cache._next_sweep = 0
    cache.first_use("iss", "c", time.time() + 60)
    assert set(cache._seen) == {("iss", "a"), ("iss", "c")}


# ---- keys from a file that changes, and from a URL ------------------------------------------------

def test_a_rotated_jwks_file_is_picked_up(tmp_path, keys, auth_app):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(keys["RS384"])))
    client = auth_app({"auth_jwks_file": path}).test_client()
    assert triage(client, sign(keys["RS384"])).status_code == 200
    assert_401(triage(client, sign(keys["other"])), says="signing key")
    path.write_text(json.dumps(jwks(keys["other"])))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert triage(client, sign(keys["other"])).status_code == 200
    assert_401(triage(client, sign(keys["RS384"])), says="signing key")
    # A broken file later on trusts no key (issue #11: emptying the file revokes); see below.
    path.write_text("{broken")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    assert_401(triage(client, sign(keys["other"])), says="signing key")


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose document and availability the test controls."""

    def __init__(self, document: dict) -> None:
        self.document, self.up, self.hits = document, True, 0
        self.redirect: str | None = None  # set: answer 302 to this address
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits += 1
                if not server.up:
                    self.send_error(503)
                    return
                if server.redirect:
                    self.send_response(302)
                    self.send_header("Location", server.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def jwks_server(keys):
    server = JwksServer(jwks(keys["RS384"]))
    yield server
    server.close()


def test_keys_from_a_jwks_url_are_fetched_once_and_cached(jwks_server, keys, auth_app):
    client = auth_app({"auth_jwks_url": jwks_server.url}).test_client()
    assert jwks_server.hits == 0  # fetched on first use: the key server may be down at boot
    for _ in range(3):
        assert triage(client, sign(keys["RS384"])).status_code == 200
    assert jwks_server.hits == 1
    # The key server going down later does not lock callers out: the cached keys still serve.
    jwks_server.up = False
    assert triage(client, sign(keys["RS384"])).status_code == 200


def test_a_new_kid_at_the_jwks_url_is_fetched(jwks_server, keys, monkeypatch, auth_app):
    monkeypatch.setattr(keys_module, "JWKS_URL_MIN_REFRESH_SECONDS", 0)
    client = auth_app({"auth_jwks_url": jwks_server.url}).test_client()
    assert triage(client, sign(keys["RS384"])).status_code == 200
    jwks_server.document = jwks(keys["RS384"], keys["other"])  # the issuer rotated its keys
    assert triage(client, sign(keys["other"])).status_code == 200
    assert jwks_server.hits == 2


def test_an_unreachable_jwks_url_is_503_not_a_crash(jwks_server, keys, auth_app):
    jwks_server.up = False
    client = auth_app({"auth_jwks_url": jwks_server.url}).test_client()
    resp = triage(client, sign(keys["RS384"]))
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "30"
    assert resp.get_json(force=True)["issue"][0]["code"] == "transient"


def test_a_jwks_url_redirecting_to_another_key_set_trusts_nothing_from_it(jwks_server, keys, monkeypatch,
                                                                          auth_app):
    """Issue 23, item 2: the 302 is a failed fetch (503 while no key was ever fetched), never followed."""
    rogue = JwksServer(jwks(keys["other"]))
    try:
        jwks_server.redirect = rogue.url
        client = auth_app({"auth_jwks_url": jwks_server.url}).test_client()
        resp = triage(client, sign(keys["other"]))
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "30"
        assert rogue.hits == 0 and jwks_server.hits == 1
        # Keys fetched before stay the only ones trusted while the URL redirects.
        monkeypatch.setattr(keys_module, "JWKS_URL_CACHE_SECONDS", -1)
        jwks_server.redirect = None
        client = auth_app({"auth_jwks_url": jwks_server.url}).test_client()
        assert triage(client, sign(keys["RS384"])).status_code == 200
        jwks_server.redirect = rogue.url
        assert_401(triage(client, sign(keys["other"])), says="signing key")
        assert triage(client, sign(keys["RS384"])).status_code == 200
        assert rogue.hits == 0
    finally:
        rogue.close()


def test_a_jwks_url_is_https_unless_it_is_this_machine():
    from service.keys import UrlKeys

    for url in ("http://keys.example.org/jwks.json", "http://10.0.0.1/jwks.json", "ftp://127.0.0.1/j"):
        with pytest.raises(ConfigError, match="cleartext"):
            UrlKeys(url)
    for url in ("https://keys.example.org/jwks.json", "http://127.0.0.1:9/j", "http://localhost/j",
                "http://[::1]/j"):
        assert UrlKeys(url).url == url


# ---- configuration checked at start ------------------------------------------------------------

def test_a_missing_jwks_file_stops_the_start(tmp_path, auth_app):
    with pytest.raises(ConfigError, match="LEGTRIAGE_AUTH_JWKS_FILE"):
        auth_app({"auth_jwks_file": tmp_path / "nope.json"})


def test_a_jwks_with_private_keys_stops_the_start(tmp_path, keys, auth_app):
    private = jwt.algorithms.RSAAlgorithm.to_jwk(keys["RS384"].private, as_dict=True)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [private]}))
    with pytest.raises(ConfigError, match="private"):
        auth_app({"auth_jwks_file": path})


def test_a_jwks_without_signature_keys_stops_the_start(tmp_path, keys, auth_app):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**keys["RS384"].jwk(), "use": "enc"}]}))
    with pytest.raises(ConfigError, match="no usable"):
        auth_app({"auth_jwks_file": path})


def test_auth_settings_come_from_the_environment(monkeypatch, jwks_file, keys, make_app):
    for name, value in {"ENABLED": "true", "JWKS_FILE": str(jwks_file), "ISSUERS": f" {ISSUER} ,",
                        "AUDIENCE": AUDIENCE, "JTI_WINDOW_SECONDS": "120"}.items():
        monkeypatch.setenv(f"LEGTRIAGE_AUTH_{name}", value)
    monkeypatch.setenv("LEGTRIAGE_CDS_AUTH_ENABLED", "false")
    client = make_app().test_client()
    assert_401(triage(client, None), code="login", error=None)
    token = sign(keys["RS384"], exp=int(time.time()) + 60)
    assert triage(client, token).status_code == 200
    assert_401(triage(client, token), says="already used")


# ---- hostile tokens: every JSON type in the JOSE header and the claims (issue #11, item 1) --------

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st  # noqa: E402

JSON_VALUES = [None, 0, 1, -1, 1.5, 1e300, True, False, "", "x", "1e10", "9999999999", [], [1],
               ["kid"], {}, {"a": 1}, "\u0000", "a" * 5000]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=40), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def rs384(key: Key):
    return lambda data: key.private.sign(data, padding.PKCS1v15(), hashes.SHA384())


def good_header(key: Key) -> dict:
    return {"alg": "RS384", "kid": key.kid, "typ": "JWT"}


def assert_401_or_200(resp):
    assert resp.status_code in (200, 401), resp.get_data(as_text=True)[:400]
    if resp.status_code == 401:
        assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="legtriage"')


@pytest.mark.parametrize("name", ["alg", "kid", "typ", "cty", "crit", "jku", "x5u", "x5c", "jwk", "b64"])
@pytest.mark.parametrize("value", JSON_VALUES, ids=[repr(v)[:12] for v in JSON_VALUES])
def test_any_json_value_in_a_signed_header_is_never_a_500(client, keys, name, value):
    token = hand_made({**good_header(keys["RS384"]), name: value}, claims(), rs384(keys["RS384"]))
    resp = triage(client, token)
    assert_401_or_200(resp)
    if name in ("alg", "kid", "crit") or (name in ("typ", "cty") and not isinstance(value, str)):
        assert_401(resp)


@pytest.mark.parametrize("value", [None, 0, ["rsa-1"], {"kid": "rsa-1"}, True])
def test_a_kid_that_is_not_a_string_is_401(client, keys, value):
    token = hand_made({**good_header(keys["RS384"]), "kid": value}, claims(), rs384(keys["RS384"]))
    assert_401(triage(client, token), says="kid")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "b64"])
def test_a_crit_header_is_refused(client, keys, crit):
    token = hand_made({**good_header(keys["RS384"]), "crit": crit, "exp": 1}, claims(),
                      rs384(keys["RS384"]))
    assert_401(triage(client, token), says="crit")


@pytest.mark.parametrize("name", ["iss", "aud", "exp", "iat", "nbf", "jti", "sub"])
@pytest.mark.parametrize("value", JSON_VALUES, ids=[repr(v)[:12] for v in JSON_VALUES])
def test_any_json_value_in_a_claim_is_never_a_500(client, replay_client, keys, name, value):
    for app_client in (client, replay_client):
        token = hand_made(good_header(keys["RS384"]), {**claims(), name: value}, rs384(keys["RS384"]))
        assert_401_or_200(triage(app_client, token))


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [str(int(time.time()) + 60), "0", True, [1], {"t": 1}])
def test_a_time_claim_that_is_not_a_number_is_401(client, replay_client, keys, name, value):
    for app_client in (client, replay_client):
        token = hand_made(good_header(keys["RS384"]), {**claims(), name: value}, rs384(keys["RS384"]))
        resp = triage(app_client, token)
        assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers  # "0" may say expired


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jku", "zip", "enc"]), JSON,
                              max_size=4),
       payload=st.dictionaries(st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "sub"]), JSON,
                               max_size=7),
       whole_header=JSON)
def test_fuzzed_tokens_are_401_or_let_in_never_500(client, keys, header, payload, whole_header):
    signer = rs384(keys["RS384"])
    assert_401_or_200(triage(client, hand_made({**good_header(keys["RS384"]), **header},
                                               {**claims(), **payload}, signer)))
    assert_401_or_200(triage(client, hand_made(good_header(keys["RS384"]), payload, signer)))
    assert_401_or_200(triage(client, hand_made(whole_header, claims(), signer)))


# ---- the longest token lifetime accepted -----------------------------------------------------------

def test_a_token_living_longer_than_a_day_is_401_by_default(client, keys):
    assert triage(client, sign(keys["RS384"], exp=int(time.time()) + 86_000)).status_code == 200
    assert_401(triage(client, sign(keys["RS384"], exp=int(time.time()) + 2 * 86_400)),
               says="longest lifetime")


def test_the_longest_token_lifetime_is_a_setting(jwks_file, keys, auth_app):
    short = auth_app({"auth_jwks_file": jwks_file}, auth_max_lifetime_seconds=60).test_client()
    assert triage(short, sign(keys["RS384"], exp=int(time.time()) + 60)).status_code == 200
    assert_401(triage(short, sign(keys["RS384"], exp=int(time.time()) + 600)), says="60 s")
    unlimited = auth_app({"auth_jwks_file": jwks_file}, auth_max_lifetime_seconds=0).test_client()
    assert triage(unlimited, sign(keys["RS384"], exp=int(time.time()) + 10 * 86_400)).status_code == 200


def test_the_longest_token_lifetime_comes_from_the_environment(monkeypatch):
    from service.config import load_settings
    assert load_settings({}).auth_max_lifetime_seconds == 86_400
    assert load_settings({"LEGTRIAGE_AUTH_MAX_LIFETIME_SECONDS": "300"}).auth_max_lifetime_seconds == 300
    with pytest.raises(ConfigError, match="LEGTRIAGE_AUTH_MAX_LIFETIME_SECONDS"):
        load_settings({"LEGTRIAGE_AUTH_MAX_LIFETIME_SECONDS": "-1"})


# ---- revoking keys at runtime (issue #11, item 3) ---------------------------------------------------

def _touch(path, seconds: int) -> None:
    os.utime(path, ns=(time.time_ns(), time.time_ns() + seconds * 1_000_000_000))


def jwks_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "service.keys" and r.levelname == "WARNING" and "JWKS" in r.getMessage()]


@pytest.mark.parametrize("breakage", ["emptied", "empty-key-set", "garbage", "deleted", "not-an-object"])
def test_a_jwks_file_made_empty_or_invalid_trusts_no_key_until_valid_again(tmp_path, keys, caplog,
                                                                           breakage, auth_app):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(keys["RS384"])))
    client = auth_app({"auth_jwks_file": path}).test_client()
    assert triage(client, sign(keys["RS384"])).status_code == 200
    caplog.set_level("INFO", logger="service.keys")
    if breakage == "deleted":
        path.unlink()
    else:
        path.write_text({"emptied": "", "empty-key-set": '{"keys": []}', "garbage": "\x00garbage{",
                         "not-an-object": "[]"}[breakage])
        _touch(path, 1)
    for _ in range(3):
        assert_401(triage(client, sign(keys["RS384"])), says="signing key")
    assert len(jwks_warnings(caplog)) == 1, caplog.text  # once, not per request
    path.write_text(json.dumps(jwks(keys["RS384"])))
    _touch(path, 2)
    assert triage(client, sign(keys["RS384"])).status_code == 200
    assert len(jwks_warnings(caplog)) == 1


def test_a_jwks_url_answering_an_empty_set_trusts_no_key_until_valid_again(jwks_server, keys, caplog,
                                                                           monkeypatch, auth_app):
    monkeypatch.setattr(keys_module, "JWKS_URL_CACHE_SECONDS", -1)  # refetch on every request
    client = auth_app({"auth_jwks_url": jwks_server.url}).test_client()
    assert triage(client, sign(keys["RS384"])).status_code == 200
    caplog.set_level("INFO", logger="service.keys")
    jwks_server.document = {"keys": []}
    for _ in range(3):
        assert_401(triage(client, sign(keys["RS384"])), says="signing key")
    jwks_server.document = {"no": "keys"}
    assert_401(triage(client, sign(keys["RS384"])), says="signing key")
    assert len(jwks_warnings(caplog)) == 1, caplog.text
    assert jwks_server.hits >= 5
    jwks_server.document = jwks(keys["RS384"])
    assert triage(client, sign(keys["RS384"])).status_code == 200
    # An outage is not a revocation: the last good keys keep serving.
    jwks_server.up = False
    assert triage(client, sign(keys["RS384"])).status_code == 200
