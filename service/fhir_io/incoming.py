"""Read a $triage request: content negotiation, JSON, the QuestionnaireResponse and its answers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from flask import Request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import parse_options_header

from service.catalog import Catalog, ForeignForm, coding_key
from service.errors import FhirError, Issue
from service.fhir_io import structure

JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir"}
ACCEPTABLE = JSON_TYPES | {"*/*", "application/*"}
FORMAT_PARAMS = {"json", "application/json", "application/fhir+json"}
VALUE_TYPES = {"boolean": "valueBoolean", "integer": "valueInteger", "choice": "valueCoding"}
# JSON levels one resource may nest. A response to the leg-numbness Questionnaire needs about 12;
# much deeper structures only serve to exhaust the recursive validators (a 500 at ~300 levels).
MAX_DEPTH = 40


@dataclass(frozen=True)
class Answers:
    """The answers of one QuestionnaireResponse: linkId -> list of values (codes, bools, ints)."""

    values: dict[str, list[Any]]
    warnings: list[Issue]


# ---- HTTP level ------------------------------------------------------------------------------

def check_accept(request: Request) -> None:
    """406 unless the caller accepts FHIR JSON (R4)."""
    fmt = request.args.get("_format")
    if fmt is not None and fmt not in FORMAT_PARAMS:
        raise FhirError.one(406, "not-supported", f"_format={fmt} is not supported: use json.", "_format")
    if not request.headers.get("Accept"):
        return  # no preference: FHIR JSON will do
    for value, quality in request.accept_mimetypes:
        mimetype, params = parse_options_header(value)
        if quality > 0 and mimetype in ACCEPTABLE and _fhir_version_ok(params):
            return
    raise FhirError.one(406, "not-supported",
                        "Accept must allow application/fhir+json (fhirVersion=4.0): this server speaks "
                        "FHIR R4 JSON only.")


def _fhir_version_ok(params: dict[str, str]) -> bool:
    return params.get("fhirversion", "4.0") in ("4.0", "4.0.1")


def read_json(request: Request) -> Any:
    """The request body as JSON; 415 for another content type, 400 when it is not JSON."""
    if request.mimetype not in JSON_TYPES:
        raise FhirError.one(415, "not-supported", f"Content-Type {request.mimetype or 'none'} is not "
                            "supported: send application/fhir+json.")
    if not _fhir_version_ok(request.mimetype_params):
        raise FhirError.one(415, "not-supported", "Only FHIR R4 (fhirVersion=4.0) is supported.")
    try:
        body = request.get_data(cache=False)
    except HTTPException:
        raise  # 413 and the like: the error layer says them
    except Exception:  # noqa: BLE001 - the server's body reader refused it (e.g. bad chunked framing)
        raise FhirError.one(400, "structure", "The request body could not be read: broken chunked "
                            "encoding or a body that ended early.") from None
    if request.content_length is None:
        limit = request.max_content_length
        if limit is not None and len(body) >= limit:
            # A streamed (chunked) body is cut at the limit by werkzeug without an error: say 413.
            raise RequestEntityTooLarge()
    if not body.strip():
        raise FhirError.one(400, "structure", "The request body is empty: send a QuestionnaireResponse.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if err.msg == "depth limit exceeded":
            raise FhirError.one(400, "structure", "The body nests deeper than 1024 levels: this "
                                "service does not read it.") from None
        raise FhirError.one(400, "structure", f"The body is not valid JSON: {err.msg} "
                            f"(at character {err.pos}).") from None


# ---- Resource level ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TriageInput:
    """What a $triage body asks for: the resource, where it sits, and the rules version named."""

    qr: dict
    root: str  # FHIRPath of the QuestionnaireResponse in the body
    rules_version: str | None
    rules_version_where: str  # the element that named it, for error messages


def unwrap(body: Any, query_version: str | None) -> TriageInput:
    """The QuestionnaireResponse of a QuestionnaireResponse or Parameters body, and the rules version."""
    if not isinstance(body, dict):
        raise FhirError.one(422, "structure", "The body must be a JSON object (a FHIR resource).")
    rtype = body.get("resourceType")
    version, version_where = query_version, "rules-version"
    if rtype == "Parameters":
        qr, root = None, None
        params = body.get("parameter")
        if not isinstance(params, list):
            raise FhirError.one(422, "required", "Parameters.parameter must list the inputs.",
                                "Parameters.parameter")
        for i, param in enumerate(params):
            name = param.get("name") if isinstance(param, dict) else None
            if name == "questionnaireResponse":
                qr, root = param.get("resource"), f"Parameters.parameter[{i}].resource"
            elif name == "rulesVersion":
                if not isinstance(param.get("valueString"), str):
                    raise FhirError.one(422, "value", "rulesVersion must be a valueString.",
                                        f"Parameters.parameter[{i}]")
                if query_version and query_version != param["valueString"]:
                    raise FhirError.one(422, "conflict", "The rules-version query parameter and the "
                                        "rulesVersion parameter disagree.", f"Parameters.parameter[{i}]")
                version, version_where = param["valueString"], f"Parameters.parameter[{i}].valueString"
        if not isinstance(qr, dict):
            raise FhirError.one(422, "required", "Parameters must hold a part 'questionnaireResponse' "
                                "with a QuestionnaireResponse resource.", "Parameters.parameter")
        if qr.get("resourceType") != "QuestionnaireResponse":
            raise FhirError.one(422, "structure", "Parameter 'questionnaireResponse' must be a "
                                "QuestionnaireResponse.", f"{root}.resourceType")
        return TriageInput(check_depth(qr, root), root, version, version_where)
    if rtype == "QuestionnaireResponse":
        return TriageInput(check_depth(body, "QuestionnaireResponse"), "QuestionnaireResponse",
                           version, version_where)
    if rtype is None:
        raise FhirError.one(422, "required", "resourceType is missing: send a QuestionnaireResponse "
                            "or Parameters.", "resourceType")
    raise FhirError.one(422, "not-supported", f"resourceType {str(rtype)[:64]!r} is not accepted: send a "
                        "QuestionnaireResponse or Parameters.", "resourceType")


def check_depth(resource: dict, root: str) -> dict:
    """The resource, unless it nests deeper than MAX_DEPTH (422 naming the first element too deep)."""
    # Level by level, no paths, no recursion: it runs on every request, and it is what keeps
    # everything after it from seeing more than MAX_DEPTH levels (docs/performance.md). orjson
    # gives plain dicts and lists only, so `type(x) is` is exact.
    level: list[Any] = [resource]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise FhirError.one(422, "structure", f"The resource nests deeper than {MAX_DEPTH} levels "
                                "(this Questionnaire has two).", _first_too_deep(resource, root))
        deeper: list[Any] = []
        for node in level:
            for child in (node.values() if type(node) is dict else node):
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level = deeper
        depth += 1
    return resource


def _first_too_deep(node: Any, path: str, depth: int = 1) -> str:
    # Only called once the resource is known to be too deep, so recursion is bounded by MAX_DEPTH.
    if depth > MAX_DEPTH:
        return path
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        if isinstance(child, (dict, list)):
            here = f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}"
            found = _first_too_deep(child, here, depth + 1)
            if found:
                return found
    return ""


def validate_structure(qr: dict, root: str) -> None:
    """The resource is valid FHIR R4 (datatypes, cardinality, unknown elements) and uses valid codes."""
    # A compiled schema derived from the official HL7 R4 JSON schema (service/fhir_io/structure.py):
    # as strict as fhir.resources was here and stricter on value sets, at ~1/20 of the time.
    issues = structure.check(qr, root)
    if issues:
        raise FhirError(422, issues)


def check_against_questionnaire(qr: dict, root: str, catalog: Catalog) -> Answers:
    """Known questionnaire, a Patient subject, required answers present, answers of the right type."""
    issues: list[Issue] = []
    canonical = qr.get("questionnaire")
    url, _, version = (canonical or "").partition("|")
    if not canonical:
        issues.append(Issue("required", f"questionnaire is required: {catalog.questionnaire_url}",
                            f"{root}.questionnaire"))
    elif url != catalog.questionnaire_url or (version and version != catalog.questionnaire_version):
        issues.append(Issue("not-supported", f"Unknown questionnaire {canonical[:200]!r}: this service "
                            f"triages {catalog.questionnaire_url}|{catalog.questionnaire_version}.",
                            f"{root}.questionnaire"))
    if qr.get("status") == "entered-in-error":
        issues.append(Issue("business-rule", "A response entered in error cannot be triaged.",
                            f"{root}.status"))
    issues += _check_subject(qr.get("subject"), root)

    values: dict[str, list[Any]] = {}
    warnings: list[Issue] = []
    _walk(qr.get("item") or [], f"{root}.item", catalog, values, issues, warnings)
    for link_id in catalog.required_link_ids:
        if not values.get(link_id):
            issues.append(Issue("required", f"Required question {link_id!r} is not answered.",
                              f"{root}.item"))
    if issues:
        raise FhirError(422, issues)
    return Answers(values, warnings)


def check_against_form(qr: dict, root: str, foreign: ForeignForm) -> Answers:
    """The checks of check_against_questionnaire for another hospital's form and its mapping.

    Items of the form that the mapping does not use are set aside with a warning; an answer coding
    the mapping does not know is refused (422 naming the item); a required item answered with what
    the mapping calls not reported ("Unknown") counts as not answered.
    """
    form = foreign.form
    issues: list[Issue] = []
    _, _, version = (qr.get("questionnaire") or "").partition("|")
    if version and version != form.version:
        issues.append(Issue("not-supported", f"Unknown version {version[:40]!r} of {form.url}: this "
                            f"service maps {form.canonical}.", f"{root}.questionnaire"))
    if qr.get("status") == "entered-in-error":
        issues.append(Issue("business-rule", "A response entered in error cannot be triaged.",
                            f"{root}.status"))
    issues += _check_subject(qr.get("subject"), root)
    warnings: list[Issue] = []
    values: dict[str, list[Any]] = {}

    def walk(items: list, where: str) -> None:
        for i, item in enumerate(items):
            link_id = item.get("linkId") if isinstance(item, dict) else None
            if link_id in form.unmapped:
                if item.get("item"):  # a group of the form: its items may be mapped
                    walk(item["item"], f"{where}[{i}].item")
                elif item.get("answer"):
                    warnings.append(Issue("not-supported", f"{link_id!r} of {form.url} is not used "
                                          "by the triage (its mapping reads no fact from it): ignored.",
                                          f"{where}[{i}].linkId", severity="warning"))
            else:
                _walk([item], where, foreign, values, issues, warnings, index=i)

    walk(qr.get("item") or [], f"{root}.item")
    for link_id in foreign.required_link_ids:
        said = [v for v in values.get(link_id, []) if _reported(form, link_id, v)]
        if not said:
            issues.append(Issue("required", f"Required question {link_id!r} is not answered "
                                "(an answer that says 'unknown' is no answer).", f"{root}.item"))
    if issues:
        raise FhirError(422, issues)
    return Answers(values, warnings)


def _reported(form, link_id: str, key: Any) -> bool:
    from service.forms import NOT_REPORTED
    item = form.items[link_id]
    if item.type != "choice":
        return True
    system, _, code = key.partition("|")
    return item.answers.get((system, code)) is not NOT_REPORTED


def _check_subject(subject: Any, root: str) -> list[Issue]:
    where = f"{root}.subject"
    if not subject:
        return [Issue("required", "subject (a Patient reference) is required.", where)]
    ref, rtype = subject.get("reference"), subject.get("type")
    if rtype not in (None, "Patient"):
        return [Issue("invalid", "subject must reference a Patient.", f"{where}.type")]
    if ref is None:
        if subject.get("identifier"):
            return []
        return [Issue("required", "subject needs a reference or an identifier.", where)]
    if ref.startswith(("urn:uuid:", "urn:oid:", "#")):
        return []
    parts = ref.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" or (len(parts) >= 4 and parts[-4] == "Patient"):
        return []
    return [Issue("invalid", "subject.reference must point to a Patient (Patient/{id}).",
                  f"{where}.reference")]


def _walk(items: list[dict], where: str, catalog: Catalog | ForeignForm, values: dict[str, list[Any]],
          issues: list[Issue], warnings: list[Issue], index: int = 0) -> None:
    for i, item in enumerate(items, index):
        here = f"{where}[{i}]"
        link_id = item.get("linkId")
        spec = catalog.items.get(link_id)
        if spec is None:
            warnings.append(Issue("not-found", f"Unknown linkId {str(link_id)[:80]!r} ignored.",
                                  f"{here}.linkId", severity="warning"))
            continue
        if link_id in values:
            issues.append(Issue("duplicate", f"linkId {link_id!r} appears more than once.",
                                f"{here}.linkId"))
            continue
        answers = item.get("answer") or []
        if spec.type == "group":
            if answers:
                issues.append(Issue("structure", f"Group {link_id!r} cannot have answers.",
                                    f"{here}.answer"))
            values[link_id] = []
            _walk(item.get("item") or [], f"{here}.item", catalog, values, issues, warnings)
            continue
        if item.get("item"):
            warnings.append(Issue("not-supported", f"Items nested under {link_id!r} ignored.",
                                  f"{here}.item", severity="warning"))
        if len(answers) > 1 and not spec.repeats:
            issues.append(Issue("structure", f"{link_id!r} takes one answer, not {len(answers)}.",
                                f"{here}.answer"))
            continue
        got = []
        for j, answer in enumerate(answers):
            value = _answer_value(answer, spec, f"{here}.answer[{j}]", issues, catalog.answers_system)
            if value is not None:
                got.append(value)
        if len(got) > 1 and len(set(map(repr, got))) != len(got):  # one answer repeats nothing
            issues.append(Issue("duplicate", f"{link_id!r} repeats the same answer.", f"{here}.answer"))
        values[link_id] = got


def _answer_value(answer: dict, spec, where: str, issues: list[Issue], system: str) -> Any:
    keys = [k for k in answer if k.startswith("value")]
    wanted = VALUE_TYPES.get(spec.type)
    if len(keys) != 1 or keys[0] != wanted:
        got = ", ".join(keys) or "no value"
        issues.append(Issue("value", f"{spec.link_id!r} is a {spec.type} question: the answer needs "
                            f"exactly one {wanted}, not {got}.", where))
        return None
    value = answer[wanted]
    if spec.type == "boolean":
        ok = isinstance(value, bool)
    elif spec.type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and ((spec.min_value is not None and value < spec.min_value)
                   or (spec.max_value is not None and value > spec.max_value)):
            issues.append(Issue("value", f"{spec.link_id!r} must be between {spec.min_value} and "
                                f"{spec.max_value}.", f"{where}.{wanted}"))
            return None
    else:
        ok = isinstance(value, dict)
        if ok and system is None:  # another hospital's form: each coding names its own system
            key = coding_key(value.get("system"), value.get("code"))
            if key not in spec.codes:
                issues.append(Issue("code-invalid", f"{spec.link_id!r}: the answer "
                                    f"{key[:120]} is not one the form's mapping knows; it maps "
                                    f"{', '.join(sorted(spec.codes))}.", f"{where}.{wanted}"))
                return None
            value = key
        elif ok:
            if value.get("system") != system or value.get("code") not in spec.codes:
                issues.append(Issue("code-invalid", f"{spec.link_id!r} takes codes "
                                    f"{', '.join(sorted(spec.codes))} of {system}; got "
                                    f"{str(value.get('system'))[:80]}|{str(value.get('code'))[:40]}.",
                                    f"{where}.{wanted}"))
                return None
            value = value["code"]
    if not ok:
        issues.append(Issue("value", f"{spec.link_id!r} needs a {spec.type} value.", f"{where}.{wanted}"))
        return None
    return value
