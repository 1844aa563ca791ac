"""Issue 23: schemathesis' fuzzing phase must be able to generate `$triage` bodies from openapi.yaml.

A `contains` on `TriageParameters.parameter` made schemathesis place a "demanded" element meeting both
`contains` and `items`, and at `--seed 1` it gave up ("Cannot generate an array with 1 demanded
elements"), so the operation went unfuzzed. The request schemas now carry no `contains` (the service
checks the required part itself), and the fuzzer's strategy draws both body kinds.
"""
from __future__ import annotations

import schemathesis
import yaml
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.generation import GenerationMode

from tests.support import ROOT

SPEC = ROOT / "openapi.yaml"


def _walk(node, found: list, refs: list, where: str) -> None:
    if isinstance(node, dict):
        if "contains" in node:
            found.append(where)
        if isinstance(node.get("$ref"), str):
            refs.append(node["$ref"].rsplit("/", 1)[-1])
        for key, value in node.items():
            _walk(value, found, refs, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, found, refs, f"{where}[{i}]")


def test_no_request_schema_demands_elements_with_contains():
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]
    seen, todo, found = set(), ["TriageRequest"], []
    while todo:  # every schema a $triage body can reach
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            _walk(schemas[name], found, todo, name)
    assert "TriageParameters" in seen and found == []


def test_the_fuzzer_generates_both_kinds_of_triage_body():
    operation = schemathesis.openapi.from_path(str(SPEC))["/fhir/QuestionnaireResponse/$triage"]["POST"]
    kinds: set[str] = set()

    @seed(1)
    @settings(max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def draw(case):
        if isinstance(case.body, dict):
            kinds.add(str(case.body.get("resourceType")))

    draw()
    assert {"QuestionnaireResponse", "Parameters"} <= kinds, kinds
