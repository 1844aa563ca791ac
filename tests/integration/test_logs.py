"""JSON-lines request logs, and a graceful SIGTERM under real gunicorn (issue #5, items 5).

* The Flask test client shows the shape of the one JSON line per request, and that the
  QuestionnaireResponse's content, its subject reference, ids in the URL and query strings stay
  out of it (the route pattern is logged, not the path).
* gunicorn's own lines: no access line, and its warnings about bad requests carry neither the
  client address nor what the client sent (a real gunicorn, fed a malformed request line).
* A real gunicorn on 127.0.0.1 receives SIGTERM while a $triage request is in flight (its body
  is sent slowly over a raw socket); the request still gets its 200 Bundle, gunicorn exits 0,
  and everything it wrote to stdout is JSON lines.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from service import logs
from tests.support import ROOT as REPO

EXAMPLE = REPO / "examples" / "qr-emergency-stroke.json"
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
FHIR_JSON = "application/fhir+json"
REQUEST_KEYS = {"time", "level", "logger", "message", "event", "method", "path", "status",
                "duration_ms", "rules_version", "disposition"}


def canary_qr() -> tuple[bytes, str]:
    """The stroke example with a unique subject reference that must never reach a log."""
    qr = json.loads(EXAMPLE.read_text())
    marker = f"Patient/canary-{uuid.uuid4().hex}"
    qr["subject"] = {"reference": marker}
    return json.dumps(qr).encode(), marker


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- JSON line shape

@pytest.fixture()
def client(make_app):
    app = make_app()
    logs.init_app(app)  # idempotent: the app factory may have called it already
    return app.test_client()


def test_one_json_line_per_request_with_the_triage_outcome(client, capsys):
    body, marker = canary_qr()
    capsys.readouterr()
    resp = client.post(f"{TRIAGE}?rules-version=1.0.0", data=body, content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    out = capsys.readouterr().out
    lines = json_lines(out)
    access = [e for e in lines if e.get("event") == "request"]
    assert len(access) == 1, out
    line = access[0]
    assert REQUEST_KEYS <= set(line), line
    assert line["logger"] == logs.ACCESS_LOGGER and line["level"] == "info"
    assert line["method"] == "POST"
    assert line["path"] == TRIAGE  # no query string
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert line["rules_version"] == "1.0.0"
    assert line["disposition"] == "emergency"
    assert line["time"].endswith("Z")
    assert marker not in out and "rules-version" not in out
    assert "QuestionnaireResponse\"" not in out and "linkId" not in out


def test_other_requests_log_null_outcome_and_no_query_or_headers(client, capsys):
    capsys.readouterr()
    client.get("/healthz")
    client.get("/no-such-path?name=canary-query-value",
               headers={"Authorization": "Bearer canary-token"})
    out = capsys.readouterr().out
    health, missing = [e for e in json_lines(out) if e.get("event") == "request"]
    assert health["path"] == "/healthz" and health["status"] == 200
    assert health["rules_version"] is None and health["disposition"] is None
    assert missing["path"] == logs.UNMATCHED and missing["status"] == 404
    assert missing["message"] == "GET <unmatched> 404"
    assert "canary-query-value" not in out and "canary-token" not in out and "no-such-path" not in out


def test_the_route_pattern_is_logged_not_the_ids_in_the_path(client, capsys):
    capsys.readouterr()
    assert client.get("/fhir/Library/canary-library-id").status_code == 404      # a route, unknown id
    assert client.get("/fhir/Patient/canary-patient-id").status_code == 404      # no route
    assert client.delete("/fhir/Questionnaire/canary-q-id").status_code == 405  # no route for DELETE
    assert client.get("/fhir/Questionnaire/leg-numbness/").status_code == 200  # trailing slash too
    out = capsys.readouterr().out
    lines = [e for e in json_lines(out) if e.get("event") == "request"]
    assert [(e["method"], e["path"], e["status"]) for e in lines[:3]] == [
        ("GET", "/fhir/Library/<id>", 404), ("GET", "<unmatched>", 404), ("DELETE", "<unmatched>", 405)]
    assert lines[3]["path"] == "/fhir/Questionnaire/<id>"
    assert lines[0]["message"] == "GET /fhir/Library/<id> 404"
    assert "canary" not in out and "leg-numbness" not in out


def test_rejected_triage_is_logged_without_its_body(client, capsys):
    body, marker = canary_qr()
    capsys.readouterr()
    resp = client.post(TRIAGE, data=body[:-5], content_type=FHIR_JSON)  # broken JSON
    assert resp.status_code == 400
    out = capsys.readouterr().out
    (line,) = [e for e in json_lines(out) if e.get("event") == "request"]
    assert line["status"] == 400 and line["disposition"] is None
    assert marker not in out


def test_formatter_keeps_exception_messages_and_query_strings_out():
    try:
        raise ValueError("Patient/canary-in-exception")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "Error handling request %s",
            ("/fhir/QuestionnaireResponse/$triage?subject=Patient/canary-q",), sys.exc_info())
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["message"] == "Error handling request /fhir/QuestionnaireResponse/$triage?[redacted]"
    assert entry["exc_type"] == "builtins.ValueError"
    assert entry["exc_frames"] and "canary" not in json.dumps(entry)


def test_gunicorn_logconfig_dict_is_valid_and_json():
    # In a child process: dictConfig changes the root logger for the whole interpreter.
    code = """if True:
        import logging, logging.config
        from service.logs import gunicorn_logconfig_dict
        cfg = gunicorn_logconfig_dict('warning')
        assert cfg['loggers']['gunicorn.error']['level'] == 'WARNING'
        logging.config.dictConfig(cfg)
        log = logging.getLogger('gunicorn.error')
        log.info('hidden')
        log.warning('Worker reloading: %s modified', '/x?subject=Patient/canary')
        log.warning("Invalid request from ip=10.9.8.7: Invalid HTTP request line: 'GET /canary1'")
        log.warning("Invalid request from ip=::1: Invalid HTTP method: 'canary2'")
        log.warning("Invalid request from ip=10.9.8.7: Proxy request from '10.9.8.7' not allowed")
        log.warning('Unexpected ip=10.9.8.7 in %s', 'a message gunicorn may add one day')
        log.error('Error handling request %s %s', 'GET', '/fhir/Patient/canary3')
        log.error('%s %s', 'GET', '/fhir/Patient/canary4')
        logging.getLogger('gunicorn.access').info('%s', '10.9.8.7 GET /fhir/Patient/canary5')
        logging.getLogger('gunicorn.access').critical('10.9.8.7 GET /fhir/Patient/canary6')
    """
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 0, result.stderr
    entries = json_lines(result.stdout)
    assert {e["logger"] for e in entries} == {"gunicorn.error"}  # no gunicorn.access line at all
    assert [(e["level"], e["message"]) for e in entries] == [
        ("warning", "Worker reloading: /x?[redacted] modified"),
        ("warning", "Invalid request: Invalid HTTP request line"),
        ("warning", "Invalid request: Invalid HTTP method"),
        ("warning", "Invalid request: Proxy request from [redacted] not allowed"),
        ("warning", "Unexpected ip=[redacted] in a message gunicorn may add one day"),
        ("error", "Error handling request"),
        ("error", "Request received"),
    ]
    assert "canary" not in result.stdout and "10.9.8.7" not in result.stdout
    assert result.stderr == ""


# --------------------------------------------------------------------------- SIGTERM under gunicorn

def recv_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture()
def gunicorn_server(tmp_path):
    from tests.support.servers import start

    out, err = tmp_path / "stdout", tmp_path / "stderr"
    server = start(out, env={"LEGTRIAGE_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}, workers=1,
                   args=("--graceful-timeout", "30"), stderr_path=err)
    try:
        yield server.proc, server.port, out, err
    finally:
        server.stop(timeout=10)


def test_sigterm_finishes_the_in_flight_request(gunicorn_server):
    proc, port, out_file, err_file = gunicorn_server
    body, marker = canary_qr()
    head = (f"POST {TRIAGE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {FHIR_JSON}\r\nAccept: {FHIR_JSON}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body[:half])
        time.sleep(0.5)                      # the worker is now reading the body
        proc.send_signal(signal.SIGTERM)     # graceful stop while the request is in flight
        time.sleep(1.0)
        assert proc.poll() is None, "gunicorn exited with a request in flight"
        sock.sendall(body[half:])
        raw = recv_all(sock, 20)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 200"), raw[:300]
    bundle = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert bundle["resourceType"] == "Bundle"
    assert bundle["entry"][0]["resource"]["resourceType"] == "RiskAssessment"

    assert proc.wait(timeout=30) == 0
    out, err = out_file.read_text(), err_file.read_text()
    assert marker not in out and marker not in err
    assert "Handling signal: term" in out + err
    entries = json_lines(out)  # every stdout line is JSON (json.loads raises otherwise)
    assert any(e["logger"] == "gunicorn.error" for e in entries), "gunicorn's own logs are JSON too"
    access = [e for e in entries if e.get("event") == "request" and e.get("path") == TRIAGE]
    assert access and access[-1]["status"] == 200 and access[-1]["disposition"] == "emergency"


# --------------------------------------------------------------------------- gunicorn's own lines

CLIENT_ADDRESS = "127.0.0.2"  # a loopback address of its own, so the server's 127.0.0.1 is not it


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send `data` from CLIENT_ADDRESS as it is (no HTTP client would send a malformed request)."""
    with socket.socket() as sock:
        sock.bind((CLIENT_ADDRESS, 0))
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(data)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # gunicorn answered a bad request and closed before we finished
            pass
        return recv_all(sock, 10)


def test_gunicorn_logs_no_client_address_no_ids_and_no_request_fragments(tmp_path):
    from tests.support.servers import gunicorn

    mark = f"SECRET-ID-{uuid.uuid4().hex}"
    body, subject = canary_qr()
    with gunicorn(tmp_path / "gunicorn.log", env={"LEGTRIAGE_LOG_LEVEL": "debug"}, workers=1) as server:
        port = server.port
        get = "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answers = [
            raw_exchange(port, get.format(f"/fhir/Patient/{mark}").encode()),      # 404, no route
            raw_exchange(port, get.format(f"/fhir/Library/{mark}").encode()),      # 404, a route
            raw_exchange(port, f"GET /fhir/Patient/{mark} {mark} HTTP/1.1\r\n\r\n".encode()),
            raw_exchange(port, f"{mark.lower()} / HTTP/1.1\r\n\r\n".encode()),  # bad method
            raw_exchange(port, f"GET /fhir/Patient/{mark}\r\n\r\n".encode()),   # no version
            raw_exchange(port, f"GET / HTTP/1.1\r\nBad{mark} Name: x\r\n\r\n".encode()),
            raw_exchange(port, f"GET / HTTP/1.1\r\nHost: x\r\nX: {mark}\x01\r\n\r\n".encode()),
            raw_exchange(port, (f"POST {TRIAGE}?note={mark} HTTP/1.1\r\nHost: x\r\n"
                                f"Content-Type: {FHIR_JSON}\r\nContent-Length: {len(body)}\r\n"
                                f"Connection: close\r\n\r\n").encode() + body),
        ]
        time.sleep(0.5)  # let the worker flush its last lines
        output = server.log()
    statuses = [a.split(b" ", 2)[1] for a in answers]
    # the last: $triage refuses the unknown query parameter (issue #11), without logging its value
    assert statuses == [b"404", b"404", b"400", b"400", b"400", b"400", b"400", b"400"], answers
    entries = json_lines(output)  # every line is JSON
    requests_ = [e for e in entries if e.get("event") == "request"]
    # Positive controls: the capture holds the request lines and gunicorn's warnings.
    assert [(e["path"], e["status"]) for e in requests_[-3:]] == [
        ("<unmatched>", 404), ("/fhir/Library/<id>", 404), (TRIAGE, 400)]
    warnings = [e["message"] for e in entries if e["logger"] == "gunicorn.error" and e["level"] == "warning"]
    assert len(warnings) == 5 and all(w.startswith("Invalid request: ") for w in warnings), warnings
    assert any(e["message"] == "Request received" for e in entries)  # gunicorn's debug line, sans path
    # One request line per request: gunicorn writes none of its own.
    assert not [e for e in entries if e["logger"] == "gunicorn.access"]
    leaked = [line for line in output.splitlines()
              if mark in line or mark.lower() in line or subject in line or CLIENT_ADDRESS in line]
    assert not leaked, "\n".join(leaked)
    # 127.0.0.1 is the server's own address (tests/support/servers.py polls /readyz from it): it appears
    # only where gunicorn says where it listens.
    server_lines = [e["message"].split(":")[0] for e in entries if "127.0.0.1" in json.dumps(e)]
    assert set(server_lines) <= {"Listening at", "Current configuration"}, server_lines


# --------------------------------------------------------------------------- issue #11, item 9

@pytest.mark.parametrize("sent, logged", [
    ("GET", "GET"), ("PATCH", "PATCH"), ("CANARYMETHOD", "OTHER"),
    ("G?T", "OTHER"), ("CANARY\u00e9", "OTHER")])
def test_only_known_methods_are_logged_as_sent(client, capsys, sent, logged):
    capsys.readouterr()
    client.open("/fhir/metadata", method=sent)
    out = capsys.readouterr().out
    (line,) = [e for e in json_lines(out) if e.get("event") == "request"]
    assert line["method"] == logged and line["message"].startswith(f"{logged} ")
    if logged == "OTHER":
        assert sent not in out


def test_gunicorn_messages_stay_readable_where_nothing_needs_redacting():
    code = """if True:
        import logging, logging.config
        from service.logs import gunicorn_logconfig_dict
        logging.config.dictConfig(gunicorn_logconfig_dict('info'))
        log = logging.getLogger('gunicorn.error')
        log.error('Worker (pid:%s) was sent SIGKILL! Perhaps out of memory?', 4242)
        log.warning("Invalid request from ip=10.9.8.7: Request Line is too large (8200 > 4094)")
        log.warning("Invalid request from ip=10.9.8.7: Invalid HTTP Version: 'HTTP/9.canary'")
        log.info('Worker reloading: %s modified', '/srv/app.py?canary=1')
        log.info('Booting worker with pid: %s', 4243)
    """
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [e["message"] for e in json_lines(result.stdout)] == [
        "Worker (pid:4242) was sent SIGKILL! Perhaps out of memory?",
        "Invalid request: Request Line is too large (8200 > 4094)",
        "Invalid request: Invalid HTTP Version",
        "Worker reloading: /srv/app.py?[redacted] modified",
        "Booting worker with pid: 4243",
    ]
    assert "canary" not in result.stdout and "10.9.8.7" not in result.stdout
