"""A test EHR on 127.0.0.1: a test-double SMART App Launch 2.x authorization server in front of a
real FHIR engine (Medplum's, tests/support/fhir_server.py).

The authorization server checks what a real EHR checks (the launch id, the client id, the redirect
URI, `aud` = its FHIR base, PKCE with S256 only, the code used once, the verifier matching the
challenge), hands back the app's `state` unchanged (or altered, to test that the app refuses it) and
issues an RS256 JWT access token. Its FHIR endpoint checks that token and passes the request on to
Medplum's engine, which holds the Patient, validates and applies every transaction (recorded here
too) and answers it. Cross-origin, like a real EHR: it answers CORS for the app's origin.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server

from tests.support import fhir_server
from tests.support.servers import free_port

CLIENT_ID = "legtriage-test-app"
LAUNCH_ID = "launch-7f3a"
PATIENT = {"resourceType": "Patient", "id": "pat-1001", "gender": "female", "birthDate": "1957-03-14",
           "name": [{"given": ["Ada"], "family": "Lovelace"}]}


@dataclass
class Ehr:
    base: str
    public_jwk: dict
    authorize_requests: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)
    transactions: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the EHR refused, and why
    fhir_requests: list[str] = field(default_factory=list)
    engine: Any = None  # the FHIR server behind the EHR: tests/support/fhir_server.py FhirServer
    responses: list[dict] = field(default_factory=list)  # the engine's transaction-responses
    tamper_state: bool = False
    need_patient_banner: bool = True  # False: the EHR shows its own banner around the app

    @property
    def fhir_base(self) -> str:
        return self.base + "/fhir"

    @property
    def issuer(self) -> str:
        return self.fhir_base


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def make_app(ehr: Ehr, key, token_audience: list[str]) -> Flask:
    app = Flask("test-ehr")
    codes: dict[str, dict] = {}
    tokens: set[str] = set()

    def refuse(why: str, status: int = 400):
        ehr.problems.append(why)
        return jsonify(error="invalid_request", error_description=why), status

    @app.after_request
    def cors(response):
        origin = request.headers.get("Origin")
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Accept"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Vary"] = "Origin"
        return response

    @app.before_request
    def preflight():
        if request.method == "OPTIONS":
            return app.response_class(status=204)

    @app.get("/fhir/.well-known/smart-configuration")
    def smart_configuration():
        return jsonify({
            "issuer": ehr.issuer,
            "authorization_endpoint": ehr.base + "/auth/authorize",
            "token_endpoint": ehr.base + "/auth/token",
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["launch", "openid", "fhirUser", "patient/*.cruds"],
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "permission-v2",
                             "context-banner"],
        })

    @app.get("/auth/authorize")
    def authorize():
        q = request.args.to_dict()
        ehr.authorize_requests.append(q)
        checks = [
            (q.get("response_type") == "code", "response_type must be code"),
            (q.get("client_id") == CLIENT_ID, "unknown client_id"),
            (q.get("launch") == LAUNCH_ID, "launch id does not match the EHR's launch"),
            (q.get("aud") == ehr.fhir_base, "aud must be the EHR's FHIR base"),
            (q.get("code_challenge_method") == "S256", "PKCE S256 is required"),
            (len(q.get("code_challenge", "")) >= 43, "code_challenge missing"),
            (len(q.get("state", "")) >= 16, "state missing or too short"),
            (bool(q.get("redirect_uri", "").startswith("http://127.0.0.1:")), "redirect_uri not registered"),
            ("launch" in q.get("scope", "").split(), "scope lacks launch"),
        ]
        for ok, why in checks:
            if not ok:
                return refuse(why)
        code = secrets.token_urlsafe(24)
        codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                       "scope": q["scope"]}
        state = q["state"] + "-altered" if ehr.tamper_state else q["state"]
        return redirect(q["redirect_uri"].split("?")[0] + "?" + urlencode({"code": code, "state": state}))

    @app.post("/auth/token")
    def token():
        form = request.form.to_dict()
        ehr.token_requests.append({k: v for k, v in form.items()})
        grant = codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return refuse("unknown or reused authorization code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return refuse("redirect_uri differs from the authorization request")
        if form.get("client_id") != CLIENT_ID:
            return refuse("unknown client_id")
        if s256(form.get("code_verifier", "")) != grant["challenge"]:
            return refuse("code_verifier does not match the S256 code_challenge")
        now = int(time.time())
        access = jwt.encode({"iss": ehr.issuer, "sub": "dr-1", "aud": token_audience, "iat": now,
                             "exp": now + 600, "scope": grant["scope"], "patient": PATIENT["id"],
                             "jti": secrets.token_hex(8)},
                            key, algorithm="RS256", headers={"kid": "ehr-1"})
        tokens.add(access)
        return jsonify(access_token=access, token_type="Bearer", expires_in=600, scope=grant["scope"],
                       patient=PATIENT["id"], need_patient_banner=ehr.need_patient_banner)

    def authorized() -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and value in tokens

    @app.get("/fhir/Patient/<pid>")
    def read_patient(pid: str):
        ehr.fhir_requests.append(f"GET Patient/{pid}")
        if not authorized():
            return refuse("no valid access token", 401)
        status, body = ehr.engine.request("GET", f"Patient/{pid}")
        return app.response_class(json.dumps(body), status=status, mimetype="application/fhir+json")

    @app.post("/fhir/")
    @app.post("/fhir")
    def transaction():
        ehr.fhir_requests.append("POST /")
        if not authorized():
            return refuse("no valid access token", 401)
        body: Any = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or body.get("type") != "transaction":
            return refuse("a transaction Bundle is expected")
        ehr.transactions.append(body)
        status, answer = ehr.engine.post_bundle(body)
        if status == 200:
            ehr.responses.append(answer)
        else:
            ehr.problems.append(f"the FHIR engine refused the transaction ({status}): {json.dumps(answer)[:500]}")
        return app.response_class(json.dumps(answer), status=status, mimetype="application/fhir+json")

    return app


class RunningEhr:
    """The EHR's Flask app in a thread on a free loopback port; stop() shuts it down."""

    def __init__(self, token_audience: list[str] | None = None, extra_audience: tuple[str, ...] = ()):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        port = free_port()
        self.ehr = Ehr(f"http://127.0.0.1:{port}", {**public, "kid": "ehr-1", "use": "sig", "alg": "RS256"})
        self.engine = self.ehr.engine = fhir_server.start()
        status, _ = self.engine.request("PUT", f"Patient/{PATIENT['id']}", PATIENT)
        assert status in (200, 201), f"the FHIR engine did not take the Patient ({status})"
        # A real authorization server names the resource servers a token is for: its FHIR base, and
        # the other services registered for this client (extra_audience; RFC 8707 resource indicators).
        audience = [*(token_audience or [self.ehr.fhir_base]), *extra_audience]
        self.server = make_server("127.0.0.1", port, make_app(self.ehr, key, audience), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.engine.stop()
