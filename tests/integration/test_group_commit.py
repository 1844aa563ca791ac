"""Group commit (service/records/group_commit.py, issue 21): the audit records of the calls in flight go in
one transaction; a call returns only after the commit that holds its record, and every call of a batch
that fails gets StoreUnavailable, as do the calls that queued while it failed."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from service.records import StoreUnavailable
from service.records.group_commit import GroupCommit

ROOT = Path(__file__).resolve().parents[2]


class Writer:
    """A write that holds the first batch until released, so that the others queue behind it."""

    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.committed: dict[str, float] = {}
        self.started, self.release = threading.Event(), threading.Event()
        self.fail_first = fail_first

    def __call__(self, rows, since: float) -> None:
        first = not self.batches
        self.batches.append(list(rows))
        if first:
            self.started.set()
            assert self.release.wait(10)
            if self.fail_first:
                raise StoreUnavailable("records store: OperationalError")
        for row in rows:
            self.committed[row] = time.monotonic()


def _submit_all(group: GroupCommit, writer: Writer, names: list[str]) -> dict[str, object]:
    """Submit names[0], wait until its batch is being written, submit the rest, release."""
    outcome: dict[str, object] = {}

    def call(name: str) -> None:
        try:
            group.submit(name)
            outcome[name] = time.monotonic()
        except StoreUnavailable as err:
            outcome[name] = err

    threads = [threading.Thread(target=call, args=(names[0],))]
    threads[0].start()
    assert writer.started.wait(10)
    for name in names[1:]:
        threads.append(threading.Thread(target=call, args=(name,)))
        threads[-1].start()
    time.sleep(0.2)
    assert outcome == {}  # nobody is answered while the first batch is not committed
    writer.release.set()
    for t in threads:
        t.join(10)
    return outcome


def test_calls_queued_behind_a_batch_are_written_together_and_answered_after_their_commit():
    writer = Writer()
    outcome = _submit_all(GroupCommit(writer), writer, ["a", "b", "c", "d"])
    assert writer.batches[0] == ["a"] and sorted(writer.batches[1]) == ["b", "c", "d"]
    assert len(writer.batches) == 2
    assert all(outcome[n] >= writer.committed[n] for n in "abcd")  # returned after its own commit


def test_a_failed_batch_fails_every_call_in_it_and_those_queued_meanwhile():
    writer = Writer(fail_first=True)
    outcome = _submit_all(GroupCommit(writer), writer, ["a", "b", "c"])
    assert all(isinstance(outcome[n], StoreUnavailable) for n in "abc"), outcome
    assert writer.batches == [["a"]] and writer.committed == {}  # b and c were not written after a's failure


def test_the_next_call_after_a_failure_is_written_again():
    writer = Writer(fail_first=True)
    group = GroupCommit(writer)
    writer.release.set()
    with pytest.raises(StoreUnavailable):
        group.submit("a")
    group.submit("b")
    assert writer.batches == [["a"], ["b"]] and list(writer.committed) == ["b"]


def test_one_call_at_a_time_is_a_batch_of_one():
    writer = Writer()
    writer.release.set()
    group = GroupCommit(writer)
    for name in "abc":
        group.submit(name)
    assert writer.batches == [["a"], ["b"], ["c"]]


GEVENT = ("from gevent import monkey; monkey.patch_all()\n"
          "import sys, gevent\n"
          "from sqlalchemy import event\n"
          "from service.records import AuditRecord, StoreUnavailable\n"
          "from service.records.store import SqlStore\n")


def in_gevent(code: str, url: str) -> list[str]:
    """`code` in a new process that gevent patched first, as a gunicorn gevent worker is, with the
    store's URL as sys.argv[1]; the words it printed."""
    out = subprocess.run([sys.executable, "-c", GEVENT + code, url], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_in_a_gevent_process_concurrent_calls_share_commits_and_every_record_is_kept(tmp_path):
    """Under gevent (as in a gunicorn gevent worker), 40 greenlets recording at once commit in far
    fewer transactions than 40, and all 40 records are there."""
    code = (
        "s = SqlStore(sys.argv[1], 2.0); s.start()\n"
        "commits = []\n"
        "event.listen(s.engine(), 'commit', lambda conn: commits.append(1))\n"
        "gevent.joinall([gevent.spawn(s.audit, AuditRecord(kind='triage', status=200)) for _ in range(40)],"
        " raise_error=True)\n"
        "print(len(commits), s.count_audits())\n")
    commits, kept = map(int, in_gevent(code, f"sqlite:///{tmp_path / 'records.sqlite3'}"))
    assert kept == 40 and commits <= 5, (commits, kept)


def test_in_a_gevent_process_sqlite_commits_wait_in_a_thread_and_the_worker_goes_on(tmp_path):
    """While calls queue, a gevent worker's SQLite commit (its fsync) runs in a thread of gevent's
    pool, not in the worker's own thread, where it stopped every greenlet of the worker while it
    waited (docs/performance.md); a lone call again commits in the worker's thread, where the
    hand-over would gain nothing. Every record is kept."""
    code = (
        "ident = monkey.get_original('_thread', 'get_ident')\n"
        "s = SqlStore(sys.argv[1], 2.0); s.start()\n"
        "commits = []\n"
        "def traced(conn, _record):\n"
        "    conn.set_trace_callback(lambda sql: commits.append(ident()) if sql == 'COMMIT' else None)\n"
        "event.listen(s.engine(), 'connect', traced)\n"
        "main = ident()\n"
        "gevent.joinall([gevent.spawn(s.audit, AuditRecord(kind='triage', status=200)) for _ in range(20)],"
        " raise_error=True)\n"
        "together = list(commits)\n"
        "for _ in range(3):\n"
        "    s.audit(AuditRecord(kind='triage', status=200))\n"
        "print(len(together), sum(t == main for t in together), int(commits[-1] == main), s.count_audits())\n")
    commits, in_main, lone_in_main, kept = map(int, in_gevent(code, f"sqlite:///{tmp_path / 'records.sqlite3'}"))
    assert kept == 23 and 1 <= commits <= 5 and in_main == 0 and lone_in_main == 1, (commits, in_main,
                                                                                      lone_in_main, kept)


def test_in_a_gevent_process_a_commit_that_fails_in_its_thread_gives_store_unavailable(tmp_path):
    """A full disk (no file may grow) fails the commit in the pool's thread: each call of the batch
    gets StoreUnavailable (so 503), readiness says no, nothing is kept."""
    code = (
        "import resource\n"
        "SqlStore(sys.argv[1]).start()\n"
        "s = SqlStore(sys.argv[1], 2.0); s.engine().connect().close()\n"
        "elsewhere, commit = [], s._commit_elsewhere\n"
        "s._commit_elsewhere = lambda conn: (elsewhere.append(1), commit(conn))[1]\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))\n"
        "calls = [gevent.spawn(s.audit, AuditRecord(kind='triage', status=200)) for _ in range(5)]\n"
        "gevent.joinall(calls)\n"
        "refused = sum(isinstance(c.exception, StoreUnavailable) for c in calls)\n"
        "print(refused, len(elsewhere) >= 1, s.ready(), s.count_audits())\n")
    assert in_gevent(code, f"sqlite:///{tmp_path / 'records.sqlite3'}") == ["5", "True", "False", "0"]


def test_a_call_killed_while_it_waits_is_left_out_and_the_queue_goes_on():
    """In a gevent process: a waiting call whose greenlet is killed (its row not yet in a batch) is not
    written, and the next call still leads its batch; later calls are written as before."""
    code = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import gevent\n"
        "from service.records.group_commit import GroupCommit\n"
        "batches = []\n"
        "def write(rows, since):\n"
        "    batches.append(list(rows)); gevent.sleep(0.2)\n"
        "g = GroupCommit(write)\n"
        "first = gevent.spawn(g.submit, 'a'); gevent.sleep(0.05)\n"
        "killed = gevent.spawn(g.submit, 'b'); nxt = gevent.spawn(g.submit, 'c'); gevent.sleep(0.05)\n"
        "killed.kill()\n"
        "gevent.joinall([first, nxt], raise_error=True)\n"
        "g.submit('d')\n"
        "print(batches)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[['a'], ['c'], ['d']]", out.stdout
