"""FHIR R4 structure checks of incoming resources with a compiled JSON schema.

The schema (fhir-r4-triage.schema.json beside this file) is derived from the official HL7 R4 JSON
schema by scripts/derive-fhir-schema; jsonschema-rs compiles it once per process. It checks what
fhir.resources checked (datatypes, regexes, cardinality, unknown elements, one value[x]) plus the
value sets the official schema carries (QuestionnaireResponse.status), at a small fraction of its
cost (docs/performance.md); tests/unit/fhir_io/test_structure.py says where the two agree.
"""
from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import jsonschema_rs
import orjson

from service.fhir_io.outcome import Issue

SCHEMA_PATH = Path(__file__).with_name("fhir-r4-triage.schema.json")
CALENDAR_FORMAT = "fhir-calendar-date"
MAX_ISSUES = 20  # a garbage body can fail thousands of ways: the first ones say enough


def is_calendar_date(value: str) -> bool:
    """False for a date that matches FHIR's regex but not the calendar (2026-02-30, 2026-02-29)."""
    try:
        year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    except ValueError:
        return True  # a year or year-month, or no date at all: the schema's pattern judges that
    if len(value) < 10 or value[4] != "-" or value[7] != "-" or not (
            year >= 1 and 1 <= month <= 12 and 1 <= day <= 31):
        return True  # the pattern rejects these already: one message is enough
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def read_schema() -> dict:
    """The derived schema as data. Read where it is needed (each compile, and once at import for what
    the error messages need), not kept: as Python objects it is about 1 MB in every worker."""
    return orjson.loads(SCHEMA_PATH.read_bytes())


def _compile(definition: str) -> jsonschema_rs.Draft7Validator:
    """The compiled schema of one FHIR type of the derived schema (about 10 ms)."""
    schema = read_schema()
    if definition not in schema["definitions"]:
        raise ValueError(f"{definition} is not in {SCHEMA_PATH.name}: add it to scripts/derive-fhir-schema")
    return jsonschema_rs.Draft7Validator({**schema, "$ref": f"#/definitions/{definition}"},
                                         formats={CALENDAR_FORMAT: is_calendar_date},
                                         validate_formats=True, offline=True)


_validator = functools.cache(_compile)  # once per process and definition


def _one_ofs(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Each oneOf of the schema by its schema path (a value[x]'s alternatives)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        if key == "oneOf":
            yield path + (key,), child
        yield from _one_ofs(child, path + (key,))


def _read_what_errors_need() -> tuple[list[str], dict[tuple, Any]]:
    schema = read_schema()
    primitives = sorted((n for n in schema["definitions"] if n[0].islower()), key=len, reverse=True)
    return primitives, dict(_one_ofs(schema))


PRIMITIVES, ONE_OFS = _read_what_errors_need()


def compile_request_schema() -> None:
    """Compile the schema $triage checks with now: create_app calls this before gunicorn forks its
    workers, after the start-up check of mappings/, so that it reuses the memory that check's
    schemas left free (compiled at import, it cost each worker about 1 MB more)."""
    _validator("QuestionnaireResponse")


def check(resource: Any, root: str, definition: str = "QuestionnaireResponse",
          once: bool = False) -> list[Issue]:
    """The problems of `resource` as a FHIR R4 `definition`, with FHIRPath expressions under `root`.

    `resource` comes from orjson, which refuses JSON nested deeper than 1024 levels: far deeper
    Python structures (20,000 levels) would overflow jsonschema-rs' stack.

    `once`: the schema is compiled for this call and dropped, for a check made at start and never
    per request (mappings/). Kept, each compiled schema holds about 1.5 MB, in the master and so in
    every worker; dropped one after the other, each reuses the memory of the one before.
    """
    validator = _compile(definition) if once else _validator(definition)
    if validator.is_valid(resource):  # the fast path: no error objects built for good input
        return []
    issues: list[Issue] = []
    seen = set()
    errors = validator.iter_errors(resource)
    for error in errors:
        for issue in _issues(error, root):
            key = (issue.code, issue.diagnostics, issue.expression)
            if key not in seen:
                seen.add(key)
                issues.append(issue)
        if len(issues) >= MAX_ISSUES:
            break
    if len(issues) > MAX_ISSUES or next(errors, None) is not None:
        issues = issues[:MAX_ISSUES]
        issues.append(Issue("too-costly", f"Only the first {MAX_ISSUES} problems are reported.", root))
    return issues


def _path(root: str, instance_path) -> str:
    return root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in instance_path)


def _shown(value: Any) -> str:
    """A value as JSON, short: enough to recognise, never a whole sub-document."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _definition(schema_path) -> str:
    """The FHIR type whose rule failed (the last definition the schema path went through)."""
    parts = list(schema_path)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "definitions":
            first, *rest = str(parts[i + 1]).split("_")  # QuestionnaireResponse_Item
            return ".".join([first, *(r[0].lower() + r[1:] for r in rest)])
    return "resource"


def _subschema(schema_path) -> Any:
    """The oneOf a OneOf error's schema path points at."""
    return ONE_OFS[tuple(schema_path)]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    return {str: "a string", list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")


def _primitive(error: jsonschema_rs.ValidationError) -> str:
    """The FHIR primitive a failing value should have been: dateTime, uri, integer ..."""
    fhir_type = _definition(error.schema_path)
    if fhir_type[0].islower():
        return fhir_type  # reached through {"$ref": "#/definitions/dateTime"}
    prop = next((p for p in reversed(list(error.instance_path)) if isinstance(p, str)), "")
    for name in PRIMITIVES:  # written inline: valueDateTime, valueInteger, ...
        if prop.endswith(name[0].upper() + name[1:]):
            return name
    return "value"


def _issues(error: jsonschema_rs.ValidationError, root: str) -> list[Issue]:
    kind, where = error.kind, _path(root, error.instance_path)
    name, value, fhir_type = type(kind).__name__, error.instance, _definition(error.schema_path)
    if fhir_type == "ContainedResource":
        if name in ("Required", "Enum"):
            return [Issue("structure", f"A contained resource must name an R4 resourceType, not "
                          f"{_shown(value) if name == 'Enum' else 'none'}.", f"{where}.resourceType"
                          if name == "Required" else where)]
    if name == "AdditionalProperties":
        return [Issue("structure", f"Unknown element {prop!r}: {fhir_type} has no such element in "
                      f"FHIR R4.", f"{where}.{prop}") for prop in kind.unexpected]
    if name == "Required":
        return [Issue("required", f"{fhir_type}.{kind.property} is required.", f"{where}.{kind.property}")]
    if name == "Enum":
        options = [str(v) for v in kind.options]
        allowed = ", ".join(options) if len(options) <= 12 else f"the {len(options)} codes allowed here"
        return [Issue("code-invalid", f"{_shown(value)} is not one of {allowed}.", where)]
    if name == "Constant":
        return [Issue("structure", f"{_shown(value)} must be {_shown(kind.value)}.", where)]
    if name == "Type":
        wanted = " or ".join(str(t) for t in kind.types)
        return [Issue("structure", f"Expected a JSON {wanted} here, not {_json_type(value)}.", where)]
    if name == "Pattern":
        return [Issue("value", f"{_shown(value)} is not a valid FHIR {_primitive(error)}.", where)]
    if name == "Format":
        return [Issue("value", f"{_shown(value)} is not a valid FHIR {_primitive(error)}: no such day "
                      f"in the calendar.", where)]
    if name in ("Minimum", "Maximum"):
        return [Issue("value", f"{_shown(value)} is out of range for a FHIR {_primitive(error)} "
                      f"(a 32-bit integer).", where)]
    if name in ("OneOfMultipleValid", "OneOfNotValid"):
        choices = [s["required"][0] for s in _subschema(error.schema_path)]
        given = [c for c in choices if isinstance(value, dict) and c in value]
        stem = _choice_stem(choices)
        if name == "OneOfMultipleValid":
            return [Issue("structure", f"{stem}[x] takes one type only, not {', '.join(given)}.", where)]
        return [Issue("required", f"{fhir_type}.{stem}[x] is required.", where)]
    return [Issue("structure", error.message[:200], where)]


def _choice_stem(choices: list[str]) -> str:
    """'value' for valueBoolean, valueCoding, ... (the common prefix of a choice element's names)."""
    stem = choices[0]
    for choice in choices[1:]:
        while not choice.startswith(stem):
            stem = stem[:-1]
    while stem and stem[-1].isupper():  # deceasedBoolean/deceasedDateTime share "deceased"
        stem = stem[:-1]
    return stem
