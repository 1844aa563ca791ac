"""Every search of the service's own resources behaves as the HTTP contract says (R4 search), through
the one implementation in service/fhir_io/search.py: `_count` honoured (never more entries than
asked, `_count=0` the total only), paging links absolute on the public base, an unsupported
parameter ignored and named in an OperationOutcome entry (search.mode outcome) unless
`Prefer: handling=strict` (400). The generic clients that rely on this: tests/e2e/test_fhir_clients.py.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from service.state import state
from tests.support.fhir import assert_valid_fhir, check_narrative

TYPES = ["Questionnaire", "ValueSet", "StructureDefinition", "Library", "ConceptMap", "CodeSystem",
         "OperationDefinition"]


def search(client, query: str, **headers) -> dict:
    answer = client.get(f"/fhir/{query}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    bundle = answer.get_json()
    assert bundle["type"] == "searchset"
    assert_valid_fhir(bundle)
    return bundle


def matches(bundle: dict) -> list[dict]:
    return [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def outcomes(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]


def link(bundle: dict, relation: str) -> str | None:
    return next((lk["url"] for lk in bundle["link"] if lk["relation"] == relation), None)


@pytest.mark.parametrize("rtype", TYPES)
def test_count_is_honoured_on_every_search(client, rtype):
    everything = search(client, rtype)
    total = everything["total"]
    assert total >= 1 and len(matches(everything)) == total
    assert all(e["resource"]["resourceType"] == rtype for e in matches(everything))
    for count in range(0, total + 2):
        bundle = search(client, f"{rtype}?_count={count}")
        assert bundle["total"] == total
        assert len(matches(bundle)) == min(count, total), "never more than asked"
    zero = search(client, f"{rtype}?_count=0")
    assert "entry" not in zero and zero["total"] == total


@pytest.mark.parametrize("rtype", TYPES)
def test_paging_links_walk_every_match_once_on_the_public_base(app, client, rtype):
    with app.app_context():
        base = state().settings.public_base_url
    total = search(client, rtype)["total"]
    seen, url, pages = [], f"/fhir/{rtype}?_count=1", 0
    while url:
        bundle = search(client, url.removeprefix(base).removeprefix("/fhir/"))
        seen += [e["fullUrl"] for e in matches(bundle)]
        assert link(bundle, "self").startswith(f"{base}/fhir/{rtype}")
        url, pages = link(bundle, "next"), pages + 1
        if url:
            assert url.startswith(f"{base}/fhir/{rtype}?")
        assert pages <= total
    assert len(seen) == len(set(seen)) == total
    if total > 1:
        first = search(client, f"{rtype}?_count=1")
        assert parse_qs(urlsplit(link(first, "last")).query)["_offset"] == [str(total - 1)]


def test_links_ignore_the_request_host(client):
    bundle = search(client, "ValueSet?_count=1", Host="evil.example.com")
    assert all("evil" not in lk["url"] for lk in bundle["link"])


@pytest.mark.parametrize("rtype", TYPES)
def test_an_unsupported_parameter_is_ignored_and_named(client, rtype):
    total = search(client, rtype)["total"]
    bundle = search(client, f"{rtype}?publisher=x&_elements=id&_count=1")
    assert bundle["total"] == total and len(matches(bundle)) == 1  # _count still applies
    (outcome,) = outcomes(bundle)
    check_narrative(outcome)
    named = {i["expression"][0] for i in outcome["issue"]}
    assert named == {"publisher", "_elements"}
    assert {i["severity"] for i in outcome["issue"]} == {"warning"}
    assert "publisher" not in link(bundle, "self") and "_count=1" in link(bundle, "self")
    lenient = search(client, f"{rtype}?publisher=x", Prefer="handling=lenient")
    assert len(outcomes(lenient)) == 1


@pytest.mark.parametrize("rtype", TYPES)
def test_strict_handling_refuses_an_unsupported_parameter(client, rtype):
    for prefer in ("handling=strict", "return=representation, handling=strict", 'handling="strict"'):
        answer = client.get(f"/fhir/{rtype}?publisher=x", headers={"Prefer": prefer})
        assert answer.status_code == 400
        issue = answer.get_json()["issue"][0]
        assert issue["code"] == "not-supported" and issue["expression"] == ["publisher"]
    # supported parameters pass under strict handling
    answer = client.get(f"/fhir/{rtype}?_count=1&url=x", headers={"Prefer": "handling=strict"})
    assert answer.status_code == 200


@pytest.mark.parametrize("query", ["_count=x", "_count=-1", "_count=1&_count=2", "_offset=y"])
def test_a_malformed_count_is_a_400_naming_it(client, query):
    answer = client.get(f"/fhir/Library?{query}")
    assert answer.status_code == 400
    assert answer.get_json()["issue"][0]["expression"][0] in ("_count", "_offset")


def test_the_search_parameters_match(client):
    lib = search(client, "Library")
    some = matches(lib)[0]["resource"]
    assert [e["resource"]["id"] for e in matches(search(client, f"Library?_id={some['id']}"))] == [some["id"]]
    versioned = search(client, f"Library?url={some['url']}|{some['version']}")
    assert [e["resource"]["version"] for e in matches(versioned)] == [some["version"]]
    assert search(client, f"Library?url={some['url']}")["total"] == lib["total"]
    assert search(client, f"Library?status={some['status']}")["total"] >= 1
    assert search(client, "Library?status=draft")["total"] == 0
    assert search(client, "Questionnaire?name=" + search(client, "Questionnaire?_count=1")["entry"][0]
                  ["resource"]["name"][:4].lower())["total"] >= 1
    op = search(client, "OperationDefinition?url="
                + client.get("/fhir/OperationDefinition/triage").get_json()["url"])
    assert [e["resource"]["id"] for e in matches(op)] == ["triage"]
    ids = ",".join(e["resource"]["id"] for e in matches(search(client, "ValueSet?_count=2")))
    assert search(client, f"ValueSet?_id={ids}")["total"] == 2  # a comma is OR


def test_the_capability_statement_says_so(client):
    cs = client.get("/fhir/metadata").get_json()
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    for rtype in TYPES:
        assert {"read", "search-type"} <= {i["code"] for i in resources[rtype]["interaction"]}
        assert "_count" in {p["name"] for p in resources[rtype]["searchParam"]}
        assert "handling=strict" in resources[rtype]["documentation"]
