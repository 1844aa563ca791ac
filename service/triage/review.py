"""Clinical review of rule versions: the vignettes run against a version, and the figures.

A vignette (clinical/vignettes/*.yaml) is a story: answers, the expected result, the source passage.
`versions:` lists the rule versions its expectation is for; without it, it holds for every version
(a story that must not change). When a version changes a story on purpose, the old vignette keeps
the old version in `versions:` and a new one (`replaces:` the old id) states the new expectation.
The newest version's vignettes are the reviewed expectations: running an older version against them
shows its under- and over-triage.

The stories and the stored answer sets come in as plain data (`ClinicalData`): service/clinical.py
reads clinical/ and maps each one's answers to facts as $triage does; nothing here reads a file.

    .venv/bin/legtriage rules review      # the figures of every version (Markdown)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from service.triage.engine import Registry, evaluate
from service.triage.facts import Facts
from service.triage.model import Assessment, Disposition
from service.triage.rules import RuleModule
from service.triage.wording import Wording

DISPOSITIONS = [d.code for d in sorted(Disposition, reverse=True)]


@dataclass(frozen=True)
class AnswerSet:
    """One stored set of answers, as the facts the rules read."""

    id: str
    origin: str  # where it is stored, for the counts
    facts: Facts
    as_response: bool = False  # stored as a whole QuestionnaireResponse (an example), not as answers


@dataclass(frozen=True)
class ClinicalData:
    """What the reviews, the release notes and the safety case run on, read by service/clinical.py."""

    vignettes: list[dict]  # the stories of clinical/vignettes, each with "facts": its answers as Facts
    stored: list[AnswerSet]  # the answer sets of clinical/golden/answers.json
    frozen: dict[str, dict[str, str]]  # rules version -> answer set id -> its frozen disposition
    forms: dict[str, frozenset[str]]  # other hospitals' forms (canonical, by url) -> the facts each asks
    link_ids: dict[str, str]  # fact -> the linkId of our Questionnaire that answers it
    priorities: dict[str, str]  # disposition code -> ServiceRequest.priority
    displays: dict[str, str]  # disposition code -> its display
    terms: dict  # mappings/terminology.yaml: the words of causes and proposals
    wording: Wording  # each fact in the Questionnaire's words


def applies(case: dict, version: str) -> bool:
    return "versions" not in case or version in case["versions"]


def assess(module: RuleModule, case: dict) -> Assessment:
    return evaluate(module, case["facts"])


@dataclass(frozen=True)
class Observed:
    """What a clinician sees of one result, read from an Assessment or from the Bundle alike."""

    disposition: str
    causes: tuple[str, ...]  # terminology keys, in the order shown
    proposals: dict[str, str]  # terminology key -> ServiceRequest.priority
    advice: str  # RiskAssessment.mitigation
    evidence: dict[str, frozenset[str]]  # rule id -> linkIds its rationale lists (rules naming causes)


def observe(result: Assessment, data: ClinicalData) -> Observed:
    priority, link_ids = data.priorities, data.link_ids
    evidence = {}
    for p in result.predictions:
        for f in p.findings:
            evidence[f.rule.id] = frozenset(link_ids[name] for name, _ in f.evidence)
    return Observed(result.disposition.code, tuple(p.cause for p in result.predictions),
                    {p.key: priority[p.disposition.code] for p in result.proposals},
                    "\n".join(a.text for a in result.advice), evidence)


def problems(case: dict, seen: Observed) -> list[str]:
    """What in the result differs from the vignette's expectation (empty: it agrees)."""
    expect = case["expect"]
    causes, proposals = set(seen.causes), set(seen.proposals)
    out = []
    if seen.disposition != expect["disposition"]:
        out.append(f"disposition {seen.disposition}, expected {expect['disposition']}")
    for key, have, wanted in (("causes", causes, True), ("not_causes", causes, False),
                              ("proposals", proposals, True), ("not_proposals", proposals, False)):
        named = set(expect.get(key) or [])
        wrong = named - have if wanted else named & have
        if wrong:
            out.append(f"{key}: {sorted(wrong)}")
    if len(proposals) > expect.get("max_proposals", 99):
        out.append(f"{len(proposals)} proposals, at most {expect['max_proposals']} expected")
    if "first_cause" in expect and seen.causes[:1] != (expect["first_cause"],):
        out.append(f"first cause {seen.causes[:1]}, expected {expect['first_cause']}")
    for key in expect.get("urgent_proposals") or []:
        if seen.proposals.get(key) not in ("urgent", "stat"):
            out.append(f"{key} has priority {seen.proposals.get(key)}, expected urgent or stat")
    for text in expect.get("advice") or []:
        if text not in seen.advice:
            out.append(f"advice lacks {text!r}")
    for text in expect.get("not_advice") or []:
        if text in seen.advice:
            out.append(f"advice has {text!r}")
    for rule_id, links in (expect.get("evidence") or {}).items():
        if seen.evidence.get(rule_id) != frozenset(links):
            out.append(f"rationale of {rule_id} lists {sorted(seen.evidence.get(rule_id, ()))}, "
                       f"expected {sorted(links)}")
    return out


@dataclass
class Figures:
    """One version against one set of vignettes."""

    version: str
    total: int = 0
    exact: int = 0  # same disposition as expected
    agree: int = 0  # every expectation met (disposition, causes, proposals)
    under: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DISPOSITIONS, 0))
    over: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DISPOSITIONS, 0))
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DISPOSITIONS, 0))
    proposals: int = 0
    most_proposals: int = 0

    @property
    def mean_proposals(self) -> float:
        return self.proposals / self.total if self.total else 0.0


def figures(module: RuleModule, cases: list[dict], data: ClinicalData) -> Figures:
    """Exact agreement, and under- and over-triage counted by the expected disposition."""
    fig = Figures(module.version)
    for case in cases:
        result = assess(module, case)
        wanted = Disposition[case["expect"]["disposition"].upper().replace("-", "_")]
        fig.total += 1
        fig.expected[wanted.code] += 1
        fig.exact += result.disposition == wanted
        fig.agree += not problems(case, observe(result, data))
        if result.disposition < wanted:
            fig.under[wanted.code] += 1
        elif result.disposition > wanted:
            fig.over[wanted.code] += 1
        fig.proposals += len(result.proposals)
        fig.most_proposals = max(fig.most_proposals, len(result.proposals))
    return fig


def figures_table(rows: list[tuple[str, Figures]]) -> str:
    lines = ["| version | vignettes | exact disposition | all expectations met | "
             + " | ".join(f"under ({d})" for d in DISPOSITIONS[:3]) + " | "
             + " | ".join(f"over ({d})" for d in DISPOSITIONS[1:]) + " | mean proposals | most |",
             "|---" * 12 + "|"]
    for label, f in rows:
        lines.append(
            f"| {label} | {f.total} | {f.exact} ({100 * f.exact / f.total:.0f}%) | {f.agree} | "
            + " | ".join(f"{f.under[d]} of {f.expected[d]}" for d in DISPOSITIONS[:3]) + " | "
            + " | ".join(f"{f.over[d]} of {f.expected[d]}" for d in DISPOSITIONS[1:])
            + f" | {f.mean_proposals:.2f} | {f.most_proposals} |")
    return "\n".join(lines) + "\n"


def all_figures(registry: Registry, cases: list[dict], data: ClinicalData) -> list[tuple[str, Figures]]:
    """Each version on its own vignettes, then each older version on the newest one's (the reviewed
    expectations)."""
    newest = registry.versions[-1]
    reviewed = [c for c in cases if applies(c, newest)]
    rows = [(f"{v} on its own vignettes", figures(m, [c for c in cases if applies(c, v)], data))
            for v, m in registry.modules.items()]
    rows += [(f"{v} on the {newest} vignettes", figures(m, reviewed, data))
             for v, m in registry.modules.items() if v != newest]
    return rows
