"""The facts object: typed, validated, and 'not answered' kept apart from 'no'."""
from __future__ import annotations

import random

import pytest

from service.triage.facts import FACT_NAMES, Facts, ValidationError, load_facts


def test_unanswered_is_none_and_no_is_false():
    facts = load_facts({"side": "left", "onset": "gradual", "weakness": False})
    assert facts.weakness is False and facts.speech_difficulty is None
    assert facts.known() == {"side": "left", "onset": "gradual", "weakness": False}


def test_repeating_answers_become_sets():
    facts = load_facts({"locations": ["toes", "sole"], "medications": ["none"]})
    assert facts.locations == frozenset({"toes", "sole"}) and facts.medications == frozenset({"none"})


@pytest.mark.parametrize("data, field", [
    ({"side": "middle"}, "side"), ({"age": 131}, "age"), ({"age": -1}, "age"), ({"age": 5.5}, "age"),
    ({"weakness": "yes"}, "weakness"), ({"weakness": 1}, "weakness"), ({"locations": ["elbow"]}, "locations"),
    ({"locations": []}, "locations"), ({"mood": "sad"}, "mood"),
])
def test_out_of_domain_values_are_rejected_by_name(data, field):
    with pytest.raises(ValidationError) as err:
        load_facts(data)
    assert field in err.value.messages


def test_every_fact_is_validated():
    from service.triage.facts import FactsSchema
    assert set(FactsSchema().fields) == set(FACT_NAMES) == {f for f in Facts.__dataclass_fields__}


def test_the_answer_codes_of_the_facts_are_the_questionnaires():
    """facts.py lists the codes each coded fact takes; they must be the Questionnaire's answer codes."""
    from marshmallow import validate

    from service.fhir_io.served import load_catalog
    from service.config import PROJECT_ROOT
    from service.triage.facts import FactsSchema

    catalog = load_catalog(PROJECT_ROOT / "mappings")
    fields = FactsSchema().fields
    checked = set()
    for link_id, fact in catalog.fact_map.items():
        item = catalog.items[link_id]
        if item.type != "choice":
            continue
        field = fields[fact]
        inner = getattr(field, "inner", field)  # a repeating answer: a list of codes
        (one_of,) = [v for v in inner.validators if isinstance(v, validate.OneOf)]
        assert set(one_of.choices) == item.codes, (link_id, fact)
        checked.add(fact)
    assert checked == {"side", "locations", "onset", "duration", "pattern", "progression", "sensations",
                       "diabetes", "medications"}


def test_load_facts_accepts_and_refuses_what_a_full_load_does():
    """load_facts skips unreported facts (partial=True): the outcome must be a full load's."""
    from marshmallow import ValidationError

    from service.triage import facts as F
    samples = {name: [True, False, None, 1, "yes", 0] for name in F.FACT_NAMES}
    samples.update({
        "side": list(F.SIDES) + ["middle", None, 1, ""], "onset": list(F.ONSETS) + ["slow", True],
        "duration": list(F.DURATIONS) + ["years"], "pattern": list(F.PATTERNS) + [["constant"]],
        "progression": list(F.PROGRESSIONS) + [None], "diabetes": list(F.DIABETES) + [False],
        "age": [0, 50, 130, -1, 131, 50.0, "50", True, None],
        "locations": [["toes"], ["toes", "sole"], [], ["nose"], "toes", None, [1]],
        "sensations": [["tingling"], [], ["itchy"]], "medications": [["none"], ["hiv", "none"], [None]],
    })
    rng = random.Random(6)
    schema = F.FactsSchema()
    for _ in range(3_000):
        data = {name: rng.choice(samples[name])
                for name in rng.sample(F.FACT_NAMES, rng.randint(0, len(F.FACT_NAMES)))}
        if rng.random() < 0.05:
            data["not_a_fact"] = True
        try:
            expected = schema.load(dict(data))
        except ValidationError as err:
            with pytest.raises(ValidationError) as got:
                F.load_facts(data)
            assert got.value.messages == err.messages
        else:
            assert F.load_facts(data) == expected


def test_known_facts_are_the_reported_fields_in_field_order():
    from dataclasses import fields

    from service.triage.facts import Facts
    facts = Facts(age=40, side="left", weakness=False, medications=frozenset({"none"}))
    assert facts.known() == {f.name: getattr(facts, f.name) for f in fields(facts)
                             if getattr(facts, f.name) is not None}
    assert list(facts.known()) == ["side", "weakness", "age", "medications"]
    assert Facts().known() == {}


def test_a_schema_hook_that_could_read_two_facts_stops_the_import():
    """load_facts loads each fact on its own and reuses the result (issue 21): the facts module
    refuses to load if the schema gains a hook that could check two facts together."""
    from marshmallow import validates_schema

    from service.triage import facts as F

    class Crossed(F.FactsSchema):
        @validates_schema
        def onset_and_duration(self, data, **kwargs):
            pass

    assert F._other_hooks(F.FactsSchema()) == {}
    assert F._other_hooks(Crossed()) == {"validates_schema": ["onset_and_duration"]}
