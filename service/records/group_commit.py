"""Group commit: the audit records of the calls a worker process has in flight, written in one
transaction (one commit, one fsync), each call answered only once its own batch is durable.

How PostgreSQL's commit_delay and SQLite's WAL batching save work, done in the process: a call's
record joins the queue; if no batch is being written, the call leads: it lets the other greenlets of
the worker run first (time.sleep(0), gevent's in a gevent worker), so that the calls they are
finishing join the queue, then takes the whole queue and writes it in one transaction. The calls that
joined wait on an event of their own, set when their batch committed or failed. While a batch is being
written (a commit waiting for the disk or the server yields to the other greenlets), new records queue
for the next batch, which the first of them leads. At most one batch is written at a time per process.

Nothing is acknowledged before it is stored: a call returns from `submit` only after the commit of the
transaction that holds its record; when that transaction fails, every call of the batch gets the same
StoreUnavailable (so 503, service/records/audit.py) and none of their records is kept. The calls that queued
while a batch failed get it too, without a second wait: the store has just failed after its wait (as
service/records/audit.py does not wait again for a call the store already failed). In a worker without gevent
(sync, one call at a time) every batch holds one record: the old one-commit-per-call path.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from service.records import StoreUnavailable

R = TypeVar("R")


class _Waiter(Generic[R]):
    __slots__ = ("done", "error", "leads", "row")

    def __init__(self, row: R) -> None:
        self.row = row
        self.done = threading.Event()  # gevent's Event in a gevent worker (made after it patched)
        self.leads = False  # woken to write the next batch rather than with its own result
        self.error: BaseException | None = None


class GroupCommit(Generic[R]):
    """One writer per process. `write(rows, since)` stores rows in one transaction (raising when it
    cannot); `since` is the time.monotonic() at which the oldest of them was submitted, so that the
    writer's bounded wait for a locked database counts from there. Make one per process, after
    gevent patched (the store makes it lazily, like its engine)."""

    def __init__(self, write: Callable[[Sequence[R], float], None]) -> None:
        self._write = write
        self._lock = threading.Lock()  # held only between switches: never contended
        self._queue: list[tuple[_Waiter[R], float]] = []
        self._writing = False
        monkey = sys.modules.get("gevent.monkey")
        # In a gevent worker time.sleep(0) switches to the other greenlets; elsewhere it would give
        # the CPU to other processes (milliseconds on a busy machine) for no batch at all.
        self._greenlets = monkey is not None and monkey.is_module_patched("time")

    def submit(self, row: R) -> None:
        """Return once `row` is committed; raise what the write of its batch raised."""
        me: _Waiter[R] = _Waiter(row)
        with self._lock:
            self._queue.append((me, time.monotonic()))
            leads = not self._writing
            self._writing = True
        if not leads:
            try:
                me.done.wait()
            except BaseException:
                self._abandon(me)  # this call's greenlet was killed while it waited
                raise
            if not me.leads:
                if me.error is not None:
                    raise me.error
                return
        self._lead(me)

    def _lead(self, me: _Waiter[R]) -> None:
        batch: list[tuple[_Waiter[R], float]] = []
        error: BaseException | None = None
        try:
            if self._greenlets:
                time.sleep(0)  # the other greenlets first: what they are finishing joins this batch
            with self._lock:
                batch, self._queue = self._queue, []
            self._write([w.row for w, _ in batch], batch[0][1])
        except BaseException as err:  # noqa: BLE001 (re-raised below) every waiter must hear of it
            error = err
        finally:
            with self._lock:
                failed_too: list[tuple[_Waiter[R], float]] = []
                if error is not None:
                    failed_too, self._queue = self._queue, []
                nxt = self._queue[0][0] if self._queue else None
                self._writing = nxt is not None
                if nxt is not None:
                    nxt.leads = True
            if error is not None and not isinstance(error, Exception):  # this greenlet was killed
                error_of_others: BaseException | None = StoreUnavailable("records store: batch interrupted")
            else:
                error_of_others = error
            for w, _ in batch + failed_too:
                if w is not me:
                    w.error = error_of_others
                    w.done.set()
            if nxt is not None:
                nxt.done.set()
        if error is not None:
            raise error

    def _abandon(self, me: _Waiter[R]) -> None:
        """A waiting call interrupted: its row is left out if not taken into a batch yet (the call never
        answered), and if it was to lead the next batch, the next call in the queue leads instead."""
        with self._lock:
            self._queue = [(w, t) for w, t in self._queue if w is not me]
            if not me.leads:
                return
            nxt = self._queue[0][0] if self._queue else None
            self._writing = nxt is not None
            if nxt is not None:
                nxt.leads = True
        if nxt is not None:
            nxt.done.set()
