"""Response headers (issue #6, item 6): nosniff everywhere, no server banner, CORS only when allowed."""
from __future__ import annotations

import json
import re

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.servers import gunicorn
from tests.support import FHIR_JSON, TRIAGE, example, post_triage

GOOD = example("qr-emergency-stroke")
ORIGIN = "https://cds-sandbox.example.org"
# (method, path, body): a success, each kind of error, and the non-FHIR endpoints.
REQUESTS = [
    ("POST", TRIAGE, GOOD),
    ("POST", TRIAGE, b"{"),
    ("POST", TRIAGE, {"resourceType": "Patient"}),
    ("GET", TRIAGE, None),
    ("GET", "/fhir/metadata", None),
    ("GET", "/fhir/nothing-here", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/docs/", None),
    ("GET", "/", None),
]


def send(client, method, path, body, **headers):
    if method == "POST":
        return post_triage(client, body, **headers) if path == TRIAGE else client.post(path, **headers)
    return client.open(path, method=method, headers=headers)


@pytest.mark.parametrize("method,path,body", REQUESTS)
def test_every_response_says_nosniff(client, method, path, body):
    resp = send(client, method, path, body)
    assert resp.headers["X-Content-Type-Options"] == "nosniff", (path, resp.status_code)


# ---- the server banner, under the real server ----------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn(tmp_path_factory.mktemp("headers") / "out.log", workers=1) as srv:
        yield srv


@pytest.mark.parametrize("method,path,body", REQUESTS)
def test_no_server_banner_names_the_software_or_its_version(server, method, path, body):
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
    resp = requests.request(method, server.base + path, data=data, timeout=10, allow_redirects=False,
                            headers={"Content-Type": FHIR_JSON} if data else {})
    banner = resp.headers.get("Server", "")
    assert not re.search(r"gunicorn|werkzeug|python|flask|\d", banner, re.IGNORECASE), banner
    assert "X-Powered-By" not in resp.headers
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


# ---- CORS ------------------------------------------------------------------------------------------

def preflight(client, origin=ORIGIN, path=TRIAGE):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_cors_is_off_by_default(client):
    resp = post_triage(client, GOOD, Origin=ORIGIN)
    assert resp.status_code == 200
    assert not [h for h in resp.headers.keys() if h.lower().startswith("access-control-")]
    resp = preflight(client)
    assert not [h for h in resp.headers.keys() if h.lower().startswith("access-control-")]


@pytest.fixture(scope="module")
def cors_client(make_app):
    return make_app(cors_origins=f"{ORIGIN}, http://localhost:3000").test_client()


def test_an_allowed_origin_may_read_responses(cors_client):
    resp = post_triage(cors_client, GOOD, Origin=ORIGIN)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in resp.headers.get("Vary", "")
    assert "Access-Control-Allow-Credentials" not in resp.headers  # bearer tokens, not cookies


def test_an_allowed_origin_may_read_error_responses(cors_client):
    resp = post_triage(cors_client, b"{", Origin="http://localhost:3000")
    assert resp.status_code == 400
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_another_origin_gets_no_cors_headers(cors_client):
    for origin in ("https://evil.example.org", "https://cds-sandbox.example.org.evil.example",
                   "http://cds-sandbox.example.org", "null"):
        resp = post_triage(cors_client, GOOD, Origin=origin)
        assert "Access-Control-Allow-Origin" not in resp.headers, origin
        assert "Access-Control-Allow-Origin" not in preflight(cors_client, origin).headers, origin


def test_a_preflight_allows_the_bearer_token_and_fhir_json(cors_client):
    resp = preflight(cors_client)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed


def test_a_wildcard_allows_any_origin(make_app):
    client = make_app(cors_origins="*").test_client()
    resp = post_triage(client, GOOD, Origin="https://anywhere.example")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_with_auth_on_a_preflight_needs_no_token_and_a_401_is_readable(tmp_path, make_app):
    path = tmp_path / "jwks.json"
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    path.write_text(json.dumps({"keys": [jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)]}))
    client = make_app(auth_enabled=True, auth_jwks_file=path, auth_issuers="https://ehr",
                      cds_auth_enabled=False, auth_audience="https://legtriage",
                      cors_origins=ORIGIN).test_client()
    resp = preflight(client)
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    resp = post_triage(client, GOOD, Origin=ORIGIN)
    assert resp.status_code == 401
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "WWW-Authenticate" in resp.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("value", ["https://a.example/path", "ftp://a.example", "a.example",
                                   "https://user@a.example"])
def test_a_malformed_origin_setting_stops_the_start(value, make_app):
    from service.config import ConfigError
    with pytest.raises(ConfigError, match="LEGTRIAGE_CORS_ORIGINS"):
        make_app(cors_origins=value)
