"""Generated narrative (Resource.text) for every resource the service sends.

An EHR shows the narrative when it cannot render a resource itself, and FHIR's dom-6 asks every
DomainResource for one. The narrative is made from the resource's own elements, after they are
built, so it never says anything the data does not. Every value is escaped text inside a few plain
XHTML elements (div, p, b, i, ul, ol, li, table, tr, th, td): no attributes but the div's
namespace, no scripts, no links. Characters XML cannot carry at all (C0 controls, lone
surrogates, U+FFFE/U+FFFF), which a caller's JSON may smuggle into a diagnostic, become U+FFFD.
"""
from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import Any, Callable, Iterable

XHTML_NS = "http://www.w3.org/1999/xhtml"
_OPEN = f'<div xmlns="{XHTML_NS}">'
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def esc(value: Any) -> str:
    """`value` as XHTML text: XML's special characters escaped, characters XML forbids replaced."""
    text = str(value)
    # Fast paths first (this runs on every string of every Bundle): a printable string has no
    # C0/C1 controls, surrogates or non-characters; tab, CR and LF are the non-printables XML allows.
    if not text.isprintable() and _NOT_XML.search(text):
        text = _NOT_XML.sub("\ufffd", text)
    if "&" in text or "<" in text or ">" in text:
        return escape(text, quote=False)  # text nodes only: no value ever goes into an attribute
    return text


def with_text(resource: dict) -> dict:
    """The resource with a generated `text` right after its id (kept if it has one already)."""
    if "text" in resource:
        return resource
    text = {"status": "generated", "div": div(resource)}
    out: dict = {}
    for key, value in resource.items():
        out[key] = value
        if key == "id":
            out["text"] = text
    if "text" not in out:
        out = {"resourceType": resource["resourceType"], "text": text, **resource}
    return out


def div(resource: dict) -> str:
    render = _RENDERERS.get(resource.get("resourceType", ""), _generic)
    return _OPEN + "".join(render(resource)) + "</div>"


# ---- the pieces -----------------------------------------------------------------------------

def _p(*parts: str) -> str:
    return "<p>" + "".join(parts) + "</p>"


def _items(values: Iterable[str], tag: str = "ul") -> str:
    """A list of already-escaped fragments; nothing at all when there are none."""
    lis = "".join(f"<li>{v}</li>" for v in values)
    return f"<{tag}>{lis}</{tag}>" if lis else ""


def _table(head: list[str], rows: Iterable[list[Any]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return ("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + cells
            + "</table>") if cells else ""


def _concept(cc: dict | None) -> str:
    """A CodeableConcept in words: its text, else the first coding's display or code."""
    if not cc:
        return ""
    if cc.get("text"):
        return cc["text"]
    coding = (cc.get("coding") or [{}])[0]
    return coding.get("display") or coding.get("code") or ""


def _heading(r: dict) -> list[str]:
    title = r.get("title") or r.get("name") or f"{r.get('resourceType')} {r.get('id', '')}".strip()
    parts = [_p("<b>", esc(title), "</b>", f" (version {esc(r['version'])})" if r.get("version") else "",
                f", {esc(r['status'])}" if r.get("status") else "")]
    if r.get("description"):
        parts.append(_p(esc(r["description"])))
    return parts


# ---- what the service computes ----------------------------------------------------------------

def _risk_assessment(r: dict) -> list[str]:
    disposition = next((_concept(e.get("valueCodeableConcept")) for e in r.get("extension", [])
                        if e.get("url", "").endswith("/triage-disposition")), "")
    causes = tuple((_concept(p.get("outcome")), _concept(p.get("qualitativeRisk")))
                   for p in r.get("prediction", []))
    return [_risk_assessment_text(disposition, _concept(r["method"]) if r.get("method") else None,
                                  causes, r.get("mitigation") or "", _note_texts(r))]


# The narrative of a RiskAssessment or ServiceRequest says nothing of the call (no id, subject or
# time): it is made once per distinct content and reused (issue 21: it cost ~50 µs a call). The
# caches hold at most 64 RiskAssessment texts (key and text, ~5 KB each) and 128 ServiceRequest texts
# (under 1 KB each): ~0.4 MB at most per worker. The arguments are plain strings.
@lru_cache(maxsize=64)
def _risk_assessment_text(disposition: str, method: str | None, causes: tuple[tuple[str, str], ...],
                          mitigation: str, notes: tuple[str, ...]) -> str:
    parts = [_p("<b>Triage: ", esc(disposition or "no disposition"), "</b>. A suggestion for a "
                "clinician to review, not a diagnosis.")]
    if method is not None:
        parts.append(_p("Rules: ", esc(method)))
    if causes:
        # Each cause and its likelihood; the rationale (rules, answers, source quotes) stays in
        # prediction.rationale: a summary reads better, and escaping it cost more than the rest.
        parts.append(_p("Possible causes (the reasons are in each prediction's rationale):"))
        parts.append(_items(f"<b>{esc(outcome)}</b>: {esc(risk)}" for outcome, risk in causes))
    if mitigation:
        parts.append(_p("Advice:"))
        parts.append(_items(esc(line) for line in mitigation.split("\n") if line.strip()))
    return "".join(parts + [_p(esc(text)) for text in notes])


def _service_request(r: dict) -> list[str]:
    return [_service_request_text(_concept(r.get("code")), r.get("priority", "routine"),
                                  r.get("status", "draft"), r.get("intent", "proposal"),
                                  tuple(_concept(c) for c in r.get("reasonCode", [])), _note_texts(r))]


@lru_cache(maxsize=128)
def _service_request_text(code: str, priority: str, status: str, intent: str,
                          reasons: tuple[str, ...], notes: tuple[str, ...]) -> str:
    parts = [_p("<b>Proposed: ", esc(code), "</b> (priority ", esc(priority), "). A ", esc(status),
                " ", esc(intent), ": not an order until a clinician accepts it.")]
    if reasons:
        parts.append(_p("Because of: ", esc("; ".join(reasons))))
    return "".join(parts + [_p(esc(text)) for text in notes])


def _note_texts(r: dict) -> tuple[str, ...]:
    return tuple(n["text"] for n in r.get("note", []) if n.get("text"))


def _operation_outcome(r: dict) -> list[str]:
    rows = [[i.get("severity", ""), i.get("code", ""), ", ".join(i.get("expression", [])),
             i.get("diagnostics", "")] for i in r.get("issue", [])]
    return [_table(["Severity", "Type", "Where", "What"], rows) or _p("No issues.")]


# ---- the conformance resources ------------------------------------------------------------------

def _capability_statement(r: dict) -> list[str]:
    parts = _heading(r)
    parts.append(_p("FHIR ", esc(r.get("fhirVersion", "")), "; formats: ",
                    esc(", ".join(r.get("format", [])))))
    for rest in r.get("rest", []):
        if rest.get("documentation"):
            parts.append(_p(esc(rest["documentation"])))
        if rest.get("security", {}).get("description"):
            parts.append(_p("Security: ", esc(rest["security"]["description"])))
        parts.append(_table(["Resource", "Interactions", "Operations", "Search parameters"], [
            [res["type"], ", ".join(i["code"] for i in res.get("interaction", [])),
             ", ".join(f"${o['name']}" for o in res.get("operation", [])),
             ", ".join(s["name"] for s in res.get("searchParam", []))]
            for res in rest.get("resource", [])]))
        parts += [_p(esc(res["type"]), ": ", esc(res["documentation"]))
                  for res in rest.get("resource", []) if res.get("documentation")]
    return parts


def _library(r: dict) -> list[str]:
    parts = _heading(r)
    cited = [f"{esc(a.get('label', ''))}: {esc(a.get('display', ''))}" for a in r.get("relatedArtifact", [])]
    if cited:
        parts += [_p("Sources cited:"), _items(cited)]
    return parts


def _questionnaire(r: dict) -> list[str]:
    def items(nodes: list[dict]) -> str:
        out = []
        for item in nodes:
            line = f"{esc(item.get('text', item['linkId']))} <i>[{esc(item['linkId'])}]</i>"
            if item.get("required"):
                line += " (required)"
            options = [_concept({"coding": [o["valueCoding"]]}) for o in item.get("answerOption", [])
                       if "valueCoding" in o]
            if options:
                line += ": " + esc(" | ".join(options))
            elif item.get("type") not in (None, "group"):
                line += f": {esc(item['type'])}"
            out.append(line + items(item.get("item", [])))
        return _items(out, "ol")

    return _heading(r) + [items(r.get("item", []))]


def _code_system(r: dict) -> list[str]:
    return _heading(r) + [_table(["Code", "Display", "Definition"], [
        [c.get("code", ""), c.get("display", ""), c.get("definition", "")] for c in r.get("concept", [])])]


def _value_set(r: dict) -> list[str]:
    parts = _heading(r)
    for inc in r.get("compose", {}).get("include", []):
        source = esc(inc.get("system", "")) + (f" (version {esc(inc['version'])})" if inc.get("version") else "")
        if inc.get("concept"):
            parts.append(_p("These codes of ", source, ":"))
            parts.append(_table(["Code", "Display"], [[c["code"], c.get("display", "")]
                                                      for c in inc["concept"]]))
        else:
            parts.append(_p("Every code of ", source, "."))
    return parts


def _operation_definition(r: dict) -> list[str]:
    return _heading(r) + [_p("POST ", esc(", ".join(r.get("resource", []))), "/$", esc(r.get("code", ""))),
                          _table(["Parameter", "Use", "Cardinality", "Type", "Documentation"], [
                              [p["name"], p["use"], f"{p['min']}..{p['max']}", p.get("type", ""),
                               p.get("documentation", "")] for p in r.get("parameter", [])])]


def _structure_definition(r: dict) -> list[str]:
    parts = _heading(r)
    contexts = ", ".join(c.get("expression", "") for c in r.get("context", []))
    if contexts:
        parts.append(_p(esc(r.get("type", "")), " on: ", esc(contexts)))
    rows = []
    for e in r.get("differential", {}).get("element", []):
        details = [e.get("short", "")]
        if e.get("fixedUri"):
            details.append(f"fixed: {e['fixedUri']}")
        if e.get("binding"):
            details.append(f"{e['binding'].get('strength', '')} binding to {e['binding'].get('valueSet', '')}")
        card = (f"{e['min']}..{e['max']}" if "min" in e and "max" in e else
                f"min {e['min']}" if "min" in e else f"max {e['max']}" if "max" in e else "")
        rows.append([e["path"], card, ", ".join(t["code"] for t in e.get("type", [])),
                     "; ".join(d for d in details if d)])
    return parts + [_table(["Element", "Cardinality", "Type", "Details"], rows)]


def _generic(r: dict) -> list[str]:
    return _heading(r)


_RENDERERS: dict[str, Callable[[dict], list[str]]] = {
    "RiskAssessment": _risk_assessment,
    "ServiceRequest": _service_request,
    "OperationOutcome": _operation_outcome,
    "CapabilityStatement": _capability_statement,
    "Library": _library,
    "Questionnaire": _questionnaire,
    "CodeSystem": _code_system,
    "ValueSet": _value_set,
    "OperationDefinition": _operation_definition,
    "StructureDefinition": _structure_definition,
}
