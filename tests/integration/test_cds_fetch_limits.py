"""Issue 23, item 8: one trickling allow-listed EHR must not starve the fetches to the others.

Under a real gunicorn (gevent, one worker), 24 hook calls name an EHR that answers at once and then
sends its Bundle one byte every 0.1 s; meanwhile calls naming a healthy EHR get their card. The
2 s budget holds on the socket: every connection to the trickling EHR is cut by the service within
the budget (not read to its end), and at most FETCH_MAX_PER_SERVER are open to it at a time.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from service.cds.answers import FETCH_BUDGET_SECONDS, FETCH_MAX_PER_SERVER
from tests.support.cds import PATIENT_VIEW, FakeEhr, authored, hook_call, searchset
from tests.support.servers import gunicorn
from tests.support import example

TOKEN = "ehr-access-token"
SLOW_CALLS = 24


class TricklingEhr:
    """Answers 200 with a Content-Length at once, then one byte every `drip` seconds; records when
    each connection opened and when the service cut it."""

    def __init__(self, body: bytes, drip: float = 0.1) -> None:
        self.connections: list[dict] = []
        self.lock = threading.Lock()
        trickle = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                record = {"opened": time.monotonic(), "closed": None}
                with trickle.lock:
                    trickle.connections.append(record)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.flush()
                    for i in range(len(body)):
                        time.sleep(drip)
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    pass
                record["closed"] = time.monotonic()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def open_at(self, moment: float) -> int:
        with self.lock:
            return sum(1 for c in self.connections
                       if c["opened"] <= moment and (c["closed"] is None or c["closed"] > moment))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def access(server: str) -> dict:
    return {"fhirServer": server, "fhirAuthorization": {
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
        "subject": "legtriage", "patient": "example-1"}}


def test_a_trickling_ehr_does_not_starve_the_others(tmp_path):
    bundle = searchset(dict(example("qr-urgent-dvt"), authored=authored()))
    for entry in bundle["entry"]:
        entry["resource"]["subject"] = {"reference": "Patient/example-1"}
    slow = TricklingEhr(json.dumps(bundle).encode())  # ~ 4 KB: 400 s at a byte per 0.1 s
    healthy = FakeEhr(bundle=bundle).start()
    env = {"LEGTRIAGE_CDS_FHIR_SERVERS": f"{slow.base},{healthy.base}", "LEGTRIAGE_LOG_LEVEL": "warning"}
    try:
        with gunicorn(tmp_path / "gunicorn.log", env=env, workers=1) as server:
            url = server.base + PATIENT_VIEW

            def call(fhir_server: str) -> tuple[int, float, str]:
                started = time.monotonic()
                resp = requests.post(url, json=hook_call(None, "example-1", **access(fhir_server)), timeout=30)
                return resp.status_code, time.monotonic() - started, resp.text

            with ThreadPoolExecutor(SLOW_CALLS) as pool:
                slow_calls = [pool.submit(call, slow.base) for _ in range(SLOW_CALLS)]
                time.sleep(0.5)  # the trickling fetches are under way
                busy_at = time.monotonic()
                healthy_calls = [call(healthy.base) for _ in range(3)]
                slow_results = [f.result() for f in slow_calls]
            time.sleep(0.5)
    finally:
        slow.stop()
        healthy.stop()

    for status, elapsed, text in healthy_calls:
        assert status == 200 and json.loads(text)["cards"], text[:300]
        assert elapsed < 1.0, elapsed
    assert len(healthy.seen) == 3
    assert all(status == 412 for status, _, _ in slow_results), [r[0] for r in slow_results]
    assert max(elapsed for _, elapsed, _ in slow_results) < FETCH_BUDGET_SECONDS + 1.0
    assert any("already waiting on the EHR's FHIR server" in text for _, _, text in slow_results)
    # The budget is enforced on the socket: each connection is cut near 2 s, none read to its end.
    assert 1 <= len(slow.connections) <= SLOW_CALLS
    assert slow.open_at(busy_at) <= FETCH_MAX_PER_SERVER
    for c in slow.connections:
        assert c["closed"] is not None and c["closed"] - c["opened"] < FETCH_BUDGET_SECONDS + 0.6, c
    assert TOKEN not in "".join(text for _, _, text in slow_results)


def test_the_deadline_holds_on_the_socket_in_a_thread_too():
    """service/fetching.py outside gevent (tests, a sync worker): a trickle is cut at the deadline."""
    from service import fetching

    slow = TricklingEhr(b"x" * 1000, drip=0.05)
    try:
        started = time.monotonic()
        try:
            fetching.get(slow.base + "/jwks.json", {}, 1.0, 1_048_576)
        except fetching.Refused as err:
            assert "in time" in str(err)
        else:
            raise AssertionError("a trickle of 50 s was read to its end")
        assert time.monotonic() - started < 1.5
        time.sleep(0.3)
        (connection,) = slow.connections
        assert connection["closed"] is not None and connection["closed"] - connection["opened"] < 1.5
    finally:
        slow.stop()
