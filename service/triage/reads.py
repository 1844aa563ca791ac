"""Which facts a rule's predicate reads: recorded by running it on many fact sets.

A rule's `uses` names the facts its rationale shows a clinician ("which answers led there"), so it
must be exactly what the predicate reads. Static reading of the code misses facts read through
helper functions; this records every attribute the predicate touches, over a seeded spread of fact
sets (sparse and dense, and the benign story with a few answers added) so that short-circuited
branches are reached too.
"""
from __future__ import annotations

import random
from typing import Callable, Iterable

from service.triage import facts as F
from service.triage.facts import FACT_NAMES, Facts

CHOICES = {"side": F.SIDES, "onset": F.ONSETS, "duration": F.DURATIONS, "pattern": F.PATTERNS,
           "progression": F.PROGRESSIONS, "diabetes": F.DIABETES}
SETS = {"locations": F.LOCATIONS, "sensations": F.SENSATIONS, "medications": F.MEDICATIONS}
BENIGN = {"onset": "sudden", "duration": "minutes", "relieved_by_moving": True}


_FACTS = frozenset(FACT_NAMES)


class Recorder:
    """Stands in for a Facts object and notes each fact read, in the order first read (`read` is a
    dict used as an ordered set). The engine runs every predicate through one, so the evidence of a
    result names exactly the facts the rule read for that case."""

    __slots__ = ("_facts", "_read")

    def __init__(self, facts: Facts, read: dict[str, None]):
        object.__setattr__(self, "_facts", facts)
        object.__setattr__(self, "_read", read)

    def __getattr__(self, name: str):
        if name in _FACTS:
            self._read[name] = None
        return getattr(self._facts, name)


def random_value(rng: random.Random, name: str):
    if name in CHOICES:
        return rng.choice(CHOICES[name])
    if name in SETS:
        return frozenset(rng.sample(SETS[name], rng.randint(1, 3)))
    if name == "age":
        return rng.randint(0, 100)
    return rng.random() < 0.5


def random_facts(count: int, seed: int = 9) -> Iterable[Facts]:
    rng = random.Random(seed)
    for n in range(count):
        values = dict(BENIGN) if n % 3 == 0 else {}
        density = rng.choice((0.05, 0.15, 0.3, 0.6, 0.9))
        for name in FACT_NAMES:
            if name not in values and rng.random() < density:
                values[name] = random_value(rng, name)
        yield Facts(**values)


def facts_read(when: Callable[[Facts], object], fact_sets: Iterable[Facts]) -> set[str]:
    read: dict[str, None] = {}
    for facts in fact_sets:
        when(Recorder(facts, read))
    return set(read)
