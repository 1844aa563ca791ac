from __future__ import annotations

import pytest
import yaml

from service import create_app
from tests.support import ROOT


@pytest.fixture(scope="session")
def app():
    return create_app()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def terminology():
    return yaml.safe_load((ROOT / "mappings" / "terminology.yaml").read_text())
