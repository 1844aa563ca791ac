"""The triage core: one QuestionnaireResponse in, one triaged result out.

`$triage` (service/api/fhir.py) and the CDS Hooks services both run this, so a QuestionnaireResponse
gets the same checks, facts, rules and Bundle whichever way it arrives. It needs the app context
(the loaded catalog, rule registry and Bundle builder).
"""
from __future__ import annotations

from dataclasses import dataclass

from service import mapping
from service.fhir_io import incoming
from service.fhir_io.outcome import FhirError, Issue
from service.state import state
from service.triage.engine import UnknownRulesVersion, evaluate
from service.triage.facts import InvalidFacts
from service.triage.model import Assessment
from service.triage.rules import RuleModule
from service.triage.signs import not_asked as signs_not_asked
from service.triage.signoff import UnsignedRulesVersion


@dataclass(frozen=True)
class Triaged:
    """What one triage produced: the input, the rule module that ran, its assessment and the Bundle."""

    qr: dict
    module: RuleModule
    assessment: Assessment
    bundle: dict


def triage(qr: dict, root: str, rules_version: str | None = None,
           rules_version_where: str = "rules-version") -> Triaged:
    """Check `qr` (found at FHIRPath `root` of the request) and triage it with the rules asked for.

    Raises FhirError for what it refuses: the checks' findings, and the domain's refusals (an unknown
    or unsigned rules version, facts out of range) said the FHIR way.
    """
    try:
        return _triage(qr, root, rules_version, rules_version_where)
    except (UnknownRulesVersion, UnsignedRulesVersion, InvalidFacts) as err:
        raise refusal(err) from None


def refusal(err: UnknownRulesVersion | UnsignedRulesVersion | InvalidFacts) -> FhirError:
    """A refusal of the domain as the 422 the caller gets."""
    if isinstance(err, UnknownRulesVersion):
        return FhirError.one(422, "not-supported", f"Unknown rules version {err.requested[:40]!r}; published "
                             f"versions: {', '.join(err.available)}.", err.asked_by)
    if isinstance(err, UnsignedRulesVersion):
        return FhirError.one(422, "business-rule", f"Rules version {err.version} has no clinical sign-off here "
                             f"and this service runs only signed-off versions: {err.why}.", err.asked_by)
    # The Questionnaire checks should have caught it: the answers reached facts out of range.
    return FhirError.one(422, "value", f"Answers out of range: {err.messages}")


def _triage(qr: dict, root: str, rules_version: str | None, rules_version_where: str) -> Triaged:
    s = state()
    incoming.validate_structure(qr, root)
    incoming.check_modifiers(qr, root)
    foreign = s.catalog.forms.get((qr.get("questionnaire") or "").partition("|")[0])
    if foreign is None:
        answers = incoming.check_against_questionnaire(qr, root, s.catalog)
        module = s.registry.get(rules_version, asked_by=rules_version_where)
        facts, set_aside = mapping.answers_to_facts(answers.values, s.catalog)
        form, not_asked = None, ()
    else:  # another hospital's form, through its mapping file (mappings/forms/)
        answers = incoming.check_against_form(qr, root, foreign)
        module = s.registry.get(rules_version, asked_by=rules_version_where)
        facts, set_aside = mapping.form_answers_to_facts(answers.values, foreign.form)
        form, not_asked = foreign.form, signs_not_asked(foreign.form.facts, module)
    if s.settings.require_signoff and s.signoffs is not None and not s.signoffs.signed(module.version):
        raise UnsignedRulesVersion(module.version, s.signoffs.why_unsigned(module.version),
                                   rules_version_where)
    assessment = evaluate(module, facts)
    warnings = answers.warnings + [Issue("business-rule", w.text, severity="warning") for w in set_aside]
    bundle = s.builder.build(assessment, module, qr, warnings, form=form, not_asked=not_asked)
    return Triaged(qr, module, assessment, bundle)
