"""Issue 23, item 7: a token with a jti is accepted once across all workers and replicas.

Before, the replay cache lived in each process, so a CDS client's JWT (or a FHIR API token under a
jti window) could be replayed once per gunicorn worker and once per replica. Now each accepted
(iss, jti) is a row of the records store (table token_seen) until the token expires. Checked with two
app instances on one SQLite file and on one PostgreSQL database (tests/support/pg.py), with two gunicorn
workers, and with the store down (503, not a token accepted unchecked).
"""
from __future__ import annotations

import socket
import time
import uuid

import jwt
import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.cds import PATIENT_VIEW, PUBLIC, cds_example, fresh, post_hook, trust_folder
from tests.support.servers import gunicorn
from tests.support.keys import Key, jwks

ISS = "https://ehr.example.org"
AUD = f"{PUBLIC}/cds-services/leg-numbness-triage"
FHIR_AUD = "https://legtriage.example.org"


@pytest.fixture(scope="module")
def key() -> Key:
    return Key(ec.generate_private_key(ec.SECP384R1()), "ec-1", "ES384")


@pytest.fixture(scope="module")
def trust(tmp_path_factory, key):
    return trust_folder(tmp_path_factory.mktemp("replay-trust"), ISS, jwks(key))


def cds_token(key: Key, jti: str | None = None, lifetime: int = 300) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISS, "aud": AUD, "sub": "ehr", "iat": now, "exp": now + lifetime,
                       "jti": jti or str(uuid.uuid4())}, key.private, algorithm=key.alg,
                      headers={"kid": key.kid, "typ": "JWT"})


@pytest.fixture(scope="module")
def cds_app(make_app):
    """cds_app(trust, database_url): the app trusting the CDS client of `trust`, records in database_url."""
    def make(trust, database_url: str):
        return make_app(public_base_url=PUBLIC, cds_auth_enabled=True,
                        cds_issuers_file=str(trust / "issuers.json"), database_url=database_url)
    return make


@pytest.fixture()
def apps():
    """Apps made by a test, their store connections closed after it (PostgreSQL counts them)."""
    made = []
    yield made
    for app in made:
        app.extensions["legtriage"].records.close()


def hook(client, token: str):
    return post_hook(client, fresh(cds_example("patient-view-urgent")), Authorization=f"Bearer {token}")


def test_a_cds_token_is_accepted_once_across_two_app_instances(database_url, trust, key, apps, cds_app):
    apps += [cds_app(trust, database_url), cds_app(trust, database_url)]  # one SQLite file or PG database
    first, second = (app.test_client() for app in apps)
    token = cds_token(key)
    assert hook(first, token).status_code == 200
    assert hook(second, token).status_code == 401  # another process, same store: seen
    assert hook(first, token).status_code == 401
    assert hook(second, cds_token(key)).status_code == 200  # a new jti is fine


def test_a_fhir_api_token_is_accepted_once_across_two_app_instances(database_url, trust, key, apps, make_app):
    config = {"auth_enabled": True, "auth_jwks_file": str(trust / "jwks.json"), "auth_issuers": [ISS],
              "auth_audience": [FHIR_AUD], "auth_jti_window_seconds": 300, "cds_auth_enabled": False,
              "database_url": database_url}
    apps += [make_app(**config), make_app(**config)]
    first, second = (app.test_client() for app in apps)
    now = int(time.time())
    token = jwt.encode({"iss": ISS, "aud": FHIR_AUD, "iat": now, "exp": now + 120, "jti": "once"},
                       key.private, algorithm=key.alg, headers={"kid": key.kid})
    headers = {"Authorization": f"Bearer {token}"}
    assert first.get("/fhir/Questionnaire/leg-numbness", headers=headers).status_code == 200
    replay = second.get("/fhir/Questionnaire/leg-numbness", headers=headers)
    assert replay.status_code == 401 and "already used" in replay.get_data(as_text=True)


def test_two_gunicorn_workers_accept_a_token_once(tmp_path, trust, key):
    env = {"LEGTRIAGE_PUBLIC_BASE_URL": PUBLIC, "LEGTRIAGE_CDS_AUTH_ENABLED": "true",
           "LEGTRIAGE_CDS_ISSUERS_FILE": str(trust / "issuers.json"), "LEGTRIAGE_LOG_LEVEL": "warning"}
    body = fresh(cds_example("patient-view-urgent"))
    with gunicorn(tmp_path / "gunicorn.log", env=env, workers=2) as server:
        for _ in range(3):
            token = cds_token(key)
            statuses = []
            for _ in range(12):  # a new connection each time: the two workers take turns
                with requests.Session() as session:
                    statuses.append(session.post(server.base + PATIENT_VIEW, json=body, timeout=10,
                                                 headers={"Authorization": f"Bearer {token}"}).status_code)
            assert sorted(statuses) == [200] + [401] * 11, statuses


def test_expired_rows_are_purged(database_url, monkeypatch):
    from service.records import store as store_module
    from service.records.store import SqlStore
    from service.records.schema import token_seen

    store = SqlStore(database_url)
    store.start()
    assert store.first_use(ISS, "old", time.time() - 1)  # already expired when it is purged
    assert store.first_use(ISS, "live", time.time() + 300)
    assert not store.first_use(ISS, "live", time.time() + 300)
    monkeypatch.setattr(store, "_next_token_purge", 0.0)
    assert store.first_use(ISS, "new", time.time() + 300)
    with store.engine().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(token_seen)).scalar_one() == 2
    assert store_module.TOKEN_PURGE_SECONDS <= 300
    store.close()


def test_a_store_that_cannot_be_reached_accepts_no_token(trust, key, apps, cds_app):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers
    try:
        app = cds_app(trust, f"postgresql://legtriage@127.0.0.1:{closed.getsockname()[1]}/none")
        apps.append(app)
        resp = hook(app.test_client(), cds_token(key))
    finally:
        closed.close()
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert resp.get_json(force=True)["issue"][0]["code"] == "transient"
