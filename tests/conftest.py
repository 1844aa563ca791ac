from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import yaml

# Apps made in this process keep their records here, not in the checkout's var/ (set before any
# create_app reads the environment; gunicorn servers get their own folder, tests/support/servers.py).
_DATA_DIR = tempfile.mkdtemp(prefix="legtriage-test-data-")
os.environ["LEGTRIAGE_DATA_DIR"] = _DATA_DIR

from service import create_app  # noqa: E402
from tests.support import ROOT  # noqa: E402


def pytest_unconfigure(config):
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (tests/support/pg.py), for the session."""
    if os.environ.get("SKIP_POSTGRES_TESTS") == "1":
        pytest.skip("SKIP_POSTGRES_TESTS=1: no PostgreSQL on this machine")
    from tests.support.pg import Cluster
    cluster = Cluster().start()
    yield cluster
    cluster.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database: SQLite in a temp dir, or a new database on the PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite3'}"
    return request.getfixturevalue("pg").new_database()


@pytest.fixture(scope="session")
def app():
    return create_app()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def terminology():
    return yaml.safe_load((ROOT / "mappings" / "terminology.yaml").read_text())


@pytest.fixture(scope="module")
def fhir_server():
    """The hospital's FHIR server: Medplum's FHIR engine on 127.0.0.1 (tests/support/fhir_server.py), empty
    for each test module."""
    from tests.support import fhir_server as medplum
    server = medplum.start()
    yield server
    server.stop()
