"""What the service loads: libraries only some configurations use stay out of a process that does not
use them (issue 21: each module the master imports is in every worker's memory), and are loaded at
start, before gunicorn forks, where the configuration does use them.

Each case builds the app in a fresh interpreter, as gunicorn's master does, and sends it a $triage
and a CDS Hooks call, the request path; then it lists which of the optional modules were imported.
"""
from __future__ import annotations

import json
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import EXAMPLES, ROOT
from tests.support.keys import Key, jwks

# Loaded only with a token check (PyJWT, cryptography), a fetch (requests, urllib3), PostgreSQL, or a
# schema behind HEAD (Alembic runs in a child process).
OPTIONAL = ("jwt", "cryptography", "requests", "urllib3", "service.bearer", "service.keys",
            "service.cds.trust", "service.fetching", "sqlalchemy.dialects.postgresql", "alembic", "mako")

SERVE = """
import json, sys
from service import create_app
config, example, optional = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
client = create_app(config).test_client()
triage = client.post("/fhir/QuestionnaireResponse/$triage", data=open(example, "rb").read(),
                     headers={"Content-Type": "application/fhir+json"})
hook = client.post("/cds-services/leg-numbness-triage", json={
    "hook": "patient-view", "hookInstance": "0b3e3f4e-5f5a-4b7e-9a3f-3c3c3c3c3c3c",
    "context": {"userId": "Practitioner/1", "patientId": "1"}, "prefetch": {"legNumbnessQR": None}})
print(json.dumps({"status": [triage.status_code, hook.status_code],
                  "loaded": sorted(m for m in sys.modules
                                   if any(m == o or m.startswith(o + ".") for o in optional))}))
"""


def serve(config: dict, tmp_path) -> dict:
    config = {"data_dir": str(tmp_path / "data"), **config}
    out = subprocess.run([sys.executable, "-c", SERVE, json.dumps(config),
                          str(EXAMPLES / "qr-routine-diabetes.json"), json.dumps(OPTIONAL)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_default_service_loads_no_token_check_no_http_client_and_no_postgresql(tmp_path):
    result = serve({}, tmp_path)
    assert result["status"] == [200, 200]
    assert result["loaded"] == []


def test_with_auth_on_the_token_check_is_loaded_at_start(tmp_path):
    key = Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-1", "RS384")
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(key)))
    result = serve({"auth_enabled": True, "auth_jwks_file": str(tmp_path / "jwks.json"),
                    "auth_issuers": ["https://ehr.example.org"], "auth_audience": ["https://legtriage.example.org"],
                    "cds_auth_enabled": False}, tmp_path)
    assert result["status"] == [401, 200]  # no token: refused by the check create_app loaded
    assert {"jwt", "cryptography", "service.bearer", "service.keys"} <= set(result["loaded"])
    assert not {"requests", "urllib3", "service.fetching"} & set(result["loaded"])  # a JWKS file: no fetch


# A gunicorn config that is the project's own, plus hooks that write down which modules the master
# had when it forked a worker (after the project's pre_fork) and which the worker has after serving.
LISTING_CONFIG = """
exec(compile(open({conf!r}).read(), {conf!r}, "exec"))
_project_pre_fork = pre_fork


def pre_fork(server, worker):
    import sys
    _project_pre_fork(server, worker)
    with open({master!r}, "w") as out:
        out.write("\\n".join(sorted(sys.modules)))


def post_request(worker, req, environ, resp):
    import os
    import sys
    with open(os.path.join({folder!r}, f"worker-{{os.getpid()}}.txt"), "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
"""


def test_a_gevent_worker_imports_nothing_the_master_did_not_import_before_the_fork(tmp_path):
    """gevent's patching and the first calls load no module of their own in a worker: each module a
    worker loaded after the fork would be that worker's own memory, once per worker, where the
    master's pages are shared (gunicorn.conf.py, _import_what_workers_import)."""
    import requests

    from tests.support.servers import gunicorn

    listed = tmp_path / "listed"
    listed.mkdir()
    config = tmp_path / "listing.conf.py"
    config.write_text(LISTING_CONFIG.format(conf=str(ROOT / "gunicorn.conf.py"),
                                            master=str(listed / "master.txt"), folder=str(listed)))
    with gunicorn(tmp_path / "gunicorn.log", workers=1, args=("--config", str(config))) as server:
        triage = requests.post(f"{server.base}/fhir/QuestionnaireResponse/$triage",
                               data=(EXAMPLES / "qr-routine-diabetes.json").read_bytes(),
                               headers={"Content-Type": "application/fhir+json"}, timeout=10)
        hook = requests.post(f"{server.base}/cds-services/leg-numbness-triage", json={
            "hook": "patient-view", "hookInstance": "0b3e3f4e-5f5a-4b7e-9a3f-3c3c3c3c3c3c",
            "context": {"userId": "Practitioner/1", "patientId": "1"}, "prefetch": {"legNumbnessQR": None}},
            timeout=10)
        assert (triage.status_code, hook.status_code) == (200, 200)
    master = set((listed / "master.txt").read_text().split())
    workers = list(listed.glob("worker-*.txt"))
    assert len(workers) == 1
    assert sorted(set(workers[0].read_text().split()) - master) == []
