"""Build the outgoing FHIR resources as plain data (checked against fhir.resources in the tests)."""
from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson

from service.catalog import SYSTEMS, Catalog
from service.errors import Issue, operation_outcome
from service.fhir_io import narrative
from service.triage.model import Assessment, Disposition, Finding, Risk
from service.triage.rules import RuleModule

BASE = "http://legtriage.example.org/fhir"
DISPOSITION_SYSTEM = f"{BASE}/CodeSystem/triage-disposition"
DISPOSITION_EXTENSION = f"{BASE}/StructureDefinition/triage-disposition"
RULE_MODULE_SYSTEM = f"{BASE}/CodeSystem/rule-module"
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
RISK_DISPLAY = {Risk.LOW: "Low likelihood", Risk.MODERATE: "Moderate likelihood",
                Risk.HIGH: "High likelihood"}
PRIORITY = {Disposition.EMERGENCY: "stat", Disposition.URGENT: "urgent",
            Disposition.ROUTINE: "routine", Disposition.SELF_CARE: "routine"}
DISPOSITION_DISPLAY = {Disposition.EMERGENCY: "Emergency", Disposition.URGENT: "Urgent",
                       Disposition.ROUTINE: "Routine", Disposition.SELF_CARE: "Self-care"}
ID_NAMESPACE = uuid.UUID("5b0f6c1e-8f0a-4b61-9a38-0f1e2c7d9a11")

_now_cache: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current UTC second as FHIR instant; formatted once per second (every response has one)."""
    global _now_cache
    second = int(time.time())
    cached_second, text = _now_cache  # one tuple: read and replaced atomically across threads
    if second != cached_second:
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        _now_cache = (second, text)
    return text


def concept(term: dict) -> dict:
    """A CodeableConcept from a terminology.yaml entry: coded where a checked code exists, else text."""
    if "code" in term:
        return {"coding": [{"system": SYSTEMS[term["system"]], "code": term["code"],
                            "display": term["display"]}], "text": term["text"]}
    return {"text": term["text"]}


class BundleBuilder:
    """Turns one Assessment into the response Bundle, with ids derived from the input."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.link_ids = {fact: link for link, fact in catalog.fact_map.items()}
        # id(rule) -> (rule, its "title [id]", its ". Source …" text): the parts of a rationale that
        # do not depend on the answers, made once per rule. The rule is kept to check the id.
        self._rule_texts: dict[int, tuple[Any, str, str]] = {}

    def build(self, assessment: Assessment, module: RuleModule, qr: dict,
              warnings: list[Issue], timestamp: str | None = None) -> dict:
        timestamp = timestamp or now_iso()
        digest = hashlib.sha256(orjson.dumps(qr, option=orjson.OPT_SORT_KEYS)
                                + b"|" + module.version.encode()).hexdigest()
        ids = _IdMaker(digest)
        subject = qr["subject"]
        basis = _reference_to(qr)
        ra_id = ids.make("RiskAssessment")
        entries = [self.risk_assessment(assessment, module, ra_id, subject, basis, timestamp)]
        for proposal in assessment.proposals:
            sr_id = ids.make(f"ServiceRequest/{proposal.key}")
            entries.append(self.service_request(assessment, proposal, sr_id, ra_id, subject, basis,
                                                timestamp))
        if warnings:
            outcome = operation_outcome(warnings)
            # resourceType first, then id, as in the other entries (each is made in that order)
            entries.append({"resourceType": outcome["resourceType"], "id": ids.make("OperationOutcome"),
                            **outcome})
        entries = [narrative.with_text(r) for r in entries]  # the one place narrative is added
        return {
            "resourceType": "Bundle",
            "id": ids.make("Bundle"),
            "type": "collection",
            "timestamp": timestamp,
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in entries],
        }

    def risk_assessment(self, a: Assessment, module: RuleModule, ra_id: str, subject: dict,
                        basis: dict, timestamp: str) -> dict:
        predictions = [{
            "outcome": concept(self.catalog.conditions[p.cause]),
            "qualitativeRisk": {"coding": [{"system": RISK_SYSTEM, "code": p.risk.code,
                                            "display": RISK_DISPLAY[p.risk]}]},
            "rationale": self.rationale(p.findings),
        } for p in a.predictions]
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
        resource["mitigation"] = "\n".join(
            f"{adv.text} (source: {', '.join(sorted({c.file for c in adv.cites}))})"
            for adv in a.advice)
        resource["note"] = [{"text": self.summary(a)}]
        return resource

    def service_request(self, a: Assessment, proposal, sr_id: str, ra_id: str, subject: dict,
                        basis: dict, timestamp: str) -> dict:
        reasons = []
        for finding in proposal.findings:
            for cause, _ in finding.rule.causes:
                if cause not in reasons:
                    reasons.append(cause)
        if not reasons:
            reasons = [p.cause for p in a.predictions[:1]]
        why = "; ".join(dict.fromkeys(f.rule.title for f in proposal.findings)) or "triage result"
        term = self.catalog.procedures[proposal.key]
        resource = {
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "status": "draft",
            "intent": "proposal",
            "priority": PRIORITY[proposal.disposition],
            "code": concept(term),
            "subject": subject,
            "authoredOn": timestamp,
            "supportingInfo": [{"reference": f"urn:uuid:{ra_id}", "type": "RiskAssessment"}, basis],
            "note": [{"text": f"Proposed by the leg numbness triage ({DISPOSITION_DISPLAY[a.disposition]}"
                              f"): {term['text']} because of: {why}."}],
        }
        if reasons:
            resource["reasonCode"] = [concept(self.catalog.conditions[c]) for c in reasons]
        return resource

    def disposition_concept(self, d: Disposition) -> dict:
        return {"coding": [{"system": DISPOSITION_SYSTEM, "code": d.code,
                            "display": DISPOSITION_DISPLAY[d]}], "text": DISPOSITION_DISPLAY[d]}

    def rationale(self, findings: tuple[Finding, ...]) -> str:
        parts = []
        link_ids = self.link_ids
        for f in findings:
            head, tail = self._rule_text(f.rule)
            if f.evidence:
                evidence = ", ".join(f"{link_ids.get(name, name)} = {_show(value)}"
                                     for name, value in f.evidence)
                parts.append(f"{head} ({evidence}){tail}")
            else:
                parts.append(head + tail)
        return " | ".join(parts)

    def _rule_text(self, rule) -> tuple[str, str]:
        cached = self._rule_texts.get(id(rule))
        if cached is None or cached[0] is not rule:
            cite = rule.cites[0]
            tail = f". Source {cite.file}: \"{cite.quote}\""
            if rule.common_sense:
                tail += f" Clinical common sense: {rule.common_sense}"
            cached = (rule, f"{rule.title} [{rule.id}]", tail)
            self._rule_texts[id(rule)] = cached
        return cached[1], cached[2]

    def summary(self, a: Assessment) -> str:
        fired = ", ".join(f.rule.id for f in a.findings)
        return (f"Disposition {a.disposition.code} (rules {a.rules_version}); rules that fired: {fired}. "
                "A suggestion for a clinician, not a diagnosis.")


_NAMESPACE_SHA1 = hashlib.sha1(ID_NAMESPACE.bytes)  # uuid5 hashes the namespace's bytes first


class _IdMaker:
    """uuid.uuid5(ID_NAMESPACE, f"{digest}/{what}") as a string, the same values, at a third of
    its cost: the hash of the common prefix is computed once per request, and the UUID's version
    and variant bits are set on an int rather than through uuid.UUID objects."""

    def __init__(self, digest: str):
        self.prefix = _NAMESPACE_SHA1.copy()
        self.prefix.update(f"{digest}/".encode())

    def make(self, what: str) -> str:
        h = self.prefix.copy()
        h.update(what.encode())
        n = int.from_bytes(h.digest()[:16], "big")
        n = (n & _CLEAR_VERSION_VARIANT) | _VERSION_5_VARIANT_RFC
        x = f"{n:032x}"
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


# RFC 4122: version (4 bits at 76) = 5, variant (2 bits at 62) = 0b10; as uuid.UUID(version=5) sets
_CLEAR_VERSION_VARIANT = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_5_VARIANT_RFC = (5 << 76) | (0x8000 << 48)


def _reference_to(qr: dict) -> dict:
    if qr.get("id"):
        return {"reference": f"QuestionnaireResponse/{qr['id']}", "type": "QuestionnaireResponse"}
    if isinstance(qr.get("identifier"), dict):
        return {"identifier": qr["identifier"], "type": "QuestionnaireResponse"}
    return {"type": "QuestionnaireResponse", "display": "The QuestionnaireResponse sent to $triage"}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, frozenset):
        return "+".join(sorted(value))
    return str(value)
