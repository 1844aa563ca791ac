"""Freeze what a published rule version answers, so a test can hold it to that forever.

    .venv/bin/python -m tests.golden.freeze --answers        # once: write the stored answer sets
    .venv/bin/python -m tests.golden.freeze 1.0.0            # once per version, when it is published

The answer sets (clinical/golden/answers.json) are data: every vignette's answers as they were at the
freeze, the examples, and seeded random answer sets (some sparse, some dense, some built around the
benign "leg fell asleep" story whose borders matter most). A version's file (v1_0_0.json, ...) holds,
for each answer set, what the API answered with that version pinned: disposition, causes with risk
and rationale, proposals with priority and note, the advice (self-care advice and safety net) and
the summary note, plus a digest of the whole Bundle with its timestamps blanked.
Re-freezing a published version is refused: its behaviour must not change.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

from service.clinical import ANSWERS, GOLDEN  # clinical/golden: the freezes are clinical data
SEED = 20261201
RANDOM_SETS = 360
EVIDENCE = "http://legtriage.example.org/fhir/StructureDefinition/triage-evidence"


def version_file(version: str) -> Path:
    return GOLDEN / f"v{version.replace('.', '_')}.json"


def _random_answers(rng: random.Random, items: dict, density: float, benign: bool) -> dict:
    answers: dict = {"numbness.side": rng.choice(items["numbness.side"]["codes"]),
                     "numbness.onset": rng.choice(items["numbness.onset"]["codes"])}
    if benign:  # the benign story, then a few answers more that may or may not spoil it
        answers.update({"numbness.onset": "sudden", "numbness.duration": "minutes",
                        "numbness.relieved-by-moving": True})
        if rng.random() < 0.5:
            answers["numbness.pattern"] = "positional"
    for link_id, spec in items.items():
        if link_id in answers or rng.random() >= density:
            continue
        if spec["type"] == "boolean":
            answers[link_id] = rng.random() < 0.5
        elif spec["type"] == "integer":
            answers[link_id] = rng.randint(0, 100)
        elif spec["repeats"]:
            answers[link_id] = sorted(rng.sample(spec["codes"], rng.randint(1, min(3, len(spec["codes"])))))
        else:
            answers[link_id] = rng.choice(spec["codes"])
    return answers


def write_answer_sets() -> None:
    from tests.support import EXAMPLES, ITEMS
    from tests.e2e.test_vignettes import VIGNETTES

    if ANSWERS.exists():
        sys.exit(f"{ANSWERS} exists: the stored answer sets are data and are not regenerated")
    items = {k: {"type": v["type"], "repeats": bool(v.get("repeats")),
                 "codes": [o["valueCoding"]["code"] for o in v.get("answerOption", [])]}
             for k, v in ITEMS.items()}
    rng = random.Random(SEED)
    cases = [{"id": f"vignette:{c['id']}", "answers": c["answers"]} for c in VIGNETTES]
    cases += [{"id": f"example:{p.stem}", "qr": json.loads(p.read_text())}
              for p in sorted(EXAMPLES.glob("*.json"))]
    for n in range(RANDOM_SETS):
        benign = n % 3 == 2
        density = 0.08 if benign else rng.choice((0.05, 0.15, 0.3, 0.6))
        cases.append({"id": f"random:{n:03d}", "answers": _random_answers(rng, items, density, benign)})
    ANSWERS.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def answer_sets() -> list[dict]:
    return json.loads(ANSWERS.read_text(encoding="utf-8"))


def request_body(case: dict) -> dict:
    from tests.support import questionnaire_response
    return case["qr"] if "qr" in case else questionnaire_response(case["answers"],
                                                                     subject="Patient/golden")


def without_narrative(bundle_bytes: bytes) -> bytes:
    """The Bundle as the service wrote it, less each resource's generated narrative (`text`).

    Since issue 16 every resource carries a narrative generated from its own elements, for every
    rule version alike: presentation, not what the rules decided. The digest is taken without it,
    so it still holds a published version to every element it answered with when it was frozen.

    Since issue 25 every prediction also carries the triage-evidence extension (the rules behind the
    cause, the answers each read, the source and passage, as data): new data added for every version
    alike, as the narrative was, while every text and element a version was frozen with is unchanged.
    It is left out of the digest for the same reason; tests/e2e/test_explanations.py checks it.
    """
    import orjson

    bundle = orjson.loads(bundle_bytes)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        resource.pop("text", None)
        for prediction in resource.get("prediction", []):
            kept = [e for e in prediction.get("extension", []) if e.get("url") != EVIDENCE]
            if kept:
                prediction["extension"] = kept
            else:
                prediction.pop("extension", None)
    return orjson.dumps(bundle)


def observe(bundle_bytes: bytes) -> dict:
    """What a clinician and a client see of one answer, in a stable, reviewable shape."""
    bundle = json.loads(bundle_bytes)
    blanked = without_narrative(bundle_bytes).replace(bundle["timestamp"].encode(), b"<timestamp>")
    entries = [e["resource"] for e in bundle["entry"]]
    ra = entries[0]
    text = lambda concept: concept.get("text") or concept["coding"][0]["code"]  # noqa: E731
    return {
        "disposition": ra["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "causes": [{"cause": text(p["outcome"]),
                    "risk": p["qualitativeRisk"]["coding"][0]["code"],
                    "rationale": p["rationale"]} for p in ra.get("prediction", [])],
        "proposals": [{"proposal": text(sr["code"]), "priority": sr["priority"],
                       "reasons": [text(c) for c in sr.get("reasonCode", [])],
                       "note": sr["note"][0]["text"]}
                      for sr in entries[1:] if sr["resourceType"] == "ServiceRequest"],
        "advice": ra.get("mitigation", ""),
        "note": ra["note"][0]["text"],
        "bundle_sha256": hashlib.sha256(blanked).hexdigest(),
    }


def run(client, version: str) -> dict[str, dict]:
    from tests.support import post_triage
    out = {}
    for case in answer_sets():
        response = post_triage(client, request_body(case), f"?rules-version={version}")
        assert response.status_code == 200, (case["id"], response.get_data(as_text=True))
        out[case["id"]] = observe(response.get_data())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", nargs="?")
    parser.add_argument("--answers", action="store_true", help="write the stored answer sets (once)")
    args = parser.parse_args(argv)
    if args.answers:
        write_answer_sets()
        return 0
    if not args.version:
        parser.error("name a version to freeze, or --answers")
    target = version_file(args.version)
    if target.exists():
        sys.exit(f"{target} exists: a published version's behaviour is frozen and never re-frozen")
    from service import create_app
    frozen = run(create_app().test_client(), args.version)
    target.write_text(json.dumps({"version": args.version, "cases": frozen}, indent=1,
                                 ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{target}: {len(frozen)} answer sets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
