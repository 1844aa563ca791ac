"""The vocabulary the rule modules are written in: dispositions, risks, citations, rules, results.

No Flask, no FHIR: a rule module imports only this and the facts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Callable, Iterable

from service.triage.facts import Facts


class Disposition(IntEnum):
    """How soon the patient should be seen; a higher value is more urgent."""

    SELF_CARE = 0
    ROUTINE = 1
    URGENT = 2
    EMERGENCY = 3

    @property
    def code(self) -> str:
        return self.name.lower().replace("_", "-")


class Risk(IntEnum):
    """Qualitative risk (http://terminology.hl7.org/CodeSystem/risk-probability)."""

    LOW = 1
    MODERATE = 2
    HIGH = 3

    @property
    def code(self) -> str:
        return self.name.lower()


EMERGENCY, URGENT, ROUTINE, SELF_CARE = (Disposition.EMERGENCY, Disposition.URGENT,
                                         Disposition.ROUTINE, Disposition.SELF_CARE)
HIGH, MODERATE, LOW = Risk.HIGH, Risk.MODERATE, Risk.LOW


@dataclass(frozen=True)
class Cite:
    """A passage of a source document (file name in shared/sources) that a rule rests on."""

    file: str
    quote: str

    def __str__(self) -> str:
        return f'{self.file}: "{self.quote}"'


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    when: Callable[[Facts], bool]
    floor: Disposition
    causes: tuple[tuple[str, Risk], ...]
    proposals: tuple[str, ...]
    cites: tuple[Cite, ...]
    uses: tuple[str, ...]
    common_sense: str | None = None

    @property
    def condition(self) -> str:
        """The predicate's docstring: the condition in clinical words."""
        return (self.when.__doc__ or self.title).strip()


class RuleBook:
    """The ordered rules of one module, declared with the @book.rule(...) decorator."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def rule(self, id: str, title: str, *, floor: Disposition, uses: Iterable[str],
             cites: Iterable[Cite], causes: dict[str, Risk] | None = None,
             proposals: Iterable[str] = (), common_sense: str | None = None):
        def register(when: Callable[[Facts], bool]) -> Callable[[Facts], bool]:
            if any(r.id == id for r in self.rules):
                raise ValueError(f"duplicate rule id {id}")
            self.rules.append(Rule(id, title, when, floor, tuple((causes or {}).items()),
                                   tuple(proposals), tuple(cites), tuple(uses), common_sense))
            return when
        return register


@dataclass(frozen=True)
class Advice:
    text: str
    cites: tuple[Cite, ...]
    common_sense: str | None = None  # what the advice adds beyond the sources


@dataclass(frozen=True)
class Finding:
    """A rule that fired, with the reported facts it looked at.

    `evidence`: the reported facts among the rule's declared `uses` (what 1.0.0 and 1.1.0 publish in
    their rationale); `read`: the reported facts its predicate actually read for this case, in the
    order read (recorded when it ran: the triage-evidence extension and the clinical texts)."""

    rule: Rule
    evidence: tuple[tuple[str, object], ...]
    read: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Prediction:
    cause: str
    risk: Risk
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Proposal:
    key: str
    disposition: Disposition  # the most urgent finding that asked for it
    findings: tuple[Finding, ...]
    main: bool = False


@dataclass(frozen=True)
class Assessment:
    rules_version: str
    disposition: Disposition
    findings: tuple[Finding, ...]
    predictions: tuple[Prediction, ...]
    proposals: tuple[Proposal, ...]
    advice: tuple[Advice, ...] = field(default_factory=tuple)
