"""Answers -> facts (service/mapping.py): plain values by linkId in, validated facts and warnings out."""
from __future__ import annotations

import pytest

from service.fhir_io.served import load_catalog
from service.config import PROJECT_ROOT
from service.mapping import MappingWarning, answers_to_facts
from service.triage.facts import InvalidFacts


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(PROJECT_ROOT / "mappings")


def test_answers_become_facts_and_unanswered_stays_unknown(catalog):
    values = {"numbness.side": ["left"], "numbness.location": ["toes", "sole"], "red-flags.weakness": [False],
              "history.age": [50], "red-flags.speech": [], "numbness": []}
    facts, warnings = answers_to_facts(values, catalog)
    assert facts.known() == {"side": "left", "locations": frozenset({"toes", "sole"}), "weakness": False,
                             "age": 50}
    assert facts.speech_difficulty is None and warnings == []


def test_none_beside_a_medicine_is_set_aside_with_a_warning_and_the_input_is_left_alone(catalog):
    values = {"history.medications": ["none", "hiv"]}
    facts, warnings = answers_to_facts(values, catalog)
    assert facts.medications == frozenset({"hiv"})
    assert warnings == [MappingWarning("history.medications", "'history.medications': 'none' ignored "
                                                              "because other answers were given.")]
    assert values == {"history.medications": ["none", "hiv"]}


def test_values_outside_the_facts_domain_raise(catalog):
    with pytest.raises(InvalidFacts) as err:
        answers_to_facts({"history.age": [500]}, catalog)
    assert "age" in err.value.messages


def test_facts_out_of_range_reach_the_caller_as_a_422(client, monkeypatch):
    # The Questionnaire checks stop such answers first; should a mapping let one through, the error
    # layer (service/errors.py) still answers with an OperationOutcome, not a 500.
    from service import mapping
    from tests.support import example, post_triage

    monkeypatch.setattr(mapping, "fact_values", lambda values, catalog: ({"age": 500}, []))
    response = post_triage(client, example("qr-urgent-dvt"))
    assert response.status_code == 422
    (issue,) = response.get_json(force=True)["issue"]
    assert issue["code"] == "value" and issue["diagnostics"].startswith("Answers out of range: {'age'")
    assert "expression" not in issue
