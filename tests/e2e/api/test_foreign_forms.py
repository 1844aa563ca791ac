"""Other hospitals' forms through $triage: the neuro-intake example answers like our form (DESIGN.md)."""
from __future__ import annotations

import json

import pytest
import yaml

from service.forms import NOT_REPORTED, load_form
from service.triage.engine import Registry
from service.clinical import load_vignettes
from service.triage.review import applies
from tests.support import ROOT, TRIAGE, post_triage, questionnaire_response, resources, risk_assessment

NEURO = load_form(ROOT / "mappings" / "forms" / "neuro-intake-2.3.yaml")
FACT_MAP = yaml.safe_load((ROOT / "mappings" / "facts.yaml").read_text())["facts"]  # our linkId -> fact
BY_FACT = {item.fact: item for item in NEURO.items.values()}
VERSIONS = Registry().versions
VIGNETTES = load_vignettes()
LOINC = "http://loinc.org"
UNKNOWN = {"valueCoding": {"system": LOINC, "code": "LA4489-6", "display": "Unknown"}}


def neuro_answer(item, value) -> dict:
    """The form's answer that means `value` for the item's fact (its first coding that does)."""
    if item.type == "integer":
        return {"valueInteger": value}
    for (system, code), meant in item.answers.items():
        if meant is not NOT_REPORTED and meant == value:
            return {"valueCoding": {"system": system, "code": code}}
    raise AssertionError(f"{item.link_id} has no coding for {value!r}")


def translate(answers: dict) -> tuple[dict, dict]:
    """Compact answers of our form -> (the part neuro-intake can carry, its neuro-intake items)."""
    kept, items = {}, {}
    for link_id, value in answers.items():
        item = BY_FACT.get(FACT_MAP[link_id])
        if item is None:
            continue  # the form does not ask it: both forms leave it unanswered
        kept[link_id] = value
        items[item.link_id] = neuro_answer(item, value)
    return kept, items


def neuro_response(items: dict, subject: str = "Patient/vignette", **extra) -> dict:
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": NEURO.canonical,
          "status": "completed", "subject": {"reference": subject},
          "item": [{"linkId": link, "answer": [answer]} for link, answer in items.items()]}
    qr.update(extra)
    return qr


def seen(bundle: dict) -> dict:
    """What a clinician acts on: disposition, causes with risk in order, proposals with priority."""
    ra = risk_assessment(bundle)
    return {
        "disposition": ra["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "causes": [(json.dumps(p["outcome"], sort_keys=True), p["qualitativeRisk"]["coding"][0]["code"])
                   for p in ra.get("prediction", [])],
        "proposals": [(json.dumps(sr["code"], sort_keys=True), sr["priority"])
                      for sr in resources(bundle, "ServiceRequest")],
    }


def triaged(client, body: dict, version: str) -> dict:
    response = post_triage(client, body, f"?rules-version={version}")
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    return response.get_json()


RUNS = [(v, c) for v in VERSIONS for c in VIGNETTES if applies(c, v)]


@pytest.mark.parametrize("version, case", RUNS, ids=[f"{v}-{c['id']}" for v, c in RUNS])
def test_every_vignette_gives_the_same_result_on_both_forms(client, version, case):
    kept, items = translate(case["answers"])
    ours = triaged(client, questionnaire_response(kept, subject="Patient/vignette"), version)
    theirs = triaged(client, neuro_response(items), version)
    assert seen(theirs) == seen(ours), case["id"]


def test_the_agreement_figures(client, capsys):
    """Prints how many vignettes the form carries whole, and checks every one agrees."""
    whole = sum(1 for _, c in RUNS if translate(c["answers"])[0] == c["answers"])
    agree = 0
    for version, case in RUNS:
        kept, items = translate(case["answers"])
        ours = triaged(client, questionnaire_response(kept, subject="Patient/vignette"), version)
        agree += seen(triaged(client, neuro_response(items), version)) == seen(ours)
    with capsys.disabled():
        print(f"\nneuro-intake differential: {agree}/{len(RUNS)} vignette runs agree "
              f"({whole} carried whole by the form, {len(RUNS) - whole} with answers it cannot ask "
              f"left unanswered on both forms), versions {', '.join(VERSIONS)}")
    assert agree == len(RUNS)


@pytest.mark.parametrize("case", [c for c in VIGNETTES if applies(c, VERSIONS[-1])][::7],
                         ids=lambda c: c["id"])
def test_unknown_is_the_same_as_unanswered(client, case):
    _, items = translate(case["answers"])
    plain = triaged(client, neuro_response(items), VERSIONS[-1])
    padded = dict(items)
    for link_id, item in NEURO.items.items():
        if link_id not in padded and item.answers.get((LOINC, "LA4489-6")) is NOT_REPORTED \
                and not item.required:
            padded[link_id] = UNKNOWN
    assert len(padded) > len(items)
    assert seen(triaged(client, neuro_response(padded), VERSIONS[-1])) == seen(plain)


def test_unknown_diabetes_is_our_answer_unknown(client):
    base = {"side": neuro_answer(BY_FACT["side"], "both"),
            "onset-sudden": neuro_answer(BY_FACT["onset"], "gradual")}
    theirs = triaged(client, neuro_response({**base, "diabetes": UNKNOWN}), VERSIONS[-1])
    ours = triaged(client, questionnaire_response({"numbness.side": "both", "numbness.onset": "gradual",
                                                   "history.diabetes": "unknown"}), VERSIONS[-1])
    assert seen(theirs) == seen(ours)


def test_the_result_names_the_warning_signs_the_form_did_not_ask(client):
    items = {"side": neuro_answer(BY_FACT["side"], "left"),
             "onset-sudden": neuro_answer(BY_FACT["onset"], "gradual"),
             "duration": neuro_answer(BY_FACT["duration"], "weeks")}
    ra = risk_assessment(triaged(client, neuro_response(items), VERSIONS[-1]))
    for words in ("Dizziness or loss of coordination", "Sudden, severe headache"):
        assert words in ra["mitigation"] and any(words in n["text"] for n in ra["note"])
    assert "unknown, not absent" in ra["mitigation"]
    # what the form asks is not listed as not asked
    assert "Numbness or weakness in the face or an arm" not in ra["mitigation"]
    # our own form asks everything: no such line
    ours = risk_assessment(triaged(client, questionnaire_response(
        {"numbness.side": "left", "numbness.onset": "gradual", "numbness.duration": "weeks"}), VERSIONS[-1]))
    assert "unknown, not absent" not in ours["mitigation"]


def _errors(response) -> list[dict]:
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


BASE = {"side": {"valueCoding": {"system": "http://snomed.info/sct", "code": "24028007"}},
        "onset-sudden": {"valueCoding": {"system": LOINC, "code": "LA32-8"}}}


@pytest.mark.parametrize("edit, status, expression, says", [
    (lambda items: items.update({"weakness": {"valueCoding": {"system": LOINC, "code": "LA99-9"}}}),
     422, "QuestionnaireResponse.item[2].answer[0].valueCoding", "'weakness'"),
    (lambda items: items.update({"side": {"valueCoding": {"system": "http://snomed.info/sct",
                                                          "code": "7771000X"}}}),
     422, "QuestionnaireResponse.item[0].answer[0].valueCoding", "'side'"),
    (lambda items: items.update({"onset-sudden": UNKNOWN}), 422, "QuestionnaireResponse.item",
     "Required question 'onset-sudden' is not answered"),
    (lambda items: items.pop("onset-sudden"), 422, "QuestionnaireResponse.item",
     "Required question 'onset-sudden' is not answered"),
    (lambda items: items.update({"weakness": {"valueBoolean": True}}), 422,
     "QuestionnaireResponse.item[2].answer[0]", "'weakness' is a choice question"),
    (lambda items: items.update({"age": {"valueInteger": 200}}), 422, None, "age"),
])
def test_bad_answers_to_the_foreign_form_name_its_linkid(client, edit, status, expression, says):
    items = dict(BASE)
    edit(items)
    response = post_triage(client, neuro_response(items))
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    issues = _errors(response)
    assert any(says in i["diagnostics"] for i in issues), issues
    if expression:
        assert any(expression in i.get("expression", []) for i in issues), issues


def test_unmapped_and_unknown_linkids_are_warnings(client):
    body = neuro_response(BASE)
    body["item"].append({"linkId": "no-such-item", "answer": [{"valueBoolean": True}]})
    bundle = triaged(client, body, VERSIONS[-1])
    warnings = resources(bundle, "OperationOutcome")[0]["issue"]
    assert [w["severity"] for w in warnings] == ["warning"]
    assert "no-such-item" in warnings[0]["diagnostics"]


def test_a_version_the_service_does_not_map_is_refused(client):
    body = neuro_response(BASE, questionnaire="http://clinic.example.org/fhir/Questionnaire/neuro-intake|2.2")
    response = post_triage(client, body)
    assert response.status_code == 422
    assert any("QuestionnaireResponse.questionnaire" in i.get("expression", []) for i in _errors(response))


def test_the_foreign_form_and_its_concept_map_are_served(client):
    read = client.get("/fhir/Questionnaire/neuro-intake").get_json()
    assert read.pop("text")["status"] == "generated"  # the narrative every served resource has
    assert read == NEURO.questionnaire
    search = client.get(f"/fhir/Questionnaire?url={NEURO.url}").get_json()
    assert [e["resource"]["id"] for e in search["entry"]] == ["neuro-intake"]
    assert client.get(f"/fhir/Questionnaire?url={NEURO.canonical}").get_json()["total"] == 1
    assert client.get(f"/fhir/Questionnaire?url={NEURO.url}&version=9").get_json()["total"] == 0
    cm = client.get("/fhir/ConceptMap/neuro-intake-2-3").get_json()
    assert cm["sourceCanonical"] == NEURO.canonical
    codes = {(g["source"], e["code"]) for g in cm["group"] for e in g["element"]}
    assert ("http://snomed.info/sct", "51440002") in codes and (LOINC, "LA4489-6") in codes
    unknown = [t for g in cm["group"] for e in g["element"] if e["code"] == "LA4489-6"
               for t in e["target"]]
    assert {t["equivalence"] for t in unknown} == {"unmatched", "equivalent"}  # diabetes: ours 'unknown'
    assert client.get("/fhir/ConceptMap").get_json()["total"] == 1
    listed = client.get("/fhir/metadata").get_json()["rest"][0]["resource"]
    assert "ConceptMap" in {r["type"] for r in listed}
    assert NEURO.canonical in next(r for r in listed if r["type"] == "Questionnaire")["documentation"]


def test_served_foreign_resources_are_valid_r4(client):
    from fhir.resources.R4B.conceptmap import ConceptMap
    from fhir.resources.R4B.questionnaire import Questionnaire

    Questionnaire.model_validate(client.get("/fhir/Questionnaire/neuro-intake").get_json())
    ConceptMap.model_validate(client.get("/fhir/ConceptMap/neuro-intake-2-3").get_json())
    bundle = triaged(client, neuro_response(BASE), VERSIONS[-1])
    from fhir.resources.R4B.bundle import Bundle
    Bundle.model_validate(bundle)


def test_the_foreign_form_contract_table_matches_design(client):
    """Every row of DESIGN.md's neuro-intake table is an item of the shipped form and its mapping."""
    design = (ROOT.parent / "shared" / "DESIGN.md").read_text()
    section = design.split("## Other hospitals' forms (contract)", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines()
            if line.startswith("| `") and line.count("|") == 5]
    assert len(rows) == 16
    for link, kind, answers, meaning in rows:
        link = link.strip().strip("`")
        item = next(i for i in NEURO.questionnaire["item"] if i["linkId"] == link)
        assert item["type"] == kind.split(",")[0].strip()
        assert item.get("required", False) == ("required" in kind)
        our = meaning.strip().split(" ")[0]
        if our in FACT_MAP:
            assert FACT_MAP[our] == NEURO.items[link].fact, link
        else:  # the duration row lists our codes for the form's codes, in order
            theirs = [c.strip("`") for c in answers.split("(")[0].replace(",", " ").split()]
            ours = [c.strip(",") for c in meaning.split()]
            mapped = {code: value for (_, code), value in NEURO.items[link].answers.items()}
            assert [mapped[c] for c in theirs] == ours, link
