"""Leg numbness triage rules, version 1.2.0 (status: active, 2026-12-07).

Scope: adults and children reporting numbness in one or both legs, answered on the Questionnaire
http://legtriage.example.org/fhir/Questionnaire/leg-numbness|1.0.0 (or another hospital's form mapped
onto the same facts). The rules suggest how soon the person should be seen, the likely causes, and the
referrals and tests a clinician may consider. They never diagnose and never order anything.

1.2.0 implements the rewritten safety policy of the design (shared/DESIGN.md, "Rule modules"): self-care
needs a positively benign story; a cause tied to the numbness keeps it at least routine; cancer with back
or leg pain, one-sided or late-onset cold attacks, and numbness climbing over days are urgent; a whole leg
suddenly numb and not back within minutes is an emergency; what a person reads agrees with the
disposition. The policy is checked as properties over random answer sets
(tests/unit/triage/test_safety_properties.py). 1.0.0 and 1.1.0 stay published and pinnable, unchanged.

Sources (shared/sources/):
  000_cb32e696d2feae6f.txt  "Leg numbness" (with neurologists: causes, when to see a doctor, home care)
  001_7be9c4c3b65e7a56.txt  "Leg Numbness: Causes, Symptoms, and Treatment Options" (30.12.2025)
  002_8375efd10046325c.txt  "Numbness of the Legs" (2012)
  003_49373439d83d5e71.txt  "What Causes Numbness in the Legs?" (Jaros, Alluri)
  004_ee8a66ff89f18e0d.txt  "Numb legs and feet" (posture, DVT, PAD, tarsal tunnel, MS)

How to read a rule: its title is the clinical reason it names (it is shown to clinicians), the docstring
of its predicate is the condition in clinical words, `floor` is the least urgent disposition it allows,
`causes` the candidate conditions it raises (with a qualitative risk), `proposals` the referrals and
tests it suggests, `cites` the passages it rests on. `common_sense` is for the rule's reader only: what a
rule adds beyond the sources. `uses` is exactly the facts the predicate reads (a test records the reads).
The disposition is the highest floor of the rules that fired. Unanswered facts are None: never "no", and
never evidence of a benign story. After the rules, three steps shape the result: the causes are ordered
(the causes of the most urgent signs first), the proposals are chosen (at most six, no two answering
the same question, no physiotherapy in urgent or emergency results or with cancer and back or leg
pain), and the advice is chosen for the disposition and what the person reported.

Published versions never change behaviour: a fix is a new module (v1_2_1.py, ...).
"""
from __future__ import annotations

from service.triage.facts import Facts
from service.triage.model import (EMERGENCY, HIGH, LOW, MODERATE, ROUTINE, SELF_CARE, URGENT,
                                  Advice, Cite, Disposition, Prediction, Proposal, RuleBook)

VERSION = "1.2.0"
STATUS = "active"
DATE = "2026-12-07"
TITLE = "Leg numbness triage rules"
REPLACES = "1.1.0"
EXPLANATIONS = "clinical"  # titles, advice and rationale are written for clinicians and patients
CHANGES = (
    "Self-care only for a positively benign story: sudden numbness that lasted minutes, brought on by "
    "position, tight clothing or cold, and gone after moving, loosening or warming; diabetes (or "
    "diabetes not known with numb feet), alcohol, vitamin B12, thyroid, toxins, nerve-damaging "
    "medicines, circulation signs and pain spreading down the leg keep it at least routine. A whole "
    "leg suddenly numb and not back within minutes is an emergency; when it came back within minutes "
    "without a positional cause it is urgent, and so is sudden numbness that passed within minutes "
    "but is constant or getting worse. Cancer with back pain or pain spreading down a leg is "
    "urgent, with whole-spine MRI and no physiotherapy. Attacks of a cold, pale leg that are "
    "one-sided, above the toes or after 40 are urgent with arterial tests. Numbness climbing from the "
    "feet over days or weeks is urgent. Recurring numbness brought on by position or cold is routine. "
    "Ongoing sudden numbness names a stroke; numbness that came back names a transient ischaemic "
    "attack; after a fall a stroke is named unless the person is young. The leg falling asleep is "
    "never named beside a warning sign. Emergencies carry only the call-now advice; the safety net "
    "never names a sign the person already reported; advice for a numb foot, for poor circulation "
    "(walking helps) and for diabetes goes only to those it is for.")
RELEASE_NOTE = """\
Rule module 1.2.0 is the default from 2026-12-07. It implements the rewritten safety policy and is
checked against it as properties over random answer sets. 1.1.0 is retired: still published and
pinnable for reproducing earlier results, its behaviour unchanged, its known defects named in its
Library."""

S000 = "000_cb32e696d2feae6f.txt"
S001 = "001_7be9c4c3b65e7a56.txt"
S002 = "002_8375efd10046325c.txt"
S003 = "003_49373439d83d5e71.txt"
S004 = "004_ee8a66ff89f18e0d.txt"

# Each source by its title: the first line of the article (a clinician reads these).
SOURCES = {
    S000: "Leg numbness",
    S001: "Leg Numbness: Causes, Symptoms, and Treatment Options",
    S002: "Numbness of the Legs",
    S003: "What Causes Numbness in the Legs?",
    S004: "Numb legs and feet may be caused by sitting in a position that puts too much pressure on "
          "the nerves or reduces blood flow. Long-lasting numbness in the legs and feet may indicate "
          "an underlying condition.",
}

MAIN_REFERRAL = {EMERGENCY: "emergency-referral", URGENT: "gp-referral", ROUTINE: "gp-referral"}
FALLBACK_CAUSE = "unexplained-numbness"

book = RuleBook()
rule = book.rule


# ---- Small named definitions ------------------------------------------------------------------

def yes(value: bool | None) -> bool:
    """Reported as present (an unanswered question is not a yes)."""
    return value is True


def any_of(codes: frozenset[str] | None, *wanted: str) -> bool:
    return bool(codes) and any(code in codes for code in wanted)


BELOW_THE_KNEE = ("toes", "sole", "foot", "ankle-heel", "shin", "calf")
FEET_ONLY = frozenset({"toes", "sole", "foot"})
NEUROTOXIC_MEDICINES = ("chemotherapy", "hiv", "seizure", "anti-infective")
RED_FLAG_FACTS = ("weakness", "face_or_arm_involved", "speech_difficulty", "confusion",
                  "vision_change", "dizziness_or_incoordination", "sudden_severe_headache",
                  "bladder_or_bowel_change", "pain_shooting_down_both_legs",
                  "breathless_or_chest_pain", "recent_injury", "walking_or_balance_difficulty")
CIRCULATION_FACTS = ("one_leg_swollen", "leg_warm_red_or_discoloured",
                     "calf_pain_standing_or_walking", "claudication", "leg_cold_pale_or_changed",
                     "toes_change_colour_in_cold")
STORY_FACTS = ("onset", "duration", "relieved_by_moving", "pattern", "tight_clothing",
               "cold_exposure", "progression", "sensations")


def may_be_sudden(f: Facts) -> bool:
    """The numbness came on suddenly, or its onset was not reported (not known to be gradual)."""
    return f.onset != "gradual"


def not_getting_worse(f: Facts) -> bool:
    return f.progression not in ("worsening", "ascending")


def trigger_reported(f: Facts) -> bool:
    """Brought on by position, tight clothing or cold, as answered."""
    return f.pattern == "positional" or yes(f.tight_clothing) or yes(f.cold_exposure)


def benign_story(f: Facts) -> bool:
    """The positively benign story, every part answered: the numbness came on suddenly and lasted
    minutes, it was brought on by position, tight clothing or cold, and it went within minutes of
    moving, loosening or warming; it does not keep coming back, is not constant, not getting worse,
    and not painful or burning."""
    return (f.onset == "sudden" and f.duration == "minutes" and yes(f.relieved_by_moving)
            and trigger_reported(f) and f.pattern in (None, "positional") and not_getting_worse(f)
            and not any_of(f.sensations, "pain", "burning"))


def explained_by_position(f: Facts) -> bool:
    """Numbness explained by position, tight clothing or cold: it comes only in certain positions, or
    it goes within a few minutes of moving, or it follows tight clothing or cold and comes and goes;
    and it is not known to persist after moving, not constant and not getting worse."""
    if f.relieved_by_moving is False or f.pattern == "constant" or not not_getting_worse(f):
        return False
    return (f.pattern == "positional" or yes(f.relieved_by_moving)
            or ((yes(f.tight_clothing) or yes(f.cold_exposure)) and f.pattern == "comes-and-goes"))


def came_back_within_minutes(f: Facts) -> bool:
    """Sensation came back within minutes of moving (both answered)."""
    return yes(f.relieved_by_moving) and f.duration == "minutes"


def warning_sign_reported(f: Facts) -> bool:
    """A red flag, a sign of a clot or a circulation sign was reported."""
    return any(yes(getattr(f, name)) for name in RED_FLAG_FACTS + CIRCULATION_FACTS)


def stroke_in_question(f: Facts) -> bool:
    """A stroke is a possible cause: no injury was reported, or the person is 50 or older or their
    age was not reported (a fall can be the result of a stroke)."""
    return not yes(f.recent_injury) or f.age is None or f.age >= 50


def has_stroke_sign(f: Facts) -> bool:
    return any(yes(x) for x in (f.face_or_arm_involved, f.speech_difficulty, f.confusion,
                                f.vision_change, f.dizziness_or_incoordination,
                                f.sudden_severe_headache))


def has_clot_risk(f: Facts) -> bool:
    """A clot risk: a recent long journey, surgery or bed rest, cancer, or chemotherapy."""
    return (yes(f.recent_immobility) or yes(f.cancer_history)
            or any_of(f.medications, "chemotherapy"))


def goes_away(f: Facts) -> bool:
    """The episode passes: it comes and goes, or it eases on moving and is not constant."""
    return f.pattern == "comes-and-goes" or (yes(f.relieved_by_moving) and f.pattern != "constant")


def cold_attack(f: Facts) -> bool:
    """Attacks of a cold, pale leg: toes that turn white or blue in the cold, or a cold, pale or
    discoloured leg or foot that passes (it comes and goes, or eases on moving). An attack is not a
    leg that stays cold and pale: it is urgent, not an emergency."""
    return yes(f.toes_change_colour_in_cold) or (yes(f.leg_cold_pale_or_changed) and goes_away(f))


def attack_needs_arterial_check(f: Facts) -> bool:
    """Cold attacks that are not known to be the toes of both feet in a person aged 40 or under:
    one-sided, above the toes, after 40, or any of these not answered."""
    return (f.side != "both" or not f.locations or not f.locations <= {"toes"}
            or f.age is None or f.age > 40)


def diabetes_not_known(f: Facts) -> bool:
    """The person does not know whether they have diabetes, or has not said no and has had no
    check-up in years."""
    return f.diabetes == "unknown" or (f.diabetes is None and yes(f.no_recent_checkup))


def cancer_with_back_or_leg_pain(f: Facts) -> bool:
    return yes(f.cancer_history) and (yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg))


# ---- Emergency: seek help now -----------------------------------------------------------------

STROKE_CITES = (Cite(S003, "Numbness in your face, or involving an entire arm or leg"),
                Cite(S003, "These situations may indicate a serious problem with your brain or spine, "
                           "including potentially a stroke or brain injury"))


@rule("stroke-signs", "Numbness with signs of a stroke (face or arm, speech, confusion, vision, "
      "dizziness or a sudden severe headache)", floor=EMERGENCY,
      uses=("face_or_arm_involved", "speech_difficulty", "confusion", "vision_change",
            "dizziness_or_incoordination", "sudden_severe_headache"),
      causes={"stroke": HIGH, "tia": MODERATE}, proposals=("emergency-referral", "ct-head"),
      cites=STROKE_CITES + (
          Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied "
                     "along with shortness of breath, dizziness, loss of coordination, loss of "
                     "speech, fatigue and loss of vision."),),
      common_sense="CT of the head as the first imaging for a suspected stroke is standard emergency "
                   "practice; the sources name MRI or CT imaging in general.")
def stroke_warning_signs(f: Facts) -> bool:
    """Numbness of the face or an arm, difficulty speaking, confusion, loss of vision, dizziness or
    loss of coordination, or a sudden severe headache."""
    return has_stroke_sign(f)


@rule("sudden-whole-leg", "Sudden numbness of a whole leg that did not come back within minutes",
      floor=EMERGENCY,
      uses=("onset", "locations", "relieved_by_moving", "duration", "recent_injury", "age"),
      causes={"stroke": HIGH}, proposals=("emergency-referral", "ct-head"),
      cites=STROKE_CITES + (Cite(S003, "In that case, sensation should return within a few minutes "
                                       "of adjusting your position."),),
      common_sense="Numbness involving an entire leg is among the signs of a stroke; a leg that "
                   "fell asleep comes back within minutes of moving. After an injury in a person "
                   "under 50 the injury explains it, and the injury is named instead.")
def sudden_whole_leg(f: Facts) -> bool:
    """A whole leg went numb suddenly (or the onset was not reported) and it is not known to have
    come back within minutes of moving; a stroke is a possible cause."""
    return (may_be_sudden(f) and any_of(f.locations, "whole-leg")
            and not came_back_within_minutes(f) and stroke_in_question(f))


@rule("sudden-whole-leg-injury", "Sudden numbness of a whole injured leg that did not come back "
      "within minutes", floor=EMERGENCY,
      uses=("onset", "locations", "relieved_by_moving", "duration", "recent_injury"),
      causes={"nerve-injury": HIGH, "leg-injury": HIGH}, proposals=("emergency-referral",),
      cites=(Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
             Cite(S003, "Numbness in your face, or involving an entire arm or leg")),
      common_sense="A whole leg that stays numb after an injury can be a nerve or blood vessel injury "
                   "and is seen now.")
def sudden_whole_leg_after_injury(f: Facts) -> bool:
    """A whole leg went numb suddenly after an injury and did not come back within minutes."""
    return (may_be_sudden(f) and any_of(f.locations, "whole-leg")
            and not came_back_within_minutes(f) and yes(f.recent_injury))


@rule("bladder-bowel", "New trouble controlling the bladder or bowel", floor=EMERGENCY,
      uses=("bladder_or_bowel_change",),
      causes={"cauda-equina": HIGH, "spinal-cord-compression": MODERATE},
      proposals=("emergency-referral", "mri-spine"),
      cites=(Cite(S003, "Bladder or bowel changes"),
             Cite(S001, "Affects bladder or bowel control")),
      common_sense="Naming cauda equina syndrome and emergency MRI of the spine: the sources say "
                   "'a serious problem with your brain or spine'.")
def bladder_or_bowel_changes(f: Facts) -> bool:
    """New trouble controlling the bladder or bowel."""
    return yes(f.bladder_or_bowel_change)


@rule("both-legs-shooting-pain", "Pain shooting down both legs", floor=EMERGENCY,
      uses=("pain_shooting_down_both_legs",),
      causes={"spinal-cord-compression": HIGH}, proposals=("emergency-referral", "mri-spine"),
      cites=(Cite(S003, "A rare but serious cause of leg numbness can be a tumor, infection, or other "
                        "abnormality that presses on nerves in the spinal cord itself. This may be the "
                        "case when someone has pain shooting down both legs."),
             Cite(S003, "We would potentially be sending them to the emergency room for imaging")))
def pain_shooting_down_both_legs(f: Facts) -> bool:
    """Pain shooting down both legs."""
    return yes(f.pain_shooting_down_both_legs)


@rule("breathless", "Shortness of breath or chest pain with leg numbness", floor=EMERGENCY,
      uses=("breathless_or_chest_pain",),
      causes={"pulmonary-embolism": HIGH}, proposals=("emergency-referral",),
      cites=(Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied "
                        "along with shortness of breath"),
             Cite(S002, "Deep vein thrombosis, which involves blood clots in the legs that can break "
                        "loose from the leg causing a pulmonary embolism in the lung")))
def short_of_breath_or_chest_pain(f: Facts) -> bool:
    """Shortness of breath or chest pain."""
    return yes(f.breathless_or_chest_pain)


@rule("sudden-with-weakness", "Sudden numbness with weakness of the leg", floor=EMERGENCY,
      uses=("onset", "weakness", "recent_injury", "age"),
      causes={"stroke": HIGH, "spinal-cord-compression": LOW},
      proposals=("emergency-referral", "ct-head"),
      cites=(Cite(S001, "Sudden numbness with weakness or speech changes requires urgent medical "
                        "attention."),
             Cite(S003, "Muscle weakness or paralysis")),
      common_sense="After an injury in a person under 50 the injury explains the weakness and is "
                   "named instead; in an older person a fall can be the result of a stroke.")
def sudden_numbness_with_weakness(f: Facts) -> bool:
    """The numbness came on suddenly (or its onset was not reported) with weakness of the leg, and
    a stroke is a possible cause."""
    return may_be_sudden(f) and yes(f.weakness) and stroke_in_question(f)


@rule("injury-with-weakness", "Weakness of the leg after an injury, fall or accident",
      floor=EMERGENCY, uses=("recent_injury", "weakness"),
      causes={"nerve-injury": HIGH, "leg-injury": HIGH, "spinal-cord-compression": LOW},
      proposals=("emergency-referral",),
      cites=(Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
             Cite(S003, "Muscle weakness or paralysis"),
             Cite(S002, "Back, neck or leg injury")))
def injury_with_weakness(f: Facts) -> bool:
    """A recent injury, fall or accident, and the leg is weak."""
    return yes(f.recent_injury) and yes(f.weakness)


@rule("sudden-cold-pale-leg", "A leg or foot that suddenly turned cold and pale and stays so",
      floor=EMERGENCY,
      uses=("onset", "leg_cold_pale_or_changed", "pattern", "relieved_by_moving"),
      causes={"acute-limb-ischaemia": HIGH}, proposals=("emergency-referral", "vascular-surgeon"),
      cites=(Cite(S002, "Clots in the blood vessels due to accumulation of cholesterol"),
             Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or "
                        "temperature of the legs and feet")),
      common_sense="A leg that turns cold and pale suddenly and stays so is an arterial occlusion "
                   "until proven otherwise.")
def sudden_cold_pale_leg(f: Facts) -> bool:
    """The numbness came on suddenly (or its onset was not reported), and the leg or foot is cold,
    pale or changed in colour, and it is not known to pass (it does not come and go, and does not
    ease on moving)."""
    return may_be_sudden(f) and yes(f.leg_cold_pale_or_changed) and not goes_away(f)


# ---- Urgent: be seen within 24 hours ------------------------------------------------------------

@rule("sudden-ongoing", "Sudden numbness that has not gone and is not explained by position",
      floor=URGENT,
      uses=("onset", "relieved_by_moving", "duration", "pattern", "tight_clothing", "cold_exposure",
            "progression", "recent_injury", "age"),
      causes={"stroke": MODERATE}, proposals=("neuro-exam",),
      cites=(Cite(S001, "Occurs suddenly"),
             Cite(S001, "Stroke or transient ischemic attack"),
             Cite(S003, "In that case, sensation should return within a few minutes of adjusting your "
                        "position.")),
      common_sense="Ongoing sudden numbness can be a small stroke; urgent is the floor, the stroke "
                   "signs make it an emergency.")
def sudden_ongoing(f: Facts) -> bool:
    """The numbness came on suddenly (or its onset was not reported), it is not known to have come
    back within minutes of moving, it is not explained by position, tight clothing or cold, and a
    stroke is a possible cause."""
    return (may_be_sudden(f) and not came_back_within_minutes(f) and not explained_by_position(f)
            and stroke_in_question(f))


@rule("sudden-resolved", "Sudden numbness that passed within minutes but is constant, recurring "
      "or getting worse", floor=URGENT,
      uses=("onset", "relieved_by_moving", "duration", "pattern", "progression", "recent_injury",
            "age"),
      causes={"tia": MODERATE}, proposals=("neuro-exam",),
      cites=(Cite(S001, "Occurs suddenly"),
             Cite(S001, "Stroke or transient ischemic attack"),
             Cite(S003, "It’s a good idea to see a doctor any time you experience new or worsening "
                        "numbness in your legs")),
      common_sense="Sudden numbness that passes within minutes but is getting worse or constant is not "
                   "explained by position and can be a transient ischaemic attack, seen within a day.")
def sudden_resolved_not_explained(f: Facts) -> bool:
    """The numbness came on suddenly (or its onset was not reported) and came back within minutes of
    moving, but it is constant or getting worse, so position does not explain it; and a stroke is a
    possible cause."""
    return (may_be_sudden(f) and came_back_within_minutes(f) and not explained_by_position(f)
            and stroke_in_question(f))


@rule("sudden-whole-leg-resolved", "Sudden numbness of a whole leg that came back within minutes, "
      "not brought on by position", floor=URGENT,
      uses=("onset", "locations", "relieved_by_moving", "duration", "pattern", "recent_injury", "age"),
      causes={"tia": MODERATE}, proposals=("neuro-exam",),
      cites=(Cite(S003, "Numbness in your face, or involving an entire arm or leg"),
             Cite(S001, "Stroke or transient ischemic attack"),
             Cite(S003, "In that case, sensation should return within a few minutes of adjusting your "
                        "position.")),
      common_sense="Numbness of a whole leg that passes within minutes, without sitting or lying on "
                   "it to explain it, can be a transient ischaemic attack, which is seen within a "
                   "day; tight clothing or cold do not numb a whole leg.")
def sudden_whole_leg_resolved(f: Facts) -> bool:
    """A whole leg went numb suddenly (or the onset was not reported) and came back within minutes
    of moving, it was not answered as coming only in certain positions, and a stroke is a possible
    cause."""
    return (may_be_sudden(f) and any_of(f.locations, "whole-leg") and came_back_within_minutes(f)
            and f.pattern != "positional" and stroke_in_question(f))


@rule("injury", "Numbness after a recent injury, fall or accident", floor=URGENT,
      uses=("recent_injury",),
      causes={"leg-injury": MODERATE, "nerve-injury": LOW}, proposals=("neuro-exam",),
      cites=(Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
             Cite(S001, "Nerve irritation or swelling after injury can temporarily reduce sensation.")))
def recent_injury(f: Facts) -> bool:
    """A recent injury, fall or accident of the back, neck or leg."""
    return yes(f.recent_injury)


CLOT_CITES = (Cite(S004, "throbbing calf or leg pain when standing or walking"),
              Cite(S004, "swelling in one leg"),
              Cite(S004, "hot or warm skin in the affected leg"),
              Cite(S002, "Deep vein thrombosis, which involves blood clots in the legs that can break "
                         "loose from the leg causing a pulmonary embolism in the lung"))


@rule("dvt-signs", "Signs of a clot in a leg vein", floor=URGENT,
      uses=("one_leg_swollen", "leg_warm_red_or_discoloured", "calf_pain_standing_or_walking",
            "recent_immobility", "cancer_history", "medications"),
      causes={"dvt": HIGH}, proposals=("d-dimer", "venous-duplex"),
      cites=CLOT_CITES,
      common_sense="Recent immobility, cancer and chemotherapy as clot risks, and D-dimer with venous "
                   "duplex as the first tests, are standard practice.")
def signs_of_a_clot(f: Facts) -> bool:
    """Swelling of one leg; or a warm, red or discoloured leg with calf pain; or calf pain or a
    warm, red leg in someone with a clot risk (a long journey, surgery or bed rest, cancer, or
    chemotherapy)."""
    return (yes(f.one_leg_swollen)
            or (yes(f.leg_warm_red_or_discoloured) and yes(f.calf_pain_standing_or_walking))
            or ((yes(f.calf_pain_standing_or_walking) or yes(f.leg_warm_red_or_discoloured))
                and has_clot_risk(f)))


@rule("clot-possible", "Calf pain on standing or walking, or a warm, red leg", floor=URGENT,
      uses=("calf_pain_standing_or_walking", "leg_warm_red_or_discoloured"),
      causes={"dvt": MODERATE}, proposals=("d-dimer", "venous-duplex"),
      cites=CLOT_CITES[:1] + (Cite(S004, "change of skin color in the affected area"),) + CLOT_CITES[3:],
      common_sense="Each is one of the common symptoms of a clot, and a missed clot can reach the lung.")
def calf_pain_or_warm_red_leg(f: Facts) -> bool:
    """Throbbing calf pain on standing or walking, or a warm, red or discoloured leg."""
    return yes(f.calf_pain_standing_or_walking) or yes(f.leg_warm_red_or_discoloured)


@rule("gradual-weakness", "Weakness of the leg that came on gradually", floor=URGENT,
      uses=("onset", "weakness"),
      causes={"peripheral-neuropathy": LOW, "lumbar-radiculopathy": LOW, "multiple-sclerosis": LOW},
      proposals=("neurologist", "neuro-exam"),
      cites=(Cite(S001, "Is accompanied by weakness or pain"),
             Cite(S003, "Muscle weakness or paralysis")))
def gradual_weakness(f: Facts) -> bool:
    """The leg is weak or hard to move, and the numbness came on gradually."""
    return f.onset == "gradual" and yes(f.weakness)


@rule("worsening-walking", "Numbness that makes walking or balance difficult and is not settling",
      floor=URGENT, uses=("walking_or_balance_difficulty", "progression"),
      causes={"peripheral-neuropathy": MODERATE}, proposals=("neurologist", "neuro-exam"),
      cites=(Cite(S001, "Persists or worsens"),
             Cite(S001, "Interferes with walking or balance")),
      common_sense="A course not reported could be a worsening one; only improving or stable keeps "
                   "this routine.")
def walking_difficulty_not_settling(f: Facts) -> bool:
    """Walking or balance is difficult, and the numbness is getting worse, spreading upward, or its
    course was not reported."""
    return yes(f.walking_or_balance_difficulty) and f.progression not in ("improving", "stable")


@rule("ascending-days", "Numbness climbing up from the feet over days or weeks", floor=URGENT,
      uses=("progression", "duration"),
      causes={"peripheral-neuropathy": HIGH}, proposals=("neurologist", "neuro-exam"),
      cites=(Cite(S001, "Symptoms often start in the feet and gradually progress upward."),
             Cite(S003, "It’s a good idea to see a doctor any time you experience new or worsening "
                        "numbness in your legs")),
      common_sense="A rapidly ascending neuropathy such as Guillain-Barré syndrome is seen the same "
                   "day; numbness that has climbed over months is seen routinely.")
def ascending_over_days(f: Facts) -> bool:
    """The numbness is spreading upward from the toes and has not lasted months (or how long it
    has lasted was not reported)."""
    return f.progression == "ascending" and f.duration != "months"


@rule("cancer-back-pain", "Back pain or pain spreading down a leg in a person with cancer",
      floor=URGENT, uses=("cancer_history", "low_back_pain", "pain_radiating_down_one_leg"),
      causes={"spinal-cord-compression": MODERATE}, proposals=("mri-spine", "neuro-exam"),
      cites=(Cite(S004, "Tumors, cysts, abscesses, and benign (non-cancerous) growths can put "
                        "pressure on the brain, spinal cord, or any part of the legs and feet."),
             Cite(S003, "A rare but serious cause of leg numbness can be a tumor, infection, or other "
                        "abnormality that presses on nerves in the spinal cord itself.")),
      common_sense="Suspected spinal metastasis (NICE NG234): back pain or nerve-root pain in a "
                   "person with cancer is imaged of the whole spine and seen within a day; "
                   "physiotherapy and manipulation are not offered until it is excluded.")
def cancer_with_back_or_radiating_pain(f: Facts) -> bool:
    """Cancer now or in the past, with lower back pain or pain spreading down a leg."""
    return cancer_with_back_or_leg_pain(f)


@rule("spine-weakness", "Back pain or pain spreading down the leg, with weakness of the leg",
      floor=URGENT, uses=("low_back_pain", "pain_radiating_down_one_leg", "weakness"),
      causes={"lumbar-radiculopathy": HIGH}, proposals=("mri-lumbar-spine", "neurologist"),
      cites=(Cite(S001, "Compressed nerves can disrupt sensation and cause numbness, tingling, or "
                        "weakness."),
             Cite(S003, "Magnetic resonance imaging (MRI) of your head or spine")),
      common_sense="Imaging the lumbar spine when nerve-root pain comes with weakness is standard "
                   "practice.")
def spinal_pain_with_weakness(f: Facts) -> bool:
    """Lower back pain or pain spreading down one leg, with weakness of the leg."""
    return (yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg)) and yes(f.weakness)


@rule("cold-leg-arterial", "A cold, pale or discoloured leg, or toes that turn white or blue in the "
      "cold, on one side, above the toes or after the age of 40", floor=URGENT,
      uses=("toes_change_colour_in_cold", "leg_cold_pale_or_changed", "side", "locations", "age"),
      causes={"pad": MODERATE, "raynaud": LOW}, proposals=("abpi", "arterial-duplex"),
      cites=(Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or "
                        "temperature of the legs and feet"),
             Cite(S001, "Reduced blood flow to the legs may lead to numbness and coldness."),
             Cite(S000, "Usually observed in diabetes mellitus and Raynaud’s syndrome.")),
      common_sense="Raynaud's phenomenon affects the toes on both sides and usually begins young; "
                   "cold, pale attacks on one side, above the toes or beginning after 40 are arterial "
                   "until proven otherwise, and so is a leg that stays cold and pale.")
def cold_leg_needing_arterial_check(f: Facts) -> bool:
    """A cold, pale or discoloured leg or foot, or toes that turn white or blue in the cold, and it is
    not known to be the toes of both feet in a person aged 40 or under (one-sided, above the toes,
    after 40, or any of these not reported)."""
    return ((yes(f.toes_change_colour_in_cold) or yes(f.leg_cold_pale_or_changed))
            and attack_needs_arterial_check(f))


# ---- Routine: book an appointment ---------------------------------------------------------------

@rule("not-benign", "Leg numbness without a brief, positional explanation", floor=ROUTINE,
      uses=("onset", "duration", "relieved_by_moving", "pattern", "tight_clothing", "cold_exposure",
            "progression", "sensations"),
      cites=(Cite(S004, "Anyone who experiences numbness that is unexplained, persistent, painful, or "
                        "accompanied by other chronic symptoms should see a doctor"),
             Cite(S002, "You should talk to a doctor if your numbness lasts more than a few minutes.")))
def numbness_without_benign_explanation(f: Facts) -> bool:
    """Not the positively benign story (sudden, lasted minutes, brought on by position, tight
    clothing or cold, gone after moving; every part answered)."""
    return not benign_story(f)


@rule("persistent", "Persistent numbness", floor=ROUTINE, uses=("duration", "pattern"),
      cites=(Cite(S004, "lasts for long periods"),
             Cite(S001, "Persistent numbness should be evaluated.")))
def persistent_numbness(f: Facts) -> bool:
    """The numbness has lasted days, weeks or months, or is constant."""
    return f.duration in ("days", "weeks", "months") or f.pattern == "constant"


@rule("recurring", "Numbness that keeps coming back", floor=ROUTINE, uses=("pattern",),
      cites=(Cite(S004, "Recurring leg numbness may be due to an underlying condition such as "
                        "diabetes. A doctor can order tests to help diagnose the cause of recurring or "
                        "constant leg numbness."),
             Cite(S000, "Doctors are contacted if the legs lose sensitivity regularly and for no "
                        "apparent reason")))
def recurring_numbness(f: Facts) -> bool:
    """The numbness comes and goes."""
    return f.pattern == "comes-and-goes"


@rule("recurring-positional", "Numbness brought on by position, tight clothing or cold that keeps "
      "coming back or lasts", floor=ROUTINE,
      uses=("onset", "duration", "relieved_by_moving", "pattern", "tight_clothing", "cold_exposure",
            "progression", "sensations") + RED_FLAG_FACTS + CIRCULATION_FACTS,
      causes={"positional-compression": MODERATE},
      cites=(Cite(S004, "Recurring leg numbness may be due to an underlying condition such as "
                        "diabetes. A doctor can order tests to help diagnose the cause of recurring or "
                        "constant leg numbness."),
             Cite(S003, "Getting up and moving regularly can help prevent nerve compression due to "
                        "positional factors.")))
def recurring_positional(f: Facts) -> bool:
    """Numbness brought on by position, tight clothing or cold (answered) and explained by it, that is
    not a single brief episode, with no warning sign, clot sign or circulation sign."""
    return (trigger_reported(f) and explained_by_position(f) and not benign_story(f)
            and not warning_sign_reported(f))


@rule("worsening", "Worsening numbness", floor=ROUTINE, uses=("progression",),
      cites=(Cite(S001, "Persists or worsens"),
             Cite(S003, "It’s a good idea to see a doctor any time you experience new or worsening "
                        "numbness in your legs")))
def worsening_numbness(f: Facts) -> bool:
    """The numbness is getting worse or spreading upward."""
    return f.progression in ("worsening", "ascending")


@rule("painful", "Painful or burning numbness", floor=ROUTINE, uses=("sensations",),
      cites=(Cite(S000, "accompanied by other alarming signs: pain, burning, limited mobility"),
             Cite(S001, "Is accompanied by weakness or pain")))
def painful_numbness(f: Facts) -> bool:
    """Pain or burning with the numbness."""
    return any_of(f.sensations, "pain", "burning")


@rule("walking-difficulty", "Numbness that makes walking or balance difficult", floor=ROUTINE,
      uses=("walking_or_balance_difficulty",), proposals=("neuro-exam",),
      cites=(Cite(S001, "Interferes with walking or balance"),))
def walking_or_balance_difficulty(f: Facts) -> bool:
    """The numbness makes walking or keeping balance difficult."""
    return yes(f.walking_or_balance_difficulty)


# Causes tied to the numbness: they keep it at least routine even in the benign story.

@rule("diabetes", "Leg numbness in a person with diabetes", floor=ROUTINE,
      uses=("diabetes",), causes={"diabetic-neuropathy": MODERATE}, proposals=("hba1c", "neuro-exam"),
      cites=(Cite(S004, "Some people with diabetes develop a type of nerve damage called diabetic "
                        "neuropathy."),
             Cite(S003, "But with good diabetes control, worsening of symptoms can be prevented.")))
def known_diabetes(f: Facts) -> bool:
    """The person has diabetes."""
    return f.diabetes == "yes"


@rule("diabetes-typical-pattern", "Numbness in both legs or the feet, or climbing from the toes, "
      "in a person with diabetes", floor=ROUTINE, uses=("diabetes", "side", "locations", "progression"),
      causes={"diabetic-neuropathy": HIGH}, proposals=("hba1c", "endocrinologist"),
      cites=(Cite(S000, "Numbness usually captures both legs and spreads from the bottom up: first the "
                        "fingers lose sensation, then the rest of the foot and lower leg."),
             Cite(S004, "This may cause numbness, pain, and weakness that begins in the toes and may "
                        "gradually rise up to the feet, ankles, and knees.")))
def diabetes_with_typical_pattern(f: Facts) -> bool:
    """Diabetes, and the numbness is in both legs, in the feet or toes only, or spreading upward."""
    return f.diabetes == "yes" and (
        f.side == "both" or f.progression == "ascending"
        or (bool(f.locations) and f.locations <= FEET_ONLY))


@rule("possible-undiagnosed-diabetes", "Numbness below the knee in a person who does not know "
      "whether they have diabetes", floor=ROUTINE,
      uses=("diabetes", "no_recent_checkup", "locations"),
      causes={"diabetic-neuropathy": MODERATE}, proposals=("hba1c",),
      cites=(Cite(S003, "“With tingling and numbness below the knees, it can suggest diabetes,” "
                        "especially if someone hasn’t been to the doctor in years"),
             Cite(S003, "he’ll order an A1C test to check for diabetes")),
      common_sense="Where the numbness is was not reported it may be below the knee; one HbA1c "
                   "answers the question, a fasting glucose beside it adds nothing.")
def possible_undiagnosed_diabetes(f: Facts) -> bool:
    """Numbness below the knee (or its place not reported), and the person does not know whether
    they have diabetes, or has not said and has had no check-up in years."""
    return diabetes_not_known(f) and (f.locations is None or any_of(f.locations, *BELOW_THE_KNEE))


@rule("distal-symmetric", "Numbness of both feet or climbing up from the feet", floor=ROUTINE,
      uses=("progression", "side", "locations") + STORY_FACTS[:6] + ("sensations",),
      causes={"peripheral-neuropathy": MODERATE}, proposals=("hba1c", "b12", "tsh"),
      cites=(Cite(S001, "Symptoms often start in the feet and gradually progress upward."),
             Cite(S003, "Blood tests are also useful to check for conditions including diabetes, "
                        "anemia, electrolyte abnormalities")))
def numbness_spreading_up_from_the_feet(f: Facts) -> bool:
    """The numbness is spreading upward from the toes, or is in both feet only and is not a brief
    episode explained by position, tight clothing or cold."""
    return f.progression == "ascending" or (
        f.side == "both" and bool(f.locations) and f.locations <= FEET_ONLY
        and not benign_story(f))


@rule("both-legs-systemic", "Numbness in both legs", floor=ROUTINE,
      uses=("side",) + STORY_FACTS,
      causes={"multiple-sclerosis": LOW, "b12-deficiency": LOW}, proposals=("b12", "cbc"),
      cites=(Cite(S002, "numbness in both the legs may indicate systemic disease such as multiple "
                        "sclerosis or pernicious anemia"),))
def numbness_in_both_legs(f: Facts) -> bool:
    """Both legs are numb, and it is not a brief episode explained by position, tight clothing or
    cold."""
    return f.side == "both" and not benign_story(f)


@rule("b12", "Leg numbness with a risk of vitamin B12 deficiency", floor=ROUTINE,
      uses=("b12_deficiency_risk",), causes={"b12-deficiency": MODERATE},
      proposals=("b12", "cbc", "folate"),
      cites=(Cite(S003, "Vitamin deficiencies, especially vitamin B12"),
             Cite(S002, "Vitamin B12 deficiency")))
def b12_deficiency_risk(f: Facts) -> bool:
    """Known vitamin B12 deficiency or anaemia, or a vegan diet."""
    return yes(f.b12_deficiency_risk)


@rule("alcohol", "Leg numbness with heavy or daily alcohol use", floor=ROUTINE,
      uses=("heavy_alcohol_use",),
      causes={"alcoholic-neuropathy": MODERATE, "b12-deficiency": LOW},
      proposals=("b12", "folate", "cbc"),
      cites=(Cite(S004, "Chronic or excessive alcohol consumption may also lead to signs of peripheral "
                        "neuropathy, such as limb numbness. This is referred to as alcoholic "
                        "neuropathy."),
             Cite(S004, "This type of nerve damage is linked to reduced levels of B vitamins, such as "
                        "B-1 (thiamine), B-9 (folate), and B-12")))
def heavy_alcohol_use(f: Facts) -> bool:
    """Drinks alcohol heavily or daily."""
    return yes(f.heavy_alcohol_use)


@rule("thyroid", "Leg numbness in a person with thyroid disease", floor=ROUTINE,
      uses=("thyroid_disease",), causes={"thyroid-neuropathy": MODERATE}, proposals=("tsh",),
      cites=(Cite(S002, "Thyroid diseases"),))
def thyroid_disease(f: Facts) -> bool:
    """The person has thyroid disease."""
    return yes(f.thyroid_disease)


@rule("medications", "Leg numbness in a person taking medicines that can damage nerves",
      floor=ROUTINE, uses=("medications",), causes={"drug-induced-neuropathy": MODERATE},
      cites=(Cite(S003, "Cancer or chemotherapy drugs"),
             Cite(S003, "Certain infection-fighting drugs"),
             Cite(S003, "Seizure treatments")))
def nerve_damaging_medicines(f: Facts) -> bool:
    """Takes chemotherapy, HIV, seizure or anti-infective medicines."""
    return any_of(f.medications, *NEUROTOXIC_MEDICINES)


@rule("heart-medicines", "Ongoing leg numbness in a person taking heart or blood pressure medicines",
      floor=ROUTINE, uses=("medications",) + STORY_FACTS,
      causes={"drug-induced-neuropathy": LOW},
      cites=(Cite(S003, "Heart and blood pressure drugs"),))
def heart_medicines(f: Facts) -> bool:
    """Takes heart or blood pressure medicines, and it is not a brief episode explained by position,
    tight clothing or cold."""
    return any_of(f.medications, "heart-bp") and not benign_story(f)


@rule("toxins", "Leg numbness after exposure to heavy metals, solvents or drugs", floor=ROUTINE,
      uses=("toxin_exposure",), causes={"toxic-neuropathy": MODERATE},
      cites=(Cite(S002, "Heavy metal poisoning such as lead poisoning"),
             Cite(S003, "Glue sniffing")))
def toxin_exposure(f: Facts) -> bool:
    """Exposure to lead or other heavy metals, arsenic, glue sniffing or illegal drugs."""
    return yes(f.toxin_exposure)


@rule("sciatica", "Pain spreading from the lower back down one leg", floor=ROUTINE,
      uses=("pain_radiating_down_one_leg", "cancer_history"),
      causes={"sciatica": HIGH, "lumbar-radiculopathy": MODERATE, "lumbar-disc": MODERATE},
      proposals=("physiotherapy",),
      cites=(Cite(S000, "A characteristic sign of dorsopathy is lower back pain that “radiates” to the "
                        "buttock and one leg"),
             Cite(S004, "Sciatica is a condition where the sciatic nerve becomes irritated or "
                        "compressed."),
             Cite(S001, "Physical therapy plays a key role in treating leg numbness caused by spinal "
                        "or muscular issues.")))
def pain_radiating_from_the_back(f: Facts) -> bool:
    """Pain spreading from the lower back or buttock down one leg, in a person without cancer
    (with cancer it is suspected spinal metastasis, which is urgent)."""
    return yes(f.pain_radiating_down_one_leg) and not yes(f.cancer_history)


@rule("back-pain", "Lower back pain with leg numbness", floor=ROUTINE,
      uses=("low_back_pain", "cancer_history"),
      causes={"lumbar-disc": LOW, "lumbar-radiculopathy": LOW}, proposals=("physiotherapy",),
      cites=(Cite(S002, "Leg numbness along with back pain may indicate nerve compression in the "
                        "lower back."),
             Cite(S001, "Yes, spinal conditions are one of the most common causes.")))
def lower_back_pain(f: Facts) -> bool:
    """Lower back pain, in a person without cancer."""
    return yes(f.low_back_pain) and not yes(f.cancer_history)


@rule("spinal-stenosis", "Back pain with numbness in both legs or on walking", floor=ROUTINE,
      uses=("low_back_pain", "side", "claudication"),
      causes={"lumbar-stenosis": MODERATE}, proposals=("physiotherapy",),
      cites=(Cite(S001, "Lumbar spinal stenosis"),
             Cite(S001, "Compressed nerves can disrupt sensation and cause numbness, tingling, or "
                        "weakness.")),
      common_sense="That stenosis shows as back pain with numbness of both legs or with walking is "
                   "clinical common sense; the sources only list it among nerve compressions.")
def back_pain_with_both_legs_or_walking(f: Facts) -> bool:
    """Lower back pain, with both legs numb or with symptoms brought on by walking."""
    return yes(f.low_back_pain) and (f.side == "both" or yes(f.claudication))


@rule("sacral-plexus", "One heavy, numb leg with lower back pain", floor=ROUTINE,
      uses=("side", "sensations", "low_back_pain"),
      causes={"sacral-plexus-neuropathy": LOW},
      cites=(Cite(S000, "In these diseases, the pathological process affects only one limb."),
             Cite(S000, "patients often complain of heaviness in the legs, pulling or aching pains in "
                        "the sacrum and lower back")))
def one_heavy_leg_with_back_pain(f: Facts) -> bool:
    """One leg numb and heavy, with lower back pain."""
    return f.side in ("left", "right") and any_of(f.sensations, "heaviness") and yes(f.low_back_pain)


@rule("claudication", "Pain or cramping in the calves or hips on walking that eases with rest",
      floor=ROUTINE, uses=("claudication",), causes={"pad": HIGH},
      proposals=("abpi", "arterial-duplex", "vascular-surgeon"),
      cites=(Cite(S004, "PAD may cause the following symptoms in the legs, hips, and calves when a "
                        "person is walking"),
             Cite(S004, "Symptoms of PAD typically go away after a few minutes of rest."),
             Cite(S003, "Ultrasound imaging of your leg or legs")),
      common_sense="The ankle-brachial pressure index as the first test for PAD is standard practice.")
def claudication(f: Facts) -> bool:
    """Pain, cramping or weakness in the calves or hips on walking that eases after rest."""
    return yes(f.claudication)


@rule("cold-pale-leg", "A leg or foot that is cold, pale or changed in colour, shape or temperature",
      floor=ROUTINE, uses=("leg_cold_pale_or_changed",), causes={"pad": MODERATE},
      proposals=("abpi", "arterial-duplex"),
      cites=(Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or "
                        "temperature of the legs and feet"),
             Cite(S001, "Reduced blood flow to the legs may lead to numbness and coldness.")))
def cold_pale_or_changed_leg(f: Facts) -> bool:
    """The leg or foot is cold, pale, or has changed colour, shape or temperature."""
    return yes(f.leg_cold_pale_or_changed)


@rule("venous-insufficiency", "Heavy legs with cramps or coldness", floor=ROUTINE,
      uses=("sensations",), causes={"chronic-venous-insufficiency": LOW},
      proposals=("venous-duplex",),
      cites=(Cite(S000, "An excessive amount of blood accumulates in the superficial veins of the "
                        "legs, which causes a whole range of unpleasant symptoms: heaviness, muscle "
                        "spasms, loss of sensitivity, and a decrease in temperature."),))
def heavy_legs_with_cramps_or_cold(f: Facts) -> bool:
    """Heaviness with cramps or coldness in the leg."""
    return any_of(f.sensations, "heaviness") and any_of(f.sensations, "cramps", "cold")


@rule("raynaud", "Toes that turn white or blue in the cold", floor=ROUTINE,
      uses=("toes_change_colour_in_cold",), causes={"raynaud": MODERATE},
      cites=(Cite(S000, "Usually observed in diabetes mellitus and Raynaud’s syndrome."),))
def toes_change_colour_in_cold(f: Facts) -> bool:
    """The toes turn white or blue in the cold."""
    return yes(f.toes_change_colour_in_cold)


@rule("known-ms", "Ongoing leg numbness in a person with multiple sclerosis", floor=ROUTINE,
      uses=("multiple_sclerosis",) + STORY_FACTS,
      causes={"multiple-sclerosis": HIGH}, proposals=("neurologist",),
      cites=(Cite(S004, "Multiple sclerosis (MS) causes sensory nerve damage that may lead to numbness "
                        "in a region of the body."),
             Cite(S004, "in some cases, it could gradually worsen and become physically disabling.")))
def diagnosed_multiple_sclerosis(f: Facts) -> bool:
    """The person has diagnosed multiple sclerosis, and it is not a brief episode explained by
    position, tight clothing or cold."""
    return yes(f.multiple_sclerosis) and not benign_story(f)


@rule("itching", "Numbness with itching", floor=ROUTINE, uses=("sensations",),
      causes={"multiple-sclerosis": LOW},
      cites=(Cite(S002, "Multiple sclerosis may manifest in form of numbness and extreme itchiness."),))
def numbness_with_itching(f: Facts) -> bool:
    """Itching with the numbness."""
    return any_of(f.sensations, "itching")


@rule("tarsal-tunnel", "Burning, tingling or pain of the heel, ankle or sole", floor=ROUTINE,
      uses=("locations", "sensations") + STORY_FACTS[:7],
      causes={"tarsal-tunnel": MODERATE}, proposals=("emg-ncs",),
      cites=(Cite(S004, "People with tarsal tunnel syndrome tend to feel numbness, burning, tingling, "
                        "or shooting pain in their ankles, heels, and feet."),
             Cite(S003, "Electromyography (EMG) and nerve conduction studies")))
def heel_ankle_or_sole_burning(f: Facts) -> bool:
    """Numbness of the ankle, heel or sole with burning, tingling or pain, and it is not a brief
    episode explained by position, tight clothing or cold."""
    return (any_of(f.locations, "ankle-heel", "sole")
            and any_of(f.sensations, "burning", "tingling", "pain") and not benign_story(f))


@rule("lateral-thigh", "Burning or tingling of the front and outer thigh of one leg",
      floor=ROUTINE, uses=("side", "locations", "sensations") + STORY_FACTS[:7],
      causes={"meralgia-paresthetica": MODERATE}, proposals=("emg-ncs",),
      cites=(Cite(S000, "The most common pathology is neuropathy of the external femoral cutaneous "
                        "nerve. The disease affects only one limb, accompanied by loss of sensation, "
                        "burning, tingling and cold on the front of the thigh."),))
def one_sided_lateral_thigh_numbness(f: Facts) -> bool:
    """One thigh numb on the front and outer side, with burning, tingling or coldness, and it is not
    a brief episode explained by position, tight clothing or cold."""
    return (f.side in ("left", "right") and any_of(f.locations, "thigh-front-outer")
            and any_of(f.sensations, "burning", "tingling", "cold") and not benign_story(f))


@rule("strain", "Ongoing numbness after heavy exertion or repetitive movements", floor=ROUTINE,
      uses=("recent_strain",) + STORY_FACTS,
      causes={"tarsal-tunnel": LOW, "meralgia-paresthetica": LOW},
      cites=(Cite(S000, "Tunnel syndromes of the lower extremities usually occur due to high physical "
                        "exertion or the performance of monotonous repetitive movements."),))
def after_exertion_or_repetitive_movements(f: Facts) -> bool:
    """Recent heavy physical exertion or repetitive movements, and it is not a brief episode
    explained by position, tight clothing or cold."""
    return yes(f.recent_strain) and not benign_story(f)


@rule("cancer", "Ongoing leg numbness in a person with cancer now or in the past", floor=ROUTINE,
      uses=("cancer_history",) + STORY_FACTS,
      causes={"spinal-cord-compression": LOW},
      cites=(Cite(S004, "Tumors, cysts, abscesses, and benign (non-cancerous) growths can put "
                        "pressure on the brain, spinal cord, or any part of the legs and feet."),
             Cite(S002, "Chronic numbness, on the other hand, may indicate a wide variety of serious "
                        "underlying diseases, disorders or conditions such as stroke or tumors")))
def cancer_history(f: Facts) -> bool:
    """Cancer now or in the past, and it is not a brief episode explained by position, tight
    clothing or cold."""
    return yes(f.cancer_history) and not benign_story(f)


# ---- Self-care: advice, no visit needed ----------------------------------------------------------
# Only the positively benign story, and never beside a red flag, a clot sign or a circulation sign.

BENIGN_USES = STORY_FACTS + RED_FLAG_FACTS + CIRCULATION_FACTS


@rule("fell-asleep", "A leg that fell asleep in one position and came back within minutes of moving",
      floor=SELF_CARE, uses=BENIGN_USES,
      causes={"positional-compression": HIGH},
      cites=(Cite(S003, "In that case, sensation should return within a few minutes of adjusting your "
                        "position."),
             Cite(S004, "Many people describe this feeling as their leg having “fallen asleep.”"),
             Cite(S003, "“If it happens once or twice, it’s usually not something that needs to be "
                        "treated,” says Jaros.")))
def leg_fell_asleep(f: Facts) -> bool:
    """The benign story brought on by position, with no warning sign, clot sign or circulation
    sign."""
    return benign_story(f) and f.pattern == "positional" and not warning_sign_reported(f)


@rule("tight-clothing", "Brief numbness from tight shoes, socks or trousers that went on loosening",
      floor=SELF_CARE, uses=tuple(n for n in BENIGN_USES if n != "cold_exposure"),
      causes={"tight-clothing": MODERATE},
      cites=(Cite(S004, "wearing pants, socks, or shoes that are too tight"),
             Cite(S000, "Legs can lose sensation due to hypothermia, uncomfortable posture, and "
                        "wearing tight shoes.")))
def brief_numbness_from_tight_clothing(f: Facts) -> bool:
    """The benign story in someone wearing tight shoes, socks or trousers, with no warning sign,
    clot sign or circulation sign."""
    return yes(f.tight_clothing) and benign_story(f) and not warning_sign_reported(f)


@rule("cold", "Brief numbness after the cold that went on warming", floor=SELF_CARE,
      uses=BENIGN_USES,
      causes={"cold-exposure": MODERATE},
      cites=(Cite(S000, "Legs can lose sensation due to hypothermia, uncomfortable posture, and "
                        "wearing tight shoes. In this case, the numbness goes away if you rub your legs "
                        "or do some exercise."),
             Cite(S002, "Extremely cold temperatures")))
def brief_numbness_after_cold(f: Facts) -> bool:
    """The benign story after exposure to cold, with no warning sign, clot sign or circulation
    sign."""
    return yes(f.cold_exposure) and benign_story(f) and not warning_sign_reported(f)


RULES = tuple(book.rules)


# ---- After the rules: the order of the causes ---------------------------------------------------

INJURY_CAUSES = ("leg-injury", "nerve-injury")


def rank_causes(facts: Facts, predictions: tuple[Prediction, ...]) -> tuple[Prediction, ...]:
    """The causes of the most urgent signs first: by the most urgent rule that named each cause;
    among equals, the causes of the stroke signs first, then (when an injury is reported) the injury
    causes, then the others, highest risk first."""
    injured = yes(facts.recent_injury)

    def key(p: Prediction):
        top = max((f.rule.floor for f in p.findings), default=ROUTINE)
        if any(f.rule.id == "stroke-signs" for f in p.findings):
            lead = 0
        elif injured and p.cause in INJURY_CAUSES:
            lead = 1
        else:
            lead = 2
        return (-top, lead)
    return tuple(sorted(predictions, key=key))  # stable: the engine's risk order within


# ---- After the rules: which proposals ---------------------------------------------------------

MAX_PROPOSALS = 6
PROPOSAL_PRIORITY = (
    "emergency-referral", "gp-referral", "ct-head", "mri-spine", "mri-lumbar-spine", "d-dimer",
    "venous-duplex", "abpi", "arterial-duplex", "neuro-exam", "vascular-surgeon", "neurologist",
    "hba1c", "fasting-glucose", "b12", "cbc", "folate", "tsh", "emg-ncs", "endocrinologist",
    "mri-brain", "spine-xray", "glucose", "physiotherapy",
)
# Two proposals that answer the same question: the first makes the second redundant.
SAME_QUESTION = (("hba1c", "fasting-glucose"), ("hba1c", "glucose"), ("fasting-glucose", "glucose"),
                 ("mri-spine", "mri-lumbar-spine"))


def choose_proposals(disposition: Disposition,
                     proposals: tuple[Proposal, ...]) -> tuple[Proposal, ...]:
    """At most six proposals, by clinical priority: what the most urgent findings asked for first,
    then what serves the highest-risk cause, then a fixed clinical order. An emergency carries only
    what the emergency findings asked for. No two proposals answer the same question (HbA1c or a
    glucose test; a whole-spine MRI includes the lumbar spine). No physiotherapy in an urgent or
    emergency result, nor when a person with cancer has back or leg pain (physiotherapy is for
    remission, source 000)."""
    if disposition == EMERGENCY:
        proposals = tuple(p for p in proposals if p.disposition == EMERGENCY)
    no_physio = disposition >= URGENT or any(
        f.rule.id == "cancer-back-pain" for p in proposals for f in p.findings)
    if no_physio:
        proposals = tuple(p for p in proposals if p.key != "physiotherapy")
    keys = {p.key for p in proposals}
    redundant = {second for first, second in SAME_QUESTION if first in keys}
    proposals = tuple(p for p in proposals if p.key not in redundant)

    def priority(p: Proposal):
        risk = max((r for f in p.findings for _, r in f.rule.causes), default=0)
        return (-p.disposition, not p.main, -risk, PROPOSAL_PRIORITY.index(p.key))
    return tuple(sorted(proposals, key=priority)[:MAX_PROPOSALS])


PROPOSALS_CITE = Cite(S000, "Not always the patient needs to undergo all the examinations. To make a "
                            "diagnosis, an external examination and the results of one or two "
                            "instrumental tests are sufficient.")
REMISSION_CITE = Cite(S000, "Massage, manual therapy and physiotherapy are prescribed during remission.")


# ---- After the rules: advice ----------------------------------------------------------------------

CALL_NOW = Advice(
    "Call emergency services at once or go to the nearest emergency department now. Do not drive "
    "yourself and do not wait to see whether it passes.",
    (Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied along "
                "with shortness of breath, dizziness, loss of coordination, loss of speech, fatigue "
                "and loss of vision."),
     Cite(S003, "These situations may indicate a serious problem with your brain or spine, "
                "including potentially a stroke or brain injury")),
    common_sense="Not driving oneself and not waiting are standard advice for a suspected stroke or "
                 "other emergency.")

SELF_CARE_ADVICE = (
    Advice("Change position, stand up or walk around for a few minutes, and rub the leg, if it "
           "happens again: the feeling should come back within minutes.",
           (Cite(S000, "Physiological numbness is easy to remove, it is enough to change the position "
                       "of the body, stand up or walk around for a few minutes."),
            Cite(S000, "Legs can lose sensation due to hypothermia, uncomfortable posture, and "
                       "wearing tight shoes. In this case, the numbness goes away if you rub your legs "
                       "or do some exercise."))),
    Advice("While a foot is numb it cannot feel heat or injury: test bath water with your hand or "
           "elbow before you step in, keep hot-water bottles and heaters away from the skin, and look "
           "at your feet for cuts or blisters.",
           (Cite(S000, "A foot massage and a bath with warm water helps a lot."),),
           common_sense="A numb foot is easily scalded or hurt without noticing; checking the water "
                        "temperature and the skin is standard foot care."),
    Advice("Wear comfortable shoes and loose socks and trousers, keep your legs warm, and avoid "
           "sitting or kneeling in one position for long: get up and move regularly.",
           (Cite(S000, "wear comfortable shoes, avoid hypothermia"),
            Cite(S003, "Getting up and moving regularly can help prevent nerve compression due to "
                       "positional factors."))),
    Advice("See a doctor if the numbness keeps coming back, lasts more than a few minutes, or comes "
           "with pain or burning: book an appointment.",
           (Cite(S002, "You should talk to a doctor if your numbness lasts more than a few minutes."),
            Cite(S004, "If a person regularly experiences numbness, a doctor can help determine if "
                       "there is a medical condition causing the symptoms."))),
)
MS_ADVICE = Advice(
    "You have multiple sclerosis: tell your MS team if new numbness lasts more than a day.",
    (Cite(S004, "Numbness associated with MS may only last a short period of time."),),
    common_sense="New symptoms lasting over a day can be a relapse, which the MS team assesses.")

POSTURE_ADVICE = Advice(
    "Until you are seen: get up and move regularly rather than sitting or kneeling in one position "
    "for long, wear comfortable shoes, and keep your legs warm.",
    (Cite(S000, "You need to monitor your posture, do not lift weights, wear comfortable shoes, avoid "
                "hypothermia."),
     Cite(S003, "Getting up and moving regularly can help prevent nerve compression due to positional "
                "factors.")))
NUMB_FOOT_ADVICE = Advice(
    "While your feet are numb they cannot feel heat or injury: test bath water with your hand or "
    "elbow, keep hot-water bottles and heaters away from the skin, and look at your feet daily for "
    "cuts or blisters.",
    (Cite(S000, "A foot massage and a bath with warm water helps a lot."),),
    common_sense="A numb foot is easily scalded or hurt without noticing; checking the water "
                 "temperature and the skin is standard foot care.")
DIABETES_ADVICE = Advice(
    "Keep your diabetes well controlled: good blood sugar control keeps nerve damage from getting "
    "worse.",
    (Cite(S003, "But with good diabetes control, worsening of symptoms can be prevented."),
     Cite(S001, "Controlling blood sugar in diabetes")))
PAD_ADVICE = Advice(
    "With poor circulation in the legs, walking helps: walk until the pain comes, rest until it "
    "eases, then walk on, every day. Keep your feet warm but away from direct heat, and do not smoke.",
    (Cite(S001, "Appropriate exercise often improves circulation and nerve function."),
     Cite(S004, "Symptoms of PAD typically go away after a few minutes of rest.")),
    common_sense="Regular walking to the point of pain is the first treatment of claudication; "
                 "ischaemic skin burns easily.")
VENOUS_ADVICE = Advice(
    "With heavy legs from the veins: avoid standing still for long, put your legs up when you rest, "
    "and avoid hot baths and saunas.",
    (Cite(S000, "Patients with vascular disorders are advised to stand as little as possible, to give "
                "up hot baths, baths and saunas."),))
NERVE_ROOT_ADVICE = Advice(
    "With back pain spreading into the leg: do not lift heavy weights; warming remedies and a support "
    "(bandage or orthosis) may help.",
    (Cite(S000, "You need to monitor your posture, do not lift weights, wear comfortable shoes, avoid "
                "hypothermia."),
     Cite(S000, "People with radicular syndrome are recommended to use warming local remedies and wear "
                "orthopedic devices – bandages, orthoses.")))
LIFESTYLE_ADVICE = Advice(
    "Keep a healthy body weight, do not smoke, and drink alcohol in moderation.",
    (Cite(S003, "Maintaining a healthy body weight, not smoking, and not drinking in excess may help "
                "prevent health issues that can cause leg numbness."),))

# The signs to call emergency services for, each with what makes it already reported (the safety net
# never names, as a reason to call, a sign the person reported or the episode that just passed).
EMERGENCY_SIGNS = (
    ("sudden weakness of a leg", lambda f: yes(f.weakness)),
    ("numbness or weakness of the face or an arm", lambda f: yes(f.face_or_arm_involved)),
    ("difficulty speaking or understanding speech", lambda f: yes(f.speech_difficulty)),
    ("confusion", lambda f: yes(f.confusion)),
    ("loss of vision", lambda f: yes(f.vision_change)),
    ("dizziness or loss of coordination", lambda f: yes(f.dizziness_or_incoordination)),
    ("a sudden, severe headache", lambda f: yes(f.sudden_severe_headache)),
    ("new trouble controlling the bladder or bowel", lambda f: yes(f.bladder_or_bowel_change)),
    ("pain shooting down both legs", lambda f: yes(f.pain_shooting_down_both_legs)),
    ("shortness of breath or chest pain", lambda f: yes(f.breathless_or_chest_pain)),
    ("a whole leg going numb suddenly and not coming back within minutes",
     lambda f: any_of(f.locations, "whole-leg")),
    ("a leg or foot turning cold and pale suddenly and staying so",
     lambda f: yes(f.leg_cold_pale_or_changed)),
)
SOON_SIGNS = (
    ("one leg swells", lambda f: yes(f.one_leg_swollen)),
    ("a leg turns warm or red", lambda f: yes(f.leg_warm_red_or_discoloured)),
    ("the calf throbs or hurts when you stand or walk", lambda f: yes(f.calf_pain_standing_or_walking)),
    ("you are injured or fall", lambda f: yes(f.recent_injury)),
    ("the numbness gets worse and makes walking or balance difficult",
     lambda f: yes(f.walking_or_balance_difficulty)),
    ("the numbness starts climbing up from the feet", lambda f: f.progression == "ascending"),
)
EMERGENCY_NET_CITES = (
    Cite(S003, "Numbness in your face, or involving an entire arm or leg"),
    Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied along with "
               "shortness of breath, dizziness, loss of coordination, loss of speech, fatigue and "
               "loss of vision."),
    Cite(S003, "Bladder or bowel changes"),
    Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or temperature of "
               "the legs and feet"))
SOON_NET_CITES = (Cite(S004, "swelling in one leg"), Cite(S004, "hot or warm skin in the affected leg"),
                  Cite(S004, "throbbing calf or leg pain when standing or walking"),
                  Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
                  Cite(S001, "Interferes with walking or balance"))


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def safety_net(disposition: Disposition, facts: Facts) -> tuple[Advice, ...]:
    """The signs to call emergency services for, leaving out those already reported; for routine and
    self-care results also the signs to be seen within 24 hours (an urgent result is seen within 24
    hours already)."""
    out = []
    signs = [text for text, reported in EMERGENCY_SIGNS if not reported(facts)]
    if signs:
        out.append(Advice("Call emergency services at once if any of these appear: "
                          + _listed(signs) + ".", EMERGENCY_NET_CITES))
    if disposition <= ROUTINE:
        soon = [text for text, reported in SOON_SIGNS if not reported(facts)]
        if soon:
            out.append(Advice("See a doctor within 24 hours if " + _listed(soon) + ".", SOON_NET_CITES,
                              common_sense="These signs need an examination within 24 hours."))
    return tuple(out)


SAFETY_NET_ADVICE = safety_net(SELF_CARE, Facts())  # the full net, for the rule table
# How every safety-net text of this module opens (the web page shows them apart from the advice).
SAFETY_NET_OPENINGS = ("Call emergency services at once", "See a doctor within 24 hours")


def feet_may_be_numb(f: Facts) -> bool:
    return f.locations is None or any_of(f.locations, "toes", "sole", "foot", "whole-leg")


def advise(disposition: Disposition, facts: Facts,
           predictions: tuple[Prediction, ...]) -> tuple[Advice, ...]:
    """Emergency: only the call-now advice. Self-care: getting the feeling back, care of a numb foot,
    avoiding it, when to book an appointment, for multiple sclerosis when to tell the MS team. Routine
    and urgent: what to do until the visit (moving, shoes, warmth; care of numb feet; diabetes control
    for people with diabetes; walking for poor circulation; legs up and no hot baths for veins; no
    heavy lifting for back pain spreading into the leg, in a routine result without cancer; weight,
    smoking, alcohol). Then the safety net without the signs already reported."""
    if disposition == EMERGENCY:
        return (CALL_NOW,)
    causes = {p.cause for p in predictions}
    if disposition == SELF_CARE:
        chosen = list(SELF_CARE_ADVICE)
        if yes(facts.multiple_sclerosis):
            chosen.append(MS_ADVICE)
        return tuple(chosen) + safety_net(disposition, facts)
    chosen = [POSTURE_ADVICE]
    if feet_may_be_numb(facts):
        chosen.append(NUMB_FOOT_ADVICE)
    if facts.diabetes == "yes":
        chosen.append(DIABETES_ADVICE)
    if "pad" in causes:
        chosen.append(PAD_ADVICE)
    if "chronic-venous-insufficiency" in causes:
        chosen.append(VENOUS_ADVICE)
    if (disposition == ROUTINE and (yes(facts.pain_radiating_down_one_leg) or yes(facts.low_back_pain))
            and not yes(facts.cancer_history)):
        chosen.append(NERVE_ROOT_ADVICE)
    chosen.append(LIFESTYLE_ADVICE)
    return tuple(chosen) + safety_net(disposition, facts)


ADVICE = (SELF_CARE_ADVICE + (MS_ADVICE, CALL_NOW, POSTURE_ADVICE, NUMB_FOOT_ADVICE, DIABETES_ADVICE,
                              PAD_ADVICE, VENOUS_ADVICE, NERVE_ROOT_ADVICE, LIFESTYLE_ADVICE)
          + SAFETY_NET_ADVICE)
