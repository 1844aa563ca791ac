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


def test_a_first_start_launches_its_migration_child_before_loading_sqlalchemy(tmp_path):
    # The child's ~0.6 s of imports then overlap the app's own (service/__init__.py); launched
    # after SQLAlchemy was loaded, they overlapped less and the first response came ~0.3 s later.
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; import service.records as r; seen = []; launch = r.migration_child\n"
        "def spy():\n"
        "    seen.append('sqlalchemy' in sys.modules or 'flask' in sys.modules); return launch()\n"
        "r.migration_child = spy\n"
        "from service import create_app; create_app()\n"
        "print(seen)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2],
                         env={"PATH": "/usr/bin:/bin", "LEGTRIAGE_DATA_DIR": str(tmp_path / "data"),
                              "LEGTRIAGE_LOG_LEVEL": "warning"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[False]"  # launched once, before either was loaded
    assert (tmp_path / "data" / "legtriage.sqlite3").exists()
