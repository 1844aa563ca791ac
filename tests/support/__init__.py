"""Test helpers: build QuestionnaireResponses from compact answers, post them, read Bundles."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# the console script (pyproject.toml [project.scripts]) beside the Python that runs the suite
LEGTRIAGE = str(Path(sys.executable).with_name("legtriage"))
EXAMPLES = ROOT / "examples"
QUESTIONNAIRE = json.loads((ROOT / "mappings" / "questionnaire.json").read_text())
ANSWERS_SYSTEM = "http://legtriage.example.org/fhir/CodeSystem/leg-numbness-answers"
CANONICAL = "http://legtriage.example.org/fhir/Questionnaire/leg-numbness|1.0.0"
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
FHIR_JSON = "application/fhir+json"


def _item_specs() -> dict[str, dict]:
    specs = {}
    for group in QUESTIONNAIRE["item"]:
        for item in group["item"]:
            specs[item["linkId"]] = {**item, "group": group["linkId"]}
    return specs


ITEMS = _item_specs()


def questionnaire_response(answers: dict[str, Any], subject: str = "Patient/test-1",
                           **extra: Any) -> dict:
    """A QuestionnaireResponse answering the linkIds given (codes, bools, ints, lists of codes)."""
    groups: dict[str, list] = {}
    for link_id, value in answers.items():
        spec = ITEMS[link_id]
        values = value if isinstance(value, list) else [value]
        out = []
        for v in values:
            if spec["type"] == "choice":
                out.append({"valueCoding": {"system": ANSWERS_SYSTEM, "code": v}})
            elif spec["type"] == "boolean":
                out.append({"valueBoolean": v})
            else:
                out.append({"valueInteger": v})
        groups.setdefault(spec["group"], []).append({"linkId": link_id, "answer": out})
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": CANONICAL, "status": "completed",
          "subject": {"reference": subject},
          "item": [{"linkId": g, "item": items} for g, items in groups.items()]}
    qr.update(extra)
    return qr


def parameters(qr: dict, rules_version: str | None = None) -> dict:
    """A $triage Parameters body: the QuestionnaireResponse and, if given, the rulesVersion part."""
    parts = [{"name": "questionnaireResponse", "resource": qr}]
    if rules_version is not None:
        parts.append({"name": "rulesVersion", "valueString": rules_version})
    return {"resourceType": "Parameters", "parameter": parts}


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def post_triage(client, body: Any, query: str = "", **headers: str):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers.setdefault("Content-Type", FHIR_JSON)
    return client.post(TRIAGE + query, data=data, headers=headers)


def resources(bundle: dict, rtype: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def risk_assessment(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


def disposition(bundle: dict) -> str:
    return risk_assessment(bundle)["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]


def outcome_keys(bundle: dict, terms: dict) -> set[str]:
    """The terminology keys of the predicted causes (by code, or by text for text-only concepts)."""
    return {concept_key(p["outcome"], terms) for p in risk_assessment(bundle).get("prediction", [])}


def proposal_keys(bundle: dict, terms: dict) -> set[str]:
    return {concept_key(sr["code"], terms) for sr in resources(bundle, "ServiceRequest")}


def concept_key(concept: dict, terms: dict) -> str:
    """The terminology.yaml key of a CodeableConcept: by its code, or by its text where the term has none."""
    for key, term in terms.items():
        if "code" in term and concept.get("coding", [{}])[0].get("code") == term["code"]:
            return key
        if "code" not in term and "coding" not in concept and concept.get("text") == term["text"]:
            return key
    raise AssertionError(f"concept not in terminology.yaml: {concept}")


def legtriage(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the console script on `database_url` with no other LEGTRIAGE_* setting of this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")}
    env["LEGTRIAGE_DATABASE_URL"] = database_url
    return subprocess.run([LEGTRIAGE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
