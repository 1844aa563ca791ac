"""$triage answers byte for byte what it answered before the data path was simplified (issue #10).

Every example, every vignette and a few bodies that carry warnings are posted through the API with
the Bundle timestamp fixed; the SHA-256 of each response body must be the one recorded in
clinical/golden/bundle_bytes.json, made at commit 0579c31 (before the hand-made id, time and log shortcuts were
given back). A change that is meant to change the Bundles records new digests deliberately:

    .venv/bin/python -m tests.e2e.test_pipeline --write
"""
from __future__ import annotations

import hashlib
import json
import sys

from service.clinical import GOLDEN
from tests.golden.freeze import without_narrative
from tests.support import ROOT, TRIAGE, example, parameters, questionnaire_response

DIGESTS = GOLDEN / "bundle_bytes.json"
TIMESTAMP = "2026-12-01T10:00:00Z"
EXAMPLE_NAMES = sorted(p.stem for p in (ROOT / "examples").glob("qr-*.json"))


def _vignettes() -> list[dict]:
    from service.clinical import load_vignettes

    return load_vignettes()


def cases() -> dict[str, tuple[dict, str]]:
    """name -> (body, query string)."""
    out: dict[str, tuple[dict, str]] = {}
    for name in EXAMPLE_NAMES:
        out[f"example/{name}"] = (example(name), "")
    for case in _vignettes():
        out[f"vignette/{case['id']}"] = (questionnaire_response(case["answers"], subject="Patient/vignette"), "")
    out["parameters/qr-urgent-dvt"] = (parameters(example("qr-urgent-dvt"), "1.0.0"), "")
    out["query/qr-routine-sciatica"] = (example("qr-routine-sciatica"), "?rules-version=1.0.0")
    unknown = example("qr-routine-diabetes")
    unknown["item"].append({"linkId": "no-such-question"})
    unknown["item"][0]["item"][0]["item"] = [{"linkId": "nested-question"}]
    out["warnings/unknown-and-nested-items"] = (unknown, "")
    out["warnings/medications-none-and-one"] = (questionnaire_response({
        "numbness.side": "both", "numbness.onset": "gradual", "history.age": 61,
        "history.medications": ["none", "chemotherapy"]}), "")
    return out


def digests(client, recorded: dict | None = None) -> dict[str, str]:
    from service.fhir_io import outgoing

    found = {}
    original = outgoing.now_iso
    outgoing.now_iso = lambda: TIMESTAMP
    try:
        for name, (body, query) in cases().items():
            if recorded is not None and name not in recorded:
                continue  # vignettes written since (1.1.0's) have no recorded Bundle
            # the recorded Bundles are 1.0.0's (the default then): pin it, 1.1.0 is the default now
            query = query or ("" if body["resourceType"] == "Parameters" else "?rules-version=1.0.0")
            response = client.post(TRIAGE + query, data=json.dumps(body),
                                   headers={"Content-Type": "application/fhir+json"})
            assert response.status_code == 200, (name, response.get_data(as_text=True)[:500])
            assert response.get_json()["timestamp"] == TIMESTAMP, name
            # less the narratives (issue 16) and the triage-evidence extension (issue 25), added for
            # every version alike (tests/golden/freeze.py: without_narrative)
            found[name] = hashlib.sha256(without_narrative(response.get_data())).hexdigest()
    finally:
        outgoing.now_iso = original
    return found


def test_bundles_are_byte_identical_to_the_recorded_ones(client):
    recorded = json.loads(DIGESTS.read_text())
    found = digests(client, recorded)
    assert len(found) >= 70 and set(found) == set(recorded)
    changed = sorted(name for name in found if found[name] != recorded[name])
    assert not changed, changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    from service import create_app

    DIGESTS.write_text(json.dumps(digests(create_app().test_client()), indent=1, sort_keys=True) + "\n")
    print(f"written: {DIGESTS}")
