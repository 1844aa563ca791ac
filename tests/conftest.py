"""Fixtures for every room, and each test's room as its marker.

tests/unit, tests/integration and tests/e2e are the rooms (tests/README.md); each test carries its
room's marker, so `-m unit` or `-m "not e2e"` pick them whatever paths are given.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from service import create_app
from tests.support import ROOT

TESTS = Path(__file__).resolve().parent
ROOMS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items):
    for item in items:
        room = item.path.relative_to(TESTS).parts[0] if TESTS in item.path.parents else None
        if room in ROOMS:
            item.add_marker(room)


@pytest.fixture(scope="session", autouse=True)
def records_dir(tmp_path_factory):
    """The records folder of whatever builds the app from the environment alone (a process a test
    starts that calls create_app()): never the checkout's var/. Set for this session only."""
    folder = tmp_path_factory.mktemp("records")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEGTRIAGE_DATA_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def make_app(tmp_path_factory):
    """make_app(**overrides): the app from the factory, with settings overridden by name (as
    create_app(config) takes them) and its records in a folder of its own."""
    def make(**overrides):
        return create_app({"data_dir": tmp_path_factory.mktemp("app"), **overrides})
    return make


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
def app(make_app):
    return make_app()


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
