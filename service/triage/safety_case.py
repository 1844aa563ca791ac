"""The clinical safety case: legtriage rules safety-case [--write]

Writes docs/safety-case.md (with --write; prints it otherwise), the evidence a hospital's clinical
safety officer reads, structured after DCB0129 (clinical risk management in the manufacture of
health IT): the system and its intended use, the hazard log (each hazard with its causes, its
effect, the controls — the rules, the safety properties and the tests by name — the evidence, the
residual risk), and the clinical sign-off status of every rule version.

Every figure is measured when the command runs, never typed in: the stored answer sets and
vignettes are counted from their files and run through every published rule version, the safety
properties are checked on each of them, the golden freezes are reproduced, and the sign-off files
are read. Deterministic: the same repository gives the same file (no dates or times of the run).
A test regenerates it and fails when it is stale (tests/unit/triage/test_safety_case.py).

The sign-off status is that of the shipped folder (mappings/signoff/, empty: the project signs
nothing); a hospital prints its own with --signoff-dir. The answer sets, vignettes, freezes and forms
come in as plain data (review.ClinicalData, read by service/clinical.py); the paths are the app's.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from service.triage import release, review, signoff
from service.triage.engine import Registry, evaluate
from service.triage.facts import FACT_NAMES, Facts
from service.triage.model import Disposition
from service.triage.review import ClinicalData
from service.triage.rules import RuleModule
from service.triage.signs import not_asked

STROKE_SIGNS = ("face_or_arm_involved", "speech_difficulty", "confusion", "vision_change",
                "dizziness_or_incoordination", "sudden_severe_headache")
SPINE_EMERGENCY = ("bladder_or_bowel_change", "pain_shooting_down_both_legs")
RED_FLAGS = STROKE_SIGNS + SPINE_EMERGENCY + ("breathless_or_chest_pain",)
CLOT_SIGNS = ("one_leg_swollen",)
# Answers that can only add concern (DESIGN.md: a red flag, a clot or circulation sign, a spine
# sign, a risk in the history); benign explanations (tight clothing, cold, relief on moving) are not.
ALARMING = RED_FLAGS + (
    "weakness", "recent_injury", "walking_or_balance_difficulty", "one_leg_swollen",
    "leg_warm_red_or_discoloured", "calf_pain_standing_or_walking", "claudication",
    "leg_cold_pale_or_changed", "toes_change_colour_in_cold", "low_back_pain",
    "pain_radiating_down_one_leg", "heavy_alcohol_use", "b12_deficiency_risk", "thyroid_disease",
    "multiple_sclerosis", "cancer_history", "toxin_exposure", "recent_immobility")
assert set(ALARMING) <= set(FACT_NAMES)
# Never self-care beside these (DESIGN.md safety policy: red flags, clot and circulation signs).
SIGNS_NEVER_SELF_CARE = RED_FLAGS + (
    "weakness", "recent_injury", "walking_or_balance_difficulty", "one_leg_swollen",
    "leg_warm_red_or_discoloured", "calf_pain_standing_or_walking", "claudication",
    "leg_cold_pale_or_changed", "toes_change_colour_in_cold")


@dataclass
class Measured:
    """One rule version over the stored answer sets: each safety property, checks and failures."""

    version: str
    sets: int = 0
    dispositions: Counter = None  # type: ignore[assignment]
    checks: dict = None  # type: ignore[assignment]  # property -> [checked, failed, example]

    def check(self, name: str, ok: bool, example: str) -> None:
        entry = self.checks.setdefault(name, [0, 0, ""])
        entry[0] += 1
        if not ok:
            entry[1] += 1
            entry[2] = entry[2] or example


def _has(facts: Facts, names: tuple[str, ...]) -> bool:
    return any(getattr(facts, n) is True for n in names)


def measure(module: RuleModule, sets: list[release.AnswerSet]) -> Measured:
    m = Measured(module.version, 0, Counter(), {})
    for s in sets:
        a = evaluate(module, s.facts)
        d = a.disposition
        m.sets += 1
        m.dispositions[d.code] += 1
        if _has(s.facts, STROKE_SIGNS):
            m.check("a stroke sign gives an emergency", d == Disposition.EMERGENCY, s.id)
        if _has(s.facts, SPINE_EMERGENCY):
            m.check("bladder or bowel change, or pain down both legs, gives an emergency",
                    d == Disposition.EMERGENCY, s.id)
        if _has(s.facts, RED_FLAGS):
            m.check("any red flag gives an emergency", d == Disposition.EMERGENCY, s.id)
        if _has(s.facts, CLOT_SIGNS):
            m.check("swelling of one leg gives at least urgent", d >= Disposition.URGENT, s.id)
        if d == Disposition.SELF_CARE:
            f = s.facts
            m.check("self-care only for the answered benign story",
                    f.duration == "minutes" and f.relieved_by_moving is True
                    and not _has(f, SIGNS_NEVER_SELF_CARE), s.id)
        m.check("at most six proposals", len(a.proposals) <= 6, s.id)
        for name, value in s.facts.known().items():
            if value is False or (name == "diabetes" and value == "no"):
                fewer = evaluate(module, replace(s.facts, **{name: None})).disposition
                m.check("an explicit no left unanswered never lowers the disposition", fewer >= d,
                        f"{s.id} without {name}")
        for name in ALARMING:
            if getattr(s.facts, name) is not True:
                more = evaluate(module, replace(s.facts, **{name: True})).disposition
                m.check("adding an alarming answer never lowers the disposition", more >= d,
                        f"{s.id} with {name}")
        if d == Disposition.EMERGENCY:
            m.check("an emergency result's advice is only the call-now safety net",
                    all(adv.text.startswith("Call emergency services") for adv in a.advice), s.id)
    return m


def _frozen(frozen: dict[str, str] | None, facts: dict[str, Facts], module: RuleModule) -> tuple[int, int]:
    """(answer sets frozen, how many of them the version still answers with the frozen disposition)."""
    if frozen is None:
        return 0, 0
    same = sum(evaluate(module, facts[c]).disposition.code == frozen[c] for c in frozen if c in facts)
    return len(frozen), same


@dataclass(frozen=True)
class Hazard:
    id: str
    title: str
    causes: str
    effect: str
    rules: Callable[[RuleModule], list[str]]  # rule ids of the version that control it
    properties: tuple[str, ...]  # names of the measured properties
    tests: tuple[str, ...]  # test files and functions
    severity: str
    residual: str


def _by_cause(*causes: str) -> Callable[[RuleModule], list[str]]:
    return lambda m: [r.id for r in m.rules if any(c in causes for c, _ in r.causes)]


def _by_fact(*facts: str) -> Callable[[RuleModule], list[str]]:
    return lambda m: [r.id for r in m.rules if set(r.uses) & set(facts) and r.floor >= Disposition.URGENT]


HAZARDS = (
    Hazard("H1", "A stroke or TIA is missed",
           "A stroke sign not asked, not answered or not recognised by the rules; a sudden numb whole "
           "leg taken for a leg that fell asleep; the text sends the person to an appointment.",
           "Delay of emergency treatment for a stroke: death or lasting disability.",
           _by_cause("stroke", "tia"),
           ("a stroke sign gives an emergency", "any red flag gives an emergency"),
           ("tests/unit/triage/test_engine.py::test_any_red_flag_means_emergency_and_self_care_only_without_concern",
            "tests/e2e/test_vignettes.py::test_vignette",
            "tests/e2e/api/test_foreign_forms.py::test_the_result_names_the_warning_signs_the_form_did_not_ask"),
           "Catastrophic",
           "Low once the person answers: every stroke sign the form asks makes the result an "
           "emergency. Remains where a sign is not reported at all; the safety net of every result "
           "names the stroke signs to call emergency services for."),
    Hazard("H2", "Cauda equina syndrome or spinal cord compression is missed",
           "Bladder or bowel changes or pain shooting down both legs not asked or not recognised; "
           "cancer with back pain seen routinely; physiotherapy proposed instead of imaging.",
           "Permanent loss of bladder, bowel or leg function.",
           _by_cause("cauda-equina", "spinal-cord-compression"),
           ("bladder or bowel change, or pain down both legs, gives an emergency",),
           ("tests/unit/triage/test_engine.py::test_any_red_flag_means_emergency_and_self_care_only_without_concern",
            "tests/e2e/test_vignettes.py::test_vignette"),
           "Catastrophic",
           "Low for reported signs (each is an emergency); early cauda equina without bladder or "
           "bowel change is not recognisable from a questionnaire."),
    Hazard("H3", "A clot in the leg, a pulmonary embolism or limb ischaemia is missed",
           "A swollen leg, a warm red leg with calf pain, breathlessness, or a suddenly cold, pale "
           "leg not recognised; a Raynaud's attack confused with ischaemia or the reverse.",
           "Pulmonary embolism; loss of the limb.",
           _by_cause("dvt", "pulmonary-embolism", "acute-limb-ischaemia", "pad"),
           ("swelling of one leg gives at least urgent", "any red flag gives an emergency"),
           ("tests/unit/triage/test_engine.py::test_adding_a_warning_sign_never_lowers_the_disposition",
            "tests/e2e/test_vignettes.py::test_vignette"),
           "Catastrophic",
           "Low for reported signs. A clot without swelling, redness or calf pain cannot be seen "
           "from answers; the safety net names the clot signs."),
    Hazard("H4", "A missing answer is read as benign",
           "A rule that reads an unanswered question as 'no'; a benign story assumed from answers "
           "that were not given; an 'Unknown' answer of another form mapped to 'no'.",
           "Under-triage of any serious cause.",
           lambda m: [],
           ("an explicit no left unanswered never lowers the disposition",
            "self-care only for the answered benign story"),
           ("tests/unit/triage/test_engine.py::test_removing_an_answer_never_lowers_the_disposition",
            "tests/unit/triage/test_engine.py::test_an_explicit_no_made_unanswered_never_lowers_the_disposition",
            "tests/e2e/api/test_foreign_forms.py::test_unknown_is_the_same_as_unanswered"),
           "Major",
           "Very low: every version is checked on every stored answer set with each answer left "
           "out, and on generated answer sets."),
    Hazard("H5", "Another hospital's form cannot ask a red flag",
           "The foreign form has no item for a warning sign, so it is unknown rather than absent.",
           "A red flag never asked: under-triage of stroke, cauda equina or a clot.",
           lambda m: [],
           (),
           ("tests/e2e/api/test_foreign_forms.py::test_the_result_names_the_warning_signs_the_form_did_not_ask",
            "tests/unit/test_forms_mapping.py::test_coverage_names_the_warning_signs_the_form_cannot_ask",
            "tests/e2e/api/test_foreign_forms.py::test_every_vignette_gives_the_same_result_on_both_forms"),
           "Catastrophic",
           "Medium: the result names every warning sign the form did not ask and tells the "
           "clinician to ask now; it cannot ask for them. A hospital should add the items."),
    Hazard("H6", "Text contradicts the disposition, or cannot be read",
           "Advice that tells an emergency to book an appointment; a safety net naming what just "
           "happened; a rationale written for the rules' authors (rule ids, answer codes, file names).",
           "The person or the clinician acts on the text, not on the disposition.",
           lambda m: [],
           ("an emergency result's advice is only the call-now safety net",),
           ("tests/e2e/test_explanations.py::test_no_person_readable_text_names_rules_answers_files_or_process",
            "tests/e2e/test_narrative.py::test_the_risk_assessment_narrative_says_what_the_data_says",
            "tests/integration/test_cds_hooks.py::test_every_vignette_card_follows_the_rules_and_matches_triage"),
           "Major",
           "Low for rule versions written in clinical words; 1.0.0 and 1.1.0 keep their published "
           "texts, which name rule ids and source files."),
    Hazard("H7", "A rule version changes after publication, or goes live unseen",
           "A code change alters what a published version answers; a new default whose less urgent "
           "changes nobody reviewed.",
           "Results that differ from the version a hospital signed off.",
           lambda m: [],
           (),
           ("tests/e2e/test_golden.py::test_a_published_version_answers_as_frozen",
            "tests/e2e/test_golden.py::test_a_published_version_gives_byte_identical_bundles",
            "tests/unit/triage/test_release.py::test_the_note_lists_every_change_once_with_counts_that_match",
            "tests/e2e/test_signoff.py::test_required_sign_off_refuses_to_start_with_an_unsigned_default"),
           "Major",
           "Very low: every published version is held to its freeze; every disposition change of a "
           "new version is in its release note; with LEGTRIAGE_REQUIRE_SIGNOFF=true only signed "
           "versions run."),
    Hazard("H8", "A record is lost",
           "The store fails or is unreachable while a result is given; a worker dies mid-write.",
           "No trace of the advice given: follow-up and audit impossible.",
           lambda m: [],
           (),
           ("tests/integration/test_audit.py::test_store_down_means_503_with_retry_after_never_an_unrecorded_200",
            "tests/integration/test_records_counts.py::test_sqlite_four_workers_eight_threads_keep_every_record",
            "tests/integration/test_records_counts.py::test_postgresql_outage_gives_503_and_readyz_says_so_and_no_200_goes_unrecorded"),
           "Significant",
           "Very low: no result is given that was not recorded (a 503 instead)."),
    Hazard("H9", "A result is taken for a diagnosis or an order",
           "The proposals read as orders; the result read as a diagnosis.",
           "Tests or referrals done or omitted without a clinician's judgement.",
           lambda m: [],
           ("at most six proposals",),
           ("tests/unit/triage/test_engine.py::test_no_result_has_more_than_six_proposals",
            "tests/integration/test_cds_hooks.py::test_each_example_call_gives_the_card_the_contract_describes"),
           "Considerable",
           "Low: every ServiceRequest is a draft proposal, every text says it is decision support, "
           "not a diagnosis."),
)


_CACHE: dict = {}  # the measurements of one set of rule modules, for the test that renders twice


def _key(registry: Registry, what: str) -> tuple:
    return (what,) + tuple((v, id(m.module), m.rules) for v, m in registry.modules.items())


def _measured(registry: Registry, sets: list[release.AnswerSet]) -> dict[str, Measured]:
    key = _key(registry, "measured") + (tuple(s.id for s in sets),)
    if key not in _CACHE:
        _CACHE[key] = {v: measure(m, sets) for v, m in registry.modules.items()}
    return _CACHE[key]


def _figures(registry: Registry, data: ClinicalData) -> str:
    key = _key(registry, "figures") + (len(data.vignettes),)
    if key not in _CACHE:
        _CACHE[key] = review.figures_table(review.all_figures(registry, data.vignettes, data)).rstrip()
    return _CACHE[key]


def render(registry: Registry, data: ClinicalData, signoff_dir: Path) -> str:
    sets = release.answer_sets(data)
    origins = Counter(s.origin for s in sets)
    facts = {s.id: s.facts for s in sets}
    measured = _measured(registry, sets)
    default = registry.get()
    cases = data.vignettes
    words = lambda fact: data.wording.question.get(fact, fact)  # noqa: E731
    signoffs = signoff.load(signoff_dir, registry.modules)
    versions = list(registry.modules)

    out = ["# Clinical safety case", "",
           "Generated by `legtriage rules safety-case --write` from this repository; "
           "`tests/unit/triage/test_safety_case.py` regenerates it and fails when it is stale. Every "
           "figure below is measured by that command. Structured after DCB0129 (clinical risk "
           "management in the manufacture of health IT systems); the deploying hospital's "
           "clinical safety officer reviews it under DCB0160.", "",
           "## 1. The system and its intended use", "",
           "legtriage suggests how soon a person with leg numbness should be seen (emergency, "
           "urgent, routine, self-care), the likely causes and draft proposals (referrals, tests), "
           "from a completed questionnaire. It is decision support for a clinician: it never "
           "diagnoses and never orders. Its behaviour is a published rule version (a Library per "
           "version); every version stays pinnable and answers as it was frozen.", "",
           f"- Default rule version: {default.version}; published: "
           + ", ".join(f"{v} ({m.status})" for v, m in registry.modules.items()) + ".",
           f"- Stored answer sets run for this case: {len(sets)} ("
           + ", ".join(f"{n} from {o}" for o, n in sorted(origins.items())) + ").",
           f"- Vignettes (clinical/vignettes): {len(cases)} stories with expected results.",
           "- Golden freezes (clinical/golden): " + ", ".join(
               f"{v}: {_frozen(data.frozen.get(v), facts, m)[0]} answer sets" for v, m in registry.modules.items()) + ".",
           "", "## 2. Hazard log", "",
           "| id | hazard | severity | controls in the default rules | residual risk |",
           "|---|---|---|---|---|"]
    def open_for_default(h: Hazard) -> list[str]:
        return [f"{measured[default.version].checks[p][1]} answer sets fail \u201c{p}\u201d"
                for p in h.properties if measured[default.version].checks.get(p, [0, 0])[1]]

    for h in HAZARDS:
        rules = h.rules(default)
        failing = open_for_default(h)
        out.append(f"| {h.id} | {h.title} | {h.severity} | {len(rules)} rules, "
                   f"{len(h.properties)} measured properties, {len(h.tests)} tests | "
                   + (f"**open for {default.version}**: " + "; ".join(failing) if failing
                      else h.residual.split(":")[0].split(". ")[0]) + " |")
    out += ["", "Severity is the project's proposal on the DCB0129 scale (catastrophic, major, "
            "considerable, significant, minor) for the clinical safety officer to confirm.", ""]
    for h in HAZARDS:
        rules = {r.id: r for r in default.rules}
        out += [f"### {h.id}. {h.title}", "", f"- **Causes**: {h.causes}", f"- **Effect**: {h.effect}"]
        ids = h.rules(default)
        if ids:
            out.append(f"- **Controls, rules of {default.version}**: "
                       + "; ".join(f"{rules[i].title} (`{i}`, {rules[i].floor.code})" for i in ids) + ".")
        if h.id == "H5":
            for canonical, asked in data.forms.items():
                for v, m in registry.modules.items():
                    signs = not_asked(asked, m)
                    out.append(f"- **Measured, {canonical} with {v}**: "
                               f"{len(signs)} warning signs it cannot ask"
                               + (": " + "; ".join(words(s) for s in signs) if signs else "") + ".")
        for p in h.properties:
            row = []
            for v in versions:
                checked, failed, example = measured[v].checks.get(p, [0, 0, ""])
                row.append(f"{v}: {checked - failed} of {checked} hold"
                           + (f" (first failure: `{example}`)" if failed else ""))
            out.append(f"- **Property \u201c{p}\u201d, measured on the stored answer sets**: "
                       + "; ".join(row) + ".")
        if h.id == "H7":
            for v, m in registry.modules.items():
                total, same = _frozen(data.frozen.get(v), facts, m)
                out.append(f"- **Measured**: {v} reproduces {same} of {total} frozen dispositions.")
        out.append("- **Tests**: " + "; ".join(f"`{t}`" for t in h.tests) + ".")
        failing = open_for_default(h)
        if failing:
            out.append(f"- **Residual risk: open for the default {default.version}**, as measured "
                       "above: " + "; ".join(failing) + ". Not acceptable until a version that "
                       "holds the property is the default.")
        out += [f"- **Residual risk{' once the properties hold' if failing else ''}**: {h.residual}", ""]

    out += ["## 3. Evidence: dispositions and vignette figures", "",
            "| version | " + " | ".join(review.DISPOSITIONS) + " |", "|---" * (len(review.DISPOSITIONS) + 1) + "|"]
    for v in versions:
        out.append(f"| {v} | " + " | ".join(str(measured[v].dispositions[d]) for d in review.DISPOSITIONS) + " |")
    out += ["", f"Dispositions over the {len(sets)} stored answer sets.", "",
            "Under-triage: a less urgent disposition than the vignette expects, counted by the "
            "expected disposition; over-triage: a more urgent one.", "",
            _figures(registry, data), "",
            "## 4. Release and sign-off status of every version", "",
            "| version | status | release note | less urgent stories | clinical sign-off |",
            "|---|---|---|---|---|"]
    for v, m in registry.modules.items():
        stories = signoff.less_urgent_stories(v)
        note = f"docs/rules-{v}.md" if m.replaces else "first version"
        done = signoffs.signed(v)
        state = (f"signed by {done.reviewer}, {done.role}, {done.date.isoformat()}" if done
                 else f"not signed: {signoffs.why_unsigned(v)}")
        out.append(f"| {v} | {m.status} | {note} | "
                   f"{len(stories) if stories is not None else 'not generated'} | {state} |")
    out += ["", "The project ships no sign-off: `mappings/signoff/README.md` says how a hospital "
            "signs a version off, story by story, and `LEGTRIAGE_REQUIRE_SIGNOFF=true` makes the "
            "service run only signed versions.", ""]
    return "\n".join(out)
