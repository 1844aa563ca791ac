"""Nothing lost (issue 12, item 5): N successful calls spread over every gunicorn worker leave exactly
N audit records — SQLite with 4 workers and 8 client threads, and two service instances sharing one
PostgreSQL — and when PostgreSQL goes away mid-run no call answers 200 without its record."""
from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from service.records.store import SqlStore
from tests.support.servers import gunicorn
from tests.support import FHIR_JSON, TRIAGE, example

N = 400
BODIES = [json.dumps({**example(name), "subject": {"reference": f"Patient/{name}"}}).encode()
          for name in ("qr-emergency-stroke", "qr-urgent-dvt", "qr-routine-diabetes",
                       "qr-routine-sciatica", "qr-self-care-fell-asleep")]


def fire(bases: list[str], n: int, threads: int = 8) -> Counter:
    """n $triage calls from `threads` threads, round-robin over the servers; statuses counted."""
    local = threading.local()

    def call(i: int) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        try:
            resp = session.post(bases[i % len(bases)] + TRIAGE, data=BODIES[i % len(BODIES)],
                                headers={"Content-Type": FHIR_JSON, "Connection": "close"}, timeout=30)
        except requests.ConnectionError:
            return -1
        if resp.status_code == 503:
            assert resp.headers["Retry-After"] and resp.json()["resourceType"] == "OperationOutcome"
        return resp.status_code

    with ThreadPoolExecutor(threads) as pool:
        return Counter(pool.map(call, range(n)))


def test_sqlite_four_workers_eight_threads_keep_every_record(tmp_path):
    data = tmp_path / "data"
    with gunicorn(tmp_path / "gunicorn.log", {"LEGTRIAGE_DATA_DIR": str(data)}, workers=4) as server:
        statuses = fire([server.base], N)
    assert statuses == Counter({200: N})
    url = f"sqlite:///{data / 'legtriage.sqlite3'}"
    assert count(url) == N
    store = SqlStore(url)
    # each body N/5 times: every record is a distinct call, none doubled, none dropped
    assert sorted(Counter(r.patient for r in _all(store)).values()) == [N // len(BODIES)] * len(BODIES)


def _all(store):
    from service.records.search import AuditQuery
    try:
        return store.search_audits(AuditQuery(count=10 * N))
    finally:
        store.close()


def count(url: str) -> int:
    store = SqlStore(url)
    try:
        return store.count_audits()
    finally:
        store.close()


def test_two_instances_on_one_postgresql_keep_every_record(tmp_path, pg):
    url = pg.new_database()
    env = {"LEGTRIAGE_DATABASE_URL": url}
    with gunicorn(tmp_path / "a.log", env, workers=2) as a, gunicorn(tmp_path / "b.log", env, workers=2) as b:
        statuses = fire([a.base, b.base], N)
    assert statuses == Counter({200: N})
    assert count(url) == N


def test_postgresql_outage_gives_503_and_readyz_says_so_and_no_200_goes_unrecorded(tmp_path, pg):
    url = pg.new_database()
    with gunicorn(tmp_path / "gunicorn.log", {"LEGTRIAGE_DATABASE_URL": url}, workers=2) as server:
        before = fire([server.base], 40, threads=4)
        pg.stop()
        try:
            during = fire([server.base], 40, threads=4)
            ready = requests.get(server.base + "/readyz", timeout=10)
            alive = requests.get(server.base + "/healthz", timeout=10)
        finally:
            pg.start()
        after = fire([server.base], 40, threads=4)
        ready_again = requests.get(server.base + "/readyz", timeout=10)
        log = server.log()
    assert before == Counter({200: 40}) and after == Counter({200: 40})
    assert during == Counter({503: 40}), during  # never a 200 nor a 500 while the store is away
    assert ready.status_code == 503 and ready.json()["status"] == "store-unavailable"
    assert alive.status_code == 200 and ready_again.status_code == 200
    assert count(url) == 80  # exactly the 200s
    assert '"status": 500' not in log
