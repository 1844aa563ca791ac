"""The CDS Hooks card of one triage: built from the triage core's result (service/pipeline.py).

One card per call. What each part says, and why:

* ``indicator`` by disposition: emergency -> critical (some EHRs show it as a pop-up, so it is kept
  for what cannot wait), urgent -> warning, routine and self-care -> info.
* ``summary`` under 140 characters (CDS Hooks 2.0.1; Inferno fails 140 and more), naming the
  disposition in capitals so it reads in a one-line sidebar.
* ``detail`` in Markdown: likely causes, why (the rule, the answers it looked at and the quoted
  source passage; for a rule version whose explanations are clinical: the reason and the answers
  in the Questionnaire's words and the source by its title, service/triage/wording.py), the proposals, the advice, the rules version and the questionnaire's date, and
  that this is decision support, not a diagnosis.
* ``source``: the rules and their version, the Library that publishes them, the disposition Coding.
* one suggestion per ServiceRequest of the Bundle, one ``create`` action each; the clinician may
  take any of them (``selectionBehavior: any``), and the main referral is the recommended one.
  The resource is the ServiceRequest of the Ready to store transaction (store_ready.py: no id, the
  triage-output identifier) rewritten to refer only to what the EHR has: ``Patient/{patientId}``
  and ``QuestionnaireResponse/{id}``. The Bundle's own ``urn:uuid:`` references and the
  RiskAssessment do not exist in the EHR, so they are left out.
* ``uuid``s derived from (hookInstance, rules version, result): the same call gives the same card,
  and feedback names the card it answers.

CDS Hooks forbids null, empty strings, empty lists and empty objects, so a field is left out
rather than sent empty.
"""
from __future__ import annotations

import uuid
from typing import Any

import orjson

from service.fhir_io import store_ready
from service.fhir_io.outgoing import show_value
from service.triage.wording import Wording
from service.pipeline import Triaged
from service.triage.model import Disposition

CARD_NAMESPACE = uuid.UUID("0f3c8f8e-3f3b-5d8e-9a57-6c1d2b7e4a90")
SUMMARY_LIMIT = 139
INDICATOR = {Disposition.EMERGENCY: "critical", Disposition.URGENT: "warning",
             Disposition.ROUTINE: "info", Disposition.SELF_CARE: "info"}
WHAT_NOW = {
    Disposition.EMERGENCY: "red flags reported; send to emergency care now",
    Disposition.URGENT: "to be seen by a clinician within 24 hours",
    Disposition.ROUTINE: "book an appointment with a clinician",
    Disposition.SELF_CARE: "self-care advice, no visit needed",
}
RISK_WORDS = {"high": "high likelihood", "moderate": "moderate likelihood", "low": "low likelihood"}
OVERRIDE_REASONS_ID = "cds-override-reason"
NOT_A_DIAGNOSIS = ("_Decision support, not a diagnosis: the proposals are drafts for a clinician to "
                   "accept or reject; nothing has been ordered._")


def card_uuid(hook_instance: str, *parts: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, "|".join((hook_instance, *parts))))


class CardMaker:
    """Builds cards for one app: the catalog's terms, the override reasons, the public base URL."""

    def __init__(self, catalog, public_base_url: str) -> None:
        self.catalog = catalog
        self.base = public_base_url
        cs = catalog.codesystems[OVERRIDE_REASONS_ID]
        self.override_reasons = [{"code": c["code"], "system": cs["url"], "display": c["display"]}
                                 for c in cs["concept"]]

    def triage_card(self, result: Triaged, hook_instance: str, patient_id: str, qr_id: str | None,
                    smart_link: bool) -> dict:
        a, module = result.assessment, result.module
        disposition = a.disposition
        uid = card_uuid(hook_instance, module.version, disposition.code, result.bundle["id"])
        # The ServiceRequests as Ready to store makes them (service/fhir_io/store_ready.py), so a
        # create action carries the same triage-output identifier as a transaction would (the
        # references it rewrites, for_the_ehr replaces: the rest of the transaction is not needed)
        service_requests = [store_ready.stored(e["resource"]) for e in result.bundle["entry"]
                            if e["resource"]["resourceType"] == "ServiceRequest"]
        card: dict[str, Any] = {
            "uuid": uid,
            "summary": self.summary(result),
            "detail": self.detail(result),
            "indicator": INDICATOR[disposition],
            "source": {
                "label": f"legtriage rules {module.version}",
                "url": f"{self.base}/fhir/Library/{module.id}",
                "topic": {"system": self.catalog.disposition_system, "code": disposition.code,
                          "display": self.catalog.disposition_displays[disposition.code]},
            },
        }
        suggestions = []
        for proposal, sr in zip(a.proposals, service_requests):
            label = sr["code"].get("text") or sr["code"]["coding"][0]["display"]
            suggestion: dict[str, Any] = {
                "label": label[:80],
                "uuid": card_uuid(hook_instance, uid, proposal.key),
                "actions": [{
                    "type": "create",
                    "description": f"Create a draft ServiceRequest (proposal, priority {sr['priority']}): "
                                   f"{label}. A clinician turns it into an order or discards it.",
                    "resource": self.for_the_ehr(sr, patient_id, qr_id),
                }],
            }
            if proposal.main:
                suggestion["isRecommended"] = True
            suggestions.append(suggestion)
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "any"
        card["overrideReasons"] = self.override_reasons
        if smart_link:
            context = {"questionnaire": f"{self.catalog.questionnaire_url}|{self.catalog.questionnaire_version}"}
            if qr_id:
                context["questionnaireResponse"] = f"QuestionnaireResponse/{qr_id}"
            card["links"] = [self.smart_link("Open the triage in the leg numbness app", context)]
        return card

    def in_progress_card(self, hook_instance: str, qr_id: str | None) -> dict:
        """The questionnaire was started but not finished: an info card with the app to finish it."""
        context = {"questionnaire": f"{self.catalog.questionnaire_url}|{self.catalog.questionnaire_version}"}
        if qr_id:
            context["questionnaireResponse"] = f"QuestionnaireResponse/{qr_id}"
        return {
            "uuid": card_uuid(hook_instance, "in-progress", qr_id or ""),
            "summary": "Leg numbness questionnaire started but not finished: complete it to get a triage",
            "detail": ("The patient's leg numbness questionnaire is in progress. Open the app to finish "
                       "it with the patient; the triage appears when it is complete.\n\n" + NOT_A_DIAGNOSIS),
            "indicator": "info",
            "source": {"label": "legtriage", "url": f"{self.base}/fhir/Questionnaire/leg-numbness"},
            "links": [self.smart_link("Complete the leg numbness questionnaire", context)],
        }

    def wording(self) -> Wording:
        return self.catalog.wording

    def smart_link(self, label: str, app_context: dict) -> dict:
        return {"label": label, "url": f"{self.base}/app/launch", "type": "smart",
                "appContext": orjson.dumps(app_context).decode()}

    def summary(self, result: Triaged) -> str:
        d = result.assessment.disposition
        text = f"Leg numbness triage: {self.catalog.disposition_displays[d.code].upper()} — {WHAT_NOW[d]}"
        predictions = result.assessment.predictions
        if predictions and d > Disposition.SELF_CARE:
            cause = self.catalog.conditions[predictions[0].cause]["text"]
            longer = f"{text} (likely: {cause})"
            if len(longer) <= SUMMARY_LIMIT:
                text = longer
        return text[:SUMMARY_LIMIT]

    def detail(self, result: Triaged) -> str:
        a, module = result.assessment, result.module
        d = a.disposition
        definition = {c["code"]: c["definition"]
                      for c in self.catalog.codesystems["triage-disposition"]["concept"]}[d.code]
        lines = [f"**{self.catalog.disposition_displays[d.code]}**: {definition}", ""]
        if a.predictions:
            lines.append("**Likely causes**")
            for p in a.predictions:
                lines.append(f"- {self.catalog.conditions[p.cause]['text']} ({RISK_WORDS[p.risk.code]})")
            lines.append("")
        if a.findings and module.explanations == "clinical":
            lines.append("**Why**")
            wording = self.wording()
            for f in a.findings:
                lines.append(f"- {wording.reason(f, module)}")
            lines.append("")
        elif a.findings:
            lines.append("**Why**")
            link_ids = {fact: link for link, fact in self.catalog.fact_map.items()}
            for f in a.findings:
                evidence = ", ".join(f"{link_ids.get(n, n)} = {show_value(v)}" for n, v in f.evidence)
                cite = f.rule.cites[0]
                source = module.sources.get(cite.file, cite.file)
                line = f"- {f.rule.title}" + (f" ({evidence})" if evidence else "")
                line += f". Source: {source} ({cite.file}): \u201c{cite.quote}\u201d"
                if f.rule.common_sense:
                    line += f" Clinical common sense: {f.rule.common_sense}"
                lines.append(line)
            lines.append("")
        if a.proposals:
            lines.append("**Proposed** (draft ServiceRequests to accept or reject)")
            for p in a.proposals:
                lines.append(f"- {self.catalog.procedures[p.key]['text']}"
                             + (" (recommended)" if p.main else ""))
            lines.append("")
        if a.advice:
            lines.append("**Advice**")
            for adv in a.advice:
                lines.append(f"- {adv.text}")
            lines.append("")
        lines.append(f"{module.title} {module.version}." if module.explanations == "clinical"
                     else f"Rules: {module.title} {module.version} (legtriage).")
        lines.append("")
        lines.append(NOT_A_DIAGNOSIS)
        return "\n".join(lines)

    @staticmethod
    def for_the_ehr(sr: dict, patient_id: str, qr_id: str | None) -> dict:
        """A ServiceRequest of the transaction as a new resource for the EHR: its references rewritten
        to the EHR's own (no urn:uuid, no RiskAssessment), its identifier kept."""
        return store_ready.ehr_resource(sr, patient_id, qr_id)
