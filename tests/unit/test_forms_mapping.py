"""Mapping files of other hospitals' forms (mappings/forms/): loading, checks, coverage."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.forms import NOT_REPORTED, FormError, coverage, load_form, load_forms, required_link_ids
from service.triage.rules import discover
from service.triage.signs import warning_sign_facts
from tests.support import ROOT

FORMS = ROOT / "mappings" / "forms"
NEURO = FORMS / "neuro-intake-2.3.yaml"
LOINC, SCT = "http://loinc.org", "http://snomed.info/sct"


def test_the_shipped_example_maps_every_item_of_the_contract():
    form = load_form(NEURO)
    assert form.canonical == "http://clinic.example.org/fhir/Questionnaire/neuro-intake|2.3"
    assert required_link_ids(form.items) == ["side", "onset-sudden"]
    assert form.items["side"].answers == {(SCT, "7771000"): "left", (SCT, "24028007"): "right",
                                          (SCT, "51440002"): "both"}
    assert form.items["onset-sudden"].answers[(LOINC, "LA33-6")] == "sudden"
    assert form.items["onset-sudden"].answers[(LOINC, "LA4489-6")] is NOT_REPORTED
    assert form.items["weakness"].answers == {(LOINC, "LA33-6"): True, (LOINC, "LA32-8"): False,
                                              (LOINC, "LA4489-6"): NOT_REPORTED}
    # on diabetes, "Unknown" is an answer of its own; elsewhere it says nothing
    assert form.items["diabetes"].answers[(LOINC, "LA4489-6")] == "unknown"
    assert form.items["age"].fact == "age" and not form.items["age"].answers
    assert form.unmapped == ()
    assert set(load_forms(FORMS)) == {form.url}


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copy(FORMS / "questionnaire-neuro-intake-2.3.json", tmp_path)
    text = NEURO.read_text()
    assert old in text
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, needle, says", [
    ("fact: weakness,", "fact: weaknes,", "fact: weaknes,", "items.weakness.fact: Must be one of"),
    ("value: minutes}", "value: minute}", "value: minute}", "'minute' is not a value of the fact 'duration'"),
    ("value: right}", "value: sideways}", "value: sideways}", "'sideways' is not a value of the fact 'side'"),
    ("{fact: face_or_arm_involved, answers: yes-no-unknown}",
     "{fact: face_or_arm_involved, answers: yes-no-maybe}", "yes-no-maybe", "no answer list 'yes-no-maybe'"),
    ("  speech: {fact", "  talking: {fact", "talking:", "the form has no item 'talking'"),
    ("{fact: vision_change,", "{fact: confusion,", "  confusion: {fact: confusion", "'confusion' is answered by"),
    ("code: LA33-6, value: true}", "code: LA33-6, value: 1}", "value: 1}", "is not a value of the fact"),
    ("  age: {fact: age}", "  age: {fact: side}", "age: {fact: side}", "cannot be the fact 'side'"),
    ("code: lt1h,", "code: lt2h,", "code: lt2h", "codings the form does not offer"),
])
def test_a_bad_mapping_names_the_file_and_the_line(tmp_path, old, new, needle, says):
    path = _broken(tmp_path, old, new)
    with pytest.raises(FormError) as err:
        load_form(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line ")
    assert says in message
    line = int(message.split(", line ")[1].split(":")[0])
    # the line of the entry at fault, or the line of the entry that holds it
    assert line <= _line_of(path, needle) and line >= _line_of(path, needle) - 3, message


def test_a_form_that_cannot_reach_side_and_onset_is_refused(tmp_path):
    text = NEURO.read_text()
    start, end = text.index("  onset-sudden:"), text.index("  duration:")
    shutil.copy(FORMS / "questionnaire-neuro-intake-2.3.json", tmp_path)
    path = tmp_path / "no-onset.yaml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(FormError, match="must reach side and onset; it does not reach onset"):
        load_form(path)


def test_not_yaml_and_a_missing_questionnaire_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("questionnaire: [unclosed\n")
    with pytest.raises(FormError, match=r"bad.yaml, line \d+: not valid YAML"):
        load_form(bad)
    lonely = tmp_path / "lonely.yaml"
    lonely.write_text(NEURO.read_text())
    with pytest.raises(FormError, match="no file questionnaire-neuro-intake-2.3.json beside the mapping"):
        load_form(lonely)


def test_coverage_names_the_warning_signs_the_form_cannot_ask():
    module = list(discover().values())[-1]
    cov = coverage(load_form(NEURO), warning_sign_facts(module))
    # DESIGN.md: neuro-intake has no dizziness or headache item
    assert {"dizziness_or_incoordination", "sudden_severe_headache"} <= set(cov.not_asked)
    # what the form asks is never listed as not asked
    assert not set(cov.not_asked) & set(cov.reached)
    assert {"weakness", "face_or_arm_involved", "bladder_or_bowel_change"} <= set(cov.reached)


def test_the_coverage_command_prints_the_coverage(tmp_path):
    from click.testing import CliRunner

    from service.cli import cli

    result = CliRunner().invoke(cli, ["forms", "coverage", str(NEURO)])
    assert result.exit_code == 0, result.output
    assert "## Warning signs the form cannot ask" in result.stdout
    assert "Sudden, severe headache (`sudden_severe_headache`)" in result.stdout
    path = _broken(tmp_path, "fact: weakness,", "fact: weaknes,")
    result = CliRunner().invoke(cli, ["forms", "coverage", str(path)])
    assert result.exit_code == 1
    assert "items.weakness.fact" in result.stderr


def _mappings_with_form(tmp_path: Path, name: str, url: str, qid: str) -> Path:
    """A copy of mappings/ plus one more foreign form: the shipped one under another file name, url, id."""
    import json
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    q = json.loads((FORMS / "questionnaire-neuro-intake-2.3.json").read_text())
    q.update(url=url, id=qid)
    (mappings / "forms" / f"questionnaire-{name}.json").write_text(json.dumps(q))
    text = NEURO.read_text().replace("http://clinic.example.org/fhir/Questionnaire/neuro-intake|2.3",
                                     f"{url}|2.3")
    text = text.replace("questionnaire-neuro-intake-2.3.json", f"questionnaire-{name}.json")
    (mappings / "forms" / f"{name}.yaml").write_text(text)
    return mappings


@pytest.mark.parametrize("qid, other", [("leg-numbness", "questionnaire.json"),
                                        ("neuro-intake", "questionnaire-neuro-intake-2.3.json")])
def test_a_questionnaire_id_already_taken_stops_the_start_naming_both_files(tmp_path, qid, other):
    # issue 23, item 18: a foreign form with our id silently replaced ours at /fhir/Questionnaire/{id}
    from service.catalog import CatalogError
    from service.fhir_io.served import load_catalog
    mappings = _mappings_with_form(tmp_path, "impostor", "http://other.example.org/fhir/Questionnaire/x", qid)
    with pytest.raises(CatalogError) as err:
        load_catalog(mappings, validate_fhir=False)
    message = str(err.value)
    assert "\n" not in message and f"id {qid!r}" in message
    assert "questionnaire-impostor.json" in message and message.rstrip().count(other) == 1


def test_a_foreign_form_with_our_canonical_url_names_both_files(tmp_path):
    from service.catalog import CatalogError
    from service.fhir_io.served import load_catalog
    mappings = _mappings_with_form(tmp_path, "impostor", "http://legtriage.example.org/fhir/Questionnaire/"
                                   "leg-numbness", "impostor")
    with pytest.raises(CatalogError, match=r"questionnaire-impostor.json: has the canonical url .* of "
                                           r".*mappings/questionnaire.json"):
        load_catalog(mappings, validate_fhir=False)
