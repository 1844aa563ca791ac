"""Safety properties of every published rule module, checked on generated answer sets."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from service.triage import facts as F
from service.triage.engine import Registry, evaluate
from service.triage.facts import FACT_NAMES, Facts
from service.triage.model import Disposition

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


def explained_by_raynaud(module, facts: Facts) -> bool:
    """1.2.0 reads attacks of a cold, pale leg (`cold_attack`) as urgent, a leg that stays cold and
    pale as an emergency (the policy's two bullets), so an answer that makes it an attack may lower an
    emergency to urgent. 1.1.0 reads toes turning white in the cold, in a brief attack that comes and goes, as a
    Raynaud's attack (routine) rather than a limb without blood (emergency): the one place where an
    added answer may lower the disposition, and never below routine."""
    attack = getattr(module.module, "raynaud_attack", None) or getattr(module.module, "cold_attack", None)
    return attack is not None and attack(facts)


@pytest.mark.parametrize("module", MODULES, ids=[m.version for m in MODULES])
@common
@given(facts=facts_strategy(), sign=st.sampled_from(WARNING_SIGNS + [("locations", "whole-leg")]))
def test_adding_a_warning_sign_never_lowers_the_disposition(module, facts, sign):
    before = evaluate(module, facts).disposition
    changed = add_sign(facts, *sign)
    after = evaluate(module, changed).disposition
    if after < before and explained_by_raynaud(module, changed):
        assert after >= Disposition.ROUTINE
        return
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


# --- 1.1.0 and later: the properties the clinical review of 1.0.0 asked for -------------------------

NEWER = [m for m in MODULES if m.version != "1.0.0"]
HISTORY = ([(n, True) for n in ("no_recent_checkup", "heavy_alcohol_use", "b12_deficiency_risk",
                                "thyroid_disease", "multiple_sclerosis", "cancer_history",
                                "toxin_exposure", "recent_immobility", "recent_strain",
                                "tight_clothing", "cold_exposure")]
           + [(n, False) for n in ("no_recent_checkup", "heavy_alcohol_use", "b12_deficiency_risk",
                                   "thyroid_disease", "multiple_sclerosis", "cancer_history",
                                   "toxin_exposure", "recent_immobility", "recent_strain")]
           + [("diabetes", d) for d in F.DIABETES] + [("medications", m) for m in F.MEDICATIONS]
           + [("age", a) for a in (2, 30, 70, 95)])


@st.composite
def benign_story(draw) -> Facts:
    """A leg that fell asleep: gone within minutes of moving, however else it is told."""
    return Facts(
        side=draw(st.sampled_from(F.SIDES)), onset=draw(st.sampled_from(F.ONSETS)),
        relieved_by_moving=True, duration=draw(st.sampled_from([None, "minutes"])),
        pattern=draw(st.sampled_from([None, "positional"])),
        progression=draw(st.sampled_from([None, "improving", "stable"])),
        locations=draw(st.none() | st.frozensets(st.sampled_from(
            [x for x in F.LOCATIONS if x != "whole-leg"]), min_size=1)),
        sensations=draw(st.none() | st.frozensets(st.sampled_from(["tingling", "crawling"]), min_size=1)),
        weakness=draw(st.sampled_from([None, False])), recent_injury=draw(st.sampled_from([None, False])))


# 1.1.0's benign story (gone on moving, however else it is told) and its history exceptions; 1.2.0
# needs the positively benign story and keeps causes tied to the numbness at least routine (the safety
# policy as rewritten; tests/unit/triage/test_safety_properties.py holds every candidate default to it).
ONLY_1_1_0 = [m for m in MODULES if m.version == "1.1.0"]


@pytest.mark.parametrize("module", ONLY_1_1_0, ids=[m.version for m in ONLY_1_1_0])
@common
@given(facts=benign_story(), extra=st.sampled_from(HISTORY))
def test_the_benign_story_with_one_unrelated_history_fact_stays_self_care(module, facts, extra):
    assert evaluate(module, facts).disposition == Disposition.SELF_CARE
    result = evaluate(module, add_sign(facts, *extra))
    assert result.disposition == Disposition.SELF_CARE, f"{extra}: {[f.rule.id for f in result.findings]}"
    assert not result.proposals


@pytest.mark.parametrize("module", NEWER, ids=[m.version for m in NEWER])
@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(facts=facts_strategy())
def test_no_result_has_more_than_six_proposals(module, facts):
    result = evaluate(module, facts)
    assert len(result.proposals) <= 6
    if result.disposition == Disposition.EMERGENCY:
        assert all(p.disposition == Disposition.EMERGENCY for p in result.proposals)
    if result.disposition >= Disposition.URGENT:
        assert "physiotherapy" not in {p.key for p in result.proposals}


def warns(name: str, value) -> bool:
    """A reported answer that is itself a reason for concern: removing it may lower urgency."""
    if name in SETS:
        return any((name, v) in WARNING_SIGNS for v in value) or (
            name == "locations" and "whole-leg" in value) or (
            name == "sensations" and bool(value & {"itching", "heaviness", "cramps", "cold"}))
    if name == "duration":
        return value != "minutes"  # lasting longer than a few minutes (002)
    return (name, value) in WARNING_SIGNS


@pytest.mark.parametrize("module", NEWER, ids=[m.version for m in NEWER])
@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(facts=facts_strategy())
def test_removing_an_answer_never_lowers_the_disposition(module, facts):
    """Every answer that is not itself a warning sign: an explicit no, a reassuring course, a benign
    trigger, a place, a neutral sensation, the history. A missing answer never lowers urgency."""
    before = evaluate(module, facts).disposition
    for name, value in facts.known().items():
        if name in ("side", "onset") or warns(name, value):
            continue
        after = evaluate(module, replace(facts, **{name: None})).disposition
        assert after >= before, f"removing {name}={value!r} lowered {before.code} to {after.code}"
