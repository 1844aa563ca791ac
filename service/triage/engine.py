"""Pick a rule module version and run it: facts in, assessment out. Pure: no Flask, no FHIR."""
from __future__ import annotations

from service.triage.facts import Facts
from service.triage.model import (Assessment, Disposition, Finding, Prediction, Proposal, Risk)
from service.triage.reads import Recorder
from service.triage.rules import RuleModule, discover


class UnknownRulesVersion(LookupError):
    """No published rule module has the version asked for; `asked_by` names who asked (e.g. the
    request element), for the error message."""

    def __init__(self, requested: str, available: list[str], asked_by: str | None = None):
        super().__init__(requested)
        self.requested, self.available, self.asked_by = requested, available, asked_by


class Registry:
    """The published rule modules; the default is the newest active one unless configured."""

    def __init__(self, modules: dict[str, RuleModule] | None = None, default: str | None = None):
        self.modules = modules if modules is not None else discover()
        active = [v for v, m in self.modules.items() if m.status == "active"]
        if not active:
            raise RuntimeError("no active rule module")
        self.default_version = default or active[-1]
        self.get(self.default_version)  # fail at start on a bad configured default

    @property
    def versions(self) -> list[str]:
        return list(self.modules)

    def get(self, version: str | None = None, asked_by: str | None = None) -> RuleModule:
        version = version or self.default_version
        try:
            return self.modules[version]
        except KeyError:
            raise UnknownRulesVersion(version, self.versions, asked_by) from None


def evaluate(module: RuleModule, facts: Facts) -> Assessment:
    """Run every rule of the module; the disposition is the highest floor among the rules that fired.
    A module's own steps (rank_causes, choose_proposals, advise), where it has them, then shape the
    causes' order, the proposals and the advice."""
    reported = facts.known()
    findings = []
    for rule in module.rules:
        if rule.when(facts):
            # Run again through a recorder for the facts it read (predicates are pure): only the
            # rules that fired, a few of the module's, pay for the recording.
            read: dict[str, None] = {}
            rule.when(Recorder(facts, read))
            findings.append(Finding(
                rule, tuple((name, reported[name]) for name in rule.uses if name in reported),
                tuple((name, reported[name]) for name in read if name in reported)))
    findings = tuple(findings)
    disposition = max((f.rule.floor for f in findings), default=Disposition.ROUTINE)

    causes: dict[str, tuple[Risk, list[Finding]]] = {}
    for finding in findings:
        for cause, risk in finding.rule.causes:
            best, why = causes.get(cause, (risk, []))
            causes[cause] = (max(best, risk), why + [finding])
    if not causes and disposition > Disposition.SELF_CARE:
        causes[module.fallback_cause] = (Risk.MODERATE, [f for f in findings if f.rule.floor > 0])
    predictions = tuple(sorted(
        (Prediction(cause, risk, tuple(why)) for cause, (risk, why) in causes.items()),
        key=lambda p: -p.risk))  # stable: equal risks keep rule order
    if module.rank_causes is not None:
        predictions = module.rank_causes(facts, predictions)

    wanted: dict[str, tuple[Disposition, list[Finding]]] = {}
    main = module.main_referral.get(disposition)
    if main:
        wanted[main] = (disposition, [f for f in findings if f.rule.floor == disposition])
    for finding in findings:
        for key in finding.rule.proposals:
            level, why = wanted.get(key, (finding.rule.floor, []))
            wanted[key] = (max(level, finding.rule.floor), why + [finding])
    proposals = tuple(Proposal(key, max(level, Disposition.ROUTINE), tuple(why), key == main)
                      for key, (level, why) in wanted.items())
    if module.choose_proposals is not None:
        proposals = module.choose_proposals(disposition, proposals)

    if module.advise is not None:
        advice = module.advise(disposition, facts, predictions)
    else:
        advice = module.safety_net_advice
        if disposition == Disposition.SELF_CARE:
            advice = module.self_care_advice + advice
    return Assessment(module.version, disposition, findings, predictions, proposals, advice)
