"""Malformed, hostile and unexpected requests (issue #6, item 1).

Each case goes through the HTTP API twice: the Flask test client, and a real gunicorn on 127.0.0.1
(sockets, gunicorn's own parsing, the body limit on a real connection). Each must get the status
DESIGN.md gives, a FHIR OperationOutcome whose issue names the offending element where there is one,
no stack trace, and the service must triage a good request right after it.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import requests

from tests.support.servers import gunicorn
from tests.support import ANSWERS_SYSTEM, FHIR_JSON, TRIAGE, example, questionnaire_response

GOOD = example("qr-emergency-stroke")
BASE_ANSWERS = {"numbness.side": "left", "numbness.onset": "sudden", "history.age": 50}
QR = "QuestionnaireResponse"
SIDE = f"{QR}.item[0].item[0].answer[0]"  # numbness.side in qr() below
AGE = f"{QR}.item[1].item[0].answer[0].valueInteger"  # history.age in qr() below


def qr(mutate: Callable[[dict], Any] | None = None) -> dict:
    """A valid response (side, onset, age), changed by `mutate`."""
    body = questionnaire_response(BASE_ANSWERS)
    if mutate:
        mutate(body)
    return body


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


def age_raw(literal: str) -> bytes:
    """A response whose age answer is written as the raw JSON `literal` (NaN, 1e400, ...)."""
    return js(qr()).replace(b'"valueInteger": 50', b'"valueInteger": ' + literal.encode())


def nested_items(levels: int) -> bytes:
    inner = '{"linkId": "numbness"}'
    for _ in range(levels):
        inner = '{"linkId": "numbness", "item": [%s]}' % inner
    body = qr()
    body["item"] = ["PLACEHOLDER"]
    return js(body).replace(b'"PLACEHOLDER"', inner.encode())


def params(*parts: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def setter(path: str, value: Any) -> Callable[[dict], None]:
    """Set (or with value DELETE, remove) a dotted path such as 'item.0.item.0.answer'."""
    def mutate(body: dict) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        key = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return mutate


DELETE = object()


@dataclass
class Case:
    id: str
    body: bytes | dict | list | str | None
    status: int
    expression: str | None = None  # the first issue's expression; None: the request has no element
    says: str = ""  # a word or two the first issue's diagnostics must contain
    method: str = "POST"
    path: str = TRIAGE
    headers: dict[str, str] = field(default_factory=dict)

    def data(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return js(self.body)

    def all_headers(self) -> dict[str, str]:
        return {"Content-Type": FHIR_JSON, **self.headers} if self.method == "POST" else self.headers


CASES = [
    # ---- not JSON, or not readable: 400
    Case("malformed-json", b'{"resourceType": "QuestionnaireResponse",', 400, says="not valid JSON"),
    Case("trailing-garbage", js(GOOD) + b"}", 400, says="not valid JSON"),
    Case("empty-body", b"", 400, says="empty"),
    Case("whitespace-body", b" \r\n\t ", 400, says="empty"),
    Case("xml-labelled-json", b'<QuestionnaireResponse xmlns="http://hl7.org/fhir"/>', 400,
         says="not valid JSON"),
    Case("nan", age_raw("NaN"), 400, says="not valid JSON"),
    Case("infinity", age_raw("Infinity"), 400, says="not valid JSON"),
    Case("minus-infinity", age_raw("-Infinity"), 400, says="not valid JSON"),
    Case("invalid-utf8", js(GOOD).replace(b"Patient/", b"Patient/\xff\xfe\xc3("), 400, says="UTF-8"),
    Case("lone-surrogate", js(GOOD).replace(b"Patient/", b"Patient/\\ud800"), 400, says="not valid JSON"),
    Case("number-beyond-double", age_raw("1e400"), 400, says="infinity"),
    Case("100000-nested-brackets", b"[" * 100_000 + b"]" * 100_000, 400, says="deeper than 1024"),
    Case("thousands-of-nested-items", nested_items(3000), 400, says="deeper than 1024"),
    # ---- wrong media types: 415, 406
    Case("text-plain", js(GOOD), 415, headers={"Content-Type": "text/plain"}, says="text/plain"),
    Case("form-encoded", b"resourceType=QuestionnaireResponse", 415,
         headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case("xml", b'<QuestionnaireResponse xmlns="http://hl7.org/fhir"/>', 415,
         headers={"Content-Type": "application/fhir+xml"}, says="application/fhir+xml"),
    Case("other-fhir-version", js(GOOD), 415,
         headers={"Content-Type": "application/fhir+json; fhirVersion=3.0"}, says="R4"),
    Case("accept-xml", GOOD, 406, headers={"Accept": "application/fhir+xml"}, says="Accept"),
    Case("accept-fhir-3", GOOD, 406, headers={"Accept": "application/fhir+json; fhirVersion=3.0"}),
    Case("accept-html", GOOD, 406, headers={"Accept": "text/html"}),
    Case("format-xml", GOOD, 406, path=TRIAGE + "?_format=xml", expression="_format"),
    # ---- JSON, but not the resource: 422
    Case("json-array", [GOOD], 422, says="JSON object"),
    Case("json-string", "\"QuestionnaireResponse\"", 422, says="JSON object"),
    Case("json-number", "42", 422, says="JSON object"),
    Case("json-null", "null", 422, says="JSON object"),
    Case("wrong-resource-type", {**GOOD, "resourceType": "Patient"}, 422, "resourceType", "Patient"),
    Case("missing-resource-type", {k: v for k, v in GOOD.items() if k != "resourceType"}, 422,
         "resourceType", "missing"),
    Case("resource-type-not-a-string", {**GOOD, "resourceType": ["QuestionnaireResponse"]}, 422,
         "resourceType"),
    Case("unknown-element", qr(setter("favouriteColour", "blue")), 422, f"{QR}.favouriteColour"),
    Case("item-not-a-list", qr(setter("item", {"linkId": "numbness"})), 422, f"{QR}.item"),
    Case("answer-not-a-list", qr(setter("item.0.item.0.answer", {"valueBoolean": True})), 422,
         f"{QR}.item[0].item[0].answer"),
    Case("hundreds-of-nested-items", nested_items(300), 422, f"{QR}" + ".item[0]" * 20, "deeper than 40"),
    # ---- the subject
    Case("missing-subject", qr(setter("subject", DELETE)), 422, f"{QR}.subject", "subject"),
    Case("subject-not-a-patient", qr(setter("subject", {"reference": "Practitioner/1"})), 422,
         f"{QR}.subject.reference", "Patient"),
    Case("subject-a-string", qr(setter("subject", "Patient/1")), 422, f"{QR}.subject"),
    # ---- the answers
    Case("missing-required-answers", questionnaire_response({"numbness.side": "left"}), 422,
         f"{QR}.item", "numbness.onset"),
    Case("no-items-at-all", qr(setter("item", DELETE)), 422, f"{QR}.item", "numbness.side"),
    Case("wrong-answer-type", qr(setter("item.0.item.0.answer", [{"valueBoolean": True}])), 422,
         SIDE, "valueCoding"),
    Case("two-value-types", qr(setter("item.0.item.0.answer", [
        {"valueBoolean": True, "valueCoding": {"system": ANSWERS_SYSTEM, "code": "left"}}])), 422,
         SIDE),
    Case("integer-as-string", qr(setter("item.1.item.0.answer", [{"valueString": "50"}])), 422,
         f"{QR}.item[1].item[0].answer[0]", "valueInteger"),
    Case("unknown-answer-code", qr(setter("item.0.item.0.answer.0.valueCoding.code", "middle")), 422,
         f"{SIDE}.valueCoding", "left"),
    Case("unknown-code-system", qr(setter("item.0.item.0.answer.0.valueCoding.system",
                                          "http://snomed.info/sct")), 422, f"{SIDE}.valueCoding"),
    Case("two-answers-to-a-single-choice", qr(setter("item.0.item.0.answer", [
        {"valueCoding": {"system": ANSWERS_SYSTEM, "code": "left"}},
        {"valueCoding": {"system": ANSWERS_SYSTEM, "code": "right"}}])), 422,
         f"{QR}.item[0].item[0].answer", "one answer"),
    Case("duplicate-link-id", qr(lambda b: b["item"][0]["item"].append(b["item"][0]["item"][0])), 422,
         f"{QR}.item[0].item[2].linkId", "more than once"),
    Case("answer-on-a-group", qr(setter("item.0.answer", [{"valueBoolean": True}])), 422,
         f"{QR}.item[0].answer"),
    # ---- out-of-range integers
    Case("negative-age", qr(setter("item.1.item.0.answer.0.valueInteger", -1)), 422, AGE, "between"),
    Case("age-131", qr(setter("item.1.item.0.answer.0.valueInteger", 131)), 422, AGE, "between"),
    Case("age-10-to-the-30", qr(setter("item.1.item.0.answer.0.valueInteger", 10 ** 30)), 422, AGE),
    Case("age-minus-10-to-the-30", qr(setter("item.1.item.0.answer.0.valueInteger", -10 ** 30)), 422, AGE),
    Case("age-2-to-the-31", qr(setter("item.1.item.0.answer.0.valueInteger", 2 ** 31)), 422, AGE),
    Case("age-fraction", qr(setter("item.1.item.0.answer.0.valueInteger", 50.5)), 422, AGE),
    Case("age-boolean", qr(setter("item.1.item.0.answer.0.valueInteger", True)), 422, AGE),
    # ---- other elements
    Case("invalid-status", qr(setter("status", "done")), 422, f"{QR}.status", "done"),
    Case("status-not-a-string", qr(setter("status", 1)), 422, f"{QR}.status"),
    Case("entered-in-error", qr(setter("status", "entered-in-error")), 422, f"{QR}.status"),
    Case("invalid-datetime", qr(setter("authored", "yesterday")), 422, f"{QR}.authored"),
    Case("impossible-datetime", qr(setter("authored", "2024-13-45T25:61:00Z")), 422, f"{QR}.authored"),
    Case("datetime-without-zone", qr(setter("authored", "2024-05-01T10:00:00")), 422, f"{QR}.authored"),
    Case("unknown-questionnaire", qr(setter("questionnaire", "http://example.org/Questionnaire/phq-9")),
         422, f"{QR}.questionnaire", "Unknown questionnaire"),
    Case("other-questionnaire-version", qr(setter(
        "questionnaire", "http://legtriage.example.org/fhir/Questionnaire/leg-numbness|2.0.0")),
         422, f"{QR}.questionnaire"),
    Case("missing-questionnaire", qr(setter("questionnaire", DELETE)), 422, f"{QR}.questionnaire"),
    # ---- rules version
    Case("unknown-rules-version", GOOD, 422, "rules-version", "1.0.0", path=TRIAGE + "?rules-version=9.9.9"),
    Case("garbage-rules-version", GOOD, 422, "rules-version", path=TRIAGE + "?rules-version=%00%ff"),
    Case("unknown-rules-version-parameter", params(
        {"name": "questionnaireResponse", "resource": GOOD},
        {"name": "rulesVersion", "valueString": "0.0.1"}), 422, "Parameters.parameter[1].valueString", "0.0.1"),
    Case("rules-version-not-a-string", params(
        {"name": "questionnaireResponse", "resource": GOOD},
        {"name": "rulesVersion", "valueInteger": 1}), 422, "Parameters.parameter[1]"),
    Case("rules-versions-disagree", params(
        {"name": "questionnaireResponse", "resource": GOOD},
        {"name": "rulesVersion", "valueString": "1.0.0"}), 422, "Parameters.parameter[1]",
         path=TRIAGE + "?rules-version=2.0.0"),
    # ---- Parameters
    Case("parameters-without-the-response", params({"name": "rulesVersion", "valueString": "1.0.0"}),
         422, "Parameters.parameter", "questionnaireResponse"),
    Case("parameters-empty", {"resourceType": "Parameters"}, 422, "Parameters.parameter"),
    Case("parameters-not-a-list", {"resourceType": "Parameters", "parameter": {"name": "x"}}, 422,
         "Parameters.parameter"),
    Case("parameters-with-a-patient", params({"name": "questionnaireResponse",
                                              "resource": {"resourceType": "Patient"}}), 422,
         "Parameters.parameter[0].resource.resourceType"),
    Case("parameters-with-a-bad-response", params({"name": "questionnaireResponse",
                                                   "resource": qr(setter("subject", DELETE))}), 422,
         "Parameters.parameter[0].resource.subject"),
    # ---- size
    Case("body-over-the-limit", js({**GOOD, "id": "x" * 1_100_000}), 413, says="larger than"),
    # ---- method, path
    Case("get-on-the-operation", None, 405, method="GET"),
    Case("put-on-the-operation", GOOD, 405, method="PUT"),
    Case("delete-on-the-operation", None, 405, method="DELETE"),
    Case("unknown-fhir-path", None, 404, method="GET", path="/fhir/Patient/1"),
    Case("unknown-path", None, 404, method="GET", path="/admin"),
    Case("unknown-operation", GOOD, 404, path="/fhir/QuestionnaireResponse/$evaluate"),
    Case("unknown-questionnaire-read", None, 404, method="GET", path="/fhir/Questionnaire/phq-9"),
    Case("unsupported-search-parameter", None, 400, "publisher", method="GET",
         path="/fhir/Questionnaire?publisher=x", headers={"Prefer": "handling=strict"}),
    Case("malformed-count", None, 400, "_count", method="GET", path="/fhir/Library?_count=many"),
    Case("unknown-bundle-type", GOOD, 400, "bundle-type", "bundle-type", path=TRIAGE + "?bundle-type=batch"),
]


# ---- transports -----------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: Any
    text: str


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn(tmp_path_factory.mktemp("gunicorn") / "out.log") as srv:
        yield srv
        log = srv.log()
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]


@pytest.fixture(params=["flask", "gunicorn"])
def send(request, app):
    if request.param == "flask":
        client = app.test_client()

        def call(method: str, path: str, data: bytes, headers: dict) -> Reply:
            resp = client.open(path, method=method, data=data, headers=headers)
            return Reply(resp.status_code, resp.headers, resp.get_data(as_text=True))
    else:
        base = request.getfixturevalue("server").base
        session = requests.Session()

        def call(method: str, path: str, data: bytes, headers: dict) -> Reply:
            resp = session.request(method, base + path, data=data, headers=headers, timeout=30)
            return Reply(resp.status_code, resp.headers, resp.text)
    return call


# ---- the suite ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_4xx_and_the_service_keeps_serving(send, case):
    reply = send(case.method, case.path, case.data(), case.all_headers())
    assert reply.status == case.status, reply.text[:600]
    assert reply.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    outcome = json.loads(reply.text)
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] == "error" and issue["code"] and issue["diagnostics"]
    assert issue.get("expression") == ([case.expression] if case.expression else None), issue
    assert case.says.lower() in issue["diagnostics"].lower(), issue
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    if case.status == 405:
        assert "POST" in reply.headers["Allow"]

    good = send("POST", TRIAGE, js(GOOD), {"Content-Type": FHIR_JSON})
    assert good.status == 200, good.text[:600]
    bundle = json.loads(good.text)
    assert bundle["entry"][0]["resource"]["resourceType"] == "RiskAssessment"


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "in-parameters"])
@pytest.mark.parametrize("levels", [18, 19])
def test_the_depth_limit_counts_from_the_resource_wrapped_or_not(send, wrapped, levels):
    """40 levels from the QuestionnaireResponse, whatever wraps it: $triage measures the body's
    depth as it checks for repeated keys and walks the resource again only when the body is deeper
    than the limit (issue 21), so a Parameters body, three levels deeper, gets the same verdict."""
    body = nested_items(levels)  # 3 + 2 * levels levels: 39 (within the limit) and 41 (beyond it)
    root = QR
    if wrapped:
        body = b'{"resourceType": "Parameters", "parameter": [{"name": "questionnaireResponse", ' \
               b'"resource": ' + body + b"}]}"
        root = "Parameters.parameter[0].resource"
    reply = send("POST", TRIAGE, body, {"Content-Type": FHIR_JSON})
    assert reply.status == 422, reply.text[:600]
    issues = json.loads(reply.text)["issue"]
    too_deep = [i for i in issues if "deeper than 40" in i["diagnostics"]]
    if levels == 19:
        assert [i["expression"] for i in too_deep] == [[root + ".item[0]" * 20]]
    else:  # within the limit: refused for what the nested items are (a group twice), not the depth
        assert too_deep == [] and issues


def test_the_cases_cover_every_error_status_of_the_design():
    assert {c.status for c in CASES} >= {400, 404, 405, 406, 413, 415, 422}


def test_the_good_base_response_is_accepted(client):
    """The cases above mutate this response: unmutated it must triage, or they prove nothing."""
    resp = client.post(TRIAGE, data=js(qr()), content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:600]


def test_a_parameters_body_with_the_good_response_is_accepted(client):
    body = params({"name": "questionnaireResponse", "resource": copy.deepcopy(GOOD)},
                  {"name": "rulesVersion", "valueString": "1.0.0"})
    assert client.post(TRIAGE, data=js(body), content_type=FHIR_JSON).status_code == 200


def test_nesting_up_to_the_limit_is_read(client):
    # Ten levels of items are silly but harmless: they get the ordinary answers-level errors.
    resp = client.post(TRIAGE, data=nested_items(10), content_type=FHIR_JSON)
    assert resp.status_code == 422
    assert "deeper" not in resp.get_data(as_text=True)


# ---- chunked bodies: only a real server reads them -------------------------------------------------

def raw_http(base: str, request_bytes: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are over a socket to 127.0.0.1; the status, headers and body of the answer."""
    import socket
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        try:
            sock.sendall(request_bytes)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (413) and close before it has read everything we send
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass  # the answer came before the reset; an empty one fails the parsing below
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def chunked(*chunks: bytes, tail: bytes = b"0\r\n\r\n") -> bytes:
    head = (f"POST {TRIAGE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FHIR_JSON}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + tail


@pytest.mark.parametrize("request_bytes,status,says", [
    (chunked(js(GOOD)[:100], js(GOOD)[100:]), 200, ""),
    (chunked(tail=b"zz-not-a-size\r\n"), 400, "could not be read"),
    (chunked(js(GOOD)[:100], tail=b"not-hex\r\n"), 400, "could not be read"),
    (chunked(*[b" " * 65536] * 17, js(GOOD)), 413, "larger than"),  # over 1 MiB, no Content-Length
], ids=["good-chunked", "broken-chunk-size", "broken-second-chunk", "chunked-over-the-limit"])
def test_chunked_bodies_over_a_real_socket(server, request_bytes, status, says):
    got, headers, body = raw_http(server.base, request_bytes)
    assert got == status, body[:600]
    assert headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    if status != 200:
        issue = json.loads(body)["issue"][0]
        assert says in issue["diagnostics"]
    good = requests.post(server.base + TRIAGE, data=js(GOOD), headers={"Content-Type": FHIR_JSON},
                         timeout=30)
    assert good.status_code == 200


# ---- Accept with q=0 (issue #11, item 9) -----------------------------------------------------------

@pytest.mark.parametrize("accept, status", [
    ("application/fhir+json;q=0", 406), ("*/*;q=0", 406), ("application/fhir+json; q=0.0", 406),
    ("application/fhir+json;q=0, application/json;q=0, */*;q=0", 406),
    ("text/html, application/fhir+json;q=0", 406),
    ("application/fhir+json;q=0.1", 200), ("text/html;q=0.9, application/json;q=0.5", 200),
    ("application/fhir+json; fhirVersion=4.0; q=0.5", 200),
], ids=["fhir-json-q0", "any-q0", "fhir-json-q0.0", "all-q0", "html-and-fhir-json-q0",
        "fhir-json-q0.1", "json-after-html", "fhir-json-version-q0.5"])
def test_a_type_the_caller_refuses_with_q0_is_not_acceptable(send, accept, status):
    reply = send("POST", TRIAGE, js(GOOD), {"Content-Type": FHIR_JSON, "Accept": accept})
    assert reply.status == status, reply.text[:600]
    if status == 406:
        issue = json.loads(reply.text)["issue"][0]
        assert issue["code"] == "not-supported" and "Accept" in issue["diagnostics"]


# ---- hostile or ambiguous input that used to get through (issue #11) --------------------------------

def raw_dup(old: bytes, new: bytes) -> bytes:
    body = js(qr())
    assert old in body
    return body.replace(old, new)


def item_setter(group: int, item: int, key: str, value: Any) -> Callable[[dict], None]:
    return setter(f"item.{group}.item.{item}.{key}", value)


MODIFIER = [{"url": "http://example.org/fhir/StructureDefinition/negated", "valueBoolean": True}]
LONG = "x" * 1025

CASES_11 = [
    # 4: modifiers the service does not understand
    Case("modifier-extension-on-the-response", qr(setter("modifierExtension", MODIFIER)), 422,
         f"{QR}.modifierExtension", "modifierExtension"),
    Case("modifier-extension-on-an-item", qr(item_setter(0, 0, "modifierExtension", MODIFIER)), 422,
         f"{QR}.item[0].item[0].modifierExtension"),
    Case("modifier-extension-on-an-answer", qr(setter("item.0.item.0.answer.0.modifierExtension", MODIFIER)),
         422, f"{SIDE}.modifierExtension"),
    Case("modifier-extension-on-a-group", qr(setter("item.1.modifierExtension", MODIFIER)), 422,
         f"{QR}.item[1].modifierExtension"),
    Case("modifier-extension-in-a-contained-resource", qr(setter("contained", [
        {"resourceType": "Patient", "id": "p1", "modifierExtension": MODIFIER}])), 422,
         f"{QR}.contained[0].modifierExtension"),
    Case("implicit-rules", qr(setter("implicitRules", "http://example.org/rules")), 422,
         f"{QR}.implicitRules", "implicitRules"),
    Case("modifier-in-a-parameters-body", params({"name": "questionnaireResponse",
                                                 "resource": qr(setter("modifierExtension", MODIFIER))}),
         422, "Parameters.parameter[0].resource.modifierExtension"),
    # 5: ambiguous input
    Case("two-questionnaire-response-parts", params({"name": "questionnaireResponse", "resource": GOOD},
                                                    {"name": "questionnaireResponse", "resource": qr()}),
         422, "Parameters.parameter[1]", "more than one"),
    Case("two-rules-version-parts", params({"name": "questionnaireResponse", "resource": GOOD},
                                           {"name": "rulesVersion", "valueString": "1.0.0"},
                                           {"name": "rulesVersion", "valueString": "1.0.0"}),
         422, "Parameters.parameter[2]", "rulesVersion"),
    Case("duplicate-json-key-in-an-answer", raw_dup(b'"valueInteger": 50', b'"valueInteger": 50, "valueInteger": 51'),
         400, AGE, "more than once"),
    Case("duplicate-json-key-with-space-before-colon",
         raw_dup(b'"valueInteger": 50', b'"valueInteger" : 50, "valueInteger":51'), 400, AGE),
    Case("duplicate-status", raw_dup(b'"status": "completed"', b'"status": "completed", "status": "stopped"'),
         400, f"{QR}.status"),
    Case("duplicate-key-hidden-by-a-string", raw_dup(
        b'"status": "completed"', b'"status": "completed", "status": "completed", "id": "a\\":b"'),
         400, f"{QR}.status"),
    Case("duplicate-key-in-parameters", js(params({"name": "questionnaireResponse", "resource": GOOD})).replace(
        b'"name": "questionnaireResponse"', b'"name": "questionnaireResponse", "name": "x"'), 400,
         "Parameters.parameter[0].name"),
    Case("rules-version-twice", GOOD, 400, "rules-version", "2 times",
         path=TRIAGE + "?rules-version=1.0.0&rules-version=9.9.9"),
    Case("rules-version-twice-same", GOOD, 400, "rules-version", path=TRIAGE + "?rules-version=1.0.0&rules-version=1.0.0"),
    Case("both-version-names-disagree", GOOD, 400, "rulesVersion", "different",
         path=TRIAGE + "?rules-version=1.0.0&rulesVersion=9.9.9"),
    Case("rules-version-by-its-operation-name-unknown", GOOD, 422, "rulesVersion", "9.9.9",
         path=TRIAGE + "?rulesVersion=9.9.9"),
    Case("misspelt-rules-version", GOOD, 400, "rules_version", "rules-version", path=TRIAGE + "?rules_version=9.9.9"),
    Case("unknown-query-parameter", GOOD, 400, "patient", "known", path=TRIAGE + "?patient=1"),
    *[Case(f"parameter-name-{kind}", params({"name": name, "valueString": "1.0.0"}), 422,
           "Parameters.parameter", "questionnaireResponse")
      for kind, name in [("object", {}), ("list", ["rulesVersion"]), ("number", 1)]],
    Case("empty-rules-version-part", params({"name": "questionnaireResponse", "resource": GOOD},
                                            {"name": "rulesVersion", "valueString": ""}), 422,
         "Parameters.parameter[1]", "rulesVersion"),
    Case("empty-rules-version", GOOD, 400, "rules-version", "empty", path=TRIAGE + "?rules-version="),
    Case("empty-rules-version-by-its-operation-name", GOOD, 400, "rulesVersion", path=TRIAGE + "?rulesVersion="),
    # 6: subject references
    *[Case(f"subject-{name}", qr(setter("subject", {"reference": ref})), 422, f"{QR}.subject.reference")
      for name, ref in [("group-then-patient", "Group/1/Patient/2"), ("dot-dot", "Patient/../Group/1"),
                        ("javascript", "javascript:alert(1)//Patient/1"), ("not-contained", "#nothere"),
                        ("urn-uuid", "urn:uuid:0b4b2f0e-4a59-4f7e-9d0b-6d3c1a5c2b11"),
                        ("patient-dot-dot", "Patient/.."), ("empty-id", "Patient/"),
                        ("id-too-long", "Patient/" + "a" * 65), ("query", "Patient/1?x=1"),
                        ("url-with-dot-dot", "https://ehr.example.org/fhir/../Patient/1"),
                        ("url-other-scheme", "ftp://ehr.example.org/fhir/Patient/1"),
                        ("url-with-space", "https://ehr.example.org/a b/Patient/1"),
                        ("patient-with-space", "Patient/a b")]],
    Case("subject-contained-patient", qr(lambda b: b.update(
        contained=[{"resourceType": "Patient", "id": "p1"}], subject={"reference": "#p1"})), 422,
         f"{QR}.subject.reference", "contained"),
    Case("subject-empty-identifier", qr(setter("subject", {"identifier": {"system": "urn:oid:1.2.3"}})), 422,
         f"{QR}.subject.identifier"),
    # 7: strings copied into every output resource are bounded
    Case("subject-reference-over-1kb", qr(setter("subject", {"reference": "Patient/1", "display": LONG})),
         422, f"{QR}.subject.display", "1024"),
    Case("subject-url-over-1kb", qr(setter("subject", {"reference": "https://e.org/" + "a/" * 600 + "Patient/1"})),
         422, f"{QR}.subject.reference"),
    Case("subject-identifier-over-1kb", qr(setter("subject", {"identifier": {"system": "urn:oid:1", "value": LONG}})),
         422, f"{QR}.subject.identifier.value"),
    Case("response-identifier-over-1kb", qr(setter("identifier", {"value": LONG})), 422, f"{QR}.identifier.value"),
]


@pytest.mark.parametrize("case", CASES_11, ids=[c.id for c in CASES_11])
def test_hostile_or_ambiguous_input_is_refused(send, case):
    test_bad_input_gets_a_clear_4xx_and_the_service_keeps_serving(send, case)


@pytest.mark.parametrize("subject", [
    {"reference": "Patient/abc-1.2"}, {"reference": "Patient/1/_history/2"},
    {"reference": "https://ehr.example.org/fhir/Patient/123"}, {"reference": "http://10.0.0.1:8080/Patient/a"},
    {"reference": "Patient/1", "type": "Patient", "display": "A. Person"},
    {"identifier": {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "42"}},
])
def test_good_subject_references_are_accepted_and_copied(client, subject):
    resp = client.post(TRIAGE, data=js(qr(setter("subject", subject))), content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:600]
    assert resp.get_json(force=True)["entry"][0]["resource"]["subject"] == subject


def test_rules_version_by_its_operation_name_is_honoured(client):
    resp = client.post(TRIAGE + "?rulesVersion=1.0.0", data=js(GOOD), content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:600]
    both = client.post(TRIAGE + "?rulesVersion=1.0.0&rules-version=1.0.0", data=js(GOOD),
                       content_type=FHIR_JSON)
    assert both.status_code == 200, both.get_data(as_text=True)[:600]


def test_the_duplicate_key_that_turned_an_emergency_into_urgent_is_refused(client):
    body = js(GOOD)
    assert body.count(b'"valueBoolean": true') >= 1
    hostile = body.replace(b'"valueBoolean": true', b'"valueBoolean": true, "valueBoolean": false', 1)
    resp = client.post(TRIAGE, data=hostile, content_type=FHIR_JSON)
    assert resp.status_code == 400, resp.get_data(as_text=True)[:600]
    issue = resp.get_json(force=True)["issue"][0]
    assert issue["expression"][0].endswith(".valueBoolean") and "valueBoolean" in issue["diagnostics"]


def test_strings_that_only_look_like_extra_keys_are_no_duplicates(client):
    body = qr(setter("id", "a-b"))
    body["subject"]["display"] = 'He said: "x": y  :  "z" :'
    resp = client.post(TRIAGE, data=js(body), content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:600]
    spaced = json.dumps(qr(), separators=(", ", " : ")).encode()  # legal JSON, every key 'loose'
    assert client.post(TRIAGE, data=spaced, content_type=FHIR_JSON).status_code == 200


def test_10000_wrong_answers_get_a_capped_outcome(client):
    body = qr()
    body["item"][0]["item"] = [{"linkId": "numbness.side", "answer": [{"valueBoolean": True}]}] + [
        {"linkId": "numbness.onset", "answer": [{"valueBoolean": True}]} for _ in range(10_000)]
    resp = client.post(TRIAGE, data=js(body), content_type=FHIR_JSON)
    assert resp.status_code == 422
    issues = resp.get_json(force=True)["issue"]
    assert len(issues) == 101 and len(resp.get_data()) < 40_000
    assert issues[-1]["severity"] == "information" and "more issue" in issues[-1]["diagnostics"]


def test_10000_unknown_link_ids_get_a_capped_warning(client):
    body = qr()
    body["item"].extend({"linkId": f"unknown-{i}"} for i in range(10_000))
    resp = client.post(TRIAGE, data=js(body), content_type=FHIR_JSON)
    assert resp.status_code == 200
    outcome = resp.get_json(force=True)["entry"][-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert len(outcome["issue"]) == 101 and len(resp.get_data()) < 40_000
    assert "9900 more" in outcome["issue"][-1]["diagnostics"]


@pytest.mark.parametrize("status", ["in-progress", "stopped"])
def test_an_unfinished_form_is_triaged_with_a_warning(client, status):
    resp = client.post(TRIAGE, data=js({**GOOD, "status": status}), content_type=FHIR_JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:600]
    bundle = resp.get_json(force=True)
    assert bundle["entry"][0]["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] \
        == "emergency"  # the red flag in the unfinished form still counts
    outcome = bundle["entry"][-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    warning = outcome["issue"][0]
    assert warning["severity"] == "warning" and warning["expression"] == [f"{QR}.status"]
    assert status in warning["diagnostics"]


def test_a_completed_or_amended_form_has_no_status_warning(client):
    for status in ("completed", "amended"):
        bundle = client.post(TRIAGE, data=js({**GOOD, "status": status}), content_type=FHIR_JSON).get_json(force=True)
        assert all(e["resource"]["resourceType"] != "OperationOutcome" for e in bundle["entry"])


# ---- the Host header and gunicorn's own errors (issue #11, item 9) ----------------------------------

EVIL_HOST = {"Host": "evil.example:666"}


@pytest.mark.parametrize("path", ["/fhir/Questionnaire?url=x", "/fhir/Library", "/fhir/Library?_format=json"])
def test_a_searchset_links_to_the_public_base_url_not_the_host_header(client, path):
    resp = client.get(path, headers=EVIL_HOST)
    assert resp.status_code == 200
    self_link = resp.get_json(force=True)["link"][0]["url"]
    assert "evil" not in self_link and self_link == "http://localhost:8080" + path


def test_a_doubled_slash_redirect_is_relative_and_fhir(client):
    resp = client.get("/fhir//Questionnaire/leg-numbness?_format=json", headers=EVIL_HOST)
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/fhir/Questionnaire/leg-numbness?_format=json"
    assert resp.mimetype == FHIR_JSON and resp.get_json(force=True)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("request_bytes,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /fhir/metadata HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    (b"GET /fhir/Questionnaire?url=\xe2\x80\xa6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
    (b"GET /fhir/metadata?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431),
], ids=["bad-request-line", "bad-http-version", "raw-non-ascii-url", "url-too-long", "too-many-headers",
        "header-too-large"])
def test_gunicorns_own_errors_are_operation_outcomes(server, request_bytes, status):
    got, headers, body = raw_http(server.base, request_bytes)
    assert got == status, body[:300]
    assert headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    assert b"<html" not in body and b"GARBAGE" not in body and b"aaaa" not in body
