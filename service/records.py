"""What the service records, as an interface: audit events of calls, CDS Hooks cards and feedback.

Every `$triage` and CDS Hooks call leaves one audit record; every CDS card issued is remembered so
that feedback can be kept with the card it answers (../shared/DESIGN.md, "Records"). Only references
and codes are recorded, never answers, tokens or free text from the request.

Views say what they know with `note(...)` as soon as they know it; the store writes the record.
`RecordStore` is the interface the rest of the service codes against; `MemoryStore` keeps records in
the process (tests, and until the persistent store is configured).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

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


@dataclass(frozen=True)
class CardRecord:
    """A CDS Hooks card as issued, so that feedback on it can be matched and reported."""

    card_uuid: str
    hook_instance: str
    service: str
    disposition: str
    rules_version: str
    issued: str = ""  # FHIR instant, set by the store when empty


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


class RecordStore(Protocol):
    def audit(self, record: AuditRecord) -> None: ...
    def card_issued(self, record: CardRecord) -> None: ...
    def feedback(self, records: Sequence[FeedbackRecord]) -> None: ...
    def ready(self) -> bool: ...


@dataclass
class MemoryStore:
    """Records kept in this process only (lost on restart)."""

    audits: list[AuditRecord] = field(default_factory=list)
    cards: dict[str, CardRecord] = field(default_factory=dict)
    feedbacks: list[FeedbackRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def audit(self, record: AuditRecord) -> None:
        with self._lock:
            self.audits.append(record)

    def card_issued(self, record: CardRecord) -> None:
        with self._lock:
            self.cards[record.card_uuid] = record

    def feedback(self, records: Sequence[FeedbackRecord]) -> None:
        with self._lock:
            self.feedbacks.extend(records)

    def ready(self) -> bool:
        return True


def note(**known) -> None:
    """What this request's audit record should say (kind, service, patient, rules_version, ...)."""
    current = g.get("audit")
    g.audit = replace(current, **known) if current else AuditRecord(**known)
