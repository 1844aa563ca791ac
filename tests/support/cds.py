"""Test helpers for CDS Hooks: the spec's rules on cards as assertions, example calls made fresh, and
a test-double EHR FHIR server on 127.0.0.1 that records what reaches it.

The card rules are CDS Hooks 2.0.1's (required fields, summary under 140 characters, the indicator
and selectionBehavior enums, actions with descriptions, override reasons with displays, link types,
appContext only on smart links, no null or empty values) as the Inferno CRD test kit checks them
(../shared/cds-hooks.md, section 4).
"""
from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support import EXAMPLES

CDS_EXAMPLES = EXAMPLES / "cds"
PATIENT_VIEW = "/cds-services/leg-numbness-triage"
ENCOUNTER_START = "/cds-services/leg-numbness-triage-encounter"
PUBLIC = "https://legtriage.example.org"
INDICATORS = ("info", "warning", "critical")


def cds_example(name: str) -> dict:
    return json.loads((CDS_EXAMPLES / f"{name}.json").read_text())


def authored(hours_ago: float = 1.0) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def questionnaire_responses(value: Any) -> list[dict]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "QuestionnaireResponse":
        return [value]
    return [e["resource"] for e in value.get("entry", []) if e["resource"]["resourceType"] == "QuestionnaireResponse"]


def fresh(body: dict, hours_ago: float = 1.0) -> dict:
    """The call with every prefetched QuestionnaireResponse authored `hours_ago` (the examples are
    dated, the freshness window is 72 h)."""
    body = copy.deepcopy(body)
    for value in (body.get("prefetch") or {}).values():
        for qr in questionnaire_responses(value):
            qr["authored"] = authored(hours_ago)
    return body


def searchset(*qrs: dict) -> dict:
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "total": len(qrs)}
    if qrs:
        bundle["entry"] = [{"fullUrl": f"https://ehr.example.org/fhir/QuestionnaireResponse/{q.get('id', 'x')}",
                            "resource": q, "search": {"mode": "match"}} for q in qrs]
    return bundle


def hook_call(qr: dict | None, patient_id: str, hook: str = "patient-view", instance: str | None = None,
              **extra: Any) -> dict:
    """A hook call with `qr` (fresh) as the legNumbnessQR prefetch (searchset); None: key absent."""
    import uuid
    body: dict = {"hook": hook, "hookInstance": instance or str(uuid.uuid4()),
                  "context": {"userId": "Practitioner/p1", "patientId": patient_id}}
    if hook == "encounter-start":
        body["context"]["encounterId"] = "enc-1"
    if qr is not None:
        qr = copy.deepcopy(qr)
        qr["authored"] = authored()
        body["prefetch"] = {"legNumbnessQR": searchset(qr)}
    body.update(extra)
    return body


def trust_folder(folder: Path, iss: str, jwks: dict) -> Path:
    """A folder holding one trusted CDS client: its JWKS and the issuers file that names it (the files an
    operator mounts for LEGTRIAGE_CDS_ISSUERS_FILE); returns the folder."""
    (folder / "jwks.json").write_text(json.dumps(jwks))
    (folder / "issuers.json").write_text(json.dumps([{"iss": iss, "jwks_file": "jwks.json"}]))
    return folder


def post_hook(client, body: Any, path: str = PATIENT_VIEW, **headers: str):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers.setdefault("Content-Type", "application/json")
    return client.post(path, data=data, headers=headers)


# ---- CDS Hooks rules ----------------------------------------------------------------------------

def assert_no_empty(value: Any, where: str = "$", allowed: tuple[str, ...] = ("$.cards", "$.services")) -> None:
    """CDS Hooks 2.0.1: null, "", [] and {} are prohibited unless stated (cards: [], services: [])."""
    assert value is not None, f"{where} is null"
    if isinstance(value, str):
        assert value != "", f"{where} is an empty string"
    elif isinstance(value, list):
        assert value or where in allowed, f"{where} is an empty list"
        for i, item in enumerate(value):
            assert_no_empty(item, f"{where}[{i}]", allowed)
    elif isinstance(value, dict):
        assert value, f"{where} is an empty object"
        for key, item in value.items():
            assert_no_empty(item, f"{where}.{key}", allowed)


def assert_valid_card(card: dict, https_links: bool = True) -> None:
    assert isinstance(card.get("summary"), str) and 0 < len(card["summary"]) < 140, card.get("summary")
    assert card.get("indicator") in INDICATORS
    source = card.get("source")
    assert isinstance(source, dict) and isinstance(source.get("label"), str) and source["label"]
    if "url" in source:
        assert urlsplit(source["url"]).scheme in ("http", "https") and urlsplit(source["url"]).netloc
    if "topic" in source:
        assert {"system", "code", "display"} <= set(source["topic"])
    if "uuid" in card:
        assert isinstance(card["uuid"], str)
    if "detail" in card:
        assert isinstance(card["detail"], str)
    suggestions = card.get("suggestions")
    if suggestions:
        assert card.get("selectionBehavior") in ("at-most-one", "any"), "selectionBehavior required"
        if card["selectionBehavior"] == "at-most-one":  # cds-resp-1
            assert sum(bool(s.get("isRecommended")) for s in suggestions) <= 1
        for s in suggestions:
            assert isinstance(s.get("label"), str) and s["label"]
            assert isinstance(s.get("uuid"), str) and s["uuid"]
            for action in s.get("actions", []):
                assert action.get("type") in ("create", "update", "delete")
                assert isinstance(action.get("description"), str) and action["description"]
                if action["type"] in ("create", "update"):
                    assert isinstance(action.get("resource"), dict) and action["resource"].get("resourceType")
                else:
                    assert isinstance(action.get("resourceId"), str)
    for reason in card.get("overrideReasons", []):
        assert {"code", "system", "display"} <= set(reason), reason
    for link in card.get("links", []):
        assert isinstance(link.get("label"), str) and link["label"]
        parts = urlsplit(link.get("url", ""))
        assert parts.scheme == "https" if https_links else parts.scheme in ("http", "https")
        assert parts.netloc
        assert link.get("type") in ("absolute", "smart")
        if "appContext" in link:  # cds-resp-3
            assert link["type"] == "smart" and isinstance(link["appContext"], str)
        if "autolaunchable" in link:
            assert isinstance(link["autolaunchable"], bool)


def action_resources(card: dict) -> list[dict]:
    return [a["resource"] for s in card.get("suggestions", []) for a in s["actions"] if "resource" in a]


# ---- a test-double EHR FHIR server --------------------------------------------------------------

@dataclass
class Seen:
    path: str
    authorization: str | None


@dataclass
class FakeEhr:
    """A FHIR server on 127.0.0.1 answering QuestionnaireResponse searches; records every request."""

    bundle: dict = field(default_factory=lambda: searchset())
    status: int = 200
    delay: float = 0.0
    location: str | None = None  # sent as Location (a redirect, with status 302)
    drip: float = 0.0  # > 0: the body one byte at a time, this many seconds apart
    seen: list[Seen] = field(default_factory=list)
    base: str = ""

    def start(self) -> "FakeEhr":
        ehr = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                ehr.seen.append(Seen(self.path, self.headers.get("Authorization")))
                if ehr.delay:
                    time.sleep(ehr.delay)
                body = json.dumps(ehr.bundle if ehr.status == 200 else
                                  {"resourceType": "OperationOutcome",
                                   "issue": [{"severity": "error", "code": "security"}]}).encode()
                try:
                    self.send_response(ehr.status)
                    self.send_header("Content-Type", "application/fhir+json")
                    if ehr.location:
                        self.send_header("Location", ehr.location)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if ehr.drip:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(ehr.drip)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the service gave up waiting, as it should

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}/fhir"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
