"""Answers -> facts: what a form's answers say in the words the rules reason about.

The FHIR layer (service/fhir_io/incoming.py) has checked the answers against the Questionnaire
and hands over plain values by linkId; this maps them to clinical facts through mappings/facts.yaml
and validates those (service/triage/facts.py). Another hospital's form plugs in here, with its own
fact map, and nothing of the FHIR reading or the rules changes. No Flask, no FHIR types.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from service.catalog import Catalog
from service.forms import NOT_REPORTED, REPEATING_FACTS, Form
from service.triage.facts import Facts, load_facts


@dataclass(frozen=True)
class MappingWarning:
    """Something in the answers the mapping set aside, said for the caller (a business rule)."""

    link_id: str
    text: str


def answers_to_facts(values: Mapping[str, list[Any]], catalog: Catalog) -> tuple[Facts, list[MappingWarning]]:
    """linkId -> answer values, to validated Facts and what was set aside on the way.

    Raises facts.InvalidFacts when a value is outside the facts' domain (the Questionnaire checks
    should have caught it).
    """
    data, warnings = fact_values(values, catalog)
    return load_facts(data), warnings


def fact_values(values: Mapping[str, list[Any]], catalog: Catalog) -> tuple[dict[str, Any], list[MappingWarning]]:
    """linkId -> answer values, to fact name -> value (not validated yet), through the fact map.

    An unanswered question is left out: unknown, never "no".
    """
    facts: dict[str, Any] = {}
    warnings: list[MappingWarning] = []
    for link_id, fact in catalog.fact_map.items():
        got = values.get(link_id)
        if not got:
            continue
        if catalog.items[link_id].repeats:
            codes = list(got)
            if "none" in codes and len(codes) > 1:
                codes.remove("none")  # a medicine named wins over "none of these"
                warnings.append(MappingWarning(link_id, f"{link_id!r}: 'none' ignored because other "
                                                        "answers were given."))
            facts[fact] = codes
        else:
            facts[fact] = got[0]
    return facts, warnings


def form_answers_to_facts(values: Mapping[str, list[Any]], form: Form) -> tuple[Facts, list[MappingWarning]]:
    """Another hospital's answers (linkId -> "system|code" or plain values) to validated Facts.

    Each mapped coding becomes its fact's value; one that the mapping calls not reported ("Unknown")
    leaves the fact unreported, exactly as an unanswered question does.
    """
    facts: dict[str, Any] = {}
    for link_id, item in form.items.items():
        got = values.get(link_id)
        if not got:
            continue
        value = got[0]
        if item.type == "choice":
            system, _, code = value.partition("|")
            value = item.answers[(system, code)]
            if value is NOT_REPORTED:
                continue
        facts[item.fact] = [value] if item.fact in REPEATING_FACTS else value
    return load_facts(facts), []
