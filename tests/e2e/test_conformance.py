"""The conformance resources an EHR's validator looks for: the StructureDefinition of every extension
the service emits and the ValueSets of the Questionnaire's answer lists, served and listed in the
CapabilityStatement, valid, and saying the same as the data they describe."""
from __future__ import annotations

import json
import shutil

import pytest

from service.catalog import CatalogError, answer_value_set_id
from service.fhir_io.served import load_catalog
from tests.support import EXAMPLES, ITEMS, ROOT, post_triage
from tests.support.fhir import assert_valid_fhir

BASE = "http://legtriage.example.org/fhir"
FILES = sorted(p.name for p in (ROOT / "mappings").glob("*.json")
               if p.name.startswith(("structuredefinition-", "valueset-")))
CHOICE_ITEMS = [link_id for link_id, item in ITEMS.items() if item["type"] == "choice"]


def get(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, (path, response.get_data(as_text=True))
    return response.get_json(force=True)


@pytest.mark.parametrize("name", FILES)
def test_the_files_are_valid_fhir(name):
    assert_valid_fhir(json.loads((ROOT / "mappings" / name).read_text()))


def emitted_extensions(client) -> dict[str, list[dict]]:
    """Every extension in every $triage answer to the examples: url -> [(resource, extension)]."""
    found: dict[str, list] = {}

    def walk(node, resource):
        if isinstance(node, dict):
            resource = node if "resourceType" in node else resource
            for ext in node.get("extension", []):
                found.setdefault(ext["url"], []).append((resource, ext))
            for key, value in node.items():
                if key != "extension":  # an extension's own parts are checked with it
                    walk(value, resource)
        elif isinstance(node, list):
            for value in node:
                walk(value, resource)

    for path in sorted(EXAMPLES.glob("*.json")):
        walk(post_triage(client, path.read_bytes()).get_json(force=True), None)
    return found


def test_every_emitted_extension_has_a_served_definition_it_conforms_to(client):
    emitted = emitted_extensions(client)
    assert f"{BASE}/StructureDefinition/triage-disposition" in emitted
    for url, uses in emitted.items():
        found = get(client, f"/fhir/StructureDefinition?url={url}")
        assert found["total"] == 1, f"no StructureDefinition served for {url}"
        sd = found["entry"][0]["resource"]
        assert sd["type"] == "Extension" and sd["derivation"] == "constraint"
        elements = {e["path"]: e for e in sd["differential"]["element"]}
        assert elements["Extension.url"]["fixedUri"] == url
        contexts = {c["expression"] for c in sd["context"]}
        value = elements["Extension.value[x]"]
        if value.get("max") == "0":  # a complex extension: its parts are slices of Extension.extension
            _conforms_as_complex_extension(sd, url, uses)
            continue
        kinds = {t["code"] for t in value["type"]}
        bound = value["binding"]["valueSet"]
        vs = get(client, f"/fhir/ValueSet?url={bound}")["entry"][0]["resource"]
        allowed = set()
        for inc in vs["compose"]["include"]:
            cs = get(client, "/fhir/CodeSystem/" + inc["system"].rsplit("/", 1)[-1])
            assert cs["url"] == inc["system"]
            allowed |= {c["code"] for c in inc.get("concept") or cs["concept"]}
        for resource, ext in uses:
            assert resource["resourceType"] in contexts
            same = [e for e in resource["extension"] if e["url"] == url]
            assert len(same) <= int(elements["Extension"]["max"])
            assert "extension" not in ext  # Extension.extension max 0
            (key,) = [k for k in ext if k.startswith("value")]
            assert key.removeprefix("value") in {k[0].upper() + k[1:] for k in kinds}
            codings = ext[key]["coding"]
            assert {c["system"] for c in codings} <= {i["system"] for i in vs["compose"]["include"]}
            assert all(c["code"] in allowed for c in codings), "required binding"


@pytest.mark.parametrize("link_id", CHOICE_ITEMS)
def test_each_choice_item_has_a_value_set_of_its_options(client, link_id):
    vs = get(client, f"/fhir/ValueSet/{answer_value_set_id(link_id)}")
    assert vs["url"] == f"{BASE}/ValueSet/{vs['id']}" and link_id in vs["description"]
    answers = get(client, "/fhir/CodeSystem/leg-numbness-answers")
    displays = {c["code"]: c["display"] for c in answers["concept"]}
    (include,) = vs["compose"]["include"]
    assert (include["system"], include["version"]) == (answers["url"], answers["version"])
    options = [o["valueCoding"]["code"] for o in ITEMS[link_id]["answerOption"]]
    assert [c["code"] for c in include["concept"]] == options
    assert all(c["display"] == displays[c["code"]] for c in include["concept"])


def test_the_capability_statement_lists_them(client):
    cs = get(client, "/fhir/metadata")
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    for rtype, search in (("StructureDefinition", "/fhir/StructureDefinition"), ("ValueSet", "/fhir/ValueSet")):
        entry = resources[rtype]
        assert {i["code"] for i in entry["interaction"]} == {"read", "search-type"}
        served = get(client, search)
        assert served["total"] >= 1
        for e in served["entry"]:
            assert e["resource"]["url"] in entry["documentation"]
            assert e["fullUrl"] == e["resource"]["url"]


def test_search_and_read(client):
    url = f"{BASE}/ValueSet/triage-disposition"
    for query in (f"url={url}", f"url={url}|1.0.0", f"url={url}&version=1.0.0"):
        assert get(client, f"/fhir/ValueSet?{query}")["total"] == 1
    assert get(client, f"/fhir/ValueSet?url={url}|2.0.0")["total"] == 0
    assert get(client, "/fhir/ValueSet")["total"] == len(CHOICE_ITEMS) + 1
    for path in ("/fhir/ValueSet/other", "/fhir/StructureDefinition/other"):
        response = client.get(path)
        assert response.status_code == 404 and "other" in response.get_json(force=True)["issue"][0]["diagnostics"]
    assert get(client, "/fhir/StructureDefinition?name=x")["total"] == 0  # a supported parameter now
    # an unsupported one: ignored and named (lenient), or refused (strict): tests/e2e/test_search.py
    assert client.get("/fhir/StructureDefinition?publisher=x",
                      headers={"Prefer": "handling=strict"}).status_code == 400


def _broken(tmp_path, name: str, change) -> None:
    bad = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", bad, dirs_exist_ok=True)
    path = bad / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return bad


def _conforms_as_complex_extension(sd: dict, url: str, uses: list) -> None:
    slices = {e["sliceName"]: e for e in sd["differential"]["element"] if e.get("sliceName")}
    kinds = {e["id"].split(":")[1].split(".")[0]: e["type"][0]["code"]
             for e in sd["differential"]["element"]
             if e["id"].startswith("Extension.extension:") and e["id"].endswith(".value[x]")}
    contexts = {c["expression"] for c in sd["context"]}
    assert contexts == {"RiskAssessment.prediction"}
    assert uses
    for resource, ext in uses:
        assert resource["resourceType"] == "RiskAssessment"
        assert "value" not in "".join(ext)  # Extension.value[x] max 0
        parts = ext["extension"]
        assert {p["url"] for p in parts} <= set(slices)
        for name, element in slices.items():
            count = sum(p["url"] == name for p in parts)
            assert count >= element["min"] and (element["max"] == "*" or count <= int(element["max"]))
        for part in parts:
            (key,) = [k for k in part if k.startswith("value")]
            kind = kinds[part["url"]]
            assert key == "value" + kind[0].upper() + kind[1:]


@pytest.mark.parametrize("name, change, says", [
    ("valueset-leg-numbness-numbness-side.json",
     lambda vs: vs["compose"]["include"][0]["concept"].pop(), "differ from the answerOption codes"),
    ("valueset-leg-numbness-numbness-side.json",
     lambda vs: vs["compose"]["include"][0]["concept"].append({"code": "tail"}), "differ"),
    ("valueset-triage-disposition.json",
     lambda vs: vs["compose"]["include"][0].update(system="http://example.org/cs"), "not a CodeSystem"),
    ("structuredefinition-triage-disposition.json",
     lambda sd: sd["differential"]["element"][3]["binding"].update(valueSet="http://example.org/vs"),
     "not a ValueSet of mappings/"),
    ("valueset-triage-disposition.json", lambda vs: vs.update(url="http://example.org/vs"), "url must be"),
])
def test_a_value_set_out_of_step_fails_at_start_naming_the_file(tmp_path, name, change, says):
    with pytest.raises(CatalogError, match=name.replace(".", r"\.")) as err:
        load_catalog(_broken(tmp_path, name, change))
    assert says in str(err.value)


def test_a_missing_value_set_fails_at_start(tmp_path):
    bad = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", bad)
    (bad / "valueset-leg-numbness-history-diabetes.json").unlink()
    with pytest.raises(CatalogError, match="history.diabetes"):
        load_catalog(bad)
