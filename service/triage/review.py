"""Clinical review of rule versions: the vignettes run against a version, and the figures.

A vignette (tests/vignettes/*.yaml) is a story: answers, the expected result, the source passage.
`versions:` lists the rule versions its expectation is for; without it, it holds for every version
(a story that must not change). When a version changes a story on purpose, the old vignette keeps
the old version in `versions:` and a new one (`replaces:` the old id) states the new expectation.
The newest version's vignettes are the reviewed expectations: running an older version against them
shows its under- and over-triage.

    .venv/bin/legtriage rules review      # the figures of every version (Markdown)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from service.config import PROJECT_ROOT
from service.triage.engine import Registry, evaluate
from service.triage.facts import Facts
from service.triage.model import Assessment, Disposition
from service.triage.rules import RuleModule

VIGNETTE_DIR = PROJECT_ROOT / "tests" / "vignettes"
DISPOSITIONS = [d.code for d in sorted(Disposition, reverse=True)]


def load_vignettes(directory: Path = VIGNETTE_DIR) -> list[dict]:
    cases = []
    for path in sorted(directory.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            case["file"] = path.name
            cases.append(case)
    return cases


def applies(case: dict, version: str) -> bool:
    return "versions" not in case or version in case["versions"]


@lru_cache(maxsize=1)
def _catalog():
    from service.catalog import load_catalog
    return load_catalog(PROJECT_ROOT / "mappings", validate_fhir=False)


def facts_of(answers: dict) -> Facts:
    """The facts of compact vignette answers (linkId -> value), the way $triage maps them."""
    from service.mapping import answers_to_facts
    values = {link: value if isinstance(value, list) else [value] for link, value in answers.items()}
    return answers_to_facts(values, _catalog())[0]


def assess(module: RuleModule, case: dict) -> Assessment:
    return evaluate(module, facts_of(case["answers"]))


@dataclass(frozen=True)
class Observed:
    """What a clinician sees of one result, read from an Assessment or from the Bundle alike."""

    disposition: str
    causes: tuple[str, ...]  # terminology keys, in the order shown
    proposals: dict[str, str]  # terminology key -> ServiceRequest.priority
    advice: str  # RiskAssessment.mitigation
    evidence: dict[str, frozenset[str]]  # rule id -> linkIds its rationale lists (rules naming causes)


def observe(result: Assessment) -> Observed:
    priority = _catalog().disposition_priorities
    link_ids = {fact: link for link, fact in _catalog().fact_map.items()}
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


def figures(module: RuleModule, cases: list[dict]) -> Figures:
    """Exact agreement, and under- and over-triage counted by the expected disposition."""
    fig = Figures(module.version)
    for case in cases:
        result = assess(module, case)
        wanted = Disposition[case["expect"]["disposition"].upper().replace("-", "_")]
        fig.total += 1
        fig.expected[wanted.code] += 1
        fig.exact += result.disposition == wanted
        fig.agree += not problems(case, observe(result))
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


def all_figures(registry: Registry, cases: list[dict]) -> list[tuple[str, Figures]]:
    """Each version on its own vignettes, then each older version on the newest one's (the reviewed
    expectations)."""
    newest = registry.versions[-1]
    reviewed = [c for c in cases if applies(c, newest)]
    rows = [(f"{v} on its own vignettes", figures(m, [c for c in cases if applies(c, v)]))
            for v, m in registry.modules.items()]
    rows += [(f"{v} on the {newest} vignettes", figures(m, reviewed))
             for v, m in registry.modules.items() if v != newest]
    return rows
