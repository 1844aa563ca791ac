"""The CDS services this service offers, as discovery lists them."""
from __future__ import annotations

from dataclasses import dataclass

from service.catalog import BASE

QUESTIONNAIRE = f"{BASE}/Questionnaire/leg-numbness"
QR_KEY = "legNumbnessQR"
IN_PROGRESS_KEY = "legNumbnessQRInProgress"  # only with LEGTRIAGE_CDS_PROMPT_IN_PROGRESS
_QR_SEARCH = ("QuestionnaireResponse?patient={{context.patientId}}"
              f"&questionnaire={QUESTIONNAIRE}&status=%s&_sort=-authored&_count=1")


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    context_fields: tuple[str, ...]  # the context fields the hook requires
    query_extra: str = ""  # appended to the QuestionnaireResponse search

    def prefetch(self, in_progress: bool = False) -> dict[str, str]:
        templates = {"patient": "Patient/{{context.patientId}}",
                     QR_KEY: (_QR_SEARCH % "completed") + self.query_extra}
        if in_progress:
            templates[IN_PROGRESS_KEY] = (_QR_SEARCH % "in-progress") + self.query_extra
        return templates

    def discovery(self, in_progress: bool = False) -> dict:
        return {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description,
                "prefetch": self.prefetch(in_progress),
                "usageRequirements": "Needs read access to the patient's QuestionnaireResponses, "
                                     f"through the prefetch or fhirAuthorization; the {QR_KEY} prefetch "
                                     "is the one the triage runs on."}


# Distinct ids: the CDS Hooks sandbox keys services by id and overwrites those that share one.
SERVICES = {s.id: s for s in (
    CdsService("leg-numbness-triage", "patient-view", "Leg numbness triage",
               "Triage of the latest completed leg-numbness questionnaire: urgency, likely causes, "
               "proposed referrals and tests.", ("userId", "patientId")),
    CdsService("leg-numbness-triage-encounter", "encounter-start", "Leg numbness triage at encounter start",
               "Triage of the leg-numbness questionnaire completed for this encounter (intake, "
               "check-in): urgency, likely causes, proposed referrals and tests.",
               ("userId", "patientId", "encounterId"), "&encounter={{context.encounterId}}"),
)}
