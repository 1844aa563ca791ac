"""The safety policy of shared/DESIGN.md ("Rule modules") as checks, and the answer sets they run on.

Each check takes a rule module and the facts of one answer set and returns what in the result breaks
one bullet of the policy (an empty list: it holds). The checks read only the facts, the Assessment and
the texts a person reads, never a rule module's own definitions, so they judge any version alike.
The strategies draw answer sets of our form (every linkId of mappings/questionnaire.json answered,
unanswered or answered in contradiction with the others) and of the neuro-intake form mapped through
its mapping (mappings/forms/), the way $triage reads them.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Callable

from hypothesis import strategies as st

from service.forms import NOT_REPORTED, load_form
from service.mapping import form_answers_to_facts
from service.triage.engine import evaluate
from service.triage.facts import Facts
from service.triage.model import Assessment, Disposition
from service.clinical import facts_of
from tests.support import ITEMS, ROOT

EMERGENCY, URGENT, ROUTINE, SELF_CARE = (Disposition.EMERGENCY, Disposition.URGENT,
                                         Disposition.ROUTINE, Disposition.SELF_CARE)

# ---- answer sets of our form ------------------------------------------------------------------------

LINK_IDS = [link for link, spec in ITEMS.items() if spec["type"] != "group"]


def _codes(link_id: str) -> list[str]:
    return [o["valueCoding"]["code"] for o in ITEMS[link_id].get("answerOption", [])]


# An answer that contradicts another answer of the same set (or, for a repeating item, itself).
CONTRADICTIONS: dict[str, Callable[[dict], object]] = {
    "numbness.duration": lambda a: "months" if a.get("numbness.onset") == "sudden" else "minutes",
    "numbness.relieved-by-moving": lambda a: a.get("numbness.pattern") == "constant"
    or a.get("numbness.duration") in ("weeks", "months"),
    "numbness.pattern": lambda a: "constant" if a.get("numbness.relieved-by-moving") else "positional",
    "numbness.progression": lambda a: "ascending" if a.get("numbness.duration") == "minutes" else "improving",
    "numbness.location": lambda a: ["whole-leg", "toes"],
    "numbness.sensations": lambda a: ["cold", "burning", "tingling"],
    "history.medications": lambda a: ["none", "chemotherapy"],
    "red-flags.both-legs-shooting-pain": lambda a: a.get("numbness.side") in ("left", "right"),
    "spine.radiating": lambda a: a.get("spine.back-pain") is False,
    "history.diabetes": lambda a: "no" if a.get("history.no-recent-checkup") else "unknown",
    "circulation.toes-colour-in-cold": lambda a: a.get("history.cold-exposure") is False,
}


@st.composite
def our_answers(draw, required: bool = False) -> dict:
    """Compact answers (linkId -> value) of our form: each item unanswered, answered, or (where a
    contradiction is defined) answered against another answer. Mostly sparse, sometimes dense."""
    density = draw(st.sampled_from((0.1, 0.25, 0.5, 0.9)))
    answers: dict = {}
    for link_id in LINK_IDS:
        spec = ITEMS[link_id]
        mode = draw(st.sampled_from(("answered", "unanswered", "contradictory"))
                    if draw(st.floats(0, 1)) < density or (required and spec.get("required"))
                    else st.just("unanswered"))
        if mode == "unanswered" and required and spec.get("required"):
            mode = "answered"
        if mode == "unanswered":
            continue
        if mode == "contradictory" and link_id in CONTRADICTIONS:
            answers[link_id] = CONTRADICTIONS[link_id](answers)
        elif spec["type"] == "boolean":
            answers[link_id] = draw(st.booleans())
        elif spec["type"] == "integer":
            answers[link_id] = draw(st.integers(0, 110))
        elif spec.get("repeats"):
            answers[link_id] = sorted(draw(st.sets(st.sampled_from(_codes(link_id)), min_size=1,
                                                   max_size=3)))
        else:
            answers[link_id] = draw(st.sampled_from(_codes(link_id)))
    return answers


@st.composite
def benign_based_answers(draw) -> dict:
    """The benign story (a leg that fell asleep, or tight clothing or cold) with answers drawn on top:
    the border of self-care, where a wrong rule does most harm."""
    answers = draw(our_answers())
    answers.update({"numbness.onset": "sudden", "numbness.duration": "minutes",
                    "numbness.relieved-by-moving": True})
    trigger = draw(st.sampled_from(("numbness.pattern", "history.tight-clothing", "history.cold-exposure")))
    answers[trigger] = "positional" if trigger == "numbness.pattern" else True
    return answers


def our_facts(answers: dict) -> Facts:
    return facts_of(answers)


# ---- answer sets of the neuro-intake form --------------------------------------------------------------

NEURO = load_form(ROOT / "mappings" / "forms" / "neuro-intake-2.3.yaml")


@st.composite
def neuro_values(draw) -> dict:
    """linkId -> [value] as $triage hands a foreign form's answers to the mapping: each item
    unanswered or answered with any coding its mapping knows (including "Unknown")."""
    values: dict = {}
    for link_id, item in NEURO.items.items():
        if draw(st.booleans()):
            continue
        if item.type == "integer":
            values[link_id] = [draw(st.integers(0, 110))]
        else:
            system, code = draw(st.sampled_from(sorted(item.answers)))
            values[link_id] = [f"{system}|{code}"]
    return values


def neuro_facts(values: dict) -> Facts:
    return form_answers_to_facts(values, NEURO)[0]


# ---- the words of the policy ------------------------------------------------------------------------

STROKE_SIGNS = ("face_or_arm_involved", "speech_difficulty", "confusion", "vision_change",
                "dizziness_or_incoordination", "sudden_severe_headache")
RED_FLAGS = STROKE_SIGNS + ("weakness", "bladder_or_bowel_change", "pain_shooting_down_both_legs",
                            "breathless_or_chest_pain", "recent_injury", "walking_or_balance_difficulty")
CIRCULATION = ("one_leg_swollen", "leg_warm_red_or_discoloured", "calf_pain_standing_or_walking",
               "claudication", "leg_cold_pale_or_changed", "toes_change_colour_in_cold")
SPINE = ("low_back_pain", "pain_radiating_down_one_leg")
HISTORY_RISKS = ("no_recent_checkup", "heavy_alcohol_use", "b12_deficiency_risk", "thyroid_disease",
                 "multiple_sclerosis", "cancer_history", "toxin_exposure", "recent_immobility",
                 "recent_strain")
ALARMING_BOOLEANS = RED_FLAGS + CIRCULATION + SPINE + HISTORY_RISKS
NEUROTOXIC = ("chemotherapy", "hiv", "seizure", "anti-infective")
BENIGN_CAUSES = ("positional-compression", "tight-clothing", "cold-exposure")

# The reassuring answer of each question: leaving the question out must never give less than it.
REASSURING: dict[str, tuple] = {
    **{name: (False,) for name in ALARMING_BOOLEANS},
    "relieved_by_moving": (True,), "tight_clothing": (False, True), "cold_exposure": (False, True),
    "onset": ("sudden", "gradual"), "side": ("left", "right", "both"),
    "duration": ("minutes",), "pattern": ("positional",), "progression": ("improving", "stable"),
    "diabetes": ("no",), "medications": (frozenset({"none"}),), "age": (25,),
    "locations": tuple(frozenset({x}) for x in ("sole", "knee", "thigh-back", "buttock", "shin")),
    "sensations": (frozenset({"tingling"}), frozenset({"crawling"})),
}


def yes(value) -> bool:
    return value is True


def any_of(codes, *wanted) -> bool:
    return bool(codes) and any(c in codes for c in wanted)


def warning_sign(f: Facts) -> bool:
    return any(yes(getattr(f, n)) for n in RED_FLAGS + CIRCULATION)


def trigger_answered(f: Facts) -> bool:
    return f.pattern == "positional" or yes(f.tight_clothing) or yes(f.cold_exposure)


def tied_cause(f: Facts) -> str | None:
    """A cause tied to the numbness that keeps even the benign story at least routine."""
    feet = f.locations is None or any_of(f.locations, "toes", "sole", "foot")
    for name, present in (
            ("diabetes", f.diabetes == "yes"), ("diabetes not known, numb feet", f.diabetes == "unknown" and feet),
            ("alcohol", yes(f.heavy_alcohol_use)), ("B12", yes(f.b12_deficiency_risk)),
            ("thyroid", yes(f.thyroid_disease)), ("toxins", yes(f.toxin_exposure)),
            ("neurotoxic medicine", any_of(f.medications, *NEUROTOXIC)),
            ("cold pale leg", yes(f.leg_cold_pale_or_changed)),
            ("colour change in the cold", yes(f.toes_change_colour_in_cold)),
            ("claudication", yes(f.claudication)),
            ("pain spreading down the leg", yes(f.pain_radiating_down_one_leg))):
        if present:
            return name
    return None


def emergency_reason(f: Facts) -> str | None:
    sudden = f.onset == "sudden"
    for name, present in (
            ("stroke sign", any(yes(getattr(f, n)) for n in STROKE_SIGNS)),
            ("bladder or bowel", yes(f.bladder_or_bowel_change)),
            ("pain down both legs", yes(f.pain_shooting_down_both_legs)),
            ("breathless or chest pain", yes(f.breathless_or_chest_pain)),
            ("sudden numbness with weakness", sudden and yes(f.weakness)),
            ("injury with weakness", yes(f.recent_injury) and yes(f.weakness)),
            ("whole leg suddenly numb, not back within minutes",
             sudden and any_of(f.locations, "whole-leg")
             and not (yes(f.relieved_by_moving) and f.duration == "minutes")),
            ("leg suddenly cold and pale and stays so", sudden and yes(f.leg_cold_pale_or_changed)
             and (f.pattern == "constant" or f.relieved_by_moving is False))):
        if present:
            return name
    return None


def urgent_reason(f: Facts) -> str | None:
    one_sided_or_high_or_late = (f.side in ("left", "right")
                                 or (bool(f.locations) and not f.locations <= {"toes"})
                                 or (f.age is not None and f.age > 40))
    for name, present in (
            ("sudden, not explained by position (no trigger, not gone on moving)",
             f.onset == "sudden" and not trigger_answered(f) and not yes(f.relieved_by_moving)),
            ("injury", yes(f.recent_injury)),
            ("swelling of one leg", yes(f.one_leg_swollen)),
            ("warm red leg with calf pain", yes(f.leg_warm_red_or_discoloured)
             and yes(f.calf_pain_standing_or_walking)),
            ("calf pain after immobility", yes(f.calf_pain_standing_or_walking) and yes(f.recent_immobility)),
            ("gradual weakness", f.onset == "gradual" and yes(f.weakness)),
            ("walking difficult, not settling", yes(f.walking_or_balance_difficulty)
             and f.progression not in ("improving", "stable")),
            ("climbing over days or weeks", f.progression == "ascending" and f.duration in ("days", "weeks")),
            ("cancer with back or leg pain", yes(f.cancer_history)
             and (yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg))),
            ("cold attacks one-sided, above the toes or after 40",
             (yes(f.toes_change_colour_in_cold) or (yes(f.leg_cold_pale_or_changed)
                                                    and f.pattern == "comes-and-goes"))
             and one_sided_or_high_or_late)):
        if present:
            return name
    return None


def routine_reason(f: Facts) -> str | None:
    if f.duration in ("days", "weeks", "months") or f.pattern in ("constant", "comes-and-goes"):
        return "persists or keeps coming back"
    return tied_cause(f)


# ---- the properties -------------------------------------------------------------------------------
# Each: (module, facts) -> problems. `run` caches one evaluation per answer set.

def run(module, facts: Facts) -> Assessment:
    return evaluate(module, facts)


def floors(module, f: Facts, a: Assessment | None = None) -> list[str]:
    """Emergency and urgent floors on any background; routine for what persists, recurs or has a
    cause tied to the numbness."""
    a = a or run(module, f)
    out = []
    for level, reason in ((EMERGENCY, emergency_reason(f)), (URGENT, urgent_reason(f)),
                          (ROUTINE, routine_reason(f))):
        if reason and a.disposition < level:
            out.append(f"{reason}: {a.disposition.code}, policy says at least {level.code}")
    return out


def self_care_only_for_the_benign_story(module, f: Facts, a: Assessment | None = None) -> list[str]:
    a = a or run(module, f)
    if a.disposition != SELF_CARE:
        return []
    missing = [what for what, ok in (
        ("brief (minutes) answered", f.duration == "minutes"),
        ("gone after moving answered", yes(f.relieved_by_moving)),
        ("position, tight clothing or cold answered", trigger_answered(f)),
        ("not a gradual onset", f.onset != "gradual"),
        ("not constant or recurring", f.pattern not in ("constant", "comes-and-goes")),
        ("not getting worse", f.progression not in ("worsening", "ascending")),
        ("no red flag, clot or circulation sign", not warning_sign(f)),
        ("no cause tied to the numbness", tied_cause(f) is None),
        ("no cancer with back or leg pain", not (yes(f.cancer_history) and (
            yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg)))))
        if not ok]
    return [f"self-care without {', '.join(missing)}"] if missing else []


def missing_never_below_reassuring(module, f: Facts, a: Assessment | None = None) -> list[str]:
    """For each answered question: unanswered gives at least what its reassuring answer gives."""
    out = []
    for name in f.known():
        without = run(module, replace(f, **{name: None})).disposition
        for value in REASSURING.get(name, ()):
            reassured = run(module, replace(f, **{name: value})).disposition
            if without < reassured:
                out.append(f"{name} unanswered gives {without.code}, {value!r} gives {reassured.code}")
    return out


def alarming_never_lowers(module, f: Facts, a: Assessment | None = None) -> list[str]:
    """yes >= unanswered >= no for every alarming answer; diabetes yes >= unknown >= unanswered >= no;
    a nerve-damaging medicine added never lowers."""
    out = []

    def d(**change) -> Disposition:
        return run(module, replace(f, **change)).disposition
    for name in ALARMING_BOOLEANS:
        y, u, n = d(**{name: True}), d(**{name: None}), d(**{name: False})
        if not y >= u >= n:
            out.append(f"{name}: yes {y.code}, unanswered {u.code}, no {n.code}")
    dy, dk, du, dn = (d(diabetes="yes"), d(diabetes="unknown"), d(diabetes=None), d(diabetes="no"))
    if not dy >= dk >= du >= dn:
        out.append(f"diabetes: yes {dy.code}, unknown {dk.code}, unanswered {du.code}, no {dn.code}")
    base = d()
    for drug in NEUROTOXIC:
        meds = (f.medications or frozenset()) - {"none"} | {drug}
        if d(medications=meds) < base:
            out.append(f"adding {drug} lowered {base.code}")
    return out


SIGN_WORDS = {  # an emergency sign reported -> the words the call-now net uses for it
    "weakness": "weak", "face_or_arm_involved": "face", "speech_difficulty": "speak",
    "confusion": "confus", "vision_change": "vision", "dizziness_or_incoordination": "dizz",
    "sudden_severe_headache": "headache", "bladder_or_bowel_change": "bladder",
    "pain_shooting_down_both_legs": "both legs", "breathless_or_chest_pain": "breath",
    "leg_cold_pale_or_changed": "cold and pale",
}


def advice_agrees(module, f: Facts, a: Assessment | None = None) -> list[str]:
    """What a person reads agrees with the disposition and with what they reported."""
    a = a or run(module, f)
    texts = [adv.text for adv in a.advice]
    low = [t.lower() for t in texts]
    out = []
    if a.disposition == EMERGENCY:
        for t in low:
            if "emergency" not in t or "24 hours" in t or "appointment" in t or "until you are seen" in t:
                out.append(f"emergency result reads {t[:90]!r}")
    call = [t.replace("numbness or weakness of the face", "face").replace("weakness, numbness of the face", "face")
            for t in low if "emergency services" in t]
    reported = [word for name, word in SIGN_WORDS.items() if yes(getattr(f, name))]
    if any_of(f.locations, "whole-leg"):
        reported.append("whole leg")
    if a.disposition in (URGENT, ROUTINE, SELF_CARE):
        for word in reported:
            for t in call:
                if word in t:
                    out.append(f"{a.disposition.code} result tells to call for {word!r}, already reported")
    if a.disposition == SELF_CARE and any("whole leg" in t for t in low) and any_of(f.locations, "whole-leg"):
        out.append("self-care safety net names the whole leg going numb, which just happened")
    if any("diabetes well controlled" in t or "your diabetes" in t for t in low) and f.diabetes != "yes":
        out.append(f"diabetes-control advice with diabetes {f.diabetes!r}")
    if any("stand as little" in t for t in low) and "pad" in {p.cause for p in a.predictions}:
        out.append("poor circulation told to stand as little as possible")
    if any("bath" in t and "warm" in t for t in low) and not any("elbow" in t or "temperature" in t for t in low):
        out.append("a warm bath advised without checking the water")
    if any("nerve-root" in t or "back pain spreading" in t or "orthos" in t for t in low) and (
            not (yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg)) or yes(f.cancer_history)):
        out.append("back advice without back pain, or with cancer")
    return out


def causes_agree(module, f: Facts, a: Assessment | None = None) -> list[str]:
    """'The leg fell asleep' never beside a red flag, clot or circulation sign; the causes of the most
    urgent signs first; recurring positional or cold numbness not urgent on its own (checked by its
    own test)."""
    a = a or run(module, f)
    causes = [p.cause for p in a.predictions]
    out = []
    if warning_sign(f):
        named = [c for c in causes if c in BENIGN_CAUSES]
        if named:
            out.append(f"{named} named beside a warning sign")
    if a.disposition >= URGENT and a.predictions:
        first = a.predictions[0]
        if not any(x.rule.floor == a.disposition for x in first.findings):
            out.append(f"first cause {first.cause} is not a cause of the {a.disposition.code} signs")
    return out


def proposals_bounded(module, f: Facts, a: Assessment | None = None) -> list[str]:
    a = a or run(module, f)
    keys = [p.key for p in a.proposals]
    out = []
    if len(keys) > 6:
        out.append(f"{len(keys)} proposals")
    for first, second in (("hba1c", "fasting-glucose"), ("hba1c", "glucose"),
                          ("mri-spine", "mri-lumbar-spine")):
        if first in keys and second in keys:
            out.append(f"{first} beside {second}")
    if "physiotherapy" in keys and (a.disposition >= URGENT or (yes(f.cancer_history) and (
            yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg)))):
        out.append(f"physiotherapy in a {a.disposition.code} result or with cancer and back or leg pain")
    return out


@st.composite
def recurring_positional_story(draw) -> Facts:
    """Numbness brought on by position or cold that recurs over days to months, nothing alarming."""
    cold = draw(st.booleans())
    return Facts(
        side=draw(st.sampled_from(("left", "right", "both"))),
        onset=draw(st.sampled_from(("sudden", "gradual"))),
        duration=draw(st.sampled_from(("days", "weeks", "months"))),
        pattern="comes-and-goes" if cold else "positional",
        cold_exposure=True if cold else draw(st.sampled_from((None, False))),
        relieved_by_moving=True if cold else draw(st.sampled_from((None, True))),
        progression=draw(st.sampled_from((None, "improving", "stable"))),
        locations=draw(st.none() | st.frozensets(st.sampled_from(("thigh-back", "buttock", "knee",
                                                                  "shin")), min_size=1)),
        sensations=draw(st.none() | st.just(frozenset({"tingling"}))),
        age=draw(st.none() | st.integers(18, 90)),
        diabetes=draw(st.sampled_from((None, "no"))),
        **{n: draw(st.sampled_from((None, False))) for n in ALARMING_BOOLEANS})


def recurring_positional_is_routine(module, f: Facts, a: Assessment | None = None) -> list[str]:
    a = a or run(module, f)
    if a.disposition != ROUTINE:
        return [f"recurring positional or cold numbness gives {a.disposition.code}"]
    return []


# The properties that hold on every answer set, by name (the test module and the figures use these).
PROPERTIES = {
    "floors": floors,
    "self-care only for the benign story": self_care_only_for_the_benign_story,
    "missing never below reassuring": missing_never_below_reassuring,
    "alarming never lowers": alarming_never_lowers,
    "advice agrees with the disposition": advice_agrees,
    "causes agree": causes_agree,
    "proposals bounded": proposals_bounded,
}


@lru_cache(maxsize=None)
def neuro_not_reported_codes() -> frozenset:
    return frozenset(f"{s}|{c}" for item in NEURO.items.values()
                     for (s, c), v in item.answers.items() if v is NOT_REPORTED)
