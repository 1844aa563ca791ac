"""The published rule modules, one per version (v1_0_0.py, ...), found by name."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from service.triage.model import Advice, Rule


@dataclass(frozen=True)
class RuleModule:
    version: str
    status: str  # active | retired
    date: str
    title: str
    rules: tuple[Rule, ...]
    sources: dict[str, str]
    main_referral: dict
    fallback_cause: str
    self_care_advice: tuple[Advice, ...]
    safety_net_advice: tuple[Advice, ...]
    module: ModuleType
    # Optional steps a module may define after its rules; None keeps 1.0.0's behaviour (the engine's
    # plain result), so what a version does after its rules lives in that version's file.
    rank_causes: Callable | None = None  # (facts, predictions) -> predictions
    choose_proposals: Callable | None = None  # (disposition, proposals) -> proposals
    advise: Callable | None = None  # (disposition, facts, predictions) -> advice
    replaces: str | None = None  # the version this one supersedes
    changes: str = "First published version."  # what changed since `replaces`
    retired: str | None = None  # the date it was retired, if it is
    superseded_by: str | None = None
    # How the texts a person reads are written (DESIGN.md "Explanations"): "legacy" keeps the texts
    # 1.0.0 and 1.1.0 were published with (rule ids, linkIds, source file names); "clinical" writes
    # clinical sentences, cites each source by its title and keeps the rest for the data
    # (the triage-evidence extension).
    explanations: str = "legacy"
    known_defects: tuple[str, ...] = ()  # plain sentences: why a retired version must not be used

    @property
    def id(self) -> str:
        return "leg-numbness-rules-" + self.version.replace(".", "-")


EXPLANATIONS = ("legacy", "clinical")


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def discover() -> dict[str, RuleModule]:
    """All rule modules in this package, keyed by version, oldest first."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("v"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        found[mod.VERSION] = RuleModule(
            version=mod.VERSION, status=mod.STATUS, date=mod.DATE, title=mod.TITLE,
            rules=mod.RULES, sources=mod.SOURCES, main_referral=mod.MAIN_REFERRAL,
            fallback_cause=mod.FALLBACK_CAUSE, self_care_advice=mod.SELF_CARE_ADVICE,
            safety_net_advice=mod.SAFETY_NET_ADVICE, module=mod,
            rank_causes=getattr(mod, "rank_causes", None),
            choose_proposals=getattr(mod, "choose_proposals", None),
            advise=getattr(mod, "advise", None), replaces=getattr(mod, "REPLACES", None),
            changes=getattr(mod, "CHANGES", "First published version."),
            retired=getattr(mod, "RETIRED", None), superseded_by=getattr(mod, "SUPERSEDED_BY", None),
            explanations=getattr(mod, "EXPLANATIONS", "legacy"),
            known_defects=tuple(getattr(mod, "KNOWN_DEFECTS", ())))
        if found[mod.VERSION].explanations not in EXPLANATIONS:
            raise ValueError(f"{info.name}.EXPLANATIONS must be one of {', '.join(EXPLANATIONS)}")
    return dict(sorted(found.items(), key=lambda kv: _semver(kv[0])))
