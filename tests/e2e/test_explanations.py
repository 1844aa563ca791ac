"""What a person reads, and the evidence as data (DESIGN.md "Explanations").

A rule module whose EXPLANATIONS is "clinical" writes every text a person reads in clinical words;
1.0.0 and 1.1.0 ("legacy") keep their published texts (tests/e2e/test_golden.py holds them). These tests
do not need a clinical version to exist: a test-only module is 1.1.0's rules with
`explanations="clinical"` and its sources titled by the first line of each article. One test scans
the default version too, as soon as the default is written in clinical words.

The triage-evidence extension is on every prediction of every version: the rule, the answered
linkIds the rule read for this case and none other, the source file and the passage verbatim.
"""
from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache

import pytest
import yaml

from service.cds.cards import CardMaker
from service.fhir_io.outgoing import EVIDENCE_EXTENSION
from service.pipeline import triage
from service.triage.reads import facts_read, random_facts
from service.triage.rules import discover
from tests.support.fhir import assert_valid_fhir
from tests.golden import freeze
from tests.support import ROOT, example, post_triage, questionnaire_response

SOURCES = ROOT.parent / "shared" / "sources"
FACT_SETS = list(random_facts(3000))
CLINICAL_VERSION = "1.1.0"  # the test-only module replaces this version in its own app


def first_lines() -> dict[str, str]:
    if not SOURCES.is_dir():
        pytest.skip("shared/sources is not beside this checkout (CI and the dev machines have it)")
    return {p.name: p.read_text(encoding="utf-8").splitlines()[0].strip()
            for p in sorted(SOURCES.glob("*.txt"))}


def clinical_module():
    """1.1.0's rules, written for a clinician: the test-only stand-in of a clinical version."""
    return dataclasses.replace(discover()[CLINICAL_VERSION], explanations="clinical",
                               sources=first_lines())


@pytest.fixture(scope="module")
def clinical_app(make_app):
    app = make_app()
    registry = app.extensions["legtriage"].registry
    registry.modules[CLINICAL_VERSION] = clinical_module()
    registry.default_version = CLINICAL_VERSION  # the unpinned requests here are meant for it
    return app


@pytest.fixture(scope="module")
def clinical_client(clinical_app):
    return clinical_app.test_client()


def _ra(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


def _stroke_answers(**more) -> dict:
    return {"numbness.side": "left", "numbness.onset": "sudden", "numbness.duration": "hours",
            "red-flags.speech": True, "red-flags.confusion": False, **more}


# ---- the clinical texts --------------------------------------------------------------------------

def test_the_rationale_says_the_reason_the_answers_and_the_source_by_its_title(clinical_client):
    bundle = post_triage(clinical_client, questionnaire_response(_stroke_answers())).get_json()
    rationale = _ra(bundle)["prediction"][0]["rationale"]
    stroke = rationale.split("\n")[0]
    assert stroke.startswith("Stroke warning signs. ")
    assert "Reported: difficulty speaking or understanding speech." in stroke
    assert "Not present: confusion." in stroke
    assert ("From \u201cWhat Causes Numbness in the Legs?\u201d: \u201cNumbness in your face, or "
            "involving an entire arm or leg\u201d") in stroke
    for word in ("stroke-signs", "red-flags.speech", " = ", ".txt", "[", "common sense"):
        assert word not in rationale


def test_a_choice_and_a_number_are_said_with_the_questionnaires_words(clinical_app):
    wording = clinical_app.extensions["legtriage"].builder.wording
    said = wording.answers((("onset", "sudden"), ("age", 71), ("locations", frozenset({"calf", "toes"})),
                            ("weakness", True), ("heavy_alcohol_use", False)))
    assert said == ("Reported: weakness or trouble moving the leg(s). Not present: drinks alcohol "
                    "heavily or daily. How did the numbness start? Sudden (within minutes or hours). "
                    "Age in years: 71. Where in the leg is the numbness? Calf, Toes.")


def test_the_words_of_answers_made_once_are_those_of_each_answer_set(clinical_app):
    """Wording.answers keeps what it said per answer set (issue 21): the same set again reads the
    same, a set that differs in any value reads differently, and a set it cannot keep (a list) is
    said all the same."""
    wording = clinical_app.extensions["legtriage"].builder.wording
    yes = wording.answers((("weakness", True),))
    assert wording.answers((("weakness", True),)) == yes == "Reported: weakness or trouble moving the leg(s)."
    assert wording.answers((("weakness", False),)) == "Not present: weakness or trouble moving the leg(s)."
    assert wording.answers([("age", 71)]) == "Age in years: 71."
    assert wording.answers((("age", 72),)) == "Age in years: 72."
    assert wording.answers((("locations", ["toes", "calf"]),)) == \
        wording.answers((("locations", frozenset({"calf", "toes"})),)) == \
        "Where in the leg is the numbness? Calf, Toes."


def test_advice_notes_and_proposals_carry_no_file_names_or_rule_ids(clinical_client):
    bundle = post_triage(clinical_client, questionnaire_response(_stroke_answers())).get_json()
    ra = _ra(bundle)
    assert "(source:" not in ra["mitigation"]
    assert ra["note"][0]["text"].startswith("Triage: Emergency, because of: Stroke warning signs")
    assert "fired" not in ra["note"][0]["text"]
    notes = [e["resource"]["note"][0]["text"] for e in bundle["entry"][1:]
             if e["resource"]["resourceType"] == "ServiceRequest"]
    assert notes and all("because of: Stroke warning signs" in n for n in notes)


def test_legacy_versions_keep_their_published_texts(client):
    bundle = post_triage(client, questionnaire_response(_stroke_answers()),
                         "?rules-version=1.1.0").get_json()
    rationale = _ra(bundle)["prediction"][0]["rationale"]
    assert rationale.startswith("Stroke warning signs [stroke-signs] (")
    assert "Source 003_49373439d83d5e71.txt:" in rationale
    assert "rules that fired" in _ra(bundle)["note"][0]["text"]


def test_the_cds_card_says_the_same_in_clinical_words(clinical_app):
    with clinical_app.test_request_context():
        result = triage(questionnaire_response(_stroke_answers()), "QuestionnaireResponse")
        card = CardMaker(clinical_app.extensions["legtriage"].catalog, "http://localhost") \
            .triage_card(result, "hook-1", "pat-1", None, False)
    assert "- Stroke warning signs. Reported: difficulty speaking" in card["detail"]
    assert "\u201cWhat Causes Numbness in the Legs?\u201d" in card["detail"]
    assert _person_text_problems(card["summary"] + "\n" + card["detail"], clinical_module()) == []


def test_the_foreign_form_note_names_no_canonical_in_clinical_words(clinical_client):
    bundle = post_triage(clinical_client, example("neuro-intake-emergency")).get_json()
    ra = _ra(bundle)
    assert "did not ask about these warning signs" in ra["mitigation"]
    assert "neuro-intake" not in ra["mitigation"] + json.dumps(ra["note"])


# ---- the scan of everything a person reads ----------------------------------------------------------

PROCESS_WORDS = re.compile(r"\b(fired|findings?|reviewed|clinical review|common sense|open point|"
                           r"rule id|rules? that|linkId)\b|\[|\]|\(source:", re.IGNORECASE)
FILE_NAME = re.compile(r"\b\d{3}_[0-9a-f]{16}\b|\.txt\b|\.py\b|\.ya?ml\b")
PAIR = re.compile(r"[\w.-]\s*=\s*[\w.-]")


@lru_cache(maxsize=1)
def _link_ids() -> tuple[str, ...]:
    questionnaire = json.loads((ROOT / "mappings" / "questionnaire.json").read_text())

    def walk(items):
        for item in items:
            yield item["linkId"]  # groups ("numbness") are plain words: items have a dot
            yield from walk(item.get("item", []))
    return tuple(walk(questionnaire["item"]))


def _person_text_problems(text: str, module) -> list[str]:
    out = []
    for rule in module.rules:
        if re.search(rf"(?<![\w-]){re.escape(rule.id)}(?![\w-])", text) and ("-" in rule.id or rule.id == "b12"):
            out.append(f"rule id {rule.id}")
    out += [f"linkId {link}" for link in _link_ids() if "." in link and link in text]
    out += [f"process word {m.group(0)!r}" for m in PROCESS_WORDS.finditer(text)]
    out += [f"file name {m.group(0)!r}" for m in FILE_NAME.finditer(text)]
    out += [f"pair {m.group(0)!r}" for m in PAIR.finditer(text)]
    return out


def _person_texts(bundle: dict) -> list[str]:
    texts = []
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] not in ("RiskAssessment", "ServiceRequest"):
            continue  # an OperationOutcome names the input's own linkIds, on purpose
        texts.append(re.sub(r"<[^>]+>", " ", r["text"]["div"]))
        texts += [p["rationale"] for p in r.get("prediction", [])]
        texts += [r.get("mitigation", "")] + [n["text"] for n in r.get("note", [])]
    return texts


def _scanned_modules():
    default = discover()
    newest_active = [m for m in default.values() if m.status == "active"][-1]
    yield pytest.param("test-only", id="test-only-clinical-module")
    yield pytest.param("default", id=f"default-{newest_active.version}",
                       marks=[] if newest_active.explanations == "clinical" else pytest.mark.skip(
                           reason=f"the default {newest_active.version} keeps its published legacy texts; "
                                  "this runs when the default is written in clinical words"))


@pytest.mark.parametrize("which", list(_scanned_modules()))
def test_no_person_readable_text_names_rules_answers_files_or_process(which, make_app):
    app = make_app()
    registry = app.extensions["legtriage"].registry
    if which == "test-only":
        registry.modules[CLINICAL_VERSION] = clinical_module()
        registry.default_version = CLINICAL_VERSION
    module = registry.get()
    assert module.explanations == "clinical"
    cards = CardMaker(app.extensions["legtriage"].catalog, "http://localhost")
    checked, problems = 0, {}
    with app.test_request_context():
        for case in freeze.answer_sets():
            result = triage(freeze.request_body(case), "QuestionnaireResponse")
            card = cards.triage_card(result, "hook", "pat-1", None, False)
            for text in _person_texts(result.bundle) + [card["summary"], card["detail"]]:
                found = _person_text_problems(text, module)
                if found:
                    problems.setdefault(case["id"], (found, text))
            checked += 1
    assert checked >= 400
    assert not problems, f"{len(problems)} answer sets, e.g. {next(iter(problems.items()))}"


# ---- the evidence as data ---------------------------------------------------------------------------

def _evidence(prediction: dict) -> list[dict]:
    out = []
    for ext in prediction.get("extension", []):
        if ext["url"] == EVIDENCE_EXTENSION:
            parts = ext["extension"]
            out.append({"rule": [p["valueId"] for p in parts if p["url"] == "rule"][0],
                        "answers": [p["valueString"] for p in parts if p["url"] == "answer"],
                        "source": [p["valueString"] for p in parts if p["url"] == "source"][0],
                        "passage": [p["valueString"] for p in parts if p["url"] == "passage"][0]})
    return out


@pytest.mark.parametrize("version", list(discover()))
def test_every_prediction_of_every_version_carries_its_evidence(client, version):
    module = discover()[version]
    rules = {r.id: r for r in module.rules}
    fact_of = yaml.safe_load((ROOT / "mappings" / "facts.yaml").read_text())["facts"]
    bundle = post_triage(client, questionnaire_response(_stroke_answers(**{
        "numbness.location": ["whole-leg"], "history.age": 70, "history.diabetes": "no"})),
        f"?rules-version={version}").get_json()
    assert_valid_fhir(bundle)
    predictions = _ra(bundle)["prediction"]
    for prediction in predictions:
        evidence = _evidence(prediction)
        assert evidence, prediction["outcome"]
        for e in evidence:
            rule = rules[e["rule"]]
            assert (e["source"], e["passage"]) == (rule.cites[0].file, rule.cites[0].quote)
            # only facts the predicate can read at all (recorded over many fact sets)
            assert {fact_of[a] for a in e["answers"]} <= facts_read(rule.when, FACT_SETS)
    stroke = next(e for p in predictions for e in _evidence(p) if e["rule"] == "stroke-signs")
    # stroke-signs reads the six stroke signs: the two answered are listed, in the order read
    assert stroke["answers"] == ["red-flags.speech", "red-flags.confusion"]


def test_the_passages_are_verbatim_from_their_sources():
    first_lines()  # skips without shared/sources
    for module in discover().values():
        for rule in module.rules:
            cite = rule.cites[0]
            text = " ".join((SOURCES / cite.file).read_text(encoding="utf-8").split())
            assert " ".join(cite.quote.split()) in text, (module.version, rule.id)


def test_an_answer_the_rule_did_not_read_is_not_listed_and_could_not_change_it(client):
    """Over the stored answer sets: each listed answer was answered; removing any answered item the
    evidence does not list for a rule leaves that rule supporting the same cause."""
    from service.triage.engine import evaluate
    from service.clinical import facts_of
    module = discover()["1.1.0"]
    checked = 0
    for case in [c for c in freeze.answer_sets() if "answers" in c][::9]:
        body = questionnaire_response(case["answers"])
        bundle = post_triage(client, body, "?rules-version=1.1.0").get_json()
        for prediction in _ra(bundle).get("prediction", []):
            for e in _evidence(prediction):
                assert set(e["answers"]) <= set(case["answers"]), (case["id"], e)
                for link in set(case["answers"]) - set(e["answers"]):
                    fewer = {k: v for k, v in case["answers"].items() if k != link}
                    fired = {f.rule.id for f in evaluate(module, facts_of(fewer)).findings}
                    assert e["rule"] in fired, (case["id"], e["rule"], link)
                    checked += 1
    assert checked > 500


def test_a_foreign_forms_evidence_names_that_forms_link_ids(client):
    bundle = post_triage(client, example("neuro-intake-emergency")).get_json()
    assert_valid_fhir(bundle)
    form = json.loads((ROOT / "mappings" / "forms" / "questionnaire-neuro-intake-2.3.json").read_text())
    theirs = {i["linkId"] for i in form["item"]}
    answers = [a for p in _ra(bundle)["prediction"] for e in _evidence(p) for a in e["answers"]]
    assert answers and set(answers) <= theirs
    assert "face-arm" in answers


def test_the_evidence_definition_is_served_searchable_and_listed(client):
    url = EVIDENCE_EXTENSION
    sd = client.get("/fhir/StructureDefinition/triage-evidence").get_json()
    assert sd["url"] == url
    assert_valid_fhir(sd)
    assert client.get(f"/fhir/StructureDefinition?url={url}").get_json()["total"] == 1
    metadata = client.get("/fhir/metadata").get_json()
    assert url in json.dumps(metadata)
    assert url in (ROOT / "openapi.yaml").read_text()


# ---- the sources' titles ------------------------------------------------------------------------------

def test_clinical_modules_cite_each_source_by_the_first_line_of_the_article():
    titles = first_lines()
    for module in list(discover().values()) + [clinical_module()]:
        wrong = {f: t for f, t in module.sources.items() if titles.get(f) != t}
        if module.explanations == "clinical":
            assert not wrong, f"{module.version}: SOURCES titles differ from the articles' first lines: {wrong}"
        else:
            # published with shortened titles for two articles; their texts name files, not titles
            assert set(wrong) <= {"000_cb32e696d2feae6f.txt", "004_ee8a66ff89f18e0d.txt"}
