"""Safety properties of every published rule module, checked on generated answer sets."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from service.triage import facts as F
from service.triage.engine import Registry, evaluate
from service.triage.facts import FACT_NAMES, Facts

MODULES = list(Registry().modules.values())
CHOICES = {"side": F.SIDES, "onset": F.ONSETS, "duration": F.DURATIONS, "pattern": F.PATTERNS,
           "progression": F.PROGRESSIONS, "diabetes": F.DIABETES}
SETS = {"locations": F.LOCATIONS, "sensations": F.SENSATIONS, "medications": F.MEDICATIONS}
BOOLEANS = [n for n in FACT_NAMES if n not in CHOICES and n not in SETS and n != "age"]


def _value(name: str):
    if name in CHOICES:
        return st.sampled_from(CHOICES[name])
    if name in SETS:
        return st.frozensets(st.sampled_from(SETS[name]), min_size=1)
    if name == "age":
        return st.integers(0, 130)
    return st.booleans()


@st.composite
def facts_strategy(draw) -> Facts:
    """Sparse answer sets, as real forms are: the two required answers and up to 8 others."""
    optional = [n for n in FACT_NAMES if n not in ("side", "onset")]
    chosen = draw(st.lists(st.sampled_from(optional), max_size=8, unique=True))
    return Facts(side=draw(_value("side")), onset=draw(_value("onset")),
                 **{name: draw(_value(name)) for name in chosen})

# Warning signs: findings that can only add concern. Benign explanations (tight clothing, cold,
# relief on moving, a positional pattern) are deliberately not in this list.
WARNING_SIGNS = (
    [(name, True) for name in BOOLEANS if name not in ("tight_clothing", "cold_exposure",
                                                        "relieved_by_moving")]
    + [("onset", "sudden"), ("progression", "worsening"), ("progression", "ascending"),
       ("pattern", "comes-and-goes"), ("pattern", "constant"), ("duration", "weeks"),
       ("duration", "months"), ("diabetes", "yes"), ("relieved_by_moving", False)]
    + [("sensations", s) for s in ("pain", "burning")]
    + [("medications", m) for m in ("chemotherapy", "hiv", "seizure", "heart-bp", "anti-infective")]
)


def add_sign(facts: Facts, name: str, value) -> Facts:
    if name in SETS:
        return replace(facts, **{name: (getattr(facts, name) or frozenset()) | {value}})
    return replace(facts, **{name: value})


common = settings(max_examples=400, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("module", MODULES, ids=[m.version for m in MODULES])
@common
@given(facts=facts_strategy(), sign=st.sampled_from(WARNING_SIGNS))
def test_adding_a_warning_sign_never_lowers_the_disposition(module, facts, sign):
    before = evaluate(module, facts).disposition
    after = evaluate(module, add_sign(facts, *sign)).disposition
    assert after >= before, f"adding {sign} lowered {before.code} to {after.code}"


@pytest.mark.parametrize("module", MODULES, ids=[m.version for m in MODULES])
@common
@given(facts=facts_strategy(), data=st.data())
def test_an_explicit_no_made_unanswered_never_lowers_the_disposition(module, facts, data):
    noes = [n for n in BOOLEANS if getattr(facts, n) is False]
    if facts.diabetes == "no":
        noes.append("diabetes")
    if not noes:
        return
    name = data.draw(st.sampled_from(noes))
    before = evaluate(module, facts).disposition
    after = evaluate(module, replace(facts, **{name: None})).disposition
    assert after >= before, f"unanswering {name} lowered {before.code} to {after.code}"


@pytest.mark.parametrize("module", MODULES, ids=[m.version for m in MODULES])
@common
@given(facts=facts_strategy())
def test_evaluation_is_deterministic(module, facts):
    assert evaluate(module, facts) == evaluate(module, facts)


@pytest.mark.parametrize("module", MODULES, ids=[m.version for m in MODULES])
@common
@given(facts=facts_strategy())
def test_any_red_flag_means_emergency_and_self_care_only_without_concern(module, facts):
    result = evaluate(module, facts)
    red_flags = ("face_or_arm_involved", "speech_difficulty", "confusion", "vision_change",
                 "dizziness_or_incoordination", "sudden_severe_headache", "bladder_or_bowel_change",
                 "pain_shooting_down_both_legs", "breathless_or_chest_pain")
    if any(getattr(facts, name) is True for name in red_flags):
        assert result.disposition.code == "emergency"
    if result.disposition.code == "self-care":
        assert all(f.rule.floor.code == "self-care" for f in result.findings)
        assert not result.proposals
