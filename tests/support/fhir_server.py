"""The hospital's FHIR server in the tests: Medplum's FHIR engine (tests/support/fhir-server/server.mjs).

A real FHIR engine, not a stand-in written for the tests: @medplum/fhir-router over its in-memory
repository, every resource validated against the R4 definitions by @medplum/core, searches,
and batch/transaction Bundles with urn:uuid references rewritten and conditional creates
(ifNoneExist). Pinned by tests/support/fhir-server/package-lock.json; scripts/lib/test-tools.sh installs it
into .cache/fhir-server. Runs on 127.0.0.1 on a port the system picks, serving FHIR under /fhir.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "support" / "fhir-server" / "server.mjs"
MODULES = ROOT / ".cache" / "fhir-server" / "node_modules"
FHIR_JSON = "application/fhir+json"


@dataclass
class FhirServer:
    proc: subprocess.Popen
    port: int
    output: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
        """(status, JSON answer) of one request; `path` is relative to the FHIR base."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}/{path.lstrip('/')}", data=data, method=method,
                                     headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON,
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def post_bundle(self, bundle: dict) -> tuple[int, dict]:
        return self.request("POST", "", bundle)

    def search(self, query: str) -> dict:
        status, bundle = self.request("GET", query)
        assert status == 200, (query, bundle)
        return bundle

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()


def start() -> FhirServer:
    """Start the server and wait until it listens (loading the R4 definitions takes seconds)."""
    node = shutil.which("node")
    if node is None or not (MODULES / "@medplum" / "fhir-router").is_dir():
        raise RuntimeError(f"Medplum's FHIR engine is not installed ({MODULES}, node "
                           f"{node or 'missing'}): run scripts/lib/test-tools.sh")
    # --experimental-websocket: @medplum/core expects a global WebSocket, which Node 20 only has
    # behind this flag (Node 22 has it by default).
    proc = subprocess.Popen([node, "--experimental-websocket", str(SERVER), str(MODULES)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    port: list[int] = []
    ready = threading.Event()

    def read() -> None:  # keeps draining the pipe so the server never blocks on a full one
        for line in proc.stdout:
            output.append(line)
            if line.startswith("listening ") and not port:
                port.append(int(line.split()[1]))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60) or not port:
        proc.kill()
        raise RuntimeError("Medplum's FHIR engine did not start:\n" + "".join(output)[-3000:])
    return FhirServer(proc, port[0], output)
