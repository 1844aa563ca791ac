"""The records store (service/records) on SQLite and on a real PostgreSQL: the same tests for both."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from service.records import (AuditRecord, CardRecord, FeedbackRecord, StoreUnavailable, instant,
                             instant_us, now_us)
from service.records.search import AuditQuery
from service.records.store import HEAD, SqlStore
from service.records.schema import metadata
from tests.support.records_memory import MemoryStore, feedback_on
from tests.support import ROOT, legtriage


@pytest.fixture()
def store(database_url):
    s = SqlStore(database_url)
    assert s.start()
    yield s
    s.close()


def test_migrations_make_exactly_the_schema_the_code_uses(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine().connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": "legtriage_schema_version"})
        assert ctx.get_current_revision() == HEAD
        diffs = [d for d in compare_metadata(ctx, metadata)
                 if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "legtriage_schema_version")]
    assert diffs == []


def test_head_is_the_newest_migration_and_start_needs_no_alembic_when_there(database_url):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from service.records.store import HEAD, MIGRATIONS
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD
    s = SqlStore(database_url)
    assert s.revision() is None
    assert s.start() and s.revision() == HEAD  # migrated by a child process
    code = ("import sys; from service.records.store import SqlStore; s = SqlStore(sys.argv[1]); "
            "assert s.start(); s.audit(__import__('service.records').records.AuditRecord(kind='triage', status=200)); "
            "s.close(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    run = subprocess.run([sys.executable, "-c", code, database_url], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"  # a serving process at HEAD never loads Alembic
    assert s.count_audits() == 1
    s.close()


def test_migrating_again_and_from_many_threads_at_once_is_safe(database_url):
    stores = [SqlStore(database_url) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        revisions = list(pool.map(lambda s: s.migrate(), stores))
    assert revisions == [HEAD] * 6
    stores[0].audit(AuditRecord(kind="triage", status=200))
    assert stores[0].migrate() == HEAD and stores[1].count_audits() == 1
    for s in stores:
        s.close()


def test_an_audit_record_keeps_references_and_codes(store):
    store.audit(AuditRecord(kind="triage", status=200, patient="Patient/p1",
                            questionnaire_response="QuestionnaireResponse/q1", rules_version="1.0.0",
                            disposition="urgent", agent_iss="https://ehr.example.org", agent_sub="c-1"))
    store.audit(AuditRecord(kind="cds-hook", status=503, service="leg-numbness-triage"))
    newest, first = store.search_audits(AuditQuery())
    assert (first.kind, first.status, first.patient, first.questionnaire_response, first.rules_version,
            first.disposition, first.agent_iss, first.agent_sub) == (
        "triage", 200, "Patient/p1", "QuestionnaireResponse/q1", "1.0.0", "urgent",
        "https://ehr.example.org", "c-1")
    assert (newest.kind, newest.service, newest.status, newest.agent_iss) == (
        "cds-hook", "leg-numbness-triage", 503, None)
    assert len({first.id, newest.id}) == 2 and first.recorded < newest.recorded
    assert instant(instant_us(first.recorded)) == first.recorded  # exact to the microsecond


def _at(store, *offsets_s: float, **fields) -> list[int]:
    base = now_us() - 10_000_000_000
    times = [base + int(o * 1_000_000) for o in offsets_s]
    for t in times:
        store.audit(AuditRecord(kind="triage", status=fields.get("status", 200), recorded=instant(t),
                                patient=fields.get("patient")))
    return times


def test_search_filters_by_time_patient_and_outcome(store):
    times = _at(store, 0, 1, 2, 3, patient="Patient/a")
    _at(store, 1.5, patient="Patient/b", status=422)
    q = lambda **kw: [r.patient for r in store.search_audits(AuditQuery(**kw))]  # noqa: E731
    assert len(q(since_us=times[1], until_us=times[3])) == 3  # 1, 1.5, 2
    assert q(patient="Patient/b") == ["Patient/b"]
    assert q(outcomes=("4",)) == ["Patient/b"]
    assert len(q(outcomes=("0", "4"))) == 5 and q(outcomes=("8",)) == []


def test_paging_walks_every_record_once_newest_first(store):
    _at(store, *range(23))
    for _ in range(3):  # several at the same instant: the id breaks the tie
        store.audit(AuditRecord(kind="triage", status=200, recorded=instant(now_us() - 5_000_000)))
    seen, before = [], None
    while True:
        page = store.search_audits(AuditQuery(count=7, before=before))
        seen += page
        if len(page) < 7:
            break
        before = (instant_us(page[-1].recorded), page[-1].id)
    assert len(seen) == 26 == len({r.id for r in seen})
    assert [(r.recorded, r.id) for r in seen] == sorted(((r.recorded, r.id) for r in seen), reverse=True)


def test_purge_removes_only_what_is_older_than_the_cut(store):
    times = _at(store, 0, 10, 20)
    assert store.purge_audits(times[1]) == 1
    assert store.count_audits() == 2
    assert store.purge_audits(times[0]) == 0


CARDS = [CardRecord("u-1", "h-1", "leg-numbness-triage", "emergency", "1.0.0"),
         CardRecord("u-2", "h-2", "leg-numbness-triage", "emergency", "1.0.0"),
         CardRecord("u-3", "h-3", "leg-numbness-triage", "routine", "1.0.0"),
         CardRecord("u-4", "h-4", "leg-numbness-triage-encounter", "urgent", "1.0.0")]
FEEDBACK = [
    FeedbackRecord("u-1", "leg-numbness-triage", "accepted", "2026-11-30T10:00:00Z", ("s-1",)),
    FeedbackRecord("u-2", "leg-numbness-triage", "overridden", "2026-11-30T10:01:00Z",
                   override_code="patient-declined", override_system="http://legtriage.example.org/x"),
    FeedbackRecord("u-2", "leg-numbness-triage", "overridden", "2026-11-30T10:02:00Z",
                   user_comment="Ambulance already called.", iss="https://ehr.example", tenant="north"),
    FeedbackRecord("u-3", "leg-numbness-triage", "accepted", "2026-11-30T10:03:00Z", ("s-9", "s-8")),
    FeedbackRecord("u-x", "leg-numbness-triage", "accepted", "2026-11-30T10:04:00Z", ("s-7",)),
]


def _report(s):
    return {(r.service, r.disposition): (r.cards, r.cards_with_feedback, r.accepted, r.overridden,
                                         r.acceptance_rate, r.override_rate, r.override_reasons)
            for r in s.report()}


EXPECTED_REPORT = {
    ("leg-numbness-triage", "emergency"): (2, 2, 1, 2, 1 / 3, 2 / 3, (("(none)", 1), ("patient-declined", 1))),
    ("leg-numbness-triage", "routine"): (1, 1, 1, 0, 1.0, 0.0, ()),
    ("leg-numbness-triage-encounter", "urgent"): (1, 0, 0, 0, None, None, ()),
    ("leg-numbness-triage", None): (0, 1, 1, 0, 1.0, 0.0, ()),  # feedback on a card never issued here
}


def test_feedback_is_kept_with_its_card_and_reported(store):
    for card in CARDS + CARDS[:1]:  # the same card twice (a retried hook) is kept once
        store.card_issued(card)
    store.feedback(FEEDBACK)
    assert _report(store) == EXPECTED_REPORT
    with store.engine().connect() as conn:
        kept = conn.execute(sa.text("SELECT accepted_suggestions FROM cds_feedback "
                                    "WHERE card_uuid = 'u-3'")).scalar_one()
    assert (json.loads(kept) if isinstance(kept, str) else kept) == ["s-9", "s-8"]
    assert feedback_on(store, "u-2") == FEEDBACK[1:3]  # every field back, in the order it came
    assert feedback_on(store, "u-4") == [] and store.card("u-9") is None
    card = store.card("u-1")
    assert (card.hook_instance, card.disposition, card.rules_version) == ("h-1", "emergency", "1.0.0")
    assert card.issued.endswith("Z")


def test_the_memory_store_reports_the_same():
    mem = MemoryStore()
    for card in CARDS:
        mem.card_issued(card)
    mem.feedback(FEEDBACK)
    assert _report(mem) == EXPECTED_REPORT
    kept = mem.card("u-1")
    assert mem.feedback_on("u-2") == FEEDBACK[1:3] and kept == replace(CARDS[0], issued=kept.issued)
    assert kept.issued.endswith("Z")  # stamped when issued, as the SQL store does: purge cuts by it


def test_report_command_prints_markdown_and_json(database_url, tmp_path):
    s = SqlStore(database_url)
    s.start()
    for card in CARDS:
        s.card_issued(card)
    s.feedback(FEEDBACK)
    s.close()
    run = lambda *a: legtriage(*a, database_url=database_url)  # noqa: E731
    md = run("report")
    assert md.returncode == 0, md.stderr
    assert "| leg-numbness-triage | emergency | 1.0.0 | 2 | 2 | 1 | 2 | 33.3 % | 66.7 % |" in md.stdout
    assert "| leg-numbness-triage | emergency | 1.0.0 | patient-declined | 1 |" in md.stdout
    rows = json.loads(run("report", "--json").stdout)["rows"]
    emergency = next(r for r in rows if r["disposition"] == "emergency")
    assert (emergency["cards"], emergency["accepted"], emergency["overridden"]) == (2, 1, 2)
    assert emergency["overrideRate"] == pytest.approx(2 / 3)
    purge = run("purge", "--days", "1")
    assert purge.returncode == 0 and "removed 0" in purge.stdout
    assert run("migrate").stdout.strip() == f"schema at revision {HEAD}"


def test_writes_from_many_threads_are_all_kept(store):
    def write(i: int) -> None:
        store.audit(AuditRecord(kind="triage", status=200, patient=f"Patient/{i}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(200)))
    assert store.count_audits() == 200


def test_an_unreachable_database_raises_store_unavailable_and_recovers(pg):
    s = SqlStore(pg.new_database())
    assert s.start()
    s.audit(AuditRecord(kind="triage", status=200))
    pg.stop()
    try:
        assert s.ready() is False
        with pytest.raises(StoreUnavailable):
            s.audit(AuditRecord(kind="triage", status=200))
        with pytest.raises(StoreUnavailable):
            s.search_audits(AuditQuery())
    finally:
        pg.start()
    assert s.ready() is True  # the dropped connections are replaced, no restart needed
    s.audit(AuditRecord(kind="triage", status=200))
    assert s.count_audits() == 2
    s.close()


def test_a_database_not_there_at_start_is_retried_on_use(tmp_path):
    from tests.support.servers import free_port
    s = SqlStore(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    assert s.start() is False
    assert s.ready() is False
    with pytest.raises(StoreUnavailable):
        s.audit(AuditRecord(kind="triage", status=200))
    # SQLite: a data directory that cannot be made (a file is in the way)
    (tmp_path / "file").write_text("")
    blocked = SqlStore(f"sqlite:///{tmp_path / 'file' / 'db.sqlite3'}")
    assert blocked.start() is False and blocked.ready() is False
