"""Clients generated from openapi.yaml work against the service (issue 17).

openapi-python-client and openapi-typescript generate from the committed spec without a warning;
clients/triage_example.py (the generated Python models) and clients/triage-example.mts (openapi-fetch
with the generated types, compiled by tsc --strict, run by node) post every example to a real gunicorn
and read the disposition and the ServiceRequest proposals through typed attributes, and what they
read is checked against the raw responses. Redocly (recommended rules) and Spectral (spectral:oas)
find nothing. Every check here is over the whole spec, so new paths are held to the same.
The npm tools come from scripts/lib/test-tools.sh (.cache/npm-clients).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml

from tests.support.servers import gunicorn
from tests.support import EXAMPLES, ROOT

SPEC_FILE = ROOT / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
CLIENTS = ROOT / "clients"
NPM_BIN = ROOT / ".cache" / "npm-clients" / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
FHIR_JSON = "application/fhir+json"
DISPOSITION_URL = "http://legtriage.example.org/fhir/StructureDefinition/triage-disposition"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DOCS = ROOT / "docs" / "clients.md"
DOCS_BASE_URL = "http://127.0.0.1:8080"  # what the snippets in docs/clients.md call


def docs_snippet(language: str, base: str) -> str:
    """The one `language` code block of docs/clients.md, calling `base` instead of DOCS_BASE_URL."""
    (block,) = re.findall(rf"^```{language}\n(.*?)^```$", DOCS.read_text(), re.S | re.M)
    assert DOCS_BASE_URL in block
    return block.replace(DOCS_BASE_URL, base)


def snippet_lines(expected: list[dict], example: str) -> list[str]:
    """What the docs' snippets print for one example: the disposition, then each proposal."""
    (line,) = [line for line in expected if line["request"] == example]
    return [f"disposition: {line['disposition']}",
            *(f"proposal: {p['priority']} {p['code']}" for p in line["proposals"])]


def tool(name: str) -> Path:
    path = NPM_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: scripts/lib/test-tools.sh installs it (see .cache/npm-clients.log)")
    return path


def run(cmd: list[Any], cwd: Path = ROOT, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300,
                          **kwargs)


def operations() -> Iterator[tuple[str, str, dict]]:
    for path, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


# ---- the spec is written the way generators read it ---------------------------------------------

def schema_nodes(node: Any, where: str) -> Iterator[tuple[str, dict]]:
    """Every schema in the spec with its location (JSON pointer-ish)."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs"):
                for name, sub in value.items():
                    yield from schema_nodes(sub, f"{where}/{key}/{name}")
            elif key in ("items", "contains", "additionalProperties", "not", "if", "then", "else"):
                yield from schema_nodes(value, f"{where}/{key}")
            elif key in ("oneOf", "anyOf", "allOf", "prefixItems"):
                for i, sub in enumerate(value):
                    yield from schema_nodes(sub, f"{where}/{key}/{i}")


def all_schemas() -> Iterator[tuple[str, dict]]:
    for name, schema in SPEC["components"]["schemas"].items():
        yield from schema_nodes(schema, f"#/components/schemas/{name}")
    for path, method, op in operations():
        for param in op.get("parameters", []):
            if "schema" in param:
                yield from schema_nodes(param["schema"], f"{method} {path} parameter {param['name']}")
        bodies = [("requestBody", op.get("requestBody", {}))]
        bodies += [(f"responses/{status}", response) for status, response in op["responses"].items()]
        for place, body in bodies:
            for media, content in body.get("content", {}).items():
                if "schema" in content:
                    yield from schema_nodes(content["schema"], f"{method} {path} {place} {media}")


def test_objects_are_named_schemas_and_unions_are_of_named_schemas():
    # Inline objects get made-up names (or clash: "duplicate models"), a union of anonymous branches
    # that only list `required` becomes `unknown`, and prefixItems a one-element tuple.
    problems = []
    top = {f"#/components/schemas/{name}" for name in SPEC["components"]["schemas"]}
    for where, schema in all_schemas():
        base = re.sub(r"/allOf/\d+$", "", where)
        if "properties" in schema and base not in top:
            problems.append(f"{where}: an inline object; make it a named schema under components/schemas")
        for key in ("oneOf", "anyOf"):
            for i, branch in enumerate(schema.get(key, [])):
                if set(branch) != {"$ref"}:
                    problems.append(f"{where}/{key}/{i}: a union member must be a $ref to a named schema")
        if "prefixItems" in schema:
            problems.append(f"{where}: prefixItems (a tuple to generators); use items")
        if schema.get("type") == "object" and not ({"properties", "additionalProperties"} & set(schema)):
            problems.append(f"{where}: an object without properties (Record<string, never> to TypeScript)")
    assert not problems, "\n".join(problems)


def test_unions_of_resources_have_a_discriminator():
    for where, schema in all_schemas():
        members = [m["$ref"].split("/")[-1] for m in schema.get("oneOf", [])]
        resources = [SPEC["components"]["schemas"][m].get("properties", {}).get("resourceType") for m in members]
        if members and all(resources):
            assert schema.get("discriminator", {}).get("propertyName") == "resourceType", where
            mapping = schema["discriminator"]["mapping"]
            assert {r["const"]: f"#/components/schemas/{m}" for r, m in zip(resources, members)} == mapping, where


# ---- the live service, and what the clients must read from it ----------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn(tmp_path_factory.mktemp("clients") / "gunicorn.log") as running:
        yield running


def example_args() -> list[str]:
    files = sorted(str(p.relative_to(ROOT)) for p in EXAMPLES.glob("*.json"))
    assert files
    return files


def read_bundle(bundle: dict) -> dict:
    """The disposition and the proposals, read from the raw JSON."""
    resources = [e["resource"] for e in bundle["entry"]]
    (assessment,) = [r for r in resources if r["resourceType"] == "RiskAssessment"]
    (extension,) = [x for x in assessment["extension"] if x["url"] == DISPOSITION_URL]
    return {
        "disposition": extension["valueCodeableConcept"]["coding"][0]["code"],
        "proposals": [{"priority": r["priority"], "code": r["code"].get("text"),
                       "reasons": [c.get("text") for c in r.get("reasonCode", [])]}
                      for r in resources if r["resourceType"] == "ServiceRequest"],
    }


@pytest.fixture(scope="module")
def expected(server) -> list[dict]:
    """What each client script must print, from raw requests (sent as application/json)."""
    def post(body: dict) -> requests.Response:
        return requests.post(server.base + TRIAGE, json=body, timeout=10)

    lines = []
    files = example_args()
    for name in files:
        qr = json.loads((ROOT / name).read_text())
        bodies = {name: qr}
        if name == files[0] and qr["resourceType"] == "QuestionnaireResponse":
            bodies[f"{name} (Parameters)"] = {"resourceType": "Parameters", "parameter": [
                {"name": "questionnaireResponse", "resource": qr}, {"name": "rulesVersion", "valueString": "1.0.0"}]}
        for label, body in bodies.items():
            resp = post(body)
            assert resp.status_code == 200, resp.text[:500]
            lines.append({"request": label, "contentType": FHIR_JSON, **read_bundle(resp.json())})
    resp = post({**json.loads((ROOT / files[0]).read_text()), "subject": {}})
    assert resp.status_code == 422
    lines.append({"request": "no subject", "contentType": FHIR_JSON,
                  "issues": [issue.get("expression") for issue in resp.json()["issue"]]})
    # The examples cover every disposition, and proposals: the comparison below means something.
    assert {line.get("disposition") for line in lines} >= {"emergency", "urgent", "routine", "self-care"}
    assert any(line.get("proposals") for line in lines)
    return lines


def printed(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


# ---- Python: openapi-python-client --------------------------------------------------------------

@pytest.fixture(scope="module")
def python_client(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("python-client")
    package = out / "legtriage_client"
    # The generator formats its output with ruff (installed with it, in the venv's bin).
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = run([VENV_BIN / "openapi-python-client", "generate", "--path", SPEC_FILE, "--meta", "none",
                "--config", CLIENTS / "openapi-python-client.yaml", "--output-path", package], env=env)
    return out, proc


def test_the_python_client_generates_without_warnings(python_client):
    out, proc = python_client
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Anything else it prints is a warning: a dropped schema, response or content type.
    assert (proc.stdout + proc.stderr).strip().splitlines() == [f"Generating {out / 'legtriage_client'}"], \
        proc.stdout + proc.stderr


def test_the_python_client_has_every_operation(python_client):
    out, _ = python_client
    for path, method, op in operations():
        module = re.sub(r"(?<!^)(?=[A-Z])", "_", op["operationId"]).lower()
        # A tag is a Python package name there: `cds-hooks` becomes api/cds_hooks.
        tag = re.sub(r"[^a-z0-9]+", "_", op.get("tags", ["default"])[0].lower())
        assert (out / "legtriage_client" / "api" / tag / f"{module}.py").is_file(), f"{method} {path}"


def test_the_python_client_reads_disposition_and_proposals(python_client, server, expected):
    out, _ = python_client
    env = {**os.environ, "PYTHONPATH": str(out)}
    proc = run([sys.executable, CLIENTS / "triage_example.py", server.base, *example_args()], env=env)
    assert printed(proc) == expected


def test_the_python_snippet_in_the_docs_works(python_client, server, expected):
    out, _ = python_client
    env = {**os.environ, "PYTHONPATH": str(out)}
    proc = run([sys.executable, "-c", docs_snippet("python", server.base)], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == snippet_lines(expected, "examples/qr-urgent-dvt.json")


# ---- TypeScript: openapi-typescript, openapi-fetch, tsc -------------------------------------------

def type_checks() -> str:
    """A TypeScript module that compiles only if no schema and no JSON response body of the spec
    came out as `unknown` (what a union of required-only branches becomes)."""
    known = "type Known<T> = unknown extends T ? false : true;\n"
    schemas = ", ".join(f"{json.dumps(name)}: true" for name in SPEC["components"]["schemas"])
    responses = []
    for path, method, op in operations():
        for status, response in op["responses"].items():
            if "$ref" in response:
                response = SPEC["components"]["responses"][response["$ref"].split("/")[-1]]
            for media in response.get("content", {}):
                if media.endswith("json"):
                    responses.append(f'const _{len(responses)}: Known<paths[{json.dumps(path)}]["{method}"]'
                                     f'["responses"][{status}]["content"][{json.dumps(media)}]> = true;')
    return (f'import type {{ components, paths }} from "./schema.js";\n{known}'
            f'export const schemas: {{ [K in keyof components["schemas"]]: Known<components["schemas"][K]> }}'
            f' = {{ {schemas} }};\n' + "\n".join(responses) + "\n")


@pytest.fixture(scope="module")
def typescript_build(tmp_path_factory, server) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("typescript-client")
    (out / "node_modules").symlink_to(NPM_BIN.parent)  # where node and tsc find openapi-fetch
    proc = run([tool("openapi-typescript"), SPEC_FILE, "--output", out / "schema.d.ts"])
    (out / "triage-example.mts").write_text((CLIENTS / "triage-example.mts").read_text())
    (out / "type-checks.mts").write_text(type_checks())
    (out / "docs-snippet.mts").write_text(docs_snippet("ts", server.base))
    (out / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
                            "strict": True, "types": ["node"], "outDir": "out"},
        "files": ["triage-example.mts", "type-checks.mts", "docs-snippet.mts"]}))
    return out, proc


def test_the_typescript_schema_generates_without_warnings(typescript_build):
    out, proc = typescript_build
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("✨ openapi-typescript 7.") and lines[1].startswith("🚀"), lines


def test_the_typescript_client_passes_strict_type_checks(typescript_build):
    out, _ = typescript_build
    proc = run([tool("tsc"), "--noEmit", "--strict", "-p", out / "tsconfig.json"], cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_typescript_client_reads_disposition_and_proposals(typescript_build, server, expected):
    out, _ = typescript_build
    build = run([tool("tsc"), "-p", out / "tsconfig.json"], cwd=out)
    assert build.returncode == 0, build.stdout + build.stderr
    proc = run(["node", out / "out" / "triage-example.mjs", server.base, *example_args()])
    assert printed(proc) == expected
    snippet = run(["node", out / "out" / "docs-snippet.mjs"])
    assert snippet.returncode == 0, snippet.stdout + snippet.stderr
    assert snippet.stdout.splitlines() == snippet_lines(expected, "examples/qr-urgent-dvt.json")


# ---- linters ------------------------------------------------------------------------------------

def test_redocly_recommended_rules_find_nothing():
    # Run from the root so that .redocly.lint-ignore.yaml (each exception with its reason) applies.
    proc = run([tool("redocly"), "lint", SPEC_FILE.name, "--extends", "recommended", "--format", "json"])
    report = json.loads(proc.stdout)
    problems = [f"{p['ruleId']}: {p['message']}" for p in report["problems"]]
    assert report["totals"]["errors"] == 0 and report["totals"]["warnings"] == 0, problems
    assert proc.returncode == 0, proc.stderr


def test_spectral_oas_rules_find_nothing():
    proc = run([tool("spectral"), "lint", SPEC_FILE.name, "--ruleset", ".spectral.yaml", "--format", "json",
                "--quiet"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout or "[]") == [], proc.stdout
