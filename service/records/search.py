"""The search parameters of GET /fhir/AuditEvent, as one table: each says how its values are read
(into an AuditQuery), how the SQL store and an in-memory store filter by it, and what the
CapabilityStatement says of it. openapi.yaml lists the same names (tests/e2e/test_openapi.py checks).

A new parameter: an AuditQuery field and a row of PARAMS here; a column in schema.py with its
migration when the records do not hold the value yet; its entry in openapi.yaml.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import sqlalchemy as sa

from service.fhir_io.outcome import FhirError
from service.fhir_io.search import unsupported
from service.records import AuditRecord, instant, instant_us, outcome_code
from service.records.audit import _ID, MAX_REFERENCE, OUTCOMES, reference

DEFAULT_COUNT, MAX_COUNT = 50, 1000
_DATE = re.compile(r"(?P<prefix>eq|ge|le|gt|lt)?(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
                   r"(?:T(?P<H>[0-9]{2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?P<f>\.[0-9]{1,6})?)?"
                   r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")
_CURSOR = re.compile(r"([0-9]{1,18})\.([0-9a-f\-]{36})")  # 18 digits: within a signed 64-bit column
_COUNT = re.compile(r"[0-9]{1,9}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class AuditQuery:
    """Which audit records to list, newest first: GET /fhir/AuditEvent's parameters, parsed."""

    since_us: int | None = None  # date: recorded >= this (microseconds since the epoch, UTC)
    until_us: int | None = None  # date: recorded < this
    patient: str | None = None  # a reference, e.g. "Patient/123"
    outcomes: tuple[str, ...] = ()  # audit-event-outcome codes; empty = any
    count: int = DEFAULT_COUNT
    before: tuple[int, str] | None = None  # _cursor: (recorded_us, id) of the last record shown
    ignored: tuple[str, ...] = ()  # unsupported parameters left out (named in the searchset)


@dataclass(frozen=True)
class Param:
    """One search parameter of GET /fhir/AuditEvent."""

    name: str
    read: Callable[[list[str]], dict] | None  # its values (given at least once) -> AuditQuery fields
    repeats: bool = False  # may be given more than once (else 400)
    where: Callable[[Any, AuditQuery], list] = lambda t, q: []  # SQL conditions on audit_event's columns
    matches: Callable[[AuditRecord, AuditQuery], bool] = lambda a, q: True  # the same, on a record
    capability: dict | None = None  # its CapabilityStatement searchParam (None: not listed)


def _bad(text: str, expression: str | None = None) -> FhirError:
    return FhirError.one(400, "invalid", text, expression)


def date_range(value: str) -> tuple[str, int, int]:
    """A date search value as (prefix, start, end): the instants it covers at its own precision,
    in microseconds since the epoch, end exclusive (FHIR search, "date" parameters). A time
    without an offset is UTC."""
    m = _DATE.fullmatch(value)
    if not m:
        raise _bad(f"date must be [eq|ge|le|gt|lt]YYYY[-MM[-DD[Thh:mm[:ss[.ffffff]][Z|+hh:mm]]]], "
                   f"not {value[:40]!r}.", "date")
    p = m.groupdict()
    try:
        tz = timezone.utc
        if p["tz"] and p["tz"] != "Z":
            sign = 1 if p["tz"][0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(p["tz"][1:3]), minutes=int(p["tz"][4:6])))
        start = datetime(int(p["y"]), int(p["m"] or 1), int(p["d"] or 1), int(p["H"] or 0),
                         int(p["M"] or 0), int(p["S"] or 0),
                         int((p["f"] or ".0")[1:].ljust(6, "0")), tzinfo=tz)
    except (ValueError, OverflowError):
        raise _bad(f"date {value[:40]!r} is not a real date or time.", "date") from None
    try:
        if p["f"]:
            end = start + timedelta(microseconds=10 ** (7 - len(p["f"])))
        elif p["S"]:
            end = start + timedelta(seconds=1)
        elif p["M"]:
            end = start + timedelta(minutes=1)
        elif p["d"]:
            end = start + timedelta(days=1)
        elif p["m"]:
            end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
        else:
            end = start.replace(year=start.year + 1)
    except (ValueError, OverflowError):  # past the end of year 9999: nothing comes after it
        end = datetime.max.replace(tzinfo=timezone.utc)
    us = timedelta(microseconds=1)
    return p["prefix"] or "eq", (start - _EPOCH) // us, (end - _EPOCH) // us


def _dates(values: list[str]) -> dict:
    since, until = None, None
    for value in values:
        prefix, start, end = date_range(value)
        low = {"eq": start, "ge": start, "gt": end}.get(prefix)
        high = {"eq": end, "le": end, "lt": start}.get(prefix)
        since = low if low is not None and (since is None or low > since) else since
        until = high if high is not None and (until is None or high < until) else until
    return {"since_us": since, "until_us": until}


def _patient(values: list[str]) -> dict:
    patient = values[0]
    if "/" not in patient and _ID.fullmatch(patient):
        patient = f"Patient/{patient}"
    if reference(patient) is None:
        raise _bad(f"patient must be a Patient id or reference (Patient/123) of at most {MAX_REFERENCE} "
                   "characters.", "patient")
    return {"patient": patient}


def _outcomes(values: list[str]) -> dict:
    codes = [v.rpartition("|")[2] for v in values[0].split(",")]
    systems = {v.rpartition("|")[0] for v in values[0].split(",") if "|" in v}
    if not set(codes) <= set(OUTCOMES) or not systems <= {"http://hl7.org/fhir/audit-event-outcome"}:
        raise _bad("outcome must be audit-event-outcome codes: 0, 4, 8, 12 (comma-separated).", "outcome")
    return {"outcomes": tuple(sorted(set(codes)))}


def _count(values: list[str]) -> dict:
    if not _COUNT.fullmatch(values[0]) or int(values[0]) < 1:
        raise _bad("_count must be a whole number of at least 1.", "_count")
    return {"count": min(int(values[0]), MAX_COUNT)}


def _cursor(values: list[str]) -> dict:
    m = _CURSOR.fullmatch(values[0])
    if not m:
        raise _bad("_cursor is not one this server gave out: follow the next link as it is.", "_cursor")
    return {"before": (int(m[1]), m[2])}


def _standard(name: str, type_: str, documentation: str) -> dict:
    return {"name": name, "definition": f"http://hl7.org/fhir/SearchParameter/AuditEvent-{name}",
            "type": type_, "documentation": documentation}


PARAMS = (
    Param("date", _dates, repeats=True,
          where=lambda t, q: ([t.recorded_us >= q.since_us] if q.since_us is not None else [])
          + ([t.recorded_us < q.until_us] if q.until_us is not None else []),
          matches=lambda a, q: ((q.since_us is None or a.recorded >= instant(q.since_us))
                                and (q.until_us is None or a.recorded < instant(q.until_us))),
          capability=_standard("date", "date", "When recorded; prefixes eq, ge, le, gt, lt")),
    Param("patient", _patient,
          where=lambda t, q: [t.patient == q.patient] if q.patient is not None else [],
          matches=lambda a, q: q.patient is None or a.patient == q.patient,
          capability=_standard("patient", "reference", "Patient/123 or 123")),
    Param("outcome", _outcomes,
          where=lambda t, q: [t.outcome.in_(q.outcomes)] if q.outcomes else [],
          matches=lambda a, q: not q.outcomes or outcome_code(a.status) in q.outcomes,
          capability=_standard("outcome", "token", "0, 4, 8 or 12 (audit-event-outcome), comma-separated")),
    Param("_count", _count,
          capability={"name": "_count", "type": "number", "documentation": "page size, 1 to 1000 (default 50)"}),
    Param("_cursor", _cursor,  # paging: only as the next link gives it
          where=lambda t, q: [] if q.before is None else [sa.or_(
              t.recorded_us < q.before[0], sa.and_(t.recorded_us == q.before[0], t.id < q.before[1]))],
          matches=lambda a, q: q.before is None or (a.recorded, a.id) < (instant(q.before[0]), q.before[1])),
    Param("_format", None),  # read by the content negotiation (service/fhir_io/incoming.py)
)
CAPABILITY = [p.capability for p in PARAMS if p.capability]


def parse_search(args, prefer: str | None = None) -> AuditQuery:
    """GET /fhir/AuditEvent's query (a werkzeug MultiDict) as an AuditQuery; 400 naming the
    parameter for a value it cannot honour. A parameter it does not support is left out of the
    query (the searchset names it) unless `prefer` asks for handling=strict: then 400, as every
    search of the service does (service/fhir_io/search.py)."""
    ignored = unsupported(args, {p.name for p in PARAMS}, prefer)
    fields: dict = {}
    for p in PARAMS:
        if p.repeats and p.read and args.getlist(p.name):
            fields.update(p.read(args.getlist(p.name)))
    for p in PARAMS:
        if not p.repeats and p.read and len(args.getlist(p.name)) > 1:
            raise _bad(f"Give {p.name} once (outcome takes a comma-separated list).", p.name)
    for p in PARAMS:
        if not p.repeats and p.read and args.getlist(p.name):
            fields.update(p.read(args.getlist(p.name)))
    return AuditQuery(**fields, ignored=ignored)


def where(columns, query: AuditQuery) -> list:
    """The SQL conditions of `query` on audit_event's columns."""
    return [c for p in PARAMS for c in p.where(columns, query)]


def matches(record: AuditRecord, query: AuditQuery) -> bool:
    """Whether `record` is one `query` finds (an in-memory store's filter)."""
    return all(p.matches(record, query) for p in PARAMS)


def cursor_of(record: AuditRecord) -> str:
    return f"{instant_us(record.recorded)}.{record.id}"
