"""Records kept in this process, for tests: `MemoryStore`, the in-memory stand-in of the SQL store
(service/records/store.py), and `feedback_on`, the feedback a store kept on one card."""
from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import sqlalchemy as sa

from service.records import (AuditRecord, CardRecord, FeedbackRecord, Purged, ReportRow, build_report,
                             feedback_key, instant, now_us)
from service.records.schema import cds_feedback
from service.records.search import AuditQuery, matches


def feedback_on(store, card_uuid: str) -> list[FeedbackRecord]:
    """The feedback `store` (a MemoryStore or the SQL store) kept on one card, in the order it came."""
    if isinstance(store, MemoryStore):
        return store.feedback_on(card_uuid)
    f = cds_feedback.c
    rows = store._tx(lambda conn: conn.execute(
        sa.select(cds_feedback).where(f.card_uuid == card_uuid).order_by(f.id)).mappings().all())
    return [FeedbackRecord(r["card_uuid"], r["service"], r["outcome"], r["outcome_timestamp"],
                           accepted_suggestions=tuple(r["accepted_suggestions"]),
                           override_code=r["override_code"], override_system=r["override_system"],
                           iss=r["iss"], tenant=r["tenant"], user_comment=r["user_comment"])
            for r in rows]


@dataclass
class MemoryStore:
    """Records kept in this process only (lost on restart)."""

    audits: list[AuditRecord] = field(default_factory=list)
    cards: dict[str, CardRecord] = field(default_factory=dict)
    feedbacks: list[FeedbackRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def audit(self, record: AuditRecord) -> None:
        with self._lock:
            self.audits.append(_stamped(record))

    def card_issued(self, record: CardRecord) -> None:
        with self._lock:
            self.cards.setdefault(record.card_uuid, replace(record, issued=record.issued or instant(now_us())))

    def feedback(self, records: Sequence[FeedbackRecord]) -> None:
        with self._lock:
            kept = {(f.card_uuid, feedback_key(f)) for f in self.feedbacks}
            for f in records:
                if (f.card_uuid, feedback_key(f)) not in kept:
                    kept.add((f.card_uuid, feedback_key(f)))
                    self.feedbacks.append(f)

    def ready(self) -> bool:
        return True

    def search_audits(self, query: AuditQuery) -> list[AuditRecord]:
        with self._lock:
            found = [a for a in self.audits if matches(a, query)]
        found.sort(key=lambda a: (a.recorded, a.id), reverse=True)
        return found[:query.count]

    def purge_audits(self, before_us: int) -> int:
        return self.purge(before_us).audits

    def purge(self, before_us: int) -> Purged:
        """Audit events and cards older than the cut (the memory store keeps no feedback times:
        feedback goes with its card)."""
        cut = instant(before_us)
        with self._lock:
            kept = [a for a in self.audits if a.recorded >= cut]
            audits, self.audits[:] = len(self.audits) - len(kept), kept
            old = {u for u, c in self.cards.items() if c.issued and c.issued < cut}
            for u in old:
                del self.cards[u]
            items = [f for f in self.feedbacks if f.card_uuid not in old]
            feedback, self.feedbacks[:] = len(self.feedbacks) - len(items), items
        return Purged(audits, len(old), feedback)

    def report(self) -> list[ReportRow]:
        with self._lock:
            cards = list(self.cards.values())
            items = list(self.feedbacks)
        return _report_from(cards, items)

    def card(self, card_uuid: str) -> CardRecord | None:
        with self._lock:
            return self.cards.get(card_uuid)

    def feedback_on(self, card_uuid: str) -> list[FeedbackRecord]:
        """The feedback kept on one card, in the order it came."""
        with self._lock:
            return [f for f in self.feedbacks if f.card_uuid == card_uuid]


def _stamped(record: AuditRecord) -> AuditRecord:
    """The record with its id and time, as a store keeps it."""
    if record.id and record.recorded:
        return record
    return replace(record, id=record.id or str(uuid.uuid4()), recorded=record.recorded or instant(now_us()))


def _report_from(cards: Iterable[CardRecord], items: Iterable[FeedbackRecord]) -> list[ReportRow]:
    by_uuid = {c.card_uuid: c for c in cards}
    issued = Counter((c.service, c.disposition, c.rules_version) for c in by_uuid.values())
    feedback, seen = Counter(), set()
    for f in items:
        card = by_uuid.get(f.card_uuid)
        key = (card.service, card.disposition, card.rules_version) if card else (f.service, None, None)
        feedback[key + (f.outcome, f.override_code)] += 1
        seen.add((key, f.card_uuid))
    return build_report(issued, Counter(k for k, _ in seen), feedback)
