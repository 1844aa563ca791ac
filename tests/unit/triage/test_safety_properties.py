"""The safety policy (shared/DESIGN.md, "Rule modules") as properties over random answer sets.

Run on every version that may become the default (each active rule module) and so on the default;
a retired version is not a candidate. The checks are in tests/unit/triage/safety_policy.py; the answer sets
are of our form (every linkId answered, unanswered or contradictory at random, and around the benign
story) and of the neuro-intake form through its mapping. Most checks run on the Assessment; a sample
goes through the HTTP API too. The number of answer sets: the `safety` settings profile
(SAFETY_PROPERTY_EXAMPLES, default 400 per property and version); the figures are printed at the end.
"""
from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from service.triage.engine import Registry
from service.triage.model import Disposition
from tests.support import post_triage, questionnaire_response, risk_assessment
from tests.unit.triage import safety_policy as P

REGISTRY = Registry()
CANDIDATES = [m for m in REGISTRY.modules.values() if m.status == "active"]
IDS = [m.version for m in CANDIDATES]
EXAMPLES = int(os.environ.get("SAFETY_PROPERTY_EXAMPLES", "400"))

settings.register_profile("safety", max_examples=EXAMPLES, deadline=None, derandomize=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.data_too_large])
safety = settings.get_profile("safety")
RAN: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def figures(request):
    yield
    if RAN:
        lines = [f"  {name}: {count} answer sets" for name, count in sorted(RAN.items())]
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\nSafety properties ran on:\n" + "\n".join(lines))


def test_the_default_is_a_candidate_and_every_candidate_is_checked():
    """A version can be the default only when every property holds on it: the default is among the
    versions every test below runs on."""
    assert REGISTRY.default_version in IDS
    assert REGISTRY.default_version == "1.2.0"
    assert "1.1.0" not in IDS and "1.0.0" not in IDS  # retired: known defects, not candidates


answer_sets = st.one_of(P.our_answers(), P.benign_based_answers())


@pytest.mark.parametrize("name", list(P.PROPERTIES))
@pytest.mark.parametrize("module", CANDIDATES, ids=IDS)
@safety
@given(answers=answer_sets)
def test_property_on_our_form(module, name, answers):
    facts = P.our_facts(answers)
    RAN[f"{module.version} {name} (our form)"] += 1
    problems = P.PROPERTIES[name](module, facts)
    assert not problems, f"{problems[:3]} for {answers}"


@pytest.mark.parametrize("module", CANDIDATES, ids=IDS)
@settings(parent=safety, max_examples=max(EXAMPLES // 2, 10))
@given(values=P.neuro_values())
def test_every_property_on_the_neuro_intake_form(module, values):
    facts = P.neuro_facts(values)
    RAN[f"{module.version} every property (neuro-intake)"] += 1
    for name, check in P.PROPERTIES.items():
        problems = check(module, facts)
        assert not problems, f"{name}: {problems[:3]} for {values}"


@pytest.mark.parametrize("module", CANDIDATES, ids=IDS)
@safety
@given(facts=P.recurring_positional_story())
def test_recurring_positional_or_cold_numbness_is_routine(module, facts):
    RAN[f"{module.version} recurring positional or cold is routine"] += 1
    assert not P.recurring_positional_is_routine(module, facts), facts.known()


@pytest.mark.parametrize("module", CANDIDATES, ids=IDS)
@settings(parent=safety, max_examples=max(EXAMPLES // 8, 10))
@given(answers=st.one_of(P.our_answers(required=True), P.benign_based_answers()))
def test_a_sample_through_the_http_api(app, module, answers):
    """The Bundle says what the Assessment says (disposition, every advice text), so the domain-level
    properties hold for what the API returns; and the properties hold on it."""
    answers.setdefault("numbness.side", "left")
    facts = P.our_facts(answers)
    RAN[f"{module.version} through the HTTP API"] += 1
    assessment = P.run(module, facts)
    query = "" if module.version == REGISTRY.default_version else f"?rules-version={module.version}"
    response = post_triage(app.test_client(), questionnaire_response(answers), query)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    ra = risk_assessment(response.get_json(force=True))
    code = ra["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    assert code == assessment.disposition.code
    for advice in assessment.advice:
        assert advice.text in ra.get("mitigation", ""), advice.text
    for name, check in P.PROPERTIES.items():
        if name in ("missing never below reassuring", "alarming never lowers"):
            continue  # these compare many answer sets: the domain tests above run them
        assert not check(module, facts, assessment), name


# ---- the checks can fail: each finds the defect it is for on 1.1.0 (retired for these defects) ---

OLD = REGISTRY.get("1.1.0")
STORIES = {
    "self-care only for the benign story": {  # diabetic, both feet tingling for days (review item 1)
        "numbness.side": "both", "numbness.onset": "gradual", "numbness.relieved-by-moving": True,
        "numbness.location": ["toes"], "history.diabetes": "yes"},
    "floors": {  # cancer with pain spreading down the leg, back pain answered no (item 3)
        "numbness.side": "left", "numbness.onset": "gradual", "numbness.duration": "weeks",
        "history.cancer": True, "spine.radiating": True, "spine.back-pain": False},
    "advice agrees with the disposition": {  # an emergency told to see a doctor within 24 hours (item 6)
        "numbness.side": "left", "numbness.onset": "sudden", "red-flags.speech": True},
    "proposals bounded": {  # physiotherapy with cancer and back pain (item 3)
        "numbness.side": "left", "numbness.onset": "gradual", "numbness.duration": "weeks",
        "history.cancer": True, "spine.radiating": True, "spine.back-pain": False},
    "causes agree": {  # "fell asleep" beside colour change in the cold (item 9)
        "numbness.side": "both", "numbness.onset": "sudden", "numbness.duration": "minutes",
        "numbness.relieved-by-moving": True, "numbness.pattern": "positional",
        "circulation.toes-colour-in-cold": True, "numbness.location": ["toes"], "history.age": 30},
}


@pytest.mark.parametrize("name", list(STORIES))
def test_each_check_finds_its_defect_in_1_1_0_and_not_in_the_default(name):
    facts = P.our_facts(STORIES[name])
    assert P.PROPERTIES[name](OLD, facts), f"{name} should fail on 1.1.0"
    assert not P.PROPERTIES[name](REGISTRY.get(), facts), name


def test_the_benign_story_and_recurring_checks_can_fail():
    """On 1.1.0 an unanswered duration and trigger count as brief and positional, and diabetes not
    known with numb toes gets self-care (review item 1); recurring positional numbness is urgent
    (item 5)."""
    facts = P.our_facts({"numbness.side": "both", "numbness.onset": "sudden",
                         "numbness.relieved-by-moving": True, "numbness.location": ["toes"],
                         "history.diabetes": "unknown"})
    assert P.run(OLD, facts).disposition == Disposition.SELF_CARE
    assert P.self_care_only_for_the_benign_story(OLD, facts)
    recurring = P.Facts(side="left", onset="sudden", duration="weeks", pattern="positional")
    assert P.recurring_positional_is_routine(OLD, recurring)
    assert not P.recurring_positional_is_routine(REGISTRY.get(), recurring)
