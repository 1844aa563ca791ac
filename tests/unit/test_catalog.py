"""The catalog: mappings/ checked at start, and the one source of the codes the service writes and reads."""
from __future__ import annotations

import json
import shutil

import pytest

from service.catalog import CatalogError
from service.fhir_io.served import load_catalog
from tests.support import ROOT, disposition, example, post_triage, risk_assessment


def edited_mappings(tmp_path, name: str, edit, moved: tuple[str, str] | None = None) -> str:
    """A copy of mappings/ with `name` edited; `moved` (old, new): a CodeSystem url that moved,
    so the ValueSets drawing on it follow (the catalog holds them to the CodeSystems)."""
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    path = mappings / name
    path.write_text(edit(path.read_text()))
    if moved:
        for vs in mappings.glob("valueset-*.json"):
            vs.write_text(vs.read_text().replace(*moved))
    return str(mappings)


def test_disposition_display_and_priority_come_from_the_code_system(tmp_path, make_app):
    def edit(text: str) -> str:
        cs = json.loads(text)
        cs["url"] = "http://example.org/fhir/CodeSystem/dispositions-from-the-file"
        urgent = next(c for c in cs["concept"] if c["code"] == "urgent")
        urgent["display"] = "Urgent (from the file)"
        urgent["property"][0]["valueCode"] = "asap"
        return json.dumps(cs)

    mappings = edited_mappings(tmp_path, "codesystem-triage-disposition.json", edit,
                               moved=("http://legtriage.example.org/fhir/CodeSystem/triage-disposition",
                                      "http://example.org/fhir/CodeSystem/dispositions-from-the-file"))
    client = make_app(mappings_dir=mappings).test_client()
    bundle = post_triage(client, example("qr-urgent-dvt")).get_json()
    assert disposition(bundle) == "urgent"
    concept = risk_assessment(bundle)["extension"][0]["valueCodeableConcept"]
    assert concept == {"coding": [{"system": "http://example.org/fhir/CodeSystem/dispositions-from-the-file",
                                   "code": "urgent", "display": "Urgent (from the file)"}],
                       "text": "Urgent (from the file)"}
    requests_ = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    assert "asap" in {r["priority"] for r in requests_}
    assert any("(Urgent (from the file))" in r["note"][0]["text"] for r in requests_)


def test_the_answer_system_comes_from_the_code_system(tmp_path, make_app):
    url = "http://legtriage.example.org/fhir/CodeSystem/leg-numbness-answers"
    mappings = edited_mappings(tmp_path, "codesystem-leg-numbness-answers.json",
                               lambda text: text.replace(url, "http://example.org/answers"),
                               moved=(url, "http://example.org/answers"))
    client = make_app(mappings_dir=mappings).test_client()
    assert post_triage(client, example("qr-urgent-dvt")).status_code == 422  # the old system: unknown
    moved = example("qr-urgent-dvt")
    text = json.dumps(moved).replace(url, "http://example.org/answers")
    assert post_triage(client, text).status_code == 200


def test_coding_systems_come_from_the_terminology_file(tmp_path, make_app):
    mappings = edited_mappings(tmp_path, "terminology.yaml", lambda text: text.replace(
        "snomed: http://snomed.info/sct", "snomed: http://example.org/sct"))
    client = make_app(mappings_dir=mappings).test_client()
    bundle = post_triage(client, example("qr-emergency-stroke")).get_json()
    systems = {c["system"] for p in risk_assessment(bundle)["prediction"] for c in p["outcome"].get("coding", [])}
    assert systems == {"http://example.org/sct"}


def test_a_concept_naming_an_undeclared_system_fails(tmp_path):
    mappings = edited_mappings(tmp_path, "terminology.yaml", lambda text: text.replace(
        "loinc: http://loinc.org\n", ""))
    with pytest.raises(CatalogError, match="terminology.yaml.*loinc"):
        load_catalog(mappings)


def test_a_disposition_code_system_without_a_rules_disposition_fails(tmp_path):
    def edit(text: str) -> str:
        cs = json.loads(text)
        cs["concept"] = [c for c in cs["concept"] if c["code"] != "self-care"]
        cs["count"] = len(cs["concept"])
        return json.dumps(cs)

    mappings = edited_mappings(tmp_path, "codesystem-triage-disposition.json", edit,
                               moved=("http://legtriage.example.org/fhir/CodeSystem/triage-disposition",
                                      "http://example.org/fhir/CodeSystem/dispositions-from-the-file"))
    with pytest.raises(CatalogError, match="triage-disposition.*self-care"):
        load_catalog(mappings)


def test_a_broken_mappings_file_fails_at_start_naming_the_file(tmp_path):
    bad = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", bad)
    q = json.loads((bad / "questionnaire.json").read_text())
    q["item"][0]["item"][0]["type"] = "not-a-type"
    (bad / "questionnaire.json").write_text(json.dumps(q))
    with pytest.raises(CatalogError, match="questionnaire.json"):
        load_catalog(bad)


def test_a_fact_map_naming_an_unknown_fact_fails(tmp_path):
    bad = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", bad)
    text = (bad / "facts.yaml").read_text().replace("numbness.side: side", "numbness.side: handedness")
    (bad / "facts.yaml").write_text(text)
    with pytest.raises(CatalogError, match="facts.yaml"):
        load_catalog(bad)


def test_a_terminology_entry_with_a_half_coding_fails(tmp_path):
    bad = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", bad)
    text = (bad / "terminology.yaml").read_text().replace(
        'display: "Sciatica (disorder)", ', "")
    (bad / "terminology.yaml").write_text(text)
    with pytest.raises(CatalogError, match="terminology.yaml"):
        load_catalog(bad)
