"""No patient data in the logs (issue #6, item 4).

Every request below carries one distinctive marker in the places patient data travels: the subject
(reference, display, identifier), answers (an unknown linkId with a free-text answer, an unknown
code), the id, the query string, a header, and the bearer token's claims. The requests cover success
and every error path of the bad-input suite, plus an unhandled exception whose message quotes the
patient. The marker must appear nowhere in what the service logs:

* in-process at debug level, through the production JSON formatter (app, errors, auth, flask-cors
  and werkzeug loggers) and whatever reaches stdout/stderr;
* under a real gunicorn at debug level (gunicorn's error log, the app's lines; gunicorn's access
  log is off), with auth on, reading everything the server wrote.

A positive control shows each capture does see what is logged: a request with a control string as
its method must show up as its request line (method OTHER: an unknown method is never logged as
sent, so the control string itself must not); under the werkzeug development server, whose own
request lines carry the path, it is sent as the path.
"""
from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

from service import logs
from tests.support.servers import gunicorn
from tests.support import ANSWERS_SYSTEM, FHIR_JSON, TRIAGE, example
from tests.e2e.test_incoming import CASES

ISSUER, AUDIENCE = "https://ehr.example.org", "https://legtriage.example.org"


def marked_qr(mark: str) -> dict:
    qr = example("qr-emergency-stroke")
    qr["id"] = f"{mark}-id"
    qr["subject"] = {"reference": f"Patient/{mark}", "display": f"{mark} Doe",
                     "identifier": {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": f"{mark}-mrn"}}
    qr["item"].append({"linkId": f"{mark}-link", "text": f"{mark} free text",
                       "answer": [{"valueString": f"{mark}-answer"}]})
    return qr


def marked_requests(mark: str) -> list[tuple[str, str, bytes, dict]]:
    """(method, path, body, headers): a success, then every bad-input case with the marker in it."""
    good = marked_qr(mark)
    headers = {"Content-Type": FHIR_JSON, "X-Patient-Note": f"{mark}-header"}
    query = f"note={mark}-query"
    # $triage refuses unknown query parameters (400, issue #11): the success uses the ones it knows,
    # and the marker's query parameter goes to the next request.
    out = [("POST", f"{TRIAGE}?_format=json&rules-version=1.0.0", json.dumps(good).encode(), headers),
           ("POST", f"{TRIAGE}?{query}", json.dumps(good).encode(), headers)]
    for case in CASES:
        data = (case.data().replace(b"Patient/example-1", f"Patient/{mark}".encode())
                .replace(b"Patient/test-1", f"Patient/{mark}".encode()))
        sep = "&" if "?" in case.path else "?"
        out.append((case.method, f"{case.path}{sep}{query}", data,
                    {**case.all_headers(), "X-Patient-Note": f"{mark}-header"}))
    # Error paths that quote the input back to the caller (never to the log).
    unknown_code = marked_qr(mark)
    unknown_code["item"][0]["item"][0]["answer"] = [
        {"valueCoding": {"system": ANSWERS_SYSTEM, "code": f"{mark}-code"}}]
    out += [
        ("POST", TRIAGE, json.dumps(unknown_code).encode(), headers),
        ("POST", TRIAGE, json.dumps({**good, "questionnaire": f"http://x.org/{mark}"}).encode(), headers),
        ("POST", TRIAGE, json.dumps({**good, "resourceType": f"{mark}-type"}).encode(), headers),
        ("POST", TRIAGE, json.dumps({**good, "status": f"{mark}-status"}).encode(), headers),
        ("POST", TRIAGE, json.dumps({**good, "authored": f"{mark}-date"}).encode(), headers),
        ("POST", f"{TRIAGE}?rules-version={mark}", json.dumps(good).encode(), headers),
        ("POST", TRIAGE, json.dumps({"resourceType": "Parameters", "parameter": [
            {"name": "questionnaireResponse", "resource": good},
            {"name": "rulesVersion", "valueString": mark}]}).encode(), headers),
        ("POST", TRIAGE, b'{"subject": {"reference": "Patient/' + mark.encode() + b'"', headers),
        ("POST", TRIAGE, f'{{"subject": "{mark}\xff"}}'.encode("latin-1"), headers),
        ("POST", TRIAGE, json.dumps({**good, "text": "x" * 1_100_000}).encode(), headers),
        ("POST", TRIAGE, json.dumps(good).encode(), {**headers, "Content-Type": "text/plain"}),
        ("GET", f"/fhir/Questionnaire?url={mark}", b"", {"X-Patient-Note": mark}),
    ]
    return out


def new_mark() -> str:
    return f"PHI{uuid.uuid4().hex}"


def new_control_method() -> str:
    """A method no route answers (405), logged as OTHER; gunicorn takes 3-20 of A-Z and 0-9."""
    return f"CTL{uuid.uuid4().hex[:16].upper()}"


# ---- in-process -----------------------------------------------------------------------------------

@pytest.fixture()
def json_log():
    """Everything logged anywhere, formatted as production formats it (service.logs.JsonFormatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # Loggers that do not propagate write to stdout themselves (capsys sees those).
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def all_output(json_log, capsys) -> str:
    captured = capsys.readouterr()
    return json_log.getvalue() + captured.out + captured.err


def test_no_marker_in_logs_on_success_and_every_error_path(json_log, capsys, make_app):
    app = make_app(log_level="debug", cors_origins="https://cds.example.org")
    client = app.test_client()
    mark, control = new_mark(), new_control_method()
    statuses = []
    for method, path, body, headers in marked_requests(mark):
        statuses.append(client.open(path, method=method, data=body,
                                    headers={**headers, "Origin": "https://cds.example.org"}).status_code)
    client.open("/fhir/metadata", method=control)
    output = all_output(json_log, capsys)
    assert statuses[0] == 200 and set(statuses[1:]) >= {400, 404, 405, 406, 413, 415, 422}
    assert '"message": "OTHER <unmatched> 405"' in output  # the capture sees what is logged
    assert control not in output
    assert output.count('"event": "request"') >= len(statuses)
    assert mark not in output


def test_no_marker_in_logs_when_the_service_fails_unexpectedly(json_log, capsys, monkeypatch, make_app):
    """An exception whose message quotes the patient: the caller gets a 500, the log the type only."""
    from service import pipeline as fhir  # the triage core the view calls

    app = make_app(log_level="debug")
    client = app.test_client()
    mark = new_mark()

    def explode(module, facts):
        raise RuntimeError(f"cannot triage Patient/{mark}: {facts!r}")

    monkeypatch.setattr(fhir, "evaluate", explode)
    resp = client.post(TRIAGE, data=json.dumps(marked_qr(mark)), content_type=FHIR_JSON)
    assert resp.status_code == 500
    assert mark not in resp.get_data(as_text=True)  # nor in the answer to the caller
    assert resp.get_json(force=True)["issue"][0]["code"] == "exception"

    monkeypatch.setattr(fhir, "evaluate", lambda module, facts: {}[f"Patient/{mark}"])  # KeyError
    assert client.post(TRIAGE, data=json.dumps(marked_qr(mark)), content_type=FHIR_JSON).status_code == 500

    output = all_output(json_log, capsys)
    assert "unhandled RuntimeError" in output and "unhandled KeyError" in output
    assert "in explode" in output  # the frames are there, for the operator
    assert mark not in output


def test_no_marker_in_the_werkzeug_development_server_log(json_log, capsys, make_app):
    """`flask run` logs request lines itself (with the query string): they must be redacted too."""
    app = make_app(log_level="debug")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    mark, control = new_mark(), f"control{uuid.uuid4().hex}"
    try:
        with requests.Session() as session:
            for method, path, body, headers in marked_requests(mark)[:12]:
                session.request(method, base + path, data=body, headers=headers, timeout=30)
            session.get(f"{base}/fhir/{control}", timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    output = all_output(json_log, capsys)
    assert control in output and "werkzeug" in output
    assert mark not in output


# ---- a real gunicorn, auth on -------------------------------------------------------------------

@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key, mark: str, **over) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"{mark}-sub", "patient": f"{mark}-patient",
              "exp": now + 120, "iat": now, "jti": f"{mark}-{uuid.uuid4().hex}", **over}
    return jwt.encode(claims, key, algorithm="RS384", headers={"kid": "k1"})


def test_no_marker_in_gunicorn_logs_at_debug_with_auth_on(tmp_path, signing_key):
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    env = {"LEGTRIAGE_LOG_LEVEL": "debug", "LEGTRIAGE_AUTH_ENABLED": "true", "LEGTRIAGE_CDS_AUTH_ENABLED": "false",
           "LEGTRIAGE_AUTH_JWKS_FILE": str(jwks_path), "LEGTRIAGE_AUTH_ISSUERS": ISSUER,
           "LEGTRIAGE_AUTH_AUDIENCE": AUDIENCE}
    mark, control = new_mark(), new_control_method()
    with gunicorn(tmp_path / "gunicorn.log", env=env) as server, requests.Session() as session:
        statuses = []
        for method, path, body, headers in marked_requests(mark):
            auth = {"Authorization": f"Bearer {token(signing_key, mark)}"}
            statuses.append(session.request(method, server.base + path, data=body,
                                            headers={**headers, **auth}, timeout=30).status_code)
        # Tokens that fail, each with the marker in its claims or in itself.
        bad_tokens = [token(signing_key, mark, exp=int(time.time()) - 3600),
                      token(signing_key, mark, aud=f"https://{mark}.example"),
                      token(signing_key, mark, iss=f"https://{mark}.example"),
                      f"{mark}.not.a-token", f"Basic {mark}"]
        for bad in bad_tokens:
            value = bad if bad.startswith("Basic") else f"Bearer {bad}"
            resp = session.post(server.base + TRIAGE, data=json.dumps(marked_qr(mark)),
                                headers={"Content-Type": FHIR_JSON, "Authorization": value}, timeout=30)
            statuses.append(resp.status_code)
        session.request(control, f"{server.base}/fhir/metadata",
                        headers={"Authorization": f"Bearer {token(signing_key, mark)}"}, timeout=30)
        time.sleep(0.5)  # let the workers flush their last lines
        output = server.log()
    assert statuses[0] == 200, statuses
    assert statuses[-len(bad_tokens):] == [401] * len(bad_tokens)
    assert '"message": "OTHER <unmatched> 405"' in output  # the capture sees what is logged
    assert control not in output
    assert '"logger": "gunicorn.error"' in output and '"level": "debug"' in output
    assert output.count('"event": "request"') >= len(statuses)
    leaked = [line for line in output.splitlines() if mark in line]
    assert not leaked, "\n".join(leaked[:5])
