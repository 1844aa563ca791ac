"""Group commit: the audit records of the calls a worker process has in flight, written in one
transaction (one commit, one fsync), each call answered only once its own batch is durable.

A call's record joins the queue; with no batch being written the call leads: it lets the worker's
other greenlets run first (time.sleep(0)) so that theirs join, then writes the whole queue at once.
The others wait for their batch; at most one batch is written at a time per process. When a batch
fails, each of its calls (and those that queued meanwhile, without a second wait) gets
StoreUnavailable, so 503. In a worker without gevent every batch holds one record.
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
        self.greenlets = monkey is not None and monkey.is_module_patched("time")  # a gevent worker

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
            if self.greenlets:
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
