"""Slow clients against a running service: do normal requests still get answers while they hang on?

Opens `count` TCP connections to the server that stay open without finishing a request, in three
kinds (round robin): idle (nothing sent), partial headers (a request line and one header, never the
blank line), and a slow body (complete headers announcing 1,000 bytes, then a trickle of one byte
per second). While they are held, it times a fresh GET /healthz and POST $triage. Used by
tests/integration/test_slow_clients.py (bounded: 200 connections, a 5 s client timeout) and by hand:

    .venv/bin/python bench/slow_clients.py http://127.0.0.1:8080 [--count 200] [--timeout 40]

Figures before and after the worker change: docs/performance.md ("Slow clients").
"""
from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
KINDS = ("idle", "partial-headers", "slow-body")


@dataclass
class Timing:
    what: str
    status: int | None  # None: no answer within the timeout
    seconds: float


def _address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _start(kind: str, address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    if kind == "partial-headers":
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    elif kind == "slow-body":
        sock.sendall(f"POST {TRIAGE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{".encode())
    return sock


@contextmanager
def held(base: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections of the three kinds, held open (slow bodies trickling) until the block ends."""
    address = _address(base)
    socks = [_start(KINDS[i % len(KINDS)], address) for i in range(count)]
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for i, sock in enumerate(socks):
                if KINDS[i % len(KINDS)] == "slow-body":
                    try:
                        sock.send(b" ")
                    except OSError:
                        pass  # the server gave up on it: that is its right

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield socks
    finally:
        stop.set()
        thread.join()
        for sock in socks:
            sock.close()


def request(base: str, method: str, path: str, body: bytes | None, timeout: float) -> Timing:
    """One request on a fresh connection; the status (None on timeout or reset) and the seconds taken."""
    address = _address(base)
    head = f"{method} {path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n"
    start = time.monotonic()
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.settimeout(max(0.001, timeout - (time.monotonic() - start)))
            sock.sendall(head.encode() + b"\r\n" + (body or b""))
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    except OSError:
        status = None
    return Timing(f"{method} {path}", status, time.monotonic() - start)


def probe(base: str, count: int = 200, timeout: float = 5.0) -> list[Timing]:
    """Time /healthz and $triage while `count` slow connections are held (after letting them settle)."""
    body = (ROOT / "examples" / "qr-emergency-stroke.json").read_bytes()
    with held(base, count):
        time.sleep(0.5)  # let the server accept them (and, with sync workers, get stuck on them)
        return [request(base, "GET", "/healthz", None, timeout),
                request(base, "POST", TRIAGE, body, timeout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the service, e.g. http://127.0.0.1:8080")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=40.0)
    args = parser.parse_args()
    for t in probe(args.base, args.count, args.timeout):
        print(json.dumps({"request": t.what, "status": t.status, "seconds": round(t.seconds, 3),
                          "slow_connections": args.count}))


if __name__ == "__main__":
    main()
