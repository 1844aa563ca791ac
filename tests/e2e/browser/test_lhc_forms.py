"""An SDC form filler (LHC-Forms, npm lforms) renders the service's Questionnaire and its
QuestionnaireResponse goes through $triage unchanged but for `subject`.

In headless Chromium the page fetches GET /fhir/Questionnaire/leg-numbness, renders it with
LForms.Util.addFormToPage, a "user" clicks and types answers into the rendered widgets,
LForms.Util.getFormFHIRData produces the QuestionnaireResponse, and the page POSTs it to $triage.
Only 127.0.0.1 is reachable from the browser.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.lhc import LhcQuestions
from tests.e2e.browser.site import LFORMS_DIST, LFORMS_FILES

pytestmark = pytest.mark.browser

PAGE = "/_browser-test/lhc_forms.html"
ANSWERS_SYSTEM = "http://legtriage.example.org/fhir/CodeSystem/leg-numbness-answers"
DISPOSITION_EXT = "http://legtriage.example.org/fhir/StructureDefinition/triage-disposition"
PATIENT = {"resourceType": "Patient", "id": "lhc-forms-1"}

# Answers as a user gives them in the form: codes for choice items, True/False for the Yes/No
# radios, ints for integer fields; lists for repeating items.
CASES = {
    # A stroke sign: difficulty speaking. Explicit "No" answers must travel as valueBoolean false.
    "emergency": {
        "numbness.side": "left", "numbness.onset": "sudden", "numbness.location": ["toes", "sole"],
        "red-flags.speech": True, "red-flags.confusion": False, "history.age": 67,
        "history.diabetes": "no",
    },
    # A leg that fell asleep in one position and recovered within minutes of moving.
    "self-care": {
        "numbness.side": "right", "numbness.onset": "sudden", "numbness.duration": "minutes",
        "numbness.pattern": "positional", "numbness.relieved-by-moving": True,
        "numbness.location": ["foot", "shin"], "numbness.sensations": ["tingling"],
        "red-flags.weakness": False, "history.age": 27,
    },
}


@pytest.fixture(scope="module")
def lforms_installed():
    missing = [f for f in LFORMS_FILES if not (LFORMS_DIST / f).is_file()]
    if missing:
        pytest.fail(f"LHC-Forms files missing under {LFORMS_DIST}: {', '.join(missing)}; run "
                    "scripts/lib/test-tools.sh", pytrace=False)


class Form(LhcQuestions):
    """The page with the Questionnaire rendered by LHC-Forms, and what went wrong on the way."""

    def __init__(self, page, base: str):
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(
            f"console error: {msg.text}"))
        page.goto(base + PAGE)
        self.questionnaire = page.evaluate("legtriage.render()")
        self.items = {item["linkId"]: {**item, "group": group["linkId"]}
                      for group in self.questionnaire["item"] for item in group["item"]}

    def questionnaire_response(self, patient: dict | None = None) -> dict:
        return self.page.evaluate("patient => legtriage.response(patient)", patient)

    def triage(self, qr: dict) -> dict:
        return self.page.evaluate("qr => legtriage.triage(qr)", qr)


@pytest.fixture()
def form(offline, live_server, lforms_installed):
    page = offline.context.new_page()
    yield Form(page, live_server)
    assert offline.escaped == [], f"requests left 127.0.0.1: {offline.escaped}"


def non_group_items(items: list[dict]) -> list[dict]:
    out = []
    for item in items:
        out += non_group_items(item.get("item", [])) if item["type"] == "group" else [item]
    return out


def answers_by_link_id(qr: dict) -> dict[str, list]:
    """linkId -> answer values, checking that each answered item sits inside its own group."""
    found = {}
    for group in qr.get("item", []):
        assert "answer" not in group, f"group {group['linkId']} carries answers: {group}"
        for item in group.get("item", []):
            assert item["linkId"].startswith(group["linkId"] + "."), (group["linkId"], item)
            found[item["linkId"]] = item["answer"]
    return found


def expected_answer(item_type: str, value: Any) -> list:
    values = value if isinstance(value, list) else [value]
    if item_type == "choice":
        return [{"system": ANSWERS_SYSTEM, "code": v} for v in values]
    return values


def test_every_question_of_the_questionnaire_renders(form):
    questions = non_group_items(form.questionnaire["item"])
    labels = form.page.locator("lhc-item.lhc-item-question .lhc-de-label .question")
    assert labels.all_inner_texts() == [q["text"] for q in questions]
    for question in questions:
        assert form.question(question["linkId"]).is_visible(), question["linkId"]
    groups = form.page.locator("lhc-item.lhc-item-group > lhc-item-group .lhc-item-group-title .question")
    assert groups.all_inner_texts() == [g["text"] for g in form.questionnaire["item"]]
    required = [q["linkId"] for q in questions if q.get("required")]
    assert required == ["numbness.side", "numbness.onset"]
    for link_id in required:
        assert form.question(link_id).locator(".lhc-required").is_visible(), link_id
    assert form.errors == []


@pytest.mark.parametrize("case", CASES)
def test_lhc_forms_response_is_triaged(form, case, screenshot):
    answers = CASES[case]
    for link_id, value in answers.items():
        form.answer(link_id, value)
    form.page.locator("body > h1").click()  # like clicking outside the form: closes an open list
    screenshot(form.page, f"lhc-forms-{case}")

    assert "subject" not in form.questionnaire_response()  # none unless the app gives a patient
    qr = form.questionnaire_response(PATIENT)
    assert qr["subject"] == {"reference": "Patient/lhc-forms-1"}
    assert qr["resourceType"] == "QuestionnaireResponse"
    assert qr["questionnaire"] == "http://legtriage.example.org/fhir/Questionnaire/leg-numbness|1.0.0"
    got = answers_by_link_id(qr)
    assert set(got) == set(answers)
    for link_id, value in answers.items():
        item_type = form.items[link_id]["type"]
        key = {"choice": "valueCoding", "boolean": "valueBoolean", "integer": "valueInteger"}[item_type]
        values = [a[key] for a in got[link_id]]
        if item_type == "choice":  # LHC-Forms also copies the display text: allowed in a Coding
            values = [{k: v for k, v in c.items() if k != "display"} for c in values]
        assert values == expected_answer(item_type, value), link_id

    result = form.triage(qr)  # exactly what LHC-Forms produced
    assert result["status"] == 200, result["body"]
    assert result["contentType"].startswith("application/fhir+json")
    bundle = result["body"]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    risk = resources[0]
    assert risk["resourceType"] == "RiskAssessment" and risk["subject"] == qr["subject"]
    disposition = next(e["valueCodeableConcept"]["coding"][0]["code"]
                       for e in risk["extension"] if e["url"] == DISPOSITION_EXT)
    assert disposition == case
    # Nothing LHC-Forms sent was ignored: no warnings about unknown linkIds or nested items.
    assert [r for r in resources if r["resourceType"] == "OperationOutcome"] == []
    assert form.errors == []


def test_a_forgotten_required_answer_gets_a_422_naming_it(form):
    form.answer("numbness.side", "both")
    form.answer("red-flags.weakness", True)
    qr = form.questionnaire_response(PATIENT)  # LHC-Forms exports it anyway; the service refuses
    result = form.triage(qr)
    assert result["status"] == 422
    outcome = result["body"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["diagnostics"] for i in outcome["issue"] if "numbness.onset" in i["diagnostics"]]
    assert not [i for i in outcome["issue"] if "numbness.side" in i.get("diagnostics", "")]
    # Chromium logs every non-2xx fetch as a console error: that one is expected here.
    assert [e for e in form.errors if "status of 422" not in e] == []
