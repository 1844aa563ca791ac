"""Read a $triage request: content negotiation, JSON, the QuestionnaireResponse and its answers."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable
from urllib.parse import unquote

import orjson
from flask import Request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

from service.catalog import Catalog, ForeignForm, coding_key
from service.fhir_io.outcome import FhirError, Issue
from service.forms import required_link_ids
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
    accept = request.headers.get("Accept")
    if not accept:
        return  # no preference: FHIR JSON will do
    if not _accepts_fhir_json(accept):
        raise FhirError.one(406, "not-supported",
                            "Accept must allow application/fhir+json (fhirVersion=4.0): this server "
                            "speaks FHIR R4 JSON only.")


@lru_cache(maxsize=32)
def _accepts_fhir_json(accept: str) -> bool:
    """Whether an Accept header allows FHIR R4 JSON (the parse `request.accept_mimetypes` makes).

    A pure function of the header, and a client sends the same one on every call: it is parsed once
    per distinct value (~50 µs a call otherwise, docs/performance.md). The cache holds at most 32
    headers, each within gunicorn's header size limit."""
    for value, quality in parse_accept_header(accept, MIMEAccept):
        mimetype, params = parse_options_header(value)
        if quality > 0 and mimetype in ACCEPTABLE and _fhir_version_ok(params):
            return True
    return False


def _fhir_version_ok(params: dict[str, str]) -> bool:
    return params.get("fhirversion", "4.0") in ("4.0", "4.0.1")


def read_json(request: Request, types: Iterable[str] = JSON_TYPES, send: str = "application/fhir+json",
              what: str = "a QuestionnaireResponse", root: str | None = None) -> Any:
    """The request body as JSON; 415 for another content type, 400 when it is not JSON or an object
    repeats a key. The one body reader of the service: $triage and the CDS Hooks calls (`types`,
    `send` and `what` say what the caller expects; `root` starts the paths of its messages: None
    for FHIRPath from the resource, "$" for a plain JSON body)."""
    return read_json_with_depth(request, types, send, what, root)[0]


def read_json_with_depth(request: Request, types: Iterable[str] = JSON_TYPES,
                         send: str = "application/fhir+json", what: str = "a QuestionnaireResponse",
                         root: str | None = None) -> tuple[Any, int]:
    """read_json's body and how many levels it nests, found by the same walk as its repeated-key
    check (for unwrap, which then need not walk the resource again)."""
    if (request.mimetype or "").lower() not in types:
        raise FhirError.one(415, "not-supported", f"Content-Type {request.mimetype or 'none'} is not "
                            f"supported: send {send}.")
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
        raise FhirError.one(400, "structure", f"The request body is empty: send {what}.")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if err.msg == "depth limit exceeded":
            raise FhirError.one(400, "structure", "The body nests deeper than 1024 levels: this "
                                "service does not read it.") from None
        raise FhirError.one(400, "structure", f"The body is not valid JSON: {err.msg} "
                            f"(at character {err.pos}).") from None
    keys, depth = _keys_and_depth(parsed)
    return reject_duplicate_keys(body, parsed, root, keys), depth


# ---- Resource level ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TriageInput:
    """What a $triage body asks for: the resource, where it sits, and the rules version named."""

    qr: dict
    root: str  # FHIRPath of the QuestionnaireResponse in the body
    rules_version: str | None
    rules_version_where: str  # the element that named it, for error messages
    bundle_type: str | None = None  # Parameters part bundleType (valueCode), if given


def unwrap(body: Any, query_version: str | None, depth: int | None = None) -> TriageInput:
    """The QuestionnaireResponse of a QuestionnaireResponse or Parameters body, and the rules version.

    `depth`: how many levels the body nests, when known (read_json_with_depth; check_depth)."""
    if not isinstance(body, dict):
        raise FhirError.one(422, "structure", "The body must be a JSON object (a FHIR resource).")
    rtype = body.get("resourceType")
    version, version_where = query_version, "rules-version"
    if rtype == "Parameters":
        qr, root, bundle_type = None, None, None
        params = body.get("parameter")
        if not isinstance(params, list):
            raise FhirError.one(422, "required", "Parameters.parameter must list the inputs.",
                                "Parameters.parameter")
        seen: set[str] = set()
        for i, param in enumerate(params):
            name = param.get("name") if isinstance(param, dict) else None
            if name in ("questionnaireResponse", "rulesVersion", "bundleType"):  # any JSON value
                if name in seen:
                    raise FhirError.one(422, "duplicate", f"Parameters has more than one {name!r} "
                                        "part: send one.", f"Parameters.parameter[{i}]")
                seen.add(name)
            if name == "questionnaireResponse":
                qr, root = param.get("resource"), f"Parameters.parameter[{i}].resource"
            elif name == "rulesVersion":
                if not isinstance(param.get("valueString"), str) or not param["valueString"]:
                    raise FhirError.one(422, "value", "rulesVersion must be a non-empty valueString.",
                                        f"Parameters.parameter[{i}]")
                if query_version and query_version != param["valueString"]:
                    raise FhirError.one(422, "conflict", "The rules-version query parameter and the "
                                        "rulesVersion parameter disagree.", f"Parameters.parameter[{i}]")
                version, version_where = param["valueString"], f"Parameters.parameter[{i}].valueString"
            elif name == "bundleType":
                bundle_type = check_bundle_type(param.get("valueCode"),
                                                f"Parameters.parameter[{i}].valueCode")
        if not isinstance(qr, dict):
            raise FhirError.one(422, "required", "Parameters must hold a part 'questionnaireResponse' "
                                "with a QuestionnaireResponse resource.", "Parameters.parameter")
        if qr.get("resourceType") != "QuestionnaireResponse":
            raise FhirError.one(422, "structure", "Parameter 'questionnaireResponse' must be a "
                                "QuestionnaireResponse.", f"{root}.resourceType")
        return TriageInput(check_depth(qr, root, depth), root, version, version_where, bundle_type)
    if rtype == "QuestionnaireResponse":
        return TriageInput(check_depth(body, "QuestionnaireResponse", depth), "QuestionnaireResponse",
                           version, version_where)
    if rtype is None:
        raise FhirError.one(422, "required", "resourceType is missing: send a QuestionnaireResponse "
                            "or Parameters.", "resourceType")
    raise FhirError.one(422, "not-supported", f"resourceType {str(rtype)[:64]!r} is not accepted: send a "
                        "QuestionnaireResponse or Parameters.", "resourceType")


def check_depth(resource: dict, root: str, within: int | None = None) -> dict:
    """The resource, unless it nests deeper than MAX_DEPTH (422 naming the first element too deep).

    `within`: how many levels the JSON body holding the resource nests, when known
    (read_json_with_depth): a body within MAX_DEPTH holds no deeper resource, and is not walked again."""
    if within is not None and within <= MAX_DEPTH:
        return resource
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
    issues += check_subject(qr, root)

    values: dict[str, list[Any]] = {}
    warnings = status_warnings(qr, root)
    _walk(qr.get("item") or [], f"{root}.item", catalog, values, issues, warnings)
    for link_id in required_link_ids(catalog.items):
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
    issues += check_subject(qr, root)
    warnings = status_warnings(qr, root)
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
    for link_id in required_link_ids(foreign.items):
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


# ---- hostile or ambiguous input (issue #11) -------------------------------------------------------

PATIENT_PATH = re.compile(r"Patient/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?")
ABSOLUTE_BASE = re.compile(r"https?://[A-Za-z0-9\-.]+(:[0-9]{1,5})?(/[A-Za-z0-9\-._~%!$&'()*+,;=:@]+)*/")
# Strings the service copies from the request into every resource it returns (subject, identifier):
# a reference or a display has no business being longer, and each would be copied several times.
MAX_COPIED_CHARS = 1024
# The records store keeps the subject reference in a 255-character column (service/records/schema.py,
# audit_event.patient): a longer one is refused here, the same on SQLite and PostgreSQL.
MAX_REFERENCE_CHARS = 255
QUERY_VERSION_NAMES = ("rules-version", "rulesVersion")
TRIAGE_QUERY = frozenset({*QUERY_VERSION_NAMES, "bundle-type", "_format"})
BUNDLE_TYPES = ("collection", "transaction")  # service/fhir_io/store_ready.py makes the transaction


def check_bundle_type(value: Any, where: str) -> str:
    """`value` if it names a Bundle type $triage answers with, else 400 naming `where`."""
    if value not in BUNDLE_TYPES:
        shown = repr(value)[:64] if isinstance(value, str) else "missing or not a code"
        raise FhirError.one(400, "value", f"{where} is {shown}: use collection (the default) or "
                            "transaction (ready to store: conditional creates the EHR can post as "
                            "they are).", where)
    return value


def query_bundle_type(args: Any) -> str | None:
    """The Bundle type a $triage query asks for (bundle-type), None when it names none."""
    given = args.getlist("bundle-type")
    if not given:
        return None
    if len(given) > 1:
        raise FhirError.one(400, "duplicate", f"bundle-type is given {len(given)} times: name one.",
                            "bundle-type")
    return check_bundle_type(given[0], "bundle-type")


def query_rules_version(args: Any) -> tuple[str | None, str]:
    """The rules version a $triage query names, and the parameter that named it.

    400 for an unknown query parameter (a misspelt pin must never run other rules than asked), and
    for a version named twice, or by both names with different values.
    """
    unknown = sorted(set(args) - TRIAGE_QUERY)
    if unknown:
        raise FhirError.one(400, "not-supported", f"Unknown query parameter(s) of $triage: "
                            f"{', '.join(unknown)[:120]}; known: rules-version (or rulesVersion), bundle-type, "
                            "_format.",
                            unknown[0][:64])
    given = [(name, value) for name in QUERY_VERSION_NAMES for value in args.getlist(name)]
    if not given:
        return None, "rules-version"
    names = [name for name, _ in given]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise FhirError.one(400, "duplicate", f"{twice} is given {names.count(twice)} times: name one "
                            "rules version.", twice)
    if len({value for _, value in given}) > 1:
        raise FhirError.one(400, "conflict", "rules-version and rulesVersion name different versions: "
                            "name one.", "rulesVersion")
    if not given[0][1]:
        raise FhirError.one(400, "required", f"{given[0][0]} is empty: name a version, or leave the "
                            "parameter out for the default.", given[0][0])
    return given[0][1], given[0][0]


def reject_duplicate_keys(body: bytes, parsed: Any, root: str | None = None,
                          keys: int | None = None) -> Any:
    """`parsed`, unless an object of the JSON `body` repeats a key (400 naming it and where).
    `keys`: how many keys `parsed`'s objects have, when the caller has counted them."""
    # orjson keeps the last of two equal keys, so '"valueBoolean": true, "valueBoolean": false'
    # would read as false. The full check (json with an object_pairs_hook) costs several orjson
    # parses, so it runs only when a cheap test cannot rule duplicates out: with the JSON
    # whitespace taken out, every key of the body is a '":' (strings can add more, never fewer),
    # so as many '":' as the parsed objects have keys means no key came twice.
    if keys is None:
        keys = _keys_and_depth(parsed)[0]
    if body.translate(None, b" \t\r\n").count(b'":') == keys:
        return parsed
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        obj = dict(items)
        if len(obj) < len(items) and not found:
            seen: set[str] = set()
            found.append(next(k for k, _ in items if k in seen or seen.add(k)))
            return _Repeats(obj)
        return obj

    tree = json.loads(body, object_pairs_hook=pairs)
    if not found:
        return parsed
    where = _path_to_repeats(tree, root)
    if root is not None and where.startswith(root + "."):
        where = where[len(root) + 1:]  # context.patientId, as the CDS Hooks refusals name fields
    key = found[0]
    raise FhirError.one(400, "structure", f"The JSON object at {where} has the key {key[:64]!r} more "
                        "than once: say each element once.", f"{where}.{key[:64]}")


class _Repeats(dict):
    """An object of the body that repeated a key (marks where, for the message)."""


def _keys_and_depth(node: Any) -> tuple[int, int]:
    """How many keys the objects of `node` have together, and how many levels it nests: one walk,
    level by level (no recursion)."""
    count, depth, level = 0, 0, [node] if type(node) is dict or type(node) is list else []
    while level:
        depth += 1
        deeper: list[Any] = []
        for item in level:
            if type(item) is dict:
                count += len(item)
                children = item.values()
            else:
                children = item
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level = deeper
    return count, depth


def _path_to_repeats(tree: Any, start: str | None = None) -> str:
    """The FHIRPath of the first _Repeats object in `tree` (breadth first, no recursion), from the
    resource (or `start`)."""
    root = tree.get("resourceType") if isinstance(tree, dict) else None
    if start is None:
        start = str(root) if isinstance(root, str) and root.isalpha() else "$this"
    level = [(tree, start)]
    while level:
        deeper = []
        for node, path in level:
            if isinstance(node, _Repeats):
                return path
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(child, (dict, list)):
                    deeper.append((child, f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}"))
        level = deeper
    return start


def check_modifiers(qr: dict, root: str) -> None:
    """422 for a modifierExtension or implicitRules anywhere in the QuestionnaireResponse.

    FHIR: a system must refuse a resource with a modifier it does not understand, as a modifier can
    change the meaning of what it sits on (e.g. negate an answer); this service understands none.
    """
    # After validate_structure a modifierExtension can only sit on the resource, its items and
    # their answers (the BackboneElements of a QuestionnaireResponse; R4 datatypes have none), or
    # anywhere in a contained resource: look there only, and make paths only when one is found.
    if "modifierExtension" in qr or "implicitRules" in qr or "contained" in qr \
            or _items_have_modifiers(qr.get("item")):
        issues = _modifier_issues(qr, root)
        if issues:
            raise FhirError(422, issues)


def _items_have_modifiers(items: Any) -> bool:
    stack = [items] if type(items) is list else []
    while stack:
        for item in stack.pop():
            if type(item) is not dict:
                continue
            if "modifierExtension" in item:
                return True
            answers = item.get("answer")
            if type(answers) is list:
                for answer in answers:
                    if type(answer) is dict:
                        if "modifierExtension" in answer:
                            return True
                        if type(answer.get("item")) is list:
                            stack.append(answer["item"])
            if type(item.get("item")) is list:
                stack.append(item["item"])
    return False


def _modifier_issues(qr: dict, root: str) -> list[Issue]:
    issues: list[Issue] = []
    level: list[tuple[Any, str]] = [(qr, root)]
    while level:
        deeper: list[tuple[Any, str]] = []
        for node, path in level:
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                here = f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}"
                if key in ("modifierExtension", "implicitRules") and isinstance(node, dict):
                    issues.append(Issue("not-supported", f"{key} is not understood by this service, "
                                        "so the resource cannot be triaged safely.", here))
                elif isinstance(child, (dict, list)):
                    deeper.append((child, here))
        level = deeper
    return issues


def check_subject(qr: dict, root: str) -> list[Issue]:
    """The subject must say which Patient, in a way the returned resources can still resolve."""
    subject, where = qr.get("subject"), f"{root}.subject"
    if not isinstance(subject, dict) or not subject:
        return [Issue("required", "subject (a Patient reference) is required.", where)]
    issues = _long_strings(subject, where) + _long_strings(qr.get("identifier"), f"{root}.identifier")
    if issues:
        return issues
    if subject.get("type") not in (None, "Patient"):
        return [Issue("invalid", "subject must reference a Patient.", f"{where}.type")]
    ref = subject.get("reference")
    if ref is None:
        ident = subject.get("identifier")
        if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"].strip():
            return []  # a logical reference by identifier
        if ident is not None:
            return [Issue("required", "subject.identifier needs a value (and should name its system).",
                          f"{where}.identifier")]
        return [Issue("required", "subject needs a reference or an identifier.", where)]
    if not isinstance(ref, str):
        return [Issue("invalid", "subject.reference must be a string.", f"{where}.reference")]
    if len(ref) > MAX_REFERENCE_CHARS:
        return [Issue("too-long", f"subject.reference is {len(ref)} characters long; at most "
                      f"{MAX_REFERENCE_CHARS} are accepted.", f"{where}.reference")]
    if ref.startswith("#"):
        return [Issue("not-supported", "A contained Patient is not accepted: the returned "
                      "RiskAssessment and ServiceRequests could not resolve it. Reference the Patient "
                      "as Patient/{id}, by its absolute URL, or by identifier.", f"{where}.reference")]
    match = PATIENT_PATH.fullmatch(ref)
    if match is None:
        base, sep, rest = ref.rpartition("/Patient/")
        if sep and ABSOLUTE_BASE.fullmatch(base + "/") and not any(
                seg in (".", "..") for seg in unquote(base).split("/")):
            match = PATIENT_PATH.fullmatch("Patient/" + rest)
    if match is None or match["id"].strip(".") == "":
        return [Issue("invalid", "subject.reference must be Patient/{id} (a FHIR id: letters, digits, "
                      "'-' and '.', at most 64) or an http(s) URL ending in /Patient/{id}.",
                      f"{where}.reference")]
    return []


def _long_strings(node: Any, where: str) -> list[Issue]:
    """Issues for strings longer than MAX_COPIED_CHARS in `node` (a small element: subject, identifier)."""
    if isinstance(node, str):
        if len(node) > MAX_COPIED_CHARS:
            return [Issue("too-long", f"{where.rsplit('.', 1)[-1]} is {len(node)} characters long; "
                          f"at most {MAX_COPIED_CHARS} are accepted.", where)]
        return []
    if isinstance(node, dict):
        return [i for key, child in node.items() for i in _long_strings(child, f"{where}.{key}")]
    if isinstance(node, list):
        return [i for n, child in enumerate(node) for i in _long_strings(child, f"{where}[{n}]")]
    return []


def status_warnings(qr: dict, root: str) -> list[Issue]:
    """A warning for an unfinished form: it is triaged (a red flag in it still counts), but said."""
    status = qr.get("status")
    if status in ("in-progress", "stopped"):
        return [Issue("incomplete", f"The QuestionnaireResponse is {status}: it was triaged on the "
                      "answers given so far, and unanswered questions count as unknown, never as no. "
                      "Triage the completed form again.", f"{root}.status", severity="warning")]
    return []
