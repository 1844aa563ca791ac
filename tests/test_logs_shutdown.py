"""JSON-lines request logs, and a graceful SIGTERM under real gunicorn (issue #5, items 5).

* The Flask test client shows the shape of the one JSON line per request, and that the
  QuestionnaireResponse's content, its subject reference and query strings stay out of it.
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
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the service package lives at the repo root
    sys.path.insert(0, str(REPO))

from service import create_app  # noqa: E402
from service import logs  # noqa: E402

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
def client():
    app = create_app()
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
    assert missing["path"] == "/no-such-path" and missing["status"] == 404
    assert "canary-query-value" not in out and "canary-token" not in out


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
    code = ("import logging, logging.config; from service.logs import gunicorn_logconfig_dict; "
            "cfg = gunicorn_logconfig_dict('warning'); "
            "assert cfg['loggers']['gunicorn.error']['level'] == 'WARNING'; "
            "logging.config.dictConfig(cfg); log = logging.getLogger('gunicorn.error'); "
            "log.info('hidden'); log.warning('Error handling request %s', '/x?subject=Patient/canary')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 0, result.stderr
    (entry,) = json_lines(result.stdout)
    assert entry["logger"] == "gunicorn.error" and entry["level"] == "warning"
    assert entry["message"] == "Error handling request /x?[redacted]"
    assert result.stderr == ""


# --------------------------------------------------------------------------- SIGTERM under gunicorn

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if recv_all(s, 5).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not become ready")


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
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")}
    env.update(LEGTRIAGE_HOST="127.0.0.1", LEGTRIAGE_PORT=str(port), LEGTRIAGE_WORKERS="1",
               LEGTRIAGE_LOG_LEVEL="info", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "gunicorn"]
    if (REPO / "gunicorn.conf.py").exists():
        cmd += ["--config", str(REPO / "gunicorn.conf.py")]
    cmd += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--graceful-timeout", "30",
            "service:create_app()"]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fo, stderr=fe)
    try:
        wait_ready(port, proc)
        yield proc, port, out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


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
