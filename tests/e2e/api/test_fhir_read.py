"""The rest of the FHIR surface: metadata, Questionnaire, OperationDefinition, Library, CodeSystems."""
from __future__ import annotations

import pytest

from tests.support import QUESTIONNAIRE

URL = "http://legtriage.example.org/fhir/Questionnaire/leg-numbness"


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    return response.get_json(force=True)


def test_capability_statement(client):
    cs = get(client, "/fhir/metadata")
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert resources["QuestionnaireResponse"]["operation"][0]["name"] == "triage"
    assert {"Questionnaire", "Library", "CodeSystem", "OperationDefinition"} <= set(resources)


def test_questionnaire_read_and_search(client):
    served = get(client, "/fhir/Questionnaire/leg-numbness")
    assert served.pop("text")["status"] == "generated"  # the narrative is added at start
    assert served == QUESTIONNAIRE
    for query in (f"url={URL}", f"url={URL}|1.0.0", f"url={URL}&version=1.0.0"):
        bundle = get(client, f"/fhir/Questionnaire?{query}")
        assert bundle["type"] == "searchset" and bundle["total"] == 1
        assert bundle["entry"][0]["resource"]["url"] == URL
    assert get(client, "/fhir/Questionnaire?url=http://example.org/other")["total"] == 0
    assert get(client, f"/fhir/Questionnaire?url={URL}|2.0.0")["total"] == 0
    assert client.get("/fhir/Questionnaire/other").status_code == 404
    assert get(client, "/fhir/Questionnaire?name=x")["total"] == 0  # R4 string search on name
    strict = {"Prefer": "handling=strict"}
    assert client.get("/fhir/Questionnaire?publisher=x", headers=strict).status_code == 400


def test_operation_definition(client):
    opdef = get(client, "/fhir/OperationDefinition/triage")
    assert opdef["code"] == "triage" and opdef["resource"] == ["QuestionnaireResponse"]
    assert {p["name"] for p in opdef["parameter"]} == {"questionnaireResponse", "rulesVersion", "bundleType",
                                                       "return"}


def test_libraries_describe_each_rule_version_with_citations(client):
    bundle = get(client, "/fhir/Library")
    assert bundle["total"] == 3
    old, mid, new = (e["resource"] for e in bundle["entry"])
    assert (old["version"], old["status"], old["date"]) == ("1.0.0", "retired", "2026-12-01")
    # 1.1.0 was retired when 1.2.0 became the default (its Library's date: the retirement)
    assert (mid["version"], mid["status"], mid["date"]) == ("1.1.0", "retired", "2026-12-07")
    assert (new["version"], new["status"], new["date"]) == ("1.2.0", "active", "2026-12-07")
    for lib in (old, mid, new):  # the project signs nothing: mappings/signoff/ ships empty
        assert "approvalDate" not in lib and "reviewer" not in lib
        assert "Clinical sign-off pending: no sign-off file" in lib["description"]
    assert "superseded by 1.1.0" in old["description"] and "First published version." in old["description"]
    assert "superseded by 1.2.0" in mid["description"]
    assert "What changed: Fixes the clinical review of 1.0.0" in mid["description"]
    predecessor = {"type": "predecessor", "display": "Rule module 1.0.0",
                   "resource": "http://legtriage.example.org/fhir/Library/leg-numbness-rules|1.0.0"}
    assert predecessor in mid["relatedArtifact"]
    assert any(a["type"] == "successor" and a["resource"].endswith("|1.1.0") for a in old["relatedArtifact"])
    assert any(a["type"] == "successor" and a["resource"].endswith("|1.2.0") for a in mid["relatedArtifact"])
    for lib in (old, mid, new):
        cited = {a["label"] for a in lib["relatedArtifact"] if a["type"] == "citation"}
        assert cited == {"000_cb32e696d2feae6f.txt", "001_7be9c4c3b65e7a56.txt", "002_8375efd10046325c.txt",
                         "003_49373439d83d5e71.txt", "004_ee8a66ff89f18e0d.txt"}
        assert get(client, f"/fhir/Library/{lib['id']}") == lib
    assert client.get("/fhir/Library/nope").status_code == 404


def test_a_retired_version_with_known_defects_names_them_in_its_library(client):
    from service.triage.engine import Registry
    registry = Registry()
    defects = registry.get("1.1.0").known_defects
    assert len(defects) >= 5
    mid = get(client, "/fhir/Library/leg-numbness-rules-1-1-0")
    assert "Known defects:" in mid["description"]
    for defect in defects:
        assert f"- {defect}" in mid["description"]
    for version in ("1.0.0", "1.2.0"):  # no KNOWN_DEFECTS in their modules: nothing listed
        assert not registry.get(version).known_defects
        lib = get(client, f"/fhir/Library/{registry.get(version).id}")
        assert "Known defects" not in lib["description"]


@pytest.mark.parametrize("cs_id, codes", [
    ("triage-disposition", ["emergency", "urgent", "routine", "self-care"]),
    ("leg-numbness-answers", ["left", "right", "both", "sudden", "gradual"]),
])
def test_code_systems(client, cs_id, codes):
    cs = get(client, f"/fhir/CodeSystem/{cs_id}")
    assert [c["code"] for c in cs["concept"]][: len(codes)] == codes or \
        set(codes) <= {c["code"] for c in cs["concept"]}
    assert client.get("/fhir/CodeSystem/nope").status_code == 404


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["defaultRulesVersion"] == "1.2.0"  # the newest active version


def test_capability_statement_says_when_auth_is_required(app):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    from service.fhir_io.conformance import capability_statement
    catalog = app.extensions["legtriage"].catalog
    open_cs = capability_statement(catalog, "http://localhost:8080", "2026-11-21", auth_enabled=False)
    assert "security" not in open_cs["rest"][0]
    secured = capability_statement(catalog, "http://localhost:8080", "2026-11-21", auth_enabled=True,
                                   cors=True)
    assert secured["rest"][0]["security"]["cors"] is True
    assert "Bearer" in secured["rest"][0]["security"]["description"]
    CapabilityStatement.model_validate(secured)
