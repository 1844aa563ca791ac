"""The triage core: one QuestionnaireResponse in, one triaged result out.

`$triage` (service/api/fhir.py) and the CDS Hooks services both run this, so a QuestionnaireResponse
gets the same checks, facts, rules and Bundle whichever way it arrives. It needs the app context
(the loaded catalog, rule registry and Bundle builder); it raises FhirError for what it refuses.
"""
from __future__ import annotations

from dataclasses import dataclass

from service.errors import FhirError
from service.fhir_io import incoming
from service.state import state
from service.triage.engine import UnknownRulesVersion, evaluate
from service.triage.facts import ValidationError, load_facts
from service.triage.model import Assessment
from service.triage.rules import RuleModule


@dataclass(frozen=True)
class Triaged:
    """What one triage produced: the input, the rule module that ran, its assessment and the Bundle."""

    qr: dict
    module: RuleModule
    assessment: Assessment
    bundle: dict


def triage(qr: dict, root: str, rules_version: str | None = None,
           rules_version_where: str = "rules-version") -> Triaged:
    """Check `qr` (found at FHIRPath `root` of the request) and triage it with the rules asked for."""
    s = state()
    incoming.validate_structure(qr, root)
    incoming.check_modifiers(qr, root)
    answers = incoming.check_against_questionnaire(qr, root, s.catalog)
    try:
        module = s.registry.get(rules_version)
    except UnknownRulesVersion as err:
        raise FhirError.one(422, "not-supported", f"Unknown rules version {err.requested[:40]!r}; "
                            f"published versions: {', '.join(err.available)}.",
                            rules_version_where) from None
    try:
        facts = load_facts(incoming.answers_to_fact_values(answers, s.catalog))
    except ValidationError as err:  # the Questionnaire checks should have caught it
        raise FhirError.one(422, "value", f"Answers out of range: {err.messages}") from None
    assessment = evaluate(module, facts)
    return Triaged(qr, module, assessment, s.builder.build(assessment, module, qr, answers.warnings))
