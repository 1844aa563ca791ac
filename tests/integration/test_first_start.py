"""A first start on a new SQLite store: the migration's child process starts before the checks of
create_app so that it loads beside them (service/records/store.py, SqlStore.prepare), and migrates
only once they passed: a start refused for its configuration leaves no database behind, as before."""
from __future__ import annotations

import pytest

from service import create_app
from service.config import ConfigError
from service.records.store import HEAD, SqlStore


def test_a_first_start_migrates_the_new_store(tmp_path):
    app = create_app({"data_dir": str(tmp_path / "data")})
    store = app.extensions["legtriage"].records
    assert store._child is None  # asked to migrate, and done
    assert SqlStore(store.url.render_as_string(hide_password=False)).revision() == HEAD
    store.close()


def test_a_start_refused_for_its_configuration_leaves_no_database(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(ConfigError, match="LEGTRIAGE_REQUIRE_SIGNOFF"):
        create_app({"data_dir": str(data), "require_signoff": True})  # the project ships no sign-off
    assert not (data / "legtriage.sqlite3").exists()


def test_a_child_started_early_ends_untouched_when_the_schema_is_already_at_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    early = SqlStore(url)
    early.prepare()
    child = early._child
    assert child is not None  # no database yet: a migration will surely be needed
    SqlStore(url).start()  # meanwhile another process made the schema
    early.start()
    assert early._child is None and child.returncode is not None  # ended, never asked to migrate
    assert early.revision() == HEAD
    early.close()
