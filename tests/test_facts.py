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
