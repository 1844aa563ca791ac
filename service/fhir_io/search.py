"""The one search of the service's own resources (Questionnaire, ValueSet, StructureDefinition,
Library, ConceptMap, CodeSystem, OperationDefinition), as R4 search says, so that generic FHIR
clients (fhirpy, fhirclient, HAPI's client) work unchanged:

* `_count` is honoured: never more entries than asked; `_count=0` gives the total only;
* `total` is the number of matches; paging links (self, first, previous, next, last) are absolute
  on the public base (LEGTRIAGE_PUBLIC_BASE_URL), never on the request's Host;
* a parameter the search does not support is ignored and named in an OperationOutcome entry
  (`search.mode` `outcome`), unless the client sends `Prefer: handling=strict`, which makes it a
  400 (`handling=lenient`, or no preference, is the default). The self link names only the
  parameters that were applied.

A malformed value of a supported parameter (`_count=x`) is a 400 either way: it cannot be applied
and must not be ignored silently.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlencode

from service.catalog import BASE
from service.fhir_io.outcome import FhirError, Issue, operation_outcome
from service.fhir_io.narrative import with_text

DEFAULT_COUNT = 100
MAX_COUNT = 1000
ALWAYS = ("_count", "_offset", "_format")  # understood by every search here
_NUMBER = re.compile(r"[0-9]{1,9}")
_OUTCOME_NAMESPACE = uuid.UUID("1f6b2c9e-4d3a-5e8f-9a0b-7c6d5e4f3a21")

Matcher = Callable[[dict, list[str]], bool]  # (resource, the values of one occurrence) -> matches


def _text(path: str) -> Matcher:
    """R4 `string`: case-insensitive, matches the start of the element."""
    return lambda r, values: any(str(r.get(path, "")).lower().startswith(v.lower()) for v in values)


def _exact(path: str) -> Matcher:
    """`token`/`uri` without a system: equal to one of the values."""
    return lambda r, values: r.get(path) in values


def _url(r: dict, values: list[str]) -> bool:
    """`url`, also as a canonical with |version."""
    for value in values:
        url, _, version = value.partition("|")
        if r.get("url") == url and (not version or r.get("version") == version):
            return True
    return False


# The parameters each search supports (R4's names and meanings), the same for every type here.
CONFORMANCE_PARAMS: dict[str, Matcher] = {
    "_id": _exact("id"), "url": _url, "version": _exact("version"), "name": _text("name"),
    "title": _text("title"), "status": _exact("status"),
}
CAPABILITY_PARAMS = [
    {"name": "_id", "type": "token"}, {"name": "url", "type": "uri"},
    {"name": "version", "type": "token"}, {"name": "name", "type": "string"},
    {"name": "title", "type": "string"}, {"name": "status", "type": "token"},
    {"name": "_count", "type": "number"},
]
CAPABILITY_NOTE = (" Search: _count honoured (0 gives the total only), paging links on the public "
                   "base; an unsupported parameter is ignored and named in an OperationOutcome entry "
                   "(search.mode outcome) unless Prefer: handling=strict, which makes it a 400.")


@dataclass(frozen=True)
class Paging:
    """What every search reads the same way: the page asked for and the parameters it ignores."""

    count: int
    offset: int
    ignored: tuple[str, ...]  # unsupported parameters (handling lenient)
    applied: tuple[tuple[str, str], ...]  # the query without them, for the links


def strict(prefer: str | None) -> bool:
    """Whether a Prefer header asks for handling=strict (RFC 7240; FHIR R4 search 3.1.1.5.7)."""
    for pref in re.split(r"[,;]", prefer or ""):
        name, _, value = pref.strip().partition("=")
        if name.strip().lower() == "handling" and value.strip().strip('"').lower() == "strict":
            return True
    return False


def unsupported(args, known: set[str], prefer: str | None) -> tuple[str, ...]:
    """The parameters of `args` not in `known`, to ignore; a 400 naming them under handling=strict."""
    unknown = tuple(sorted(set(args) - known))
    if unknown and strict(prefer):
        raise FhirError.one(400, "not-supported", f"Unsupported search parameter(s): "
                            f"{', '.join(unknown)[:120]} (Prefer: handling=strict); supported: "
                            f"{', '.join(sorted(known - {'_format', '_offset', '_cursor'}))}.",
                            unknown[0][:64])
    return unknown


def paging(args, prefer: str | None, supported: Iterable[str], default_count: int = DEFAULT_COUNT,
           max_count: int = MAX_COUNT, min_count: int = 0) -> Paging:
    """`_count`, `_offset` and the unsupported parameters of a query (a werkzeug MultiDict)."""
    unknown = unsupported(args, set(supported) | set(ALWAYS), prefer)
    count, offset = default_count, 0
    for name in ("_count", "_offset"):
        values = args.getlist(name)
        if len(values) > 1:
            raise FhirError.one(400, "duplicate", f"Give {name} once.", name)
        if values:
            low = min_count if name == "_count" else 0
            if not _NUMBER.fullmatch(values[0]) or int(values[0]) < low:
                raise FhirError.one(400, "value", f"{name} must be a whole number of at least {low}.",
                                    name)
            if name == "_count":
                count = min(int(values[0]), max_count)
            else:
                offset = int(values[0])
    applied = tuple((k, v) for k, v in args.items(multi=True) if k not in unknown)
    return Paging(count, offset, unknown, applied)


def ignored_outcome(ignored: tuple[str, ...], key: str) -> dict:
    """The searchset entry (search.mode outcome) naming the parameters that were ignored."""
    outcome = operation_outcome([Issue(
        "not-supported", f"Search parameter {name[:64]!r} is not supported here and was ignored "
        "(send Prefer: handling=strict to have it refused).", name[:64], severity="warning")
        for name in ignored])
    oid = str(uuid.uuid5(_OUTCOME_NAMESPACE, f"{key}?{'&'.join(ignored)}"))
    return {"fullUrl": f"urn:uuid:{oid}",
            "resource": with_text({"resourceType": "OperationOutcome", "id": oid,
                                   **{k: v for k, v in outcome.items() if k != "resourceType"}}),
            "search": {"mode": "outcome"}}


def search(resources: list[dict], rtype: str, args, prefer: str | None, public_base: str,
           params: dict[str, Matcher] | None = None) -> dict:
    """The searchset Bundle of `resources` (all of type `rtype`) for the query `args`."""
    params = CONFORMANCE_PARAMS if params is None else params
    page = paging(args, prefer, params)
    found = resources
    for name, matcher in params.items():
        for value in args.getlist(name):
            wanted = [v for v in value.split(",") if v]  # a comma is OR within one occurrence
            found = [r for r in found if matcher(r, wanted)]
    total = len(found)
    entries = [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": "match"}}
               for r in found[page.offset:page.offset + page.count]]
    if page.ignored:
        entries.append(ignored_outcome(page.ignored, rtype))
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": total,
              "link": links(f"{public_base}/fhir/{rtype}", page, total)}
    if entries:
        bundle["entry"] = entries
    return bundle


def links(base: str, page: Paging, total: int | None) -> list[dict]:
    """self, and first/previous/next/last where there are other pages, on the public base."""
    query = [(k, v) for k, v in page.applied if k not in ("_count", "_offset")]

    def url(offset: int | None) -> str:
        q = query + [("_count", str(page.count))] + ([("_offset", str(offset))] if offset else [])
        return f"{base}?{urlencode(q)}"

    own = [(k, v) for k, v in page.applied]
    out = [{"relation": "self", "url": f"{base}?{urlencode(own)}" if own else base}]
    if total is None or page.count == 0 or total <= page.count:
        return out
    last = ((total - 1) // page.count) * page.count
    out.append({"relation": "first", "url": url(0)})
    if page.offset > 0:
        out.append({"relation": "previous", "url": url(max(page.offset - page.count, 0))})
    if page.offset + page.count < total:
        out.append({"relation": "next", "url": url(page.offset + page.count)})
    out.append({"relation": "last", "url": url(last)})
    return out
