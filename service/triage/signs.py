"""The warning signs of a rule version, and those a form cannot ask.

Another hospital's form may have no item for a warning sign: that sign is then unknown, never "no",
and the result names it for the clinician to ask now (service/pipeline.py, the form coverage of
`legtriage forms coverage`, the safety case's hazard H5). Pure: rule modules and fact names in.
"""
from __future__ import annotations

from itertools import combinations
from typing import Iterable

from service.triage.engine import evaluate
from service.triage.facts import Facts, load_facts
from service.triage.model import Disposition
from service.triage.rules import RuleModule


def warning_sign_facts(module: RuleModule) -> tuple[str, ...]:
    """The yes/no facts that make a result urgent or an emergency under `module`'s rules.

    Found by running the rules, not by reading them: each yes/no fact reported alone on top of a
    plain story (one leg, gradual onset), then each pair, so a sign that counts only together with
    another (a warm red leg with calf pain) is found too.
    """
    booleans = [name for name, field_ in Facts.__dataclass_fields__.items()
                if field_.type in ("bool | None",)]
    base = {"side": "left", "onset": "gradual"}

    def lifts(*names: str) -> bool:
        facts = load_facts({**base, **{n: True for n in names}})
        return evaluate(module, facts).disposition >= Disposition.URGENT

    alone = {n for n in booleans if lifts(n)}
    together = {n for a, b in combinations([n for n in booleans if n not in alone], 2)
                if lifts(a, b) for n in (a, b)}
    return tuple(n for n in booleans if n in alone or n in together)


_SIGNS: dict[str, tuple[RuleModule, tuple[str, ...]]] = {}  # rules version -> (module, its signs)


def not_asked(asked: Iterable[str], module: RuleModule) -> tuple[str, ...]:
    """The warning signs of `module` that a form asking the facts `asked` cannot ask (the signs are
    found once per rule module)."""
    cached = _SIGNS.get(module.version)
    if cached is None or cached[0] is not module:
        cached = _SIGNS[module.version] = (module, warning_sign_facts(module))
    asked = frozenset(asked)
    return tuple(f for f in cached[1] if f not in asked)
