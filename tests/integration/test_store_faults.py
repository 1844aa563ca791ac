"""The records store under faults (issue 23): a locked database, a full disk, a read-only database,
file modes, retention of cards and feedback, feedback kept once. Both stores where both apply."""
from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest

from service.records import AuditRecord, CardRecord, FeedbackRecord, StoreUnavailable, instant, now_us
from service.records.search import AuditQuery
from service.records.store import STORE_WAIT_SECONDS, SqlStore, WriteTurn
from tests.support.records_memory import MemoryStore, feedback_on
from tests.support import LEGTRIAGE, ROOT


@pytest.fixture()
def serving(database_url):
    """The store as the app opens it: writes wait at most STORE_WAIT_SECONDS for a lock."""
    SqlStore(database_url).start()  # migrated as at start
    s = SqlStore(database_url, STORE_WAIT_SECONDS)
    yield s
    s.close()


@contextmanager
def audit_table_locked(url: str):
    """Another session holds the audit table: SQLite a write transaction, PostgreSQL LOCK TABLE."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO store_heartbeat (id, beat_us) VALUES (2, 0)")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        conn = psycopg.connect(url)
        conn.execute("LOCK TABLE audit_event, store_heartbeat IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()


# ---- item 3: a locked database -----------------------------------------------------------------

def test_a_locked_database_gives_store_unavailable_within_the_wait_and_nothing_half_written(serving,
                                                                                            database_url):
    serving.audit(AuditRecord(kind="triage", status=200))
    with audit_table_locked(database_url):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            serving.audit(AuditRecord(kind="triage", status=200, patient="Patient/locked"))
        took = time.monotonic() - started
        assert serving.ready() is False
    assert STORE_WAIT_SECONDS * 0.9 <= took <= STORE_WAIT_SECONDS + 1.5, took
    serving.audit(AuditRecord(kind="triage", status=200))
    assert serving.ready() is True
    assert [r.patient for r in serving.search_audits(AuditQuery())] == [None, None]  # the refused one is not there


def test_a_lock_released_within_the_wait_is_waited_for(serving, database_url):
    """A short lock (another worker's write) is waited out, not refused."""
    holder = threading.Thread(target=lambda: _hold(database_url, 0.5))
    holder.start()
    time.sleep(0.2)
    serving.audit(AuditRecord(kind="triage", status=200))
    holder.join()
    assert serving.count_audits() == 1


def _hold(url: str, seconds: float) -> None:
    with audit_table_locked(url):
        time.sleep(seconds)


# ---- the serving processes of one SQLite file take turns to write it ------------------------------

@pytest.fixture()
def sqlite_serving(tmp_path):
    db = tmp_path / "records.sqlite3"
    SqlStore(f"sqlite:///{db}").start()
    s = SqlStore(f"sqlite:///{db}", STORE_WAIT_SECONDS)
    yield s, db
    s.close()


def test_a_write_waits_for_its_turn_and_goes_on_as_soon_as_the_other_writer_gives_it_back(sqlite_serving):
    store, db = sqlite_serving
    other = WriteTurn(db)  # another worker's turn: its own open file, as in another process
    assert other.take(time.monotonic() + 1)
    threading.Timer(0.3, other.give).start()
    started = time.monotonic()
    store.audit(AuditRecord(kind="triage", status=200))
    took = time.monotonic() - started
    assert 0.28 <= took <= 0.3 + 0.5, took
    assert store.count_audits() == 1
    assert other.take(time.monotonic() + 1)  # given back after the commit
    other.give()


def test_a_turn_that_does_not_come_within_the_wait_gives_store_unavailable_and_writes_nothing(sqlite_serving):
    store, db = sqlite_serving
    other = WriteTurn(db)
    assert other.take(time.monotonic() + 1)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.audit(AuditRecord(kind="triage", status=200))
        took = time.monotonic() - started
        assert store.ready() is False  # readiness is a write, and waits for the turn too
    finally:
        other.give()
    assert STORE_WAIT_SECONDS * 0.9 <= took <= STORE_WAIT_SECONDS + 1.0, took
    assert store.count_audits() == 0
    store.audit(AuditRecord(kind="triage", status=200))
    assert store.ready() is True and store.count_audits() == 1


def test_writers_that_take_no_turn_are_still_waited_for_by_sqlites_own_lock(sqlite_serving):
    """The command line and other programs do not take turns: their lock is met and waited out."""
    store, db = sqlite_serving
    holder = threading.Thread(target=lambda: _hold(f"sqlite:///{db}", 0.5))
    holder.start()
    time.sleep(0.2)
    store.audit(AuditRecord(kind="triage", status=200))
    holder.join()
    assert store.count_audits() == 1


def test_a_process_killed_while_its_turn_is_held_gives_the_turn_back(sqlite_serving):
    store, db = sqlite_serving
    code = ("import sys, time; from pathlib import Path; from service.records.store import WriteTurn\n"
            "t = WriteTurn(Path(sys.argv[1])); assert t.take(time.monotonic() + 5); print('held', flush=True)\n"
            "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(db)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert not WriteTurn(db).take(time.monotonic() + 0.1)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    store.audit(AuditRecord(kind="triage", status=200))  # at once: the kernel gave the turn back
    assert store.count_audits() == 1


# ---- item 11: readiness means a write goes through ----------------------------------------------

def test_ready_is_false_when_the_disk_is_full_sqlite(tmp_path):
    """A full disk, made with a file-size limit of 1 byte in a child process (no file can grow, so
    no write reaches the WAL): a SELECT still works there, and readiness used to be a SELECT."""
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    SqlStore(url).start()
    code = (
        "import resource, sys; from service.records.store import SqlStore; from service.records import AuditRecord, "
        "StoreUnavailable\n"
        "s = SqlStore(sys.argv[1], 2.0); s.engine().connect().close()\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))\n"
        "try:\n    s.audit(AuditRecord(kind='triage', status=200)); wrote = True\n"
        "except StoreUnavailable:\n    wrote = False\n"
        "print(wrote, s.ready(), s.count_audits())\n")
    run = subprocess.run([sys.executable, "-c", code, url], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False", "0"]


def test_ready_is_false_on_a_read_only_postgresql_database(pg):
    url = pg.new_database()
    SqlStore(url).start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET default_transaction_read_only = on')
    s = SqlStore(url, STORE_WAIT_SECONDS)
    try:
        assert s.count_audits() == 0  # it reads
        assert s.ready() is False  # but takes no record
        with pytest.raises(StoreUnavailable):
            s.audit(AuditRecord(kind="triage", status=200))
    finally:
        s.close()


def test_ready_writes_the_heartbeat_at_most_every_few_seconds(serving):
    from service.records.schema import store_heartbeat
    assert serving.ready() is True
    with serving.engine().connect() as conn:
        first = conn.execute(store_heartbeat.select()).one().beat_us
    assert serving.ready() is True
    with serving.engine().connect() as conn:
        assert conn.execute(store_heartbeat.select()).one().beat_us == first  # throttled
    assert first > now_us() - 60_000_000


# ---- item 16: file modes ------------------------------------------------------------------------

def test_the_sqlite_folder_and_files_are_private(tmp_path):
    folder = tmp_path / "new" / "data"
    db = folder / "records.sqlite3"
    s = SqlStore(f"sqlite:///{db}", STORE_WAIT_SECONDS)
    old = os.umask(0o022)
    try:
        assert SqlStore(f"sqlite:///{db}").start()
        s.audit(AuditRecord(kind="triage", status=200))
        files = sorted(p.name for p in folder.iterdir())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    finally:
        os.umask(old)
        s.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {"records.sqlite3", "records.sqlite3-wal", "records.sqlite3-shm", "records.sqlite3.write-lock"} <= set(files)
    assert modes == {name: 0o600 for name in files}


def test_files_an_older_version_left_readable_are_made_private(tmp_path):
    db = tmp_path / "records.sqlite3"
    assert SqlStore(f"sqlite:///{db}").start()
    db.chmod(0o644)
    s = SqlStore(f"sqlite:///{db}")
    s.audit(AuditRecord(kind="triage", status=200))
    s.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


# ---- items 6 and 17: feedback kept once; purge covers cards and feedback ------------------------

CARD = CardRecord("c-1", "h-1", "leg-numbness-triage", "urgent", "1.1.0", tenant="north")
ITEM = FeedbackRecord("c-1", "leg-numbness-triage", "overridden", "2026-12-01T10:00:00Z",
                      override_code="already-assessed", override_system="http://x", user_comment="seen")


def test_the_same_feedback_item_twice_is_kept_once(serving):
    serving.card_issued(CARD)
    serving.feedback([ITEM, ITEM])
    serving.feedback([ITEM])
    other = FeedbackRecord("c-1", "leg-numbness-triage", "overridden", "2026-12-01T10:05:00Z",
                           override_code="already-assessed", override_system="http://x")
    serving.feedback([other])
    assert feedback_on(serving, "c-1") == [ITEM, other]
    assert serving.card("c-1").tenant == "north"


def test_the_memory_store_keeps_feedback_once_too():
    mem = MemoryStore()
    mem.feedback([ITEM, ITEM])
    mem.feedback([ITEM])
    assert mem.feedback_on("c-1") == [ITEM]


def test_purge_removes_cards_and_feedback_by_the_same_retention(serving):
    old = now_us() - 10 * 86_400_000_000
    serving.card_issued(CardRecord("old", "h-0", "leg-numbness-triage", "urgent", "1.1.0", issued=instant(old)))
    serving.card_issued(CARD)
    serving.feedback([ITEM])
    with serving.engine().begin() as conn:  # feedback received ten days ago on the old card
        from service.records.schema import cds_feedback
        conn.execute(cds_feedback.insert().values(
            card_uuid="old", service="leg-numbness-triage", outcome="accepted",
            outcome_timestamp="2026-11-27T10:00:00Z", accepted_suggestions=["s"], received_us=old))
    serving.audit(AuditRecord(kind="triage", status=200, recorded=instant(old)))
    serving.audit(AuditRecord(kind="triage", status=200))
    removed = serving.purge(now_us() - 5 * 86_400_000_000)
    assert (removed.audits, removed.cards, removed.feedback) == (1, 1, 1)
    assert serving.card("old") is None and feedback_on(serving, "old") == []
    assert serving.card("c-1") == serving.card("c-1") and feedback_on(serving, "c-1") == [ITEM]
    assert serving.count_audits() == 1


def test_the_purge_command_says_what_it_removed(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")},
           "LEGTRIAGE_DATA_DIR": str(tmp_path)}
    run = subprocess.run([LEGTRIAGE, "purge", "--days", "1"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "removed 0 audit event(s), 0 CDS card(s) and 0 feedback item(s) older than 1 day(s)" in run.stdout
