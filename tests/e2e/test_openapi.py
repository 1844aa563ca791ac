"""openapi.yaml is true: a valid OpenAPI 3.1 document whose paths are exactly the app's routes, whose
every documented status is produced by a real request with a body matching the documented schema,
whose examples are the files in examples/ and real responses, and whose docs load from the app itself.

The requests live in scripts/gen-openapi-examples (CALLS), which also records the examples.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from html.parser import HTMLParser
from importlib.machinery import SourceFileLoader
from typing import Any, Iterator

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.support import EXAMPLES, ROOT


def _load_generator():
    """scripts/gen-openapi-examples as a module (a script name has no .py to import it by)."""
    name = "gen_openapi_examples"
    loader = SourceFileLoader(name, str(ROOT / "scripts" / "gen-openapi-examples"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    loader.exec_module(module)
    return module


gen = _load_generator()
SPEC_FILE = ROOT / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
SPEC_URI = "urn:legtriage:openapi.yaml"  # where the $refs inside the spec resolve
REGISTRY = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Flask adds HEAD to every GET route and OPTIONS to every route; info.description says so once
# instead of listing them per path (test_head_and_options_are_automatic checks the claim).
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
NOT_DOCUMENTED = {
    "/docs/<path:path>": "Swagger UI's own scripts, styles and icons (flask-swagger-ui), not API; "
                         "test_docs_assets_load_from_the_app fetches each one the page uses",
}


def pointer(*parts: str | int) -> str:
    """A JSON pointer into the spec, as a URI the registry resolves."""
    return SPEC_URI + "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validator(*parts: str | int) -> Draft202012Validator:
    return Draft202012Validator({"$ref": pointer(*parts)}, registry=REGISTRY,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def resolve(node: dict) -> dict:
    """Follow a local $ref (components/responses, components/examples) to what it names."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def response_at(path: str, method: str, status: str) -> tuple[str, ...]:
    """Where a documented response lives: in the operation, or in components/responses."""
    response = SPEC["paths"][path][method]["responses"][status]
    if "$ref" in response:
        return tuple(response["$ref"].removeprefix("#/").split("/"))
    return ("paths", path, method, "responses", status)


def operations() -> Iterator[tuple[str, str, dict]]:
    for path, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def errors_of(validator_: Draft202012Validator, instance: Any) -> str | None:
    error = best_match(validator_.iter_errors(instance))
    return None if error is None else f"{error.json_path}: {error.message[:300]}"


# ---- the document ------------------------------------------------------------------------------

def test_the_spec_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    validate_spec(SPEC)  # raises with the first problem


def test_every_ref_resolves():
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(SPEC))
    assert found, "the spec uses $ref throughout"
    for ref in found:
        assert ref.startswith("#/"), ref
        resolve({"$ref": ref})  # KeyError names the missing part


def test_it_says_what_the_service_is_and_where_to_start():
    text = SPEC["info"]["description"]
    for needed in ("QuestionnaireResponse/$triage", "/fhir/Questionnaire/leg-numbness", "emergency",
                   "urgent", "routine", "self-care", "OperationOutcome", "bearerAuth"):
        assert needed in text, needed
    # "/" first: Try it out then calls the server that served the docs, wherever it runs.
    assert [s["url"] for s in SPEC["servers"]] == ["/", "http://127.0.0.1:8080"]


def test_bearer_auth_is_optional_and_public_paths_need_none():
    scheme = SPEC["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {} in SPEC["security"] and {"bearerAuth": []} in SPEC["security"]
    from service.auth import is_public
    for path, method, op in operations():
        public = is_public(path)
        assert (op.get("security") == []) == public, f"{method} {path}: security must say public={public}"
        assert ("401" in op["responses"]) != public, f"{method} {path}: 401 only where a token is needed"


# ---- routes <-> paths, both ways ----------------------------------------------------------------

def spec_path(rule: str) -> str:
    # The app answers with and without a trailing slash (url_map.strict_slashes is off), so the spec
    # writes each path without one (Redocly's no-path-trailing-slash): the route /docs/ is /docs.
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule).rstrip("/") or "/"


def routes(app) -> set[tuple[str, str]]:
    assert app.url_map.strict_slashes is False, "spec_path() drops trailing slashes"
    return {(spec_path(rule.rule), method.lower())
            for rule in app.url_map.iter_rules() if rule.rule not in NOT_DOCUMENTED
            for method in rule.methods - AUTOMATIC_METHODS}


def test_every_route_is_in_the_spec(app):
    missing = routes(app) - {(path, method) for path, method, _ in operations()}
    assert not missing, f"routes the spec does not describe: {sorted(missing)}"


def test_every_spec_operation_is_a_route(app):
    extra = {(path, method) for path, method, _ in operations()} - routes(app)
    assert not extra, f"operations in the spec the app does not serve: {sorted(extra)}"


def test_the_undocumented_routes_exist(app):
    # So that this list cannot outlive the routes it excuses.
    assert set(NOT_DOCUMENTED) <= {rule.rule for rule in app.url_map.iter_rules()}


def test_the_audit_search_parameters_are_the_services():
    """GET /fhir/AuditEvent's query parameters in the spec are the one table the service reads
    (service/records/search.py), which also gives the CapabilityStatement's."""
    from service.records.search import PARAMS

    parameters = [resolve(p) for p in SPEC["paths"]["/fhir/AuditEvent"]["get"]["parameters"]]
    assert [p["name"] for p in parameters if p["in"] == "query"] == [p.name for p in PARAMS]


def test_the_cds_service_ids_and_hooks_are_the_services():
    """The CDS service ids (the path parameter, discovery's items) and hooks in the spec are the
    services the service offers (service/cds/services.py): a new hook is one row there, and this
    test names the two lists of the spec to extend."""
    from service.cds.services import SERVICES

    ids = [s.id for s in SERVICES.values()]
    hooks = sorted({s.hook for s in SERVICES.values()})
    described = SPEC["components"]["schemas"]["CdsService"]["properties"]
    assert SPEC["components"]["parameters"]["cdsServiceId"]["schema"]["enum"] == ids
    assert described["id"]["enum"] == ids
    assert sorted(described["hook"]["enum"]) == hooks


def test_head_and_options_are_automatic(app, client):
    for rule in app.url_map.iter_rules():
        assert "OPTIONS" in rule.methods, rule.rule
        assert ("HEAD" in rule.methods) == ("GET" in rule.methods), rule.rule
    resp = client.options(gen.TRIAGE)
    assert resp.status_code == 200 and "POST" in resp.headers["Allow"]
    head = client.head("/fhir/metadata")
    assert head.status_code == 200 and head.data == b""


# ---- every documented status is real ------------------------------------------------------------

def documented_statuses() -> set[tuple[str, str, int]]:
    return {(path, method, int(status)) for path, method, op in operations() for status in op["responses"]}


def test_every_documented_status_has_a_request_that_produces_it():
    called = {(c.path, c.operation, c.status) for c in gen.CALLS}
    missing, undocumented = documented_statuses() - called, called - documented_statuses()
    assert not missing, f"add a Call to scripts/gen-openapi-examples for {sorted(missing)}"
    assert not undocumented, f"document these statuses in openapi.yaml: {sorted(undocumented)}"


def test_triage_documents_every_error_design_md_names():
    statuses = {status for path, method, status in documented_statuses() if path == gen.TRIAGE}
    # 404 is a path or resource that does not exist, so it belongs to the read endpoints, not here;
    # there is no 403 because a valid token opens every endpoint (service/auth.py).
    assert {200, 400, 401, 405, 406, 413, 415, 422} <= statuses
    assert any(status == 404 for _, _, status in documented_statuses())


@pytest.mark.parametrize("call", gen.CALLS, ids=lambda c: c.id)
def test_call_matches_the_spec(call):
    resp = gen.perform(call)
    assert resp.status_code == call.status, resp.get_data(as_text=True)[:500]
    method = call.operation
    documented = resolve(SPEC["paths"][call.path][method]["responses"][str(call.status)])
    for header in documented.get("headers", {}):
        assert header in resp.headers, f"documented header {header} missing"
    content = documented.get("content")
    if not content:
        return
    assert resp.mimetype in content, f"{resp.mimetype} is not a documented media type: {list(content)}"
    if resp.mimetype == "application/fhir+json":
        assert "fhirVersion=4.0" in resp.content_type  # DESIGN.md: the FHIR version is said
    if resp.mimetype.endswith("json"):
        body = resp.get_json(force=True)
        check = validator(*response_at(call.path, method, str(call.status)), "content", resp.mimetype,
                          "schema")
        assert errors_of(check, body) is None, errors_of(check, body)
        if call.path == gen.TRIAGE and call.status == 200:
            assert in_documented_order(body), [e["resource"]["resourceType"] for e in body["entry"]]
        if call.example:
            recorded = SPEC["components"]["examples"][call.example]["value"]
            assert gen.fixed_times(body) == recorded, \
                "the response changed: run scripts/gen-openapi-examples and review the diff"


# TriageBundle's description gives the order of the entries; its schema cannot, because generators
# turn prefixItems into a one-element tuple type. Every triage response is checked for it here.
# A transaction (Ready to store) starts with the QuestionnaireResponse when it had no id.
ENTRY_RANK = {"QuestionnaireResponse": -1, "RiskAssessment": 0, "ServiceRequest": 1, "OperationOutcome": 2}


def in_documented_order(bundle: dict) -> bool:
    ranks = [ENTRY_RANK[e["resource"]["resourceType"]] for e in bundle["entry"]]
    if bundle["type"] == "transaction":
        ranks = ranks[1:] if ranks[:1] == [-1] else ranks
    return ranks[:1] == [0] and ranks == sorted(ranks)


def test_the_entry_order_check_can_fail():
    bundle = json.loads(json.dumps(SPEC["components"]["examples"]["bundle-urgent-dvt"]["value"]))
    assert in_documented_order(bundle)
    bundle["entry"].reverse()
    assert not in_documented_order(bundle)


def test_a_triage_bundle_with_warnings_matches_the_schema():
    # The schema's third kind of entry: a warning OperationOutcome (an unknown linkId was ignored).
    warned = [c for c in gen.CALLS if c.path == gen.TRIAGE and c.status == 200 and b"numbness.colour" in c.body]
    assert warned
    bundle = gen.perform(warned[0]).get_json(force=True)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "RiskAssessment" and kinds[-1] == "OperationOutcome"
    schema = validator("components", "schemas", "TriageBundle")
    assert errors_of(schema, bundle) is None
    bundle["entry"][-1]["resource"]["issue"] = []
    assert errors_of(schema, bundle) is not None, "an empty OperationOutcome must not pass"


@pytest.mark.parametrize("broken", [
    lambda b: b["entry"][0]["resource"].update(status="final"),
    lambda b: b["entry"][0]["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0].update(code="soon"),
    lambda b: b["entry"][1]["resource"].update(intent="order"),
    lambda b: b["entry"][1]["resource"].update(priority="asap"),
    lambda b: b["entry"].pop(0),
    lambda b: b["entry"].append(b["entry"][0]),
    lambda b: b["entry"][0]["resource"]["extension"].append({"url": "http://example.org/other"}),
    lambda b: b["entry"][1]["resource"].update(resourceType="Task"),
    lambda b: b.update(type="searchset"),
], ids=["ra-status", "disposition-code", "sr-intent", "sr-priority", "no-ra", "two-ras",
        "ra-second-extension", "unknown-resource", "bundle-type"])
def test_the_bundle_schema_rejects_what_the_contract_forbids(broken):
    bundle = json.loads(json.dumps(SPEC["components"]["examples"]["bundle-urgent-dvt"]["value"]))
    schema = validator("components", "schemas", "TriageBundle")
    assert errors_of(schema, bundle) is None
    broken(bundle)
    assert errors_of(schema, bundle) is not None


# ---- examples -----------------------------------------------------------------------------------

def test_embedded_examples_equal_the_files_in_examples():
    files = sorted(EXAMPLES.glob("*.json"))
    assert files
    examples = SPEC["components"]["examples"]
    for path in files:
        assert examples[path.stem]["value"] == json.loads(path.read_text()), \
            f"{path.name} changed: run scripts/gen-openapi-examples"
    wrapped = examples["parameters-urgent-dvt"]["value"]["parameter"][0]["resource"]
    assert wrapped == json.loads((EXAMPLES / "qr-urgent-dvt.json").read_text())


def test_every_example_file_is_offered_as_a_triage_request():
    # One media type, so that generated clients send FHIR's; the service accepts application/json
    # too (CALLS posts the examples both ways).
    request = SPEC["paths"][gen.TRIAGE]["post"]["requestBody"]["content"]
    assert list(request) == ["application/fhir+json"]
    offered = {ex["$ref"].split("/")[-1] for ex in request["application/fhir+json"]["examples"].values()}
    assert {p.stem for p in EXAMPLES.glob("*.json")} <= offered
    assert any(c.path == gen.TRIAGE and c.status == 200 and c.content_type == "application/json"
               for c in gen.CALLS)


def test_every_example_is_used_and_matches_its_schema():
    used = set()
    for path, method, op in operations():
        places = [("paths", path, method, "requestBody")] if "requestBody" in op else []
        places += [response_at(path, method, status) for status in op["responses"]]
        for place in places:
            body = resolve({"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in place)})
            for media, content in body.get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    used.add(example["$ref"].split("/")[-1])
                    problem = errors_of(validator(*place, "content", media, "schema"),
                                        resolve(example)["value"])
                    assert problem is None, f"{method} {path}: example {name}: {problem}"
    assert used, "the spec shows examples"
    assert set(SPEC["components"]["examples"]) <= used, "examples nobody refers to"


def test_the_generated_examples_are_current():
    text = SPEC_FILE.read_text()
    head, marker, tail = text.partition(gen.MARKER)
    assert marker, "the marker line of scripts/gen-openapi-examples is missing"
    assert marker + tail == gen.generate(), "run scripts/gen-openapi-examples and review the diff"


# ---- served: the file and the docs --------------------------------------------------------------

def test_the_spec_is_served(client):
    resp = client.get("/openapi.yaml")
    assert resp.status_code == 200
    assert resp.mimetype == "application/yaml"
    assert resp.data == SPEC_FILE.read_bytes()


class _Page(HTMLParser):
    """Every URL a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        url = a.get("src") if tag in ("script", "img") else a.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


@pytest.mark.parametrize("path", ["/docs/", "/docs"])
def test_the_docs_page_is_swagger_ui_on_our_spec(client, path):
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert 'id="swagger-ui"' in html and "swagger-ui-bundle.js" in html
    config = json.loads(re.search(r"var user_config = (\{.*?\});", html).group(1))
    assert config["url"] == "/openapi.yaml"
    assert config["validatorUrl"] == "none"  # else Swagger UI asks validator.swagger.io for a badge


def test_the_root_sends_people_to_the_docs(client):
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/docs/")


def test_docs_assets_load_from_the_app(client):
    html = client.get("/docs/").get_data(as_text=True)
    page = _Page()
    page.feed(html)
    assert len(page.urls) >= 4, page.urls  # 2 scripts, 2 stylesheets at least
    assert "https://" not in html, "the docs page must not load anything from elsewhere"
    for url in page.urls:
        assert url.startswith("/docs/"), f"{url} is not served by the app"
        with client.get(url) as asset:  # a file response: closing it closes the file
            assert asset.status_code == 200 and len(asset.data) > 100, url
            expected = {".js": "javascript", ".css": "text/css", ".png": "image/png"}[url[url.rfind("."):]]
            assert expected in asset.content_type, (url, asset.content_type)
    assert not any("://" in s and "oauth2-redirect" not in s for s in page.scripts)
