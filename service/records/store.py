"""The records store on SQL (SQLAlchemy Core): SQLite in the data directory for one machine,
PostgreSQL for replicas. Every write commits before the call returns; the audit records and CDS cards
of the calls a worker has in flight commit together (group_commit.py). The schema is made and
upgraded by the Alembic migrations (migrations/versions), under a lock, at start and by
`legtriage migrate`. A store that cannot record answers StoreUnavailable, so 503 with Retry-After.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from service.records import (AuditRecord, CardRecord, FeedbackRecord, Purged, ReportRow, migration_child,
                             StoreUnavailable, build_report, feedback_key, instant, instant_us as _us,
                             now_us, outcome_code)
from service.records.group_commit import GroupCommit
from service.records.schema import audit_event, cds_card, cds_feedback, store_heartbeat, token_seen

log = logging.getLogger(__name__)

# Migrations run under a lock (flock(2) beside the SQLite file, an advisory lock on PostgreSQL), so
# that workers and replicas starting at once do not race; gunicorn preloads the app, so the master
# migrates once before it forks, and each process then opens its own connections. Only a schema
# behind HEAD is migrated, by Alembic in a child process: serving processes never load Alembic.
# SQLite runs in WAL mode with synchronous=FULL (a committed record survives a power loss); its
# folder is made 0700 and its files 0600.
#
# A locked database must not freeze a gevent worker (one OS thread serves all its connections): the
# serving store waits only in ways that yield, and only so long. SQLite's busy wait in C is off and a
# locked write is retried after time.sleep (gevent's) until STORE_WAIT_SECONDS; PostgreSQL sessions
# carry lock_timeout and statement_timeout, the pool is waited for POOL_WAIT_SECONDS, and psycopg
# waits with the patched poll(). A batch's wait counts from its oldest call; calls that queued while
# a batch failed get the 503 at once. The command line (purge, report, migrate) waits as the
# database does. The serving processes of one SQLite file take turns to write it (WriteTurn), and a
# gevent worker's batch commits in a thread while calls queue (_commit_elsewhere), so that its fsync
# does not stop the worker.
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000  # the command line's writes (purge, migrate) wait this long for the lock
STORE_WAIT_SECONDS = 2.0  # serving: a write waits this long for a locked database, then 503
POOL_WAIT_SECONDS = 1.0  # serving: and this long for a free connection of the process's pool
PG_STATEMENT_TIMEOUT_MS = 2_500  # serving: PostgreSQL cancels a statement that runs longer
PG_CONNECT_TIMEOUT_S = 3
READY_EVERY_SECONDS = 2.0  # /readyz writes the heartbeat row at most this often per process
MIGRATION_LOCK_KEY = 0x6C656774  # "legt": the PostgreSQL advisory lock of the migrations
TOKEN_PURGE_SECONDS = 60  # expired token_seen rows go at most this often, per process
RETRY_SCHEMA_SECONDS = 2.0  # after a failed start, try to reach the database again at most this often
VERSION_TABLE = "legtriage_schema_version"
HEAD = "0004_token_replay"  # the newest migration in migrations/versions (tests/integration/test_store.py checks)


T = TypeVar("T")
_INSERT_AUDIT = audit_event.insert()
_AUDIT, _CARD = "audit_event", "cds_card"  # what a row of a group-commit batch goes into


class SqlStore:
    """RecordStore on a SQLAlchemy URL (sqlite:///… or postgresql+psycopg://…)."""

    def __init__(self, url: str, wait_seconds: float | None = None) -> None:
        """`wait_seconds`: how long a write waits for a locked database before StoreUnavailable
        (the serving store: STORE_WAIT_SECONDS); None waits as long as the database does."""
        self.url = make_url(url)
        self.wait_seconds = wait_seconds
        self._ready_at = float("-inf")  # when the heartbeat was last written
        if self.url.drivername in ("postgresql", "postgres"):
            self.url = self.url.set(drivername="postgresql+psycopg")  # psycopg 3, not SQLAlchemy's default
        self.dialect = self.url.get_backend_name()
        # This URL's dialect only: PostgreSQL's is about 2 MB per worker that a SQLite store never uses.
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._insert = insert  # with ON CONFLICT DO NOTHING, which each dialect spells for itself
        self._insert_card = insert(cds_card).on_conflict_do_nothing(index_elements=["card_uuid"])
        self._engine_pid: int | None = None
        self._engine: Engine | None = None
        self._batches: GroupCommit[tuple[str, dict]] | None = None  # this process's (made with its engine)
        self._commit_in_thread = False  # a serving gevent worker's SQLite batches: see _commit_elsewhere
        self._last_batch = 0  # calls in this process's last batch
        self._writer_conn: Connection | None = None  # this process's batches are written on it
        self._writer_pid: int | None = None
        self._lock = threading.Lock()
        self._schema_ok = False
        self._last_try = 0.0
        self._child: subprocess.Popen | None = None  # a migration child started early (prepare)
        self._next_token_purge = 0.0
        # The serving processes of one SQLite file take turns to write it (WriteTurn, below).
        db = self._sqlite_file()
        self._turn = WriteTurn(db) if db is not None and wait_seconds is not None else None

    # ---- connections ---------------------------------------------------------------------------

    def engine(self) -> Engine:
        """This process's engine: made on first use in each process, so that a forked worker
        never uses a connection its parent opened."""
        pid = os.getpid()
        if self._engine_pid != pid:
            with self._lock:
                if self._engine_pid != pid:
                    if self._engine is not None:
                        self._engine.dispose(close=False)  # the parent's connections stay the parent's
                    self._engine, self._engine_pid = self._make_engine(), pid
                    self._batches = GroupCommit(self._write_batch)
                    self._commit_in_thread = self._turn is not None and self._batches.greenlets
        return self._engine

    def _make_engine(self) -> Engine:
        serving = self.wait_seconds is not None
        in_memory = self.dialect == "sqlite" and (self.url.database or ":memory:") == ":memory:"
        pool = {"pool_timeout": POOL_WAIT_SECONDS} if serving and not in_memory else {}  # a queue pool
        if self.dialect == "sqlite":
            private_sqlite_files(Path(self.url.database or ""))
            # Serving: no busy wait in C (it would stop every greenlet of the worker); _tx retries.
            busy_ms = 0 if serving else SQLITE_BUSY_TIMEOUT_MS
            engine = sa.create_engine(self.url, connect_args={"timeout": busy_ms / 1000}, **pool)

            @event.listens_for(engine, "connect")
            def pragmas(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.close()

            return engine
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "legtriage"}
        if serving:
            cooperative_psycopg()
            mine = (f"-c lock_timeout={int(self.wait_seconds * 1000)} "
                    f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}")
            given = self.url.query.get("options")  # the URL's own ?options= are kept, ours come after
            connect_args["options"] = f"{given} {mine}" if isinstance(given, str) and given else mine
        return sa.create_engine(self.url, pool_size=2, max_overflow=4, pool_recycle=1800,
                                connect_args=connect_args, **pool)

    def close(self) -> None:
        """Close this process's connections (before gunicorn forks, and in tests)."""
        self._end_child()
        if self._writer_conn is not None and self._writer_pid == os.getpid():
            self._writer_conn.close()
        self._writer_conn = None
        if self._engine is not None and self._engine_pid == os.getpid():
            self._engine.dispose()
        self._engine, self._engine_pid = None, None

    def _sqlite_file(self) -> Path | None:
        """The SQLite database file of this store; None for PostgreSQL and for SQLite without a file of
        its own (in memory) or a URI SQLite opens itself."""
        db = self.url.database or ""
        if self.dialect != "sqlite" or not _own_file(db):
            return None
        return Path(db)

    def _writer(self) -> Connection:
        """The connection this process's batches are written on: one batch at a time (group_commit.py),
        so it is held between them rather than taken from the pool and given back (and reset) for
        each: about 0.1 ms of CPU per batch less (docs/performance.md). A failure that leaves it broken
        or inside a transaction drops it; the next batch takes a new one."""
        if self._writer_conn is None or self._writer_pid != os.getpid():
            self._writer_conn, self._writer_pid = self.engine().connect(), os.getpid()
        return self._writer_conn

    def _drop_writer(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None and self._writer_pid == os.getpid():
            try:
                conn.invalidate()  # its state is not known: it is not given back to the pool
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone
                pass

    def _tx(self, work: Callable[[Connection], T], since: float | None = None, write: bool = False,
            batch: bool = False, elsewhere: bool = False) -> T:
        """`work` in one transaction, retried once on a connection the server dropped (a
        restarted PostgreSQL), and on a locked SQLite database until `wait_seconds` have passed
        since `since` (time.monotonic(); default now); StoreUnavailable when the database cannot be
        reached or stays locked. A serving process's `write` to SQLite waits for its turn first.
        `batch`: on this process's batch connection (_writer), committed in a thread if `elsewhere`."""
        self._ensure_schema()
        deadline = None if self.wait_seconds is None else (since or time.monotonic()) + self.wait_seconds
        if write and self._turn is not None and deadline is not None:
            self.engine()  # made in this process, and with it _commit_in_thread
            if not self._turn.take(deadline):
                self._ready_at = float("-inf")  # /readyz checks again at once
                raise StoreUnavailable("records store: database is locked")
            try:
                return self._attempts(work, deadline, batch, elsewhere)
            finally:
                self._turn.give()
        return self._attempts(work, deadline, batch)

    def _attempts(self, work: Callable[[Connection], T], deadline: float | None, batch: bool = False,
                  elsewhere: bool = False) -> T:
        reconnected, pause = False, 0.002
        while True:
            try:
                if not batch:
                    with self.engine().begin() as conn:
                        return work(conn)
                conn = self._writer()
                try:
                    with conn.begin():
                        done = work(conn)
                        if elsewhere:
                            self._commit_elsewhere(conn)
                    return done
                except BaseException as err:
                    if conn.invalidated or conn.in_transaction() or not isinstance(err, Exception):
                        self._drop_writer()  # broken, or left in a transaction, or the greenlet killed
                    raise
            except IntegrityError:
                raise
            except DBAPIError as err:
                if err.connection_invalidated and not reconnected:
                    reconnected = True
                    continue
                if deadline is not None and _sqlite_busy(err) and time.monotonic() + pause < deadline:
                    time.sleep(pause)  # gevent's sleep in a gevent worker: the others go on
                    pause = min(2 * pause, 0.05)
                    continue
                self._ready_at = float("-inf")  # /readyz checks again at once
                raise StoreUnavailable(f"records store: {type(err.orig).__name__}") from None
            except SQLAlchemyError as err:
                self._ready_at = float("-inf")
                raise StoreUnavailable(f"records store: {type(err).__name__}") from None

    # ---- schema --------------------------------------------------------------------------------

    def migrate(self) -> str:
        """Upgrade the schema to the newest migration, under the migration lock; the revision."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-start chatter; ours below
        try:
            with self._migration_file_lock(), self.engine().begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                cfg.attributes["connection"] = conn
                context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                before = context.get_current_revision()
                command.upgrade(cfg, "head")
                revision = context.get_current_revision()
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable(f"records store: migration failed: {type(err).__name__}") from None
        self._schema_ok = True
        if revision != before:
            log.info("records store: schema upgraded from %s to %s", before or "(empty)", revision)
        return revision

    @contextmanager
    def _migration_file_lock(self) -> Iterator[None]:
        if self.dialect != "sqlite":
            yield
            return
        db = Path(self.url.database)
        private_sqlite_files(db)
        lock_path = db.with_name(db.name + ".migrate-lock")
        with os.fdopen(os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def revision(self) -> str | None:
        """The schema revision the database is at (None: no schema yet), without Alembic."""
        try:
            with self.engine().connect() as conn:
                if not sa.inspect(conn).has_table(VERSION_TABLE):
                    return None
                return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnavailable(f"records store: {type(err).__name__}") from None

    def _upgrade(self) -> None:
        """Bring the schema to HEAD. Alembic (and Mako) run in a child process, so that the
        serving processes never load them (~10 MB per gunicorn worker); when the schema is
        already at HEAD (every start but the first of a new version) nothing is spawned."""
        if self.revision() == HEAD:
            self._schema_ok = True
            self._end_child()
            return
        child, self._child = self._child or migration_child(), None
        try:
            out, err = child.communicate(self.url.render_as_string(hide_password=False), timeout=300)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise
        if child.returncode != 0:
            last = (err.strip().splitlines() or ["?"])[-1]
            raise StoreUnavailable(f"records store: migration failed: {last[:200]}")
        if out.strip() != HEAD:
            raise StoreUnavailable(f"records store: migrated to {out.strip()!r}, expected {HEAD}")
        self._schema_ok = True

    def prepare(self, child: subprocess.Popen | None = None) -> None:
        """Start the migration's child process now if start() will surely need it: a SQLite database
        that does not exist yet (a first start). Its Python and imports then load beside the rest of
        the app's start; it migrates only once start() finds the schema behind HEAD and sends it the
        URL, and ends untouched when close() comes first (the start failed). `child`: one the caller
        already started for this store (records.migration_child), taken over as it is."""
        if child is not None:
            self._end_child()
            self._child = child
            return
        db = self._sqlite_file()
        if db is not None and self._child is None and not db.exists():
            self._child = migration_child()

    def _end_child(self) -> None:
        """End a child prepare() started and nobody asked to migrate (it never opened the database)."""
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.communicate()

    def start(self) -> bool:
        """Migrate at start; a database not reachable yet is retried on first use (a replica may
        start before its database): False then, and /readyz says not ready."""
        try:
            self._upgrade()
            return True
        except StoreUnavailable as err:
            log.warning("%s; retrying on use", err)
            self._last_try = time.monotonic()
            return False
        finally:
            self.close()  # no open connection is inherited by forked workers

    def _ensure_schema(self) -> None:
        if self._schema_ok:
            return
        now = time.monotonic()
        if now - self._last_try < RETRY_SCHEMA_SECONDS:
            raise StoreUnavailable("records store: not reachable")
        self._last_try = now
        try:
            self._upgrade()
        finally:
            if not self._schema_ok:
                self.close()

    # ---- writes --------------------------------------------------------------------------------

    def audit(self, record: AuditRecord) -> None:
        row = dict(
            id=record.id or str(uuid.uuid4()),
            recorded_us=_us(record.recorded) if record.recorded else now_us(),
            kind=record.kind, status=record.status, outcome=outcome_code(record.status),
            service=record.service, agent_iss=record.agent_iss, agent_sub=record.agent_sub,
            patient=record.patient, questionnaire_response=record.questionnaire_response,
            rules_version=record.rules_version, disposition=record.disposition, tenant=record.tenant)
        # Committed with the records of the other calls this process has in flight, in one
        # transaction (service/records/group_commit.py); returns once that transaction committed.
        self._submit(_AUDIT, row)

    def card_issued(self, record: CardRecord) -> None:
        issued = _us(record.issued) if record.issued else now_us()
        row = dict(card_uuid=record.card_uuid, hook_instance=record.hook_instance, service=record.service,
                   disposition=record.disposition, rules_version=record.rules_version, issued_us=issued,
                   tenant=record.tenant)
        self._submit(_CARD, row)  # in the same batches as the audit records

    def _submit(self, table: str, row: dict) -> None:
        self.engine()  # this process's engine, and with it its GroupCommit
        self._batches.submit((table, row))

    def _write_batch(self, rows: Sequence[tuple[str, dict]], since: float) -> None:
        """One transaction for a batch of audit records and cards. One statement per table, with
        bound parameters (compiled once, cached): values(**row) would build and compile a new
        statement per call, at twice the CPU (docs/performance.md). A card already kept (its uuid is
        deterministic: the same call again) is kept once."""
        audits = [row for table, row in rows if table == _AUDIT]
        cards = [row for table, row in rows if table == _CARD]

        def insert(conn: Connection) -> None:
            if audits:
                conn.execute(_INSERT_AUDIT, audits)
            if cards:
                conn.execute(self._insert_card, cards)

        # The commit waits in a thread only when calls are queuing: a lone call (one connection) would
        # pay the hand-over (~0.1-0.2 ms of CPU) and gain nothing (PostgreSQL's commit_siblings, alike).
        elsewhere = self._commit_in_thread and (len(rows) > 1 or self._last_batch > 1)
        self._last_batch = len(rows)
        self._tx(insert, since, write=True, batch=True, elsewhere=elsewhere)

    def _commit_elsewhere(self, conn: Connection) -> None:
        """Commit a serving gevent worker's SQLite write in a thread of gevent's pool: its fsync then
        waits there, and the worker goes on with its other calls meanwhile, whose records queue for
        the next batch. Done in the worker itself, the commit stopped every greenlet of the worker for
        its whole fsync, nothing could queue, and batches held 1.1-1.2 calls under load
        (docs/performance.md, "Records at the speed of recording off"). The sqlite3 connection is used by one
        thread at a time (this call waits); SQLAlchemy's commit that follows finds nothing left to
        commit. psycopg already waits for PostgreSQL's commit the gevent way."""
        import sqlite3

        import gevent
        try:
            gevent.get_hub().threadpool.apply(conn.connection.dbapi_connection.commit)
        except sqlite3.Error as err:
            self._ready_at = float("-inf")
            raise StoreUnavailable(f"records store: {type(err).__name__}") from None

    def feedback(self, records: Sequence[FeedbackRecord]) -> None:
        """Keep each item once: an item already kept on its card (CDS clients repeat feedback) is
        skipped, by the unique (card_uuid, item_key) index, on both databases alike."""
        if not records:
            return
        received = now_us()
        rows = {}
        for f in records:
            key = feedback_key(f)
            rows[(f.card_uuid, key)] = {
                "card_uuid": f.card_uuid, "service": f.service, "outcome": f.outcome,
                "outcome_timestamp": f.outcome_timestamp,
                "accepted_suggestions": list(f.accepted_suggestions),
                "override_code": f.override_code, "override_system": f.override_system,
                "iss": f.iss, "tenant": f.tenant, "received_us": received,
                "user_comment": f.user_comment, "item_key": key}
        insert = self._insert(cds_feedback)
        statement = insert.on_conflict_do_nothing(index_elements=["card_uuid", "item_key"])
        self._tx(lambda conn: conn.execute(statement, list(rows.values())), write=True)

    def first_use(self, issuer: str, jti: str, until: float) -> bool:
        """Record that the token (iss, jti) was accepted, until `until` (epoch seconds); False when
        any worker or replica already did. Expired rows are removed on the way (once a minute)."""
        key = hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()
        now = time.monotonic()
        purge = now >= self._next_token_purge
        if purge:
            self._next_token_purge = now + TOKEN_PURGE_SECONDS

        def claim(conn: Connection) -> None:
            if purge:
                conn.execute(token_seen.delete().where(token_seen.c.expires_us < now_us()))
            conn.execute(token_seen.insert(), {"token_key": key, "expires_us": int(until * 1_000_000)})

        try:
            self._tx(claim, write=True)
        except IntegrityError:
            return False
        return True

    # ---- reads ---------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when a write goes through: the heartbeat row is updated and committed (at most
        every READY_EVERY_SECONDS per process after a success; any failed write makes the next call
        try again). A SELECT, or a write rolled back, succeeds on a full disk or a read-only
        database too: neither ever writes."""
        if time.monotonic() - self._ready_at < READY_EVERY_SECONDS:
            return True  # a write went through a moment ago (a failure is never cached)

        def beat(conn: Connection) -> None:
            hb = store_heartbeat.c
            if conn.execute(store_heartbeat.update().where(hb.id == 1).values(beat_us=now_us())).rowcount == 0:
                conn.execute(store_heartbeat.insert().values(id=1, beat_us=now_us()))

        try:
            self._tx(beat, write=True)
        except (StoreUnavailable, IntegrityError):
            return False
        self._ready_at = time.monotonic()
        return True

    def search_audits(self, query: search.AuditQuery) -> list[AuditRecord]:
        from service.records import search  # the API's; the migration's child process never needs it

        t = audit_event.c
        stmt = sa.select(audit_event)
        stmt = stmt.where(*search.where(t, query))
        stmt = stmt.order_by(t.recorded_us.desc(), t.id.desc()).limit(query.count)
        rows = self._tx(lambda conn: conn.execute(stmt).mappings().all())
        return [AuditRecord(kind=r["kind"], recorded=instant(r["recorded_us"]), status=r["status"],
                            service=r["service"], agent_iss=r["agent_iss"], agent_sub=r["agent_sub"],
                            patient=r["patient"], questionnaire_response=r["questionnaire_response"],
                            rules_version=r["rules_version"], disposition=r["disposition"],
                            id=r["id"], tenant=r["tenant"]) for r in rows]

    def card(self, card_uuid: str) -> CardRecord | None:
        r = self._tx(lambda conn: conn.execute(
            sa.select(cds_card).where(cds_card.c.card_uuid == card_uuid)).mappings().first())
        if r is None:
            return None
        return CardRecord(r["card_uuid"], r["hook_instance"], r["service"], r["disposition"],
                          r["rules_version"], issued=instant(r["issued_us"]), tenant=r["tenant"])

    def count_audits(self) -> int:
        return self._tx(lambda conn: conn.execute(
            sa.select(sa.func.count()).select_from(audit_event)).scalar_one())

    def purge_audits(self, before_us: int) -> int:
        return self.purge(before_us).audits

    def purge(self, before_us: int) -> Purged:
        """Remove audit events, CDS cards and feedback older than `before_us` (one retention for all:
        recorded, issued, received), in one transaction."""
        def work(conn: Connection) -> Purged:
            return Purged(
                audits=conn.execute(audit_event.delete().where(audit_event.c.recorded_us < before_us)).rowcount,
                cards=conn.execute(cds_card.delete().where(cds_card.c.issued_us < before_us)).rowcount,
                feedback=conn.execute(
                    cds_feedback.delete().where(cds_feedback.c.received_us < before_us)).rowcount)
        return self._tx(work)

    def report(self) -> list[ReportRow]:
        c, f = cds_card.c, cds_feedback.c
        key = (c.service, c.disposition, c.rules_version)
        joined = cds_feedback.outerjoin(cds_card, c.card_uuid == f.card_uuid)
        def counts(conn: Connection):
            issued = conn.execute(sa.select(*key, sa.func.count()).group_by(*key)).all()
            answered = conn.execute(
                sa.select(sa.func.coalesce(c.service, f.service), c.disposition, c.rules_version,
                          sa.func.count(sa.distinct(f.card_uuid)))
                .select_from(joined).group_by(sa.func.coalesce(c.service, f.service),
                                              c.disposition, c.rules_version)).all()
            items = conn.execute(
                sa.select(sa.func.coalesce(c.service, f.service), c.disposition, c.rules_version,
                          f.outcome, f.override_code, sa.func.count())
                .select_from(joined).group_by(sa.func.coalesce(c.service, f.service), c.disposition,
                                              c.rules_version, f.outcome, f.override_code)).all()
            return issued, answered, items

        issued, answered, items = self._tx(counts)
        return build_report(Counter({tuple(r[:3]): r[3] for r in issued}),
                            Counter({tuple(r[:3]): r[3] for r in answered}),
                            Counter({tuple(r[:5]): r[5] for r in items}))


class WriteTurn:
    """The serving processes of one SQLite database take turns to write it: a flock(2) on
    `<database>.write-lock`, taken before a write transaction and given back once it committed or
    rolled back. SQLite lets one writer in at a time anyway; without turns, the gunicorn workers met
    its lock and each retry cost a transaction begun, refused and rolled back, then a sleep of 2-50 ms
    while the lock was mostly free again (docs/performance.md, "Writers take turns"). A turn is asked
    for with a non-blocking flock, again every POLL_SECONDS (time.sleep: gevent's in a gevent worker,
    so the worker's other calls go on), until the caller's deadline. Writers that do not take turns
    (the command line, another program) are still met by SQLite's lock and the retries of `_tx`. A
    process's turn is released by the kernel when it dies (kill -9 included)."""

    POLL_SECONDS = 0.001

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".write-lock")
        self._fd: int | None = None
        self._pid: int | None = None

    def _file(self) -> int:
        pid = os.getpid()
        if self._pid != pid:  # a forked worker opens its own: a flock belongs to an open file
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._pid = pid
        return self._fd

    def take(self, deadline: float) -> bool:
        """Wait for this process's turn until `deadline` (time.monotonic()); False when it did not come."""
        fd = self._file()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() + self.POLL_SECONDS >= deadline:
                    return False
                time.sleep(self.POLL_SECONDS)

    def give(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def open_store(settings, serving: bool = False) -> "SqlStore":
    """The store the settings name (LEGTRIAGE_DATABASE_URL, else SQLite in LEGTRIAGE_DATA_DIR);
    `serving`: the app's, whose writes wait at most STORE_WAIT_SECONDS for a locked database."""
    return SqlStore(settings.database_url, STORE_WAIT_SECONDS if serving else None)


def _sqlite_busy(err: DBAPIError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the write lock."""
    import sqlite3
    return isinstance(err.orig, sqlite3.OperationalError) and any(
        word in str(err.orig).lower() for word in ("database is locked", "database table is locked", "busy"))


def _own_file(database: str) -> bool:
    """A SQLite URL's database names a file of its own: not in memory, not a URI SQLite opens itself."""
    return database not in ("", ".", ":memory:") and not database.startswith("file:")


def private_sqlite_files(db: Path) -> None:
    """The SQLite folder 0700 when this makes it, the database 0600 (made empty when missing; SQLite
    gives its -wal and -shm files the database's mode), and files left readable by an older version
    made 0600. A folder that already exists is left as it is: it may be a mount the operator owns."""
    if not _own_file(str(db)):
        return  # no file of its own (an in-memory database) or a URI SQLite opens itself
    if not db.parent.is_dir():
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
                 db.with_name(db.name + ".migrate-lock"), db.with_name(db.name + ".write-lock")):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except (FileNotFoundError, PermissionError):
            pass


def cooperative_psycopg() -> None:
    """psycopg chooses how it waits for the server when it is imported: its C wait (poll() in C)
    unless gevent had patched select by then. gunicorn imports it in the master (preload_app),
    before each gevent worker patches, so a worker would stop all its greenlets on every query.
    Once select is patched (in such a worker), use psycopg's poll()-based wait, which is gevent's."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("select"):
        return
    from psycopg import waiting
    if waiting.wait is not waiting.wait_poll:
        waiting.wait = waiting.wait_poll

