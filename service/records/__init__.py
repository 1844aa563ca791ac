"""The records: an audit record per call, the CDS Hooks cards issued and the feedback on them.
Only references and codes are kept, never answers, tokens or free text from the request.

This module: the record types, `note(...)` (a view says what it knows as soon as it knows it) and
`RecordStore`, the interface the service codes against. The room's other modules:

store.py         the SQL store (SQLite or PostgreSQL), group_commit.py, schema.py and migrations/
audit.py         the after_request hook that writes each call's record, and the FHIR AuditEvent
search.py        GET /fhir/AuditEvent's search parameters, one table
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from service.records.search import AuditQuery


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


def note(**known) -> None:
    """What this request's audit record should say (kind, service, patient, rules_version, ...):
    AuditRecord's fields, gathered as the call goes and made into one record when it ends."""
    from flask import g  # here, not at the top: the migration's child process loads this package

    fields = g.get("audit_fields")
    if fields is None:
        g.audit_fields = known
    else:
        fields.update(known)


def migration_child() -> subprocess.Popen:
    """The process that brings a store's schema to HEAD (SqlStore._upgrade): it loads the store and
    Alembic first, then reads the database URL on stdin and migrates; closed stdin (nothing read)
    ends it untouched. Started from here, without SQLAlchemy loaded, so that a first start can
    launch it before the app loads anything (service/__init__.py)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from service.records.store import SqlStore; "
         "import alembic.command, alembic.runtime.migration; url = sys.stdin.read(); "
         "s = SqlStore(url) if url else sys.exit(); print(s.migrate()); s.close()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2])
