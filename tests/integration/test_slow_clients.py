"""Slow clients cannot stall the service (issue #11, item 2).

Under a real gunicorn started from the repo's gunicorn.conf.py with the default worker count
(one per CPU, as scripts/serve, the image and compose run it), 200 connections that send nothing,
stop in the middle of their headers, or trickle a body are held open on 127.0.0.1; a normal
/healthz and $triage must still answer, each within 1 s. Bounded: 200 connections, 5 s per request.
"""
from __future__ import annotations

import os

from bench.slow_clients import probe
from tests.support.servers import gunicorn

SLOW_CONNECTIONS = 200


def test_200_slow_connections_do_not_stall_healthz_or_triage(tmp_path):
    workers = os.cpu_count() or 1  # the default of LEGTRIAGE_WORKERS
    with gunicorn(tmp_path / "out.log", workers=workers) as srv:
        timings = probe(srv.base, SLOW_CONNECTIONS, timeout=5.0)
        # and again, after the first batch of slow connections went away
        timings += probe(srv.base, SLOW_CONNECTIONS, timeout=5.0)
        log = srv.log()
    for t in timings:
        assert t.status == 200 and t.seconds < 1.0, (t, log[-2000:])
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]
