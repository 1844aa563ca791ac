"""The facts object: typed, validated, and 'not answered' kept apart from 'no'."""
from __future__ import annotations

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

    from service.catalog import load_catalog
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
