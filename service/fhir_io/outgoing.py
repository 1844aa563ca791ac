"""Build the outgoing FHIR resources as plain data (checked against fhir.resources in the tests)."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson

from service.catalog import BASE, Catalog
from service.fhir_io.outcome import Issue, operation_outcome
from service.fhir_io import narrative
from service.triage.model import Assessment, Disposition, Finding, Risk
from service.triage.rules import RuleModule
from service.triage.wording import clinical_title

DISPOSITION_EXTENSION = f"{BASE}/StructureDefinition/triage-disposition"
RULE_MODULE_SYSTEM = f"{BASE}/CodeSystem/rule-module"
EVIDENCE_EXTENSION = f"{BASE}/StructureDefinition/triage-evidence"
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
RISK_DISPLAY = {Risk.LOW: "Low likelihood", Risk.MODERATE: "Moderate likelihood",
                Risk.HIGH: "High likelihood"}
ID_NAMESPACE = uuid.UUID("5b0f6c1e-8f0a-4b61-9a38-0f1e2c7d9a11")


def now_iso() -> str:
    """The current UTC second as a FHIR instant."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class BundleBuilder:
    """Turns one Assessment into the response Bundle, with ids derived from the input."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.link_ids = {fact: link for link, fact in catalog.fact_map.items()}
        self.wording = catalog.wording
        self.fact_words = self.wording.question

    def build(self, assessment: Assessment, module: RuleModule, qr: dict,
              warnings: list[Issue], timestamp: str | None = None, form=None,
              not_asked: tuple[str, ...] = ()) -> dict:
        """`form` and `not_asked`: another hospital's form that was answered (its linkIds are named
        in the rationale), and the warning signs (facts) it cannot ask, which the result names."""
        timestamp = timestamp or now_iso()
        digest = hashlib.sha256(orjson.dumps(qr, option=orjson.OPT_SORT_KEYS)
                                + b"|" + module.version.encode()).hexdigest()
        subject = qr["subject"]
        basis = _reference_to(qr)
        ra_id = _make_id(digest, "RiskAssessment")
        link_ids = ({i.fact: link for link, i in form.items.items()} if form is not None
                    else self.link_ids)
        entries = [self.risk_assessment(assessment, module, ra_id, subject, basis, timestamp,
                                        link_ids, form, not_asked)]
        for proposal in assessment.proposals:
            sr_id = _make_id(digest, f"ServiceRequest/{proposal.key}")
            entries.append(self.service_request(assessment, proposal, sr_id, ra_id, subject, basis,
                                                timestamp, module.explanations == "clinical"))
        if warnings:
            outcome = operation_outcome(warnings)
            # resourceType first, then id, as in the other entries (each is made in that order)
            entries.append({"resourceType": outcome["resourceType"],
                            "id": _make_id(digest, "OperationOutcome"),
                            **outcome})
        entries = [narrative.with_text(r) for r in entries]  # the one place narrative is added
        return {
            "resourceType": "Bundle",
            "id": _make_id(digest, "Bundle"),
            "type": "collection",
            "timestamp": timestamp,
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in entries],
        }

    def risk_assessment(self, a: Assessment, module: RuleModule, ra_id: str, subject: dict,
                        basis: dict, timestamp: str, link_ids: dict[str, str] | None = None,
                        form=None, not_asked: tuple[str, ...] = ()) -> dict:
        clinical = module.explanations == "clinical"
        evidence_links = link_ids or self.link_ids
        predictions = [{
            # the rules behind the cause and the answers each read, as data (every version)
            "extension": [evidence_extension(f, evidence_links) for f in p.findings],
            "outcome": self.concept(self.catalog.conditions[p.cause]),
            "qualitativeRisk": {"coding": [{"system": RISK_SYSTEM, "code": p.risk.code,
                                            "display": RISK_DISPLAY[p.risk]}]},
            "rationale": (self.clinical_rationale(p.findings, module) if clinical
                          else self.rationale(p.findings, link_ids)),
        } for p in a.predictions]
        for prediction in predictions:
            if not prediction["extension"]:
                del prediction["extension"]
        resource = {
            "resourceType": "RiskAssessment",
            "id": ra_id,
            "extension": [{"url": DISPOSITION_EXTENSION,
                           "valueCodeableConcept": self.disposition_concept(a.disposition)}],
            "status": "preliminary",
            "method": {"coding": [{"system": RULE_MODULE_SYSTEM, "code": "leg-numbness-rules",
                                   "version": module.version,
                                   "display": f"{module.title} {module.version}"}],
                       "text": f"{module.title} {module.version} (Library/{module.id})"},
            "code": {"text": "Leg numbness triage"},
            "subject": subject,
            "occurrenceDateTime": timestamp,
            "basis": [basis],
        }
        if predictions:
            resource["prediction"] = predictions
        if clinical:
            resource["mitigation"] = "\n".join(adv.text for adv in a.advice)
            resource["note"] = [{"text": self.clinical_summary(a)}]
        else:
            resource["mitigation"] = "\n".join(
                f"{adv.text} (source: {', '.join(sorted({c.file for c in adv.cites}))})"
                for adv in a.advice)
            resource["note"] = [{"text": self.summary(a)}]
        if not_asked and clinical:
            signs = "; ".join(self.fact_words[f] for f in not_asked)
            resource["mitigation"] += (
                f"\nThe form that was answered did not ask about these warning signs, so they are "
                f"unknown, not absent: {signs}. Ask about each of them now: any one of them can "
                "make this more urgent, as the advice above says.")
            resource["note"].append({"text": "Not asked on the form that was answered (unknown, "
                                             f"not absent): {signs}."})
        elif not_asked:
            signs = "; ".join(self.fact_words[f] for f in not_asked)
            resource["mitigation"] += (
                f"\nThe form answered ({form.canonical}) did not ask about these warning signs, so "
                f"they are unknown, not absent: {signs}. Ask about each of them now: any one of "
                "them can make this more urgent, as the advice above says.")
            resource["note"].append({"text": f"Not asked by {form.canonical} (unknown, not "
                                             f"absent): {signs}."})
        return resource

    def service_request(self, a: Assessment, proposal, sr_id: str, ra_id: str, subject: dict,
                        basis: dict, timestamp: str, clinical: bool = False) -> dict:
        reasons = []
        for finding in proposal.findings:
            for cause, _ in finding.rule.causes:
                if cause not in reasons:
                    reasons.append(cause)
        if not reasons:
            reasons = [p.cause for p in a.predictions[:1]]
        if clinical:
            why = "; ".join(dict.fromkeys(clinical_title(f.rule.title) for f in proposal.findings)) \
                or "the triage result"
        else:
            why = "; ".join(dict.fromkeys(f.rule.title for f in proposal.findings)) or "triage result"
        term = self.catalog.procedures[proposal.key]
        shown = self.catalog.disposition_displays[a.disposition.code]
        resource = {
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "status": "draft",
            "intent": "proposal",
            "priority": self.catalog.disposition_priorities[proposal.disposition.code],
            "code": self.concept(term),
            "subject": subject,
            "authoredOn": timestamp,
            "supportingInfo": [{"reference": f"urn:uuid:{ra_id}", "type": "RiskAssessment"}, basis],
            "note": [{"text": f"Proposed by the leg numbness triage ({shown}"
                              f"): {term['text']} because of: {why}."}],
        }
        if reasons:
            resource["reasonCode"] = [self.concept(self.catalog.conditions[c]) for c in reasons]
        return resource

    def concept(self, term: dict) -> dict:
        """A CodeableConcept from a terminology.yaml entry: coded where a checked code exists, else text."""
        if "code" in term:
            return {"coding": [{"system": self.catalog.systems[term["system"]], "code": term["code"],
                                "display": term["display"]}], "text": term["text"]}
        return {"text": term["text"]}

    def disposition_concept(self, d: Disposition) -> dict:
        display = self.catalog.disposition_displays[d.code]
        return {"coding": [{"system": self.catalog.disposition_system, "code": d.code,
                            "display": display}], "text": display}

    def rationale(self, findings: tuple[Finding, ...], link_ids: dict[str, str] | None = None) -> str:
        parts = []
        link_ids = link_ids or self.link_ids
        for f in findings:
            rule, cite = f.rule, f.rule.cites[0]
            text = f"{rule.title} [{rule.id}]"
            if f.evidence:
                text += " (" + ", ".join(f"{link_ids.get(name, name)} = {show_value(value)}"
                                         for name, value in f.evidence) + ")"
            text += f". Source {cite.file}: \"{cite.quote}\""
            if rule.common_sense:
                text += f" Clinical common sense: {rule.common_sense}"
            parts.append(text)
        return " | ".join(parts)

    def clinical_rationale(self, findings: tuple[Finding, ...], module: RuleModule) -> str:
        """Each reason on its own line: the rule's title, the answers behind it in the
        Questionnaire's words, the source by its title and the quoted passage."""
        return "\n".join(self.wording.reason(f, module) for f in findings)

    def clinical_summary(self, a: Assessment) -> str:
        shown = self.catalog.disposition_displays[a.disposition.code]
        reasons = "; ".join(dict.fromkeys(clinical_title(f.rule.title) for f in a.findings
                                          if f.rule.floor == a.disposition))
        return (f"Triage: {shown}" + (f", because of: {reasons}" if reasons else "")
                + ". A suggestion for a clinician, not a diagnosis.")

    def summary(self, a: Assessment) -> str:
        fired = ", ".join(f.rule.id for f in a.findings)
        return (f"Disposition {a.disposition.code} (rules {a.rules_version}); rules that fired: {fired}. "
                "A suggestion for a clinician, not a diagnosis.")


def _make_id(digest: str, what: str) -> str:
    """uuid5 of the request's digest and the part: the same input (and rules version) always gives
    the same ids."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{digest}/{what}"))


def _reference_to(qr: dict) -> dict:
    if qr.get("id"):
        return {"reference": f"QuestionnaireResponse/{qr['id']}", "type": "QuestionnaireResponse"}
    if isinstance(qr.get("identifier"), dict):
        return {"identifier": qr["identifier"], "type": "QuestionnaireResponse"}
    return {"type": "QuestionnaireResponse", "display": "The QuestionnaireResponse sent to $triage"}


def show_value(value: Any) -> str:
    """A fact's value as the rationale shows it (yes/no, codes joined by +)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, frozenset):
        return "+".join(sorted(value))
    return str(value)


def evidence_extension(finding: Finding, link_ids: dict[str, str]) -> dict:
    """The triage-evidence extension of one rule behind a cause: the rule's id, the answered linkIds
    it read for this case (in the order read; `link_ids` maps facts to the linkIds of the form that
    was answered), its source file and the passage, verbatim."""
    cite = finding.rule.cites[0]
    parts = [{"url": "rule", "valueId": finding.rule.id}]
    parts += [{"url": "answer", "valueString": link_ids[fact]}
              for fact, _ in finding.read if fact in link_ids]
    parts += [{"url": "source", "valueString": cite.file},
              {"url": "passage", "valueString": cite.quote}]
    return {"url": EVIDENCE_EXTENSION, "extension": parts}
