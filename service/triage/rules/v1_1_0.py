"""Leg numbness triage rules, version 1.1.0 (status: retired, 2026-12-01).

Scope: adults and children reporting numbness in one or both legs, answered on the Questionnaire
http://legtriage.example.org/fhir/Questionnaire/leg-numbness|1.0.0. The rules suggest how soon the
person should be seen, the likely causes, and the referrals and tests a clinician may consider.
They never diagnose and never order anything.

1.1.0 fixes the twelve findings of the clinical review of 1.0.0 (docs/rules-1.1.0.md is the diff a
clinician signs off). 1.0.0 stays published and pinnable, unchanged in behaviour.

Sources (shared/sources/):
  000_cb32e696d2feae6f.txt  "Leg numbness" (with neurologists: causes, when to see a doctor, home care)
  001_7be9c4c3b65e7a56.txt  "Leg Numbness: Causes, Symptoms, and Treatment Options" (30.12.2025)
  002_8375efd10046325c.txt  "Numbness of the Legs" (2012)
  003_49373439d83d5e71.txt  "What Causes Numbness in the Legs?" (Jaros, Alluri)
  004_ee8a66ff89f18e0d.txt  "Numb legs and feet" (posture, DVT, PAD, tarsal tunnel, MS)

How to read a rule: its name and title say what it recognises, the docstring of its predicate is the
condition in clinical words, `floor` is the least urgent disposition it allows, `causes` are the
candidate conditions it raises (with a qualitative risk), `proposals` the referrals and tests it
suggests, `cites` the passages it rests on. `common_sense` marks what a rule adds beyond the sources.
`uses` is exactly the facts the predicate reads (a test records the reads over thousands of fact sets),
because the rationale a clinician sees lists them. The disposition is the highest floor of all rules
that fired. Unanswered facts are None and never count as "no"; no rule becomes less urgent because an
answer is missing. After the rules, three steps of this module shape the result: the causes are
ordered (injury causes lead when an injury is reported), the proposals are chosen (at most six, by
clinical priority; an emergency carries only what the emergency needs; no physiotherapy in an urgent
or emergency result), and the advice is picked for the disposition and the causes.

Published versions never change behaviour: a fix is a new module (v1_1_1.py, ...).

Retired on 2026-12-07, superseded by 1.2.0, for the known defects listed in KNOWN_DEFECTS (its Library
names them). The status is metadata only: the rules below answer as they always did (golden freeze
clinical/golden/v1_1_0.json).
"""
from __future__ import annotations

from service.triage.facts import Facts
from service.triage.model import (EMERGENCY, HIGH, LOW, MODERATE, ROUTINE, SELF_CARE, URGENT,
                                  Advice, Cite, Disposition, Prediction, Proposal, RuleBook)

VERSION = "1.1.0"
STATUS = "retired"
DATE = "2026-12-01"
RETIRED = "2026-12-07"  # metadata only: the rules below answer as they always did
SUPERSEDED_BY = "1.2.0"
KNOWN_DEFECTS = (
    "Brief numbness that went away on moving is treated as harmless even when it came on gradually, "
    "when how long it lasted or what brought it on was not answered, and in people with diabetes, "
    "heavy alcohol use, a risk of vitamin B12 deficiency, thyroid disease, exposure to toxins or "
    "nerve-damaging medicines: these get self-care instead of at least a routine appointment.",
    "A whole leg that went numb suddenly for minutes and came back on moving gets self-care, even in "
    "old age, although it can be a transient ischaemic attack.",
    "Cancer with pain spreading down a leg, without back pain, is routine rather than urgent, and "
    "physiotherapy and a back support are proposed where spinal metastasis must first be excluded.",
    "Cold, pale attacks of a leg are read as Raynaud's phenomenon whatever the side, the site or the "
    "age: one-sided attacks of the calf in old age get a routine appointment without arterial tests.",
    "Numbness brought on by position or cold that keeps coming back over days or months is urgent "
    "with a transient ischaemic attack as its only cause, instead of routine.",
    "Emergencies are also told to see a doctor within 24 hours; people who already reported "
    "weakness are told to call emergency services for weakness; a leg that fell asleep is told to "
    "call emergency services if the whole leg goes numb.",
    "Ongoing sudden numbness names only a transient ischaemic attack, not a stroke.",
    "After a fall a stroke is never named, even in old age with sudden weakness, while a young "
    "person's leg injury with a numb whole leg is given a stroke and a head CT.",
    "The leg falling asleep is named as a cause beside warning signs; people with poor circulation "
    "are told to stand as little as possible although walking is the treatment; advice to keep "
    "diabetes well controlled reaches people who do not know whether they have diabetes; a warm bath "
    "is advised for numb feet without checking the water; whole-spine MRI is proposed beside lumbar "
    "MRI and HbA1c beside fasting glucose.",
)
TITLE = "Leg numbness triage rules"
REPLACES = "1.0.0"
CHANGES = (
    "Fixes the clinical review of 1.0.0: ongoing sudden numbness is urgent unless the whole benign "
    "story holds (gone on moving, brief, not constant, recurring, worse or painful); a Raynaud's "
    "attack is routine, a cold pale leg that stays so an emergency; walking difficulty with the "
    "course unanswered is urgent; every sign of a clot is examined within 24 hours; sudden numbness "
    "of a whole leg is a stroke sign; rules about the history no longer fire in the benign story; "
    "at most six proposals chosen by clinical priority, emergencies carry only what the emergency "
    "needs, no physiotherapy in urgent or emergency results; injury causes lead when an injury is "
    "reported; advice for routine and urgent results, and a safety net with the within-24-hours "
    "signs and the sudden cold, pale leg; every rule's `uses` is what its predicate reads.")
RELEASE_NOTE = """\
Rule module 1.1.0 is the default from 2026-12-01. It fixes the twelve findings of the clinical
review of 1.0.0, most importantly that ongoing sudden numbness (the stroke time window) could get
self-care and that one answer ("relieved by moving") switched the urgent rule off. 1.0.0 is
retired: still published and pinnable with `rules-version=1.0.0` (for reproducing earlier results),
its behaviour unchanged and held to a golden freeze; new triage should not use it.

Over-triage is a defect too: the stories that change are listed below with both answers, and the
vignette figures show each version against the reviewed expectations."""

S000 = "000_cb32e696d2feae6f.txt"
S001 = "001_7be9c4c3b65e7a56.txt"
S002 = "002_8375efd10046325c.txt"
S003 = "003_49373439d83d5e71.txt"
S004 = "004_ee8a66ff89f18e0d.txt"

SOURCES = {
    S000: "Leg numbness: why the legs go numb, accompanying diseases, home care",
    S001: "Leg Numbness: Causes, Symptoms, and Treatment Options",
    S002: "Numbness of the Legs",
    S003: "What Causes Numbness in the Legs?",
    S004: "Numb legs and feet: causes, symptoms and treatments",
}

# The main referral that carries the disposition (ServiceRequest.priority mirrors it).
MAIN_REFERRAL = {EMERGENCY: "emergency-referral", URGENT: "gp-referral", ROUTINE: "gp-referral"}
# The cause named when no rule named one but the person still needs to be seen.
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
NERVE_DAMAGING_MEDICINES = ("chemotherapy", "hiv", "seizure", "heart-bp", "anti-infective")
BENIGN_STORY_FACTS = ("relieved_by_moving", "duration", "pattern", "progression", "sensations")


def is_benign_story(f: Facts) -> bool:
    """The benign story: the numbness goes away within a few minutes of moving, standing up or
    walking (the one answer that says it went away), has lasted minutes at most, is not constant or
    recurring, is not getting worse, and is not painful or burning."""
    return (yes(f.relieved_by_moving)
            and f.duration in (None, "minutes")
            and f.pattern in (None, "positional")
            and f.progression in (None, "improving", "stable")
            and not any_of(f.sensations, "pain", "burning"))


def raynaud_attack(f: Facts) -> bool:
    """A Raynaud's attack: toes that turn white or blue in the cold, in a brief attack that goes
    away (it has lasted minutes and comes and goes, or eases on moving), not constant, not worse."""
    return (yes(f.toes_change_colour_in_cold) and f.duration == "minutes"
            and (f.pattern == "comes-and-goes"
                 or (yes(f.relieved_by_moving) and f.pattern != "constant"))
            and f.progression not in ("worsening", "ascending"))


def has_stroke_sign(f: Facts) -> bool:
    return any(yes(x) for x in (f.face_or_arm_involved, f.speech_difficulty, f.confusion,
                                f.vision_change, f.dizziness_or_incoordination,
                                f.sudden_severe_headache))


def has_clot_risk(f: Facts) -> bool:
    """A clot risk: a recent long journey, surgery or bed rest, cancer, or chemotherapy."""
    return (yes(f.recent_immobility) or yes(f.cancer_history)
            or any_of(f.medications, "chemotherapy"))


# ---- Emergency: seek help now -----------------------------------------------------------------

@rule("stroke-signs", "Stroke warning signs", floor=EMERGENCY,
      uses=("face_or_arm_involved", "speech_difficulty", "confusion", "vision_change",
            "dizziness_or_incoordination", "sudden_severe_headache"),
      causes={"stroke": HIGH, "tia": MODERATE}, proposals=("emergency-referral", "ct-head"),
      cites=(Cite(S003, "Numbness in your face, or involving an entire arm or leg"),
             Cite(S003, "These situations may indicate a serious problem with your brain or spine, "
                        "including potentially a stroke or brain injury"),
             Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied "
                        "along with shortness of breath, dizziness, loss of coordination, loss of "
                        "speech, fatigue and loss of vision.")),
      common_sense="CT of the head as the first imaging for a suspected stroke is standard emergency "
                   "practice; the sources name MRI or CT imaging in general.")
def stroke_warning_signs(f: Facts) -> bool:
    """Numbness of the face or an arm, difficulty speaking, confusion, loss of vision, dizziness or
    loss of coordination, or a sudden severe headache."""
    return has_stroke_sign(f)


@rule("sudden-whole-leg", "Sudden numbness of the whole leg", floor=EMERGENCY,
      uses=("onset", "locations") + BENIGN_STORY_FACTS,
      causes={"stroke": HIGH, "tia": MODERATE}, proposals=("emergency-referral", "ct-head"),
      cites=(Cite(S003, "Numbness in your face, or involving an entire arm or leg"),
             Cite(S003, "These situations may indicate a serious problem with your brain or spine, "
                        "including potentially a stroke or brain injury"),
             Cite(S000, "In severe cases, the entire lower limb becomes numb."),
             Cite(S003, "In that case, sensation should return within a few minutes of adjusting your "
                        "position.")),
      common_sense="Decided from the sources (open point of 1.0.0): 003 lists numbness 'involving an "
                   "entire arm or leg' among the signs of a stroke, so a whole leg that went numb "
                   "suddenly is an emergency. Not when it is the benign story (a whole leg that fell "
                   "asleep and came back within minutes of moving, 003, 004), and not when it came on "
                   "gradually (000: the severe end of polyneuropathy, handled by the routine rules).")
def sudden_numbness_of_the_whole_leg(f: Facts) -> bool:
    """The whole leg went numb suddenly, and it is not the benign story."""
    return f.onset == "sudden" and any_of(f.locations, "whole-leg") and not is_benign_story(f)


@rule("bladder-bowel", "Bladder or bowel changes", floor=EMERGENCY,
      uses=("bladder_or_bowel_change",),
      causes={"cauda-equina": HIGH, "spinal-cord-compression": MODERATE},
      proposals=("emergency-referral", "mri-lumbar-spine"),
      cites=(Cite(S003, "Bladder or bowel changes"),
             Cite(S001, "Affects bladder or bowel control")),
      common_sense="Naming cauda equina syndrome and emergency MRI of the lumbar spine: the sources say "
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


@rule("breathless", "Shortness of breath or chest pain", floor=EMERGENCY,
      uses=("breathless_or_chest_pain",),
      causes={"pulmonary-embolism": HIGH}, proposals=("emergency-referral",),
      cites=(Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied "
                        "along with shortness of breath"),
             Cite(S002, "Deep vein thrombosis, which involves blood clots in the legs that can break "
                        "loose from the leg causing a pulmonary embolism in the lung")))
def short_of_breath_or_chest_pain(f: Facts) -> bool:
    """Shortness of breath or chest pain."""
    return yes(f.breathless_or_chest_pain)


@rule("sudden-with-weakness", "Sudden numbness with weakness", floor=EMERGENCY,
      uses=("onset", "weakness", "recent_injury"),
      causes={"stroke": HIGH, "spinal-cord-compression": LOW},
      proposals=("emergency-referral", "ct-head"),
      cites=(Cite(S001, "Sudden numbness with weakness or speech changes requires urgent medical "
                        "attention."),
             Cite(S003, "Muscle weakness or paralysis")),
      common_sense="When an injury is reported, `injury-with-weakness` makes the same story an "
                   "emergency with the injury as the leading cause; naming a stroke and a CT of the "
                   "head there misleads (review finding 8).")
def sudden_numbness_with_weakness(f: Facts) -> bool:
    """The numbness came on suddenly and the leg is weak or hard to move, with no injury reported."""
    return f.onset == "sudden" and yes(f.weakness) and not yes(f.recent_injury)


@rule("injury-with-weakness", "Injury with weakness", floor=EMERGENCY,
      uses=("recent_injury", "weakness"),
      causes={"nerve-injury": HIGH, "leg-injury": HIGH, "spinal-cord-compression": LOW},
      proposals=("emergency-referral",),
      cites=(Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
             Cite(S003, "Muscle weakness or paralysis"),
             Cite(S002, "Back, neck or leg injury")))
def injury_with_weakness(f: Facts) -> bool:
    """A recent injury, fall or accident, and the leg is weak."""
    return yes(f.recent_injury) and yes(f.weakness)


@rule("sudden-cold-pale-leg", "Sudden numbness with a cold, pale leg that stays so", floor=EMERGENCY,
      uses=("onset", "leg_cold_pale_or_changed", "toes_change_colour_in_cold", "duration", "pattern",
            "relieved_by_moving", "progression"),
      causes={"acute-limb-ischaemia": HIGH}, proposals=("emergency-referral", "vascular-surgeon"),
      cites=(Cite(S002, "Clots in the blood vessels due to accumulation of cholesterol"),
             Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or "
                        "temperature of the legs and feet")),
      common_sense="The sources treat colour and temperature change as a reason to see a doctor; a leg "
                   "that turns cold and pale suddenly and stays so is an arterial occlusion until "
                   "proven otherwise. A Raynaud's attack (toes white or blue in the cold, brief, "
                   "going away) is not: it is routine (`raynaud`).")
def sudden_numbness_with_cold_pale_leg(f: Facts) -> bool:
    """Sudden numbness and the leg or foot is cold, pale or has changed colour, and it is not a
    Raynaud's attack (toes white or blue in the cold, lasting minutes, coming and going)."""
    return f.onset == "sudden" and yes(f.leg_cold_pale_or_changed) and not raynaud_attack(f)


# ---- Urgent: be seen within 24 hours ------------------------------------------------------------

@rule("sudden-unexplained", "Sudden numbness not explained by position", floor=URGENT,
      uses=("onset",) + BENIGN_STORY_FACTS + ("toes_change_colour_in_cold",),
      causes={"tia": LOW}, proposals=("neuro-exam",),
      cites=(Cite(S001, "Occurs suddenly"),
             Cite(S001, "Stroke or transient ischemic attack"),
             Cite(S003, "In that case, sensation should return within a few minutes of adjusting your "
                        "position.")),
      common_sense="Cold or tight clothing explain sudden numbness only once it has gone after moving, "
                   "loosening or warming; numbness that is still there, constant, recurring, worse, "
                   "painful or lasting hours is in the stroke time window and seen within a day. A "
                   "Raynaud's attack is explained by the cold (routine, `raynaud`).")
def sudden_numbness_not_explained(f: Facts) -> bool:
    """The numbness came on suddenly and the whole benign story does not hold (it is not known to
    be gone within minutes of moving, or it is constant, recurring, worse, painful or has lasted
    longer than minutes), and it is not a Raynaud's attack."""
    return f.onset == "sudden" and not is_benign_story(f) and not raynaud_attack(f)


@rule("injury", "Recent injury", floor=URGENT, uses=("recent_injury",),
      causes={"leg-injury": MODERATE, "nerve-injury": LOW}, proposals=("neuro-exam",),
      cites=(Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
             Cite(S001, "Nerve irritation or swelling after injury can temporarily reduce sensation.")))
def recent_injury(f: Facts) -> bool:
    """A recent injury, fall or accident of the back, neck or leg."""
    return yes(f.recent_injury)


@rule("dvt-signs", "Signs of a clot in the leg", floor=URGENT,
      uses=("one_leg_swollen", "leg_warm_red_or_discoloured", "calf_pain_standing_or_walking",
            "recent_immobility", "cancer_history", "medications"),
      causes={"dvt": HIGH}, proposals=("d-dimer", "venous-duplex"),
      cites=(Cite(S004, "throbbing calf or leg pain when standing or walking"),
             Cite(S004, "swelling in one leg"),
             Cite(S004, "hot or warm skin in the affected leg"),
             Cite(S002, "Deep vein thrombosis, which involves blood clots in the legs that can break "
                        "loose from the leg causing a pulmonary embolism in the lung")),
      common_sense="Recent immobility (long journey, surgery, bed rest), cancer and chemotherapy as "
                   "clot risks, and D-dimer with venous duplex as the first tests, are standard "
                   "practice; the sources list ultrasound of the leg and blood tests.")
def signs_of_a_clot(f: Facts) -> bool:
    """Swelling of one leg; or a warm, red or discoloured leg with calf pain; or calf pain or a
    warm, red leg in someone with a clot risk (a long journey, surgery or bed rest, cancer, or
    chemotherapy)."""
    return (yes(f.one_leg_swollen)
            or (yes(f.leg_warm_red_or_discoloured) and yes(f.calf_pain_standing_or_walking))
            or ((yes(f.calf_pain_standing_or_walking) or yes(f.leg_warm_red_or_discoloured))
                and has_clot_risk(f)))


@rule("clot-possible", "Calf pain or a warm, red leg on its own", floor=URGENT,
      uses=("calf_pain_standing_or_walking", "leg_warm_red_or_discoloured"),
      causes={"dvt": MODERATE}, proposals=("d-dimer", "venous-duplex"),
      cites=(Cite(S004, "throbbing calf or leg pain when standing or walking"),
             Cite(S004, "change of skin color in the affected area"),
             Cite(S002, "Deep vein thrombosis, which involves blood clots in the legs that can break "
                        "loose from the leg causing a pulmonary embolism in the lung")),
      common_sense="Each of these is one of the common symptoms of a clot (004), and a missed clot can "
                   "reach the lung (002): a suspected clot is examined within 24 hours, with the "
                   "work-up and the referral urgent (review finding 5).")
def calf_pain_or_warm_red_leg(f: Facts) -> bool:
    """Throbbing calf pain on standing or walking, or a warm, red or discoloured leg."""
    return yes(f.calf_pain_standing_or_walking) or yes(f.leg_warm_red_or_discoloured)


@rule("gradual-weakness", "Weakness that came on gradually", floor=URGENT,
      uses=("onset", "weakness"),
      causes={"lumbar-radiculopathy": LOW, "peripheral-neuropathy": LOW, "multiple-sclerosis": LOW},
      proposals=("neurologist", "neuro-exam"),
      cites=(Cite(S001, "Is accompanied by weakness or pain"),
             Cite(S003, "Muscle weakness or paralysis")))
def gradual_weakness(f: Facts) -> bool:
    """The leg is weak or hard to move, and the numbness came on gradually."""
    return f.onset == "gradual" and yes(f.weakness)


@rule("worsening-walking", "Numbness that makes walking or balance difficult, not known to be settling",
      floor=URGENT, uses=("walking_or_balance_difficulty", "progression"),
      causes={"peripheral-neuropathy": MODERATE}, proposals=("neurologist", "neuro-exam"),
      cites=(Cite(S001, "Persists or worsens"),
             Cite(S001, "Interferes with walking or balance")),
      common_sense="An unanswered course could be a worsening one: a missing answer never lowers "
                   "urgency, so only a reported 'improving' or 'stable' keeps this routine "
                   "(review finding 4).")
def walking_difficulty_not_settling(f: Facts) -> bool:
    """Walking or balance is difficult, and the numbness is getting worse, spreading upward, or its
    course was not reported (only 'improving' or 'stable' rule this out)."""
    return yes(f.walking_or_balance_difficulty) and f.progression not in ("improving", "stable")


@rule("cancer-back-pain", "Back pain in a person with cancer", floor=URGENT,
      uses=("cancer_history", "low_back_pain"),
      causes={"spinal-cord-compression": MODERATE}, proposals=("mri-spine",),
      cites=(Cite(S004, "Tumors, cysts, abscesses, and benign (non-cancerous) growths can put "
                        "pressure on the brain, spinal cord, or any part of the legs and feet."),),
      common_sense="Back pain with leg numbness in someone with cancer can be spinal metastasis "
                   "pressing on the cord; seeing them within a day is clinical common sense.")
def cancer_with_back_pain(f: Facts) -> bool:
    """Cancer now or in the past, with lower back pain."""
    return yes(f.cancer_history) and yes(f.low_back_pain)


@rule("spine-weakness", "Back or radiating pain with weakness", floor=URGENT,
      uses=("low_back_pain", "pain_radiating_down_one_leg", "weakness"),
      causes={"lumbar-radiculopathy": HIGH}, proposals=("mri-lumbar-spine", "neurologist"),
      cites=(Cite(S001, "Compressed nerves can disrupt sensation and cause numbness, tingling, or "
                        "weakness."),
             Cite(S003, "Magnetic resonance imaging (MRI) of your head or spine")),
      common_sense="Imaging the lumbar spine when nerve-root pain comes with weakness is standard "
                   "practice; the sources list MRI of the spine among the tests.")
def spinal_pain_with_weakness(f: Facts) -> bool:
    """Lower back pain or pain spreading down one leg, with weakness of the leg."""
    return (yes(f.low_back_pain) or yes(f.pain_radiating_down_one_leg)) and yes(f.weakness)


# ---- Routine: book an appointment ---------------------------------------------------------------

@rule("not-benign", "Numbness without a benign explanation", floor=ROUTINE,
      uses=BENIGN_STORY_FACTS,
      cites=(Cite(S004, "Anyone who experiences numbness that is unexplained, persistent, painful, or "
                        "accompanied by other chronic symptoms should see a doctor"),
             Cite(S002, "You should talk to a doctor if your numbness lasts more than a few minutes.")))
def numbness_without_benign_explanation(f: Facts) -> bool:
    """Not the benign story (gone within minutes of moving, brief, not constant or recurring, not
    worse, not painful)."""
    return not is_benign_story(f)


@rule("persistent", "Persistent numbness", floor=ROUTINE, uses=("duration", "pattern"),
      cites=(Cite(S004, "lasts for long periods"),
             Cite(S001, "Persistent numbness should be evaluated.")))
def persistent_numbness(f: Facts) -> bool:
    """The numbness has lasted days, weeks or months, or is constant."""
    return f.duration in ("days", "weeks", "months") or f.pattern == "constant"


@rule("recurring", "Recurring numbness", floor=ROUTINE, uses=("pattern",),
      cites=(Cite(S004, "Recurring leg numbness may be due to an underlying condition such as "
                        "diabetes. A doctor can order tests to help diagnose the cause of recurring or "
                        "constant leg numbness."),
             Cite(S000, "Doctors are contacted if the legs lose sensitivity regularly and for no "
                        "apparent reason")))
def recurring_numbness(f: Facts) -> bool:
    """The numbness comes and goes."""
    return f.pattern == "comes-and-goes"


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


# The rules on the person's history name a likely underlying cause. A brief episode that went away
# on moving is explained by position whoever has it (review finding 9), so they need the numbness
# not to be the benign story.

@rule("diabetes", "Diabetes with leg numbness", floor=ROUTINE,
      uses=("diabetes",) + BENIGN_STORY_FACTS,
      causes={"diabetic-neuropathy": MODERATE}, proposals=("hba1c", "neuro-exam"),
      cites=(Cite(S004, "Some people with diabetes develop a type of nerve damage called diabetic "
                        "neuropathy."),
             Cite(S003, "But with good diabetes control, worsening of symptoms can be prevented.")))
def known_diabetes(f: Facts) -> bool:
    """The person has diabetes, and it is not the benign story."""
    return f.diabetes == "yes" and not is_benign_story(f)


@rule("diabetes-typical-pattern", "Diabetes with numbness typical of diabetic neuropathy",
      floor=ROUTINE, uses=("diabetes", "side", "locations") + BENIGN_STORY_FACTS,
      causes={"diabetic-neuropathy": HIGH}, proposals=("hba1c", "endocrinologist"),
      cites=(Cite(S000, "Numbness usually captures both legs and spreads from the bottom up: first the "
                        "fingers lose sensation, then the rest of the foot and lower leg."),
             Cite(S004, "This may cause numbness, pain, and weakness that begins in the toes and may "
                        "gradually rise up to the feet, ankles, and knees.")))
def diabetes_with_typical_pattern(f: Facts) -> bool:
    """Diabetes, and the numbness is in both legs, in the feet or toes, or spreading upward, and it
    is not the benign story."""
    return f.diabetes == "yes" and (
        f.side == "both" or f.progression == "ascending"
        or (bool(f.locations) and f.locations <= FEET_ONLY)) and not is_benign_story(f)


@rule("possible-undiagnosed-diabetes", "Numbness below the knee, diabetes not excluded",
      floor=ROUTINE, uses=("diabetes", "no_recent_checkup", "locations") + BENIGN_STORY_FACTS,
      causes={"diabetic-neuropathy": MODERATE}, proposals=("hba1c", "fasting-glucose"),
      cites=(Cite(S003, "“With tingling and numbness below the knees, it can suggest diabetes,” "
                        "especially if someone hasn’t been to the doctor in years"),
             Cite(S003, "he’ll order an A1C test to check for diabetes")),
      common_sense="Where the numbness is was not reported it may be below the knee: a missing answer "
                   "does not rule the check out.")
def possible_undiagnosed_diabetes(f: Facts) -> bool:
    """Numbness below the knee (or its place not reported), diabetes not known to be present: the
    person does not know, or has had no check-up in years; and it is not the benign story."""
    return (f.diabetes != "yes" and (f.diabetes == "unknown" or yes(f.no_recent_checkup))
            and (f.locations is None or any_of(f.locations, *BELOW_THE_KNEE))
            and not is_benign_story(f))


@rule("distal-symmetric", "Numbness starting in the feet and spreading upward", floor=ROUTINE,
      uses=("side", "locations") + BENIGN_STORY_FACTS + ("toes_change_colour_in_cold",),
      causes={"peripheral-neuropathy": MODERATE}, proposals=("hba1c", "b12", "tsh"),
      cites=(Cite(S001, "Symptoms often start in the feet and gradually progress upward."),
             Cite(S003, "Blood tests are also useful to check for conditions including diabetes, "
                        "anemia, electrolyte abnormalities")))
def numbness_spreading_up_from_the_feet(f: Facts) -> bool:
    """The numbness is spreading upward from the toes, or is in both feet only and is neither the
    benign story nor a Raynaud's attack (brief numb toes that went away on moving, or that turned
    white in the cold, are not neuropathy)."""
    return f.progression == "ascending" or (
        f.side == "both" and bool(f.locations) and f.locations <= FEET_ONLY
        and not is_benign_story(f) and not raynaud_attack(f))


@rule("both-legs-systemic", "Numbness in both legs", floor=ROUTINE,
      uses=("side",) + BENIGN_STORY_FACTS + ("toes_change_colour_in_cold",),
      causes={"multiple-sclerosis": LOW, "b12-deficiency": LOW}, proposals=("b12", "cbc"),
      cites=(Cite(S002, "numbness in both the legs may indicate systemic disease such as multiple "
                        "sclerosis or pernicious anemia"),
             Cite(S000, "Toes often lose sensation due to hypothermia and wearing uncomfortable shoes.")))
def numbness_in_both_legs(f: Facts) -> bool:
    """Both legs are numb, and it is neither the benign story (both feet 'falling asleep' after
    sitting on them, gone within minutes of moving) nor a Raynaud's attack."""
    return f.side == "both" and not is_benign_story(f) and not raynaud_attack(f)


@rule("b12", "Vitamin B12 deficiency risk", floor=ROUTINE,
      uses=("b12_deficiency_risk",) + BENIGN_STORY_FACTS,
      causes={"b12-deficiency": MODERATE}, proposals=("b12", "cbc", "folate"),
      cites=(Cite(S003, "Vitamin deficiencies, especially vitamin B12"),
             Cite(S002, "Vitamin B12 deficiency")))
def b12_deficiency_risk(f: Facts) -> bool:
    """Known vitamin B12 deficiency or anaemia, or a vegan diet, and it is not the benign story."""
    return yes(f.b12_deficiency_risk) and not is_benign_story(f)


@rule("alcohol", "Heavy or daily alcohol use", floor=ROUTINE,
      uses=("heavy_alcohol_use",) + BENIGN_STORY_FACTS,
      causes={"alcoholic-neuropathy": MODERATE, "b12-deficiency": LOW},
      proposals=("b12", "folate", "cbc"),
      cites=(Cite(S004, "Chronic or excessive alcohol consumption may also lead to signs of peripheral "
                        "neuropathy, such as limb numbness. This is referred to as alcoholic "
                        "neuropathy."),
             Cite(S004, "This type of nerve damage is linked to reduced levels of B vitamins, such as "
                        "B-1 (thiamine), B-9 (folate), and B-12")))
def heavy_alcohol_use(f: Facts) -> bool:
    """Drinks alcohol heavily or daily, and it is not the benign story."""
    return yes(f.heavy_alcohol_use) and not is_benign_story(f)


@rule("thyroid", "Thyroid disease", floor=ROUTINE, uses=("thyroid_disease",) + BENIGN_STORY_FACTS,
      causes={"thyroid-neuropathy": MODERATE}, proposals=("tsh",),
      cites=(Cite(S002, "Thyroid diseases"),))
def thyroid_disease(f: Facts) -> bool:
    """The person has thyroid disease, and it is not the benign story."""
    return yes(f.thyroid_disease) and not is_benign_story(f)


@rule("medications", "Medicines that can damage nerves", floor=ROUTINE,
      uses=("medications",) + BENIGN_STORY_FACTS,
      causes={"drug-induced-neuropathy": MODERATE},
      cites=(Cite(S003, "Cancer or chemotherapy drugs"),
             Cite(S003, "Certain infection-fighting drugs"),
             Cite(S003, "Seizure treatments"),
             Cite(S003, "Heart and blood pressure drugs")))
def nerve_damaging_medicines(f: Facts) -> bool:
    """Takes chemotherapy, HIV, seizure, heart or blood pressure, or anti-infective medicines, and
    it is not the benign story."""
    return any_of(f.medications, *NERVE_DAMAGING_MEDICINES) and not is_benign_story(f)


@rule("toxins", "Exposure to toxins", floor=ROUTINE, uses=("toxin_exposure",) + BENIGN_STORY_FACTS,
      causes={"toxic-neuropathy": MODERATE},
      cites=(Cite(S002, "Heavy metal poisoning such as lead poisoning"),
             Cite(S003, "Glue sniffing")))
def toxin_exposure(f: Facts) -> bool:
    """Exposure to lead or other heavy metals, arsenic, glue sniffing or illegal drugs, and it is
    not the benign story."""
    return yes(f.toxin_exposure) and not is_benign_story(f)


@rule("sciatica", "Pain spreading from the lower back down one leg", floor=ROUTINE,
      uses=("pain_radiating_down_one_leg",),
      causes={"sciatica": HIGH, "lumbar-radiculopathy": MODERATE, "lumbar-disc": MODERATE},
      proposals=("physiotherapy",),
      cites=(Cite(S000, "A characteristic sign of dorsopathy is lower back pain that “radiates” to the "
                        "buttock and one leg"),
             Cite(S004, "Sciatica is a condition where the sciatic nerve becomes irritated or "
                        "compressed."),
             Cite(S001, "Physical therapy plays a key role in treating leg numbness caused by spinal "
                        "or muscular issues.")))
def pain_radiating_from_the_back(f: Facts) -> bool:
    """Pain spreading from the lower back or buttock down one leg."""
    return yes(f.pain_radiating_down_one_leg)


@rule("back-pain", "Lower back pain with leg numbness", floor=ROUTINE, uses=("low_back_pain",),
      causes={"lumbar-disc": LOW, "lumbar-radiculopathy": LOW}, proposals=("physiotherapy",),
      cites=(Cite(S002, "Leg numbness along with back pain may indicate nerve compression in the "
                        "lower back."),
             Cite(S001, "Yes, spinal conditions are one of the most common causes.")))
def lower_back_pain(f: Facts) -> bool:
    """Lower back pain."""
    return yes(f.low_back_pain)


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


@rule("sacral-plexus", "One heavy numb leg with back pain", floor=ROUTINE,
      uses=("side", "sensations", "low_back_pain"),
      causes={"sacral-plexus-neuropathy": LOW},
      cites=(Cite(S000, "In these diseases, the pathological process affects only one limb."),
             Cite(S000, "patients often complain of heaviness in the legs, pulling or aching pains in "
                        "the sacrum and lower back")))
def one_heavy_leg_with_back_pain(f: Facts) -> bool:
    """One leg numb and heavy, with lower back pain."""
    return f.side in ("left", "right") and any_of(f.sensations, "heaviness") and yes(f.low_back_pain)


@rule("claudication", "Pain or cramping on walking that eases with rest", floor=ROUTINE,
      uses=("claudication",), causes={"pad": HIGH},
      proposals=("abpi", "arterial-duplex", "vascular-surgeon"),
      cites=(Cite(S004, "PAD may cause the following symptoms in the legs, hips, and calves when a "
                        "person is walking"),
             Cite(S004, "Symptoms of PAD typically go away after a few minutes of rest."),
             Cite(S003, "Ultrasound imaging of your leg or legs")),
      common_sense="The ankle-brachial pressure index as the first test for PAD is standard practice.")
def claudication(f: Facts) -> bool:
    """Pain, cramping or weakness in the calves or hips on walking that eases after rest."""
    return yes(f.claudication)


@rule("cold-pale-leg", "A leg that is cold, pale or changed in colour or shape", floor=ROUTINE,
      uses=("leg_cold_pale_or_changed", "toes_change_colour_in_cold", "duration", "pattern",
            "relieved_by_moving", "progression"),
      causes={"pad": MODERATE}, proposals=("abpi", "arterial-duplex"),
      cites=(Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or "
                        "temperature of the legs and feet"),
             Cite(S001, "Reduced blood flow to the legs may lead to numbness and coldness.")),
      common_sense="In a Raynaud's attack the colour change is explained by the cold (`raynaud`); "
                   "testing for arterial disease is then not needed for it.")
def cold_pale_or_changed_leg(f: Facts) -> bool:
    """The leg or foot is cold, pale, or has changed colour, shape or temperature, and it is not a
    Raynaud's attack."""
    return yes(f.leg_cold_pale_or_changed) and not raynaud_attack(f)


@rule("venous-insufficiency", "Heavy legs with cramps or coldness", floor=ROUTINE,
      uses=("sensations",), causes={"chronic-venous-insufficiency": LOW},
      proposals=("venous-duplex",),
      cites=(Cite(S000, "An excessive amount of blood accumulates in the superficial veins of the "
                        "legs, which causes a whole range of unpleasant symptoms: heaviness, muscle "
                        "spasms, loss of sensitivity, and a decrease in temperature."),))
def heavy_legs_with_cramps_or_cold(f: Facts) -> bool:
    """Heaviness with cramps or coldness in the leg."""
    return any_of(f.sensations, "heaviness") and any_of(f.sensations, "cramps", "cold")


@rule("raynaud", "Toes turn white or blue in the cold", floor=ROUTINE,
      uses=("toes_change_colour_in_cold",), causes={"raynaud": MODERATE},
      cites=(Cite(S000, "Usually observed in diabetes mellitus and Raynaud’s syndrome."),))
def toes_change_colour_in_cold(f: Facts) -> bool:
    """The toes turn white or blue in the cold."""
    return yes(f.toes_change_colour_in_cold)


@rule("known-ms", "Diagnosed multiple sclerosis", floor=ROUTINE,
      uses=("multiple_sclerosis",) + BENIGN_STORY_FACTS,
      causes={"multiple-sclerosis": HIGH}, proposals=("neurologist",),
      cites=(Cite(S004, "Multiple sclerosis (MS) causes sensory nerve damage that may lead to numbness "
                        "in a region of the body."),
             Cite(S004, "in some cases, it could gradually worsen and become physically disabling.")))
def diagnosed_multiple_sclerosis(f: Facts) -> bool:
    """The person has diagnosed multiple sclerosis, and it is not the benign story."""
    return yes(f.multiple_sclerosis) and not is_benign_story(f)


@rule("itching", "Numbness with itching", floor=ROUTINE, uses=("sensations",),
      causes={"multiple-sclerosis": LOW},
      cites=(Cite(S002, "Multiple sclerosis may manifest in form of numbness and extreme itchiness."),))
def numbness_with_itching(f: Facts) -> bool:
    """Itching with the numbness."""
    return any_of(f.sensations, "itching")


@rule("tarsal-tunnel", "Burning or tingling of the heel, ankle or sole", floor=ROUTINE,
      uses=("locations", "sensations", "relieved_by_moving", "duration", "pattern", "progression"),
      causes={"tarsal-tunnel": MODERATE},
      proposals=("emg-ncs",),
      cites=(Cite(S004, "People with tarsal tunnel syndrome tend to feel numbness, burning, tingling, "
                        "or shooting pain in their ankles, heels, and feet."),
             Cite(S003, "Electromyography (EMG) and nerve conduction studies")))
def heel_ankle_or_sole_burning(f: Facts) -> bool:
    """Numbness of the ankle, heel or sole with burning, tingling or pain, and it is not the benign
    story (tingling of a foot that fell asleep is not an entrapment)."""
    return (any_of(f.locations, "ankle-heel", "sole")
            and any_of(f.sensations, "burning", "tingling", "pain") and not is_benign_story(f))


@rule("lateral-thigh", "Burning or tingling of the front and outer thigh of one leg",
      floor=ROUTINE, uses=("side", "locations", "sensations", "relieved_by_moving", "duration", "pattern",
                                  "progression"),
      causes={"meralgia-paresthetica": MODERATE}, proposals=("emg-ncs",),
      cites=(Cite(S000, "The most common pathology is neuropathy of the external femoral cutaneous "
                        "nerve. The disease affects only one limb, accompanied by loss of sensation, "
                        "burning, tingling and cold on the front of the thigh."),))
def one_sided_lateral_thigh_numbness(f: Facts) -> bool:
    """One thigh numb on the front and outer side, with burning, tingling or coldness, and it is not
    the benign story (minutes of tingling from tight trousers that went away is not an entrapment)."""
    return (f.side in ("left", "right") and any_of(f.locations, "thigh-front-outer")
            and any_of(f.sensations, "burning", "tingling", "cold") and not is_benign_story(f))


@rule("strain", "Numbness after heavy exertion or repetitive movements", floor=ROUTINE,
      uses=("recent_strain",) + BENIGN_STORY_FACTS,
      causes={"tarsal-tunnel": LOW, "meralgia-paresthetica": LOW},
      cites=(Cite(S000, "Tunnel syndromes of the lower extremities usually occur due to high physical "
                        "exertion or the performance of monotonous repetitive movements."),))
def after_exertion_or_repetitive_movements(f: Facts) -> bool:
    """Recent heavy physical exertion or repetitive movements, and it is not the benign story."""
    return yes(f.recent_strain) and not is_benign_story(f)


@rule("cancer", "Cancer now or in the past", floor=ROUTINE, uses=("cancer_history",) + BENIGN_STORY_FACTS,
      causes={"spinal-cord-compression": LOW},
      cites=(Cite(S004, "Tumors, cysts, abscesses, and benign (non-cancerous) growths can put "
                        "pressure on the brain, spinal cord, or any part of the legs and feet."),
             Cite(S002, "Chronic numbness, on the other hand, may indicate a wide variety of serious "
                        "underlying diseases, disorders or conditions such as stroke or tumors")))
def cancer_history(f: Facts) -> bool:
    """Cancer now or in the past, and it is not the benign story."""
    return yes(f.cancer_history) and not is_benign_story(f)


# ---- Self-care: advice, no visit needed ----------------------------------------------------------

@rule("fell-asleep", "A leg that 'fell asleep' and recovered with moving", floor=SELF_CARE,
      uses=BENIGN_STORY_FACTS,
      causes={"positional-compression": HIGH},
      cites=(Cite(S003, "In that case, sensation should return within a few minutes of adjusting your "
                        "position."),
             Cite(S004, "Many people describe this feeling as their leg having “fallen asleep.”"),
             Cite(S003, "“If it happens once or twice, it’s usually not something that needs to be "
                        "treated,” says Jaros.")))
def leg_fell_asleep(f: Facts) -> bool:
    """The benign story: the numbness went away within minutes of moving or changing position
    (even if it began suddenly)."""
    return is_benign_story(f)


@rule("tight-clothing", "Brief numbness from tight shoes, socks or trousers", floor=SELF_CARE,
      uses=("tight_clothing",) + BENIGN_STORY_FACTS,
      causes={"tight-clothing": MODERATE},
      cites=(Cite(S004, "wearing pants, socks, or shoes that are too tight"),
             Cite(S000, "Legs can lose sensation due to hypothermia, uncomfortable posture, and "
                        "wearing tight shoes.")))
def brief_numbness_from_tight_clothing(f: Facts) -> bool:
    """The benign story, in someone wearing tight shoes, socks or trousers."""
    return yes(f.tight_clothing) and is_benign_story(f)


@rule("cold", "Brief numbness after cold exposure", floor=SELF_CARE,
      uses=("cold_exposure",) + BENIGN_STORY_FACTS,
      causes={"cold-exposure": MODERATE},
      cites=(Cite(S000, "Legs can lose sensation due to hypothermia, uncomfortable posture, and "
                        "wearing tight shoes. In this case, the numbness goes away if you rub your legs "
                        "or do some exercise."),
             Cite(S002, "Extremely cold temperatures")))
def brief_numbness_after_cold(f: Facts) -> bool:
    """The benign story, after exposure to cold."""
    return yes(f.cold_exposure) and is_benign_story(f)


RULES = tuple(book.rules)


# ---- After the rules: the order of the causes ---------------------------------------------------

INJURY_CAUSES = ("leg-injury", "nerve-injury")


def rank_causes(facts: Facts, predictions: tuple[Prediction, ...]) -> tuple[Prediction, ...]:
    """When an injury is reported, the injury causes lead (then the others, highest risk first)."""
    if not yes(facts.recent_injury):
        return predictions
    return tuple(sorted(predictions, key=lambda p: p.cause not in INJURY_CAUSES))  # stable


# ---- After the rules: which proposals ---------------------------------------------------------

MAX_PROPOSALS = 6
# Clinical priority within one urgency: the referral that carries the disposition, the imaging and
# tests that decide the urgent question, the examination, then the specialist referrals and the
# blood tests for an underlying cause, and physiotherapy last.
PROPOSAL_PRIORITY = (
    "emergency-referral", "gp-referral", "ct-head", "mri-spine", "mri-lumbar-spine", "d-dimer",
    "venous-duplex", "abpi", "arterial-duplex", "neuro-exam", "vascular-surgeon", "neurologist",
    "hba1c", "fasting-glucose", "b12", "cbc", "folate", "tsh", "emg-ncs", "endocrinologist",
    "mri-brain", "spine-xray", "glucose", "physiotherapy",
)


def choose_proposals(disposition: Disposition,
                     proposals: tuple[Proposal, ...]) -> tuple[Proposal, ...]:
    """At most six proposals, by clinical priority: first what the most urgent findings asked for,
    then what serves the highest-risk cause, then the order of PROPOSAL_PRIORITY. An emergency
    carries only what the emergency findings asked for. No physiotherapy in an urgent or emergency
    result: source 000 places it 'during remission'."""
    if disposition == EMERGENCY:
        proposals = tuple(p for p in proposals if p.disposition == EMERGENCY)
    if disposition >= URGENT:
        proposals = tuple(p for p in proposals if p.key != "physiotherapy")

    def priority(p: Proposal):
        risk = max((r for f in p.findings for _, r in f.rule.causes), default=0)
        return (-p.disposition, not p.main, -risk, PROPOSAL_PRIORITY.index(p.key))
    return tuple(sorted(proposals, key=priority)[:MAX_PROPOSALS])


# What the proposal step rests on (checked against the sources like the rules' citations).
PROPOSALS_CITE = Cite(S000, "Not always the patient needs to undergo all the examinations. To make a "
                            "diagnosis, an external examination and the results of one or two "
                            "instrumental tests are sufficient.")
REMISSION_CITE = Cite(S000, "Massage, manual therapy and physiotherapy are prescribed during remission.")


# ---- After the rules: advice ----------------------------------------------------------------------

SELF_CARE_ADVICE = (
    Advice("Change position, stand up or walk around for a few minutes; a foot massage and a warm "
           "bath help the feeling come back.",
           (Cite(S000, "Physiological numbness is easy to remove, it is enough to change the position "
                       "of the body, stand up or walk around for a few minutes. A foot massage and a "
                       "bath with warm water helps a lot."),)),
    Advice("Wear comfortable shoes and loose socks and trousers, keep your legs warm, and avoid "
           "sitting or kneeling in one position for long: get up and move regularly.",
           (Cite(S000, "wear comfortable shoes, avoid hypothermia"),
            Cite(S003, "Getting up and moving regularly can help prevent nerve compression due to "
                       "positional factors."))),
    Advice("See a doctor if the numbness keeps coming back, lasts more than a few minutes, or "
           "comes with pain or burning.",
           (Cite(S002, "You should talk to a doctor if your numbness lasts more than a few minutes."),
            Cite(S004, "If a person regularly experiences numbness, a doctor can help determine if "
                       "there is a medical condition causing the symptoms."))),
)

# Until the visit (routine and urgent results).
POSTURE_ADVICE = Advice(
    "Until you are seen: mind your posture, get up and move regularly rather than sitting or kneeling "
    "in one position for long, wear comfortable shoes, and keep your legs warm.",
    (Cite(S000, "You need to monitor your posture, do not lift weights, wear comfortable shoes, avoid "
                "hypothermia."),
     Cite(S003, "Getting up and moving regularly can help prevent nerve compression due to positional "
                "factors.")))
DIABETES_ADVICE = Advice(
    "Keep your diabetes well controlled: good blood sugar control keeps nerve damage from getting "
    "worse.",
    (Cite(S003, "But with good diabetes control, worsening of symptoms can be prevented."),
     Cite(S001, "Controlling blood sugar in diabetes")))
VASCULAR_ADVICE = Advice(
    "With a circulation problem: stand as little as possible, and avoid hot baths and saunas.",
    (Cite(S000, "Patients with vascular disorders are advised to stand as little as possible, to give "
                "up hot baths, baths and saunas."),))
NERVE_ROOT_ADVICE = Advice(
    "With a nerve-root problem in the back: do not lift heavy weights; warming remedies and a support "
    "(bandage or orthosis) may help.",
    (Cite(S000, "You need to monitor your posture, do not lift weights, wear comfortable shoes, avoid "
                "hypothermia."),
     Cite(S000, "People with radicular syndrome are recommended to use warming local remedies and wear "
                "orthopedic devices – bandages, orthoses.")))
LIFESTYLE_ADVICE = Advice(
    "Keep a healthy body weight, do not smoke, and drink alcohol in moderation.",
    (Cite(S003, "Maintaining a healthy body weight, not smoking, and not drinking in excess may help "
                "prevent health issues that can cause leg numbness."),))

VASCULAR_CAUSES = frozenset({"pad", "chronic-venous-insufficiency"})
NERVE_ROOT_CAUSES = frozenset({"sciatica", "lumbar-radiculopathy", "lumbar-disc", "lumbar-stenosis",
                               "sacral-plexus-neuropathy"})

SAFETY_NET_ADVICE = (
    Advice("Call emergency services at once if the numbness comes with weakness, numbness of the face "
           "or an arm, the whole leg suddenly going numb, difficulty speaking, confusion, loss of "
           "vision, dizziness or loss of coordination, a sudden severe headache, new trouble "
           "controlling the bladder or bowel, pain shooting down both legs, or shortness of breath or "
           "chest pain, or if the leg or foot suddenly turns cold and pale and stays so.",
           (Cite(S003, "Numbness in your face, or involving an entire arm or leg"),
            Cite(S003, "These situations may indicate a serious problem with your brain or spine, "
                       "including potentially a stroke or brain injury"),
            Cite(S002, "You should seek immediate medical help if your leg numbness is accompanied "
                       "along with shortness of breath, dizziness, loss of coordination, loss of "
                       "speech, fatigue and loss of vision."),
            Cite(S004, "accompanied by permanent or long-term changes in the color, shape, or "
                       "temperature of the legs and feet")),
           common_sense="A leg that turns cold and pale suddenly is an arterial occlusion until proven "
                        "otherwise (rule `sudden-cold-pale-leg`)."),
    Advice("See a doctor within 24 hours if one leg swells, turns warm or red, or the calf throbs or "
           "hurts when you stand or walk (these can be signs of a blood clot), after an injury or a "
           "fall, or if the numbness gets worse and makes walking or balance difficult.",
           (Cite(S004, "swelling in one leg"),
            Cite(S004, "hot or warm skin in the affected leg"),
            Cite(S004, "throbbing calf or leg pain when standing or walking"),
            Cite(S003, "Any possible injury or trauma that may have caused your numbness"),
            Cite(S001, "Interferes with walking or balance")),
           common_sense="'Within 24 hours' is this service's urgent disposition, which the safety "
                        "policy gives to these signs."),
)


def advise(disposition: Disposition, facts: Facts,
           predictions: tuple[Prediction, ...]) -> tuple[Advice, ...]:
    """Self-care: how to get the feeling back and avoid it, when to see a doctor. Routine and urgent:
    what to do until the visit (posture and moving, shoes, warmth; diabetes control; for a circulation
    problem standing less and no hot baths or saunas; for a nerve-root problem no heavy lifting;
    weight, smoking, alcohol). Emergency: nothing that could delay going now. Always the safety net:
    the emergency signs and the signs to be seen within 24 hours."""
    if disposition == EMERGENCY:
        return SAFETY_NET_ADVICE
    causes = {p.cause for p in predictions}
    chosen = list(SELF_CARE_ADVICE if disposition == SELF_CARE else (POSTURE_ADVICE,))
    if facts.diabetes == "yes" or "diabetic-neuropathy" in causes:
        chosen.append(DIABETES_ADVICE)
    if causes & VASCULAR_CAUSES:
        chosen.append(VASCULAR_ADVICE)
    if causes & NERVE_ROOT_CAUSES:
        chosen.append(NERVE_ROOT_ADVICE)
    if disposition != SELF_CARE:
        chosen.append(LIFESTYLE_ADVICE)
    return tuple(chosen) + SAFETY_NET_ADVICE


ADVICE = (SELF_CARE_ADVICE + (POSTURE_ADVICE, DIABETES_ADVICE, VASCULAR_ADVICE, NERVE_ROOT_ADVICE,
                              LIFESTYLE_ADVICE) + SAFETY_NET_ADVICE)
