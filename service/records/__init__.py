"""What the service records, as an interface: audit events of calls, CDS Hooks cards and feedback.

Every `$triage` and CDS Hooks call leaves one audit record; every CDS card issued is remembered so
that feedback can be kept with the card it answers (../shared/DESIGN.md, "Records"). Only references
and codes are recorded, never answers, tokens or free text from the request.

Views say what they know with `note(...)` as soon as they know it; the store writes the record.
`RecordStore` is the interface the rest of the service codes against; `MemoryStore` keeps records in
the process (tests, and until the persistent store is configured).
"""
from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Protocol, Sequence

from flask import g


class StoreUnavailable(RuntimeError):
    """The store cannot take a record now: the call that needed it must not answer as if it had."""


@dataclass(frozen=True)
class AuditRecord:
    """One call: who, when, what it concerned, how it ended. Becomes a FHIR R4 AuditEvent."""

    kind: str  # "triage" ($triage) or "cds-hook" (POST /cds-services/{id})
    recorded: str = ""  # FHIR instant, set by the store when empty
    status: int = 0  # the HTTP status answered
    service: str | None = None  # CDS service id
    agent_iss: str | None = None  # the token's iss and sub; both None = anonymous
    agent_sub: str | None = None
    patient: str | None = None  # reference, e.g. "Patient/123"
    questionnaire_response: str | None = None  # reference, e.g. "QuestionnaireResponse/9"
    rules_version: str | None = None
    disposition: str | None = None
    id: str = ""  # the AuditEvent id, set by the store when empty
    tenant: str | None = None


@dataclass(frozen=True)
class AuditQuery:
    """Which audit records to list, newest first: GET /fhir/AuditEvent's parameters, parsed."""

    since_us: int | None = None  # recorded >= this (microseconds since the epoch, UTC)
    until_us: int | None = None  # recorded < this
    patient: str | None = None  # a reference, e.g. "Patient/123"
    outcomes: tuple[str, ...] = ()  # audit-event-outcome codes; empty = any
    count: int = 50
    before: tuple[int, str] | None = None  # paging: (recorded_us, id) of the last record shown
    ignored: tuple[str, ...] = ()  # unsupported parameters left out (named in the searchset)


@dataclass(frozen=True)
class ReportRow:
    """Feedback figures of one (service, disposition, rules version)."""

    service: str
    disposition: str | None  # None: feedback on a card this store never saw issued
    rules_version: str | None
    cards: int = 0  # cards issued
    cards_with_feedback: int = 0
    accepted: int = 0  # feedback items
    overridden: int = 0
    override_reasons: tuple[tuple[str, int], ...] = ()  # (code or "(none)", count), most first

    @property
    def feedback(self) -> int:
        return self.accepted + self.overridden

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None


@dataclass(frozen=True)
class CardRecord:
    """A CDS Hooks card as issued, so that feedback on it can be matched and reported."""

    card_uuid: str
    hook_instance: str
    service: str
    disposition: str
    rules_version: str
    issued: str = ""  # FHIR instant, set by the store when empty
    tenant: str | None = None


@dataclass(frozen=True)
class FeedbackRecord:
    """One feedback item of POST /cds-services/{id}/feedback."""

    card_uuid: str
    service: str
    outcome: str  # accepted | overridden
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_code: str | None = None
    override_system: str | None = None
    iss: str | None = None
    tenant: str | None = None
    user_comment: str | None = None  # free text a clinician typed: stored, never logged


@dataclass(frozen=True)
class Purged:
    """What one purge removed."""

    audits: int = 0
    cards: int = 0
    feedback: int = 0


def feedback_key(f: FeedbackRecord) -> str:
    """A digest of everything a feedback item says about its card: the same item sent again (CDS
    clients repeat feedback) has the same key and is kept once."""
    said = "\x1f".join("" if v is None else v for v in (
        f.card_uuid, f.outcome, f.outcome_timestamp, "\x1e".join(f.accepted_suggestions),
        f.override_system, f.override_code, f.user_comment))
    return hashlib.sha256(said.encode()).hexdigest()


class RecordStore(Protocol):
    """Each write is durable when the call returns, or raises StoreUnavailable."""

    def audit(self, record: AuditRecord) -> None: ...
    def card_issued(self, record: CardRecord) -> None: ...
    def feedback(self, records: Sequence[FeedbackRecord]) -> None: ...
    def ready(self) -> bool: ...
    def search_audits(self, query: AuditQuery) -> list[AuditRecord]: ...
    def purge_audits(self, before_us: int) -> int: ...
    def purge(self, before_us: int) -> Purged: ...
    def report(self) -> list[ReportRow]: ...
    def card(self, card_uuid: str) -> CardRecord | None: ...
    def feedback_on(self, card_uuid: str) -> list[FeedbackRecord]: ...


# ---- time --------------------------------------------------------------------------------------

def now_us() -> int:
    return time.time_ns() // 1000


def instant(us: int) -> str:
    """Microseconds since the epoch as a FHIR instant (UTC, microsecond precision)."""
    return datetime.fromtimestamp(us / 1_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def instant_us(iso: str) -> int:
    """A FHIR instant as microseconds since the epoch (exact: no float in between)."""
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - _EPOCH) // timedelta(microseconds=1)


def outcome_code(status: int) -> str:
    """audit-event-outcome (http://hl7.org/fhir/audit-event-outcome) of an HTTP status: 0 success,
    4 minor failure (the caller's request was refused), 8 serious failure (this service failed)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def build_report(cards: Counter, answered: Counter, feedback: Counter) -> list[ReportRow]:
    """Report rows from counts keyed by (service, disposition, rules_version): cards issued, cards
    with feedback, and feedback items keyed further by (outcome, override code)."""
    keys = set(cards) | set(answered) | {k[:3] for k in feedback}
    rows = []
    for key in sorted(keys, key=lambda k: tuple("" if v is None else v for v in k)):
        mine = {k[3:]: n for k, n in feedback.items() if k[:3] == key}
        reasons = Counter()
        for (outcome, code), n in mine.items():
            if outcome == "overridden":
                reasons[code or "(none)"] += n
        rows.append(ReportRow(
            *key, cards=cards.get(key, 0), cards_with_feedback=answered.get(key, 0),
            accepted=sum(n for (o, _), n in mine.items() if o == "accepted"),
            overridden=sum(n for (o, _), n in mine.items() if o == "overridden"),
            override_reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))))
    return rows


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
            found = [a for a in self.audits if _matches(a, query)]
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


class NullStore:
    """LEGTRIAGE_RECORDS_ENABLED=false: nothing is recorded (for measuring what recording costs)."""

    def audit(self, record: AuditRecord) -> None:
        pass

    def card_issued(self, record: CardRecord) -> None:
        pass

    def feedback(self, records: Sequence[FeedbackRecord]) -> None:
        pass

    def ready(self) -> bool:
        return True

    def search_audits(self, query: AuditQuery) -> list[AuditRecord]:
        return []

    def purge_audits(self, before_us: int) -> int:
        return 0

    def purge(self, before_us: int) -> Purged:
        return Purged()

    def report(self) -> list[ReportRow]:
        return []

    def card(self, card_uuid: str) -> CardRecord | None:
        return None

    def feedback_on(self, card_uuid: str) -> list[FeedbackRecord]:
        return []


def _stamped(record: AuditRecord) -> AuditRecord:
    """The record with its id and time, as a store keeps it."""
    if record.id and record.recorded:
        return record
    return replace(record, id=record.id or str(uuid.uuid4()), recorded=record.recorded or instant(now_us()))


def _matches(a: AuditRecord, q: AuditQuery) -> bool:
    return ((q.since_us is None or a.recorded >= instant(q.since_us))
            and (q.until_us is None or a.recorded < instant(q.until_us))
            and (q.patient is None or a.patient == q.patient)
            and (not q.outcomes or outcome_code(a.status) in q.outcomes)
            and (q.before is None or (a.recorded, a.id) < (instant(q.before[0]), q.before[1])))


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


def note(**known) -> None:
    """What this request's audit record should say (kind, service, patient, rules_version, ...)."""
    current = g.get("audit")
    g.audit = replace(current, **known) if current else AuditRecord(**known)
