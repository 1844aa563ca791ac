"""Clinical vignettes (clinical/vignettes/*.yaml), each run through the HTTP API with its version pinned.

A vignette holds for every published version unless `versions:` names the ones it is for
(service/triage/review.py explains the scheme; service/clinical.py reads them). `legtriage rules review` prints the
figures: exact agreement, and under- and over-triage by disposition, for each version.
"""
from __future__ import annotations

import re

import pytest

from service.triage.engine import Registry
from service.clinical import clinical_data, load_vignettes
from service.triage.review import DISPOSITIONS, Observed, all_figures, applies, figures_table, problems
from tests.support import (ROOT, concept_key, disposition, post_triage, questionnaire_response, resources,
                           risk_assessment)

VIGNETTES = load_vignettes()
REGISTRY = Registry()
RUNS = [(v, c) for v in REGISTRY.versions for c in VIGNETTES if applies(c, v)]
EVIDENCE = "http://legtriage.example.org/fhir/StructureDefinition/triage-evidence"
RATIONALE_PART = re.compile(r"\[([a-z0-9-]+)\](?: \(([^)]*)\))?\. Source")


def test_there_are_enough_vignettes_of_every_disposition_for_every_version():
    assert len({c["id"] for c in VIGNETTES}) == len(VIGNETTES), "vignette ids must be unique"
    for version in REGISTRY.versions:
        mine = [c for c in VIGNETTES if applies(c, version)]
        assert len(mine) >= 60, version
        assert {c["expect"]["disposition"] for c in mine} == set(DISPOSITIONS), version
    for case in VIGNETTES:
        assert set(case.get("versions", REGISTRY.versions)) <= set(REGISTRY.versions), case["id"]


def test_every_review_finding_has_two_changed_stories_and_a_neighbour():
    """The review of 1.0.0 (`finding`, review_1_1_0.yaml): stories 1.1.0 changed, and neighbours."""
    newest = REGISTRY.versions[-1]
    for finding in range(1, 13):
        cases = [c for c in VIGNETTES if c.get("finding") == finding]
        changed = [c for c in cases if c.get("versions") == ["1.1.0"]]
        neighbours = [c for c in cases if "versions" not in c]
        assert len(changed) >= 2, finding
        assert neighbours, finding
    ids = {c["id"] for c in VIGNETTES}
    for case in VIGNETTES:
        if "replaces" in case:
            old = next(c for c in VIGNETTES if c["id"] == case["replaces"])
            assert old["answers"] == case["answers"] and newest not in old.get("versions", [newest])
            assert case["replaces"] in ids


def test_every_item_of_the_review_of_1_1_0_has_stories_for_1_2_0_with_reason_and_source():
    """review_1_2_0.yaml: the stories of items 1-9 (item 7, the words a clinician reads, is checked on
    every text in tests/unit/triage/test_rules.py), each for 1.2.0 only, with its reason and source."""
    mine = [c for c in VIGNETTES if c["file"] == "review_1_2_0.yaml"]
    assert {c["item"] for c in mine} == {1, 2, 3, 4, 5, 6, 8, 9}
    for case in mine:
        assert case["versions"] == ["1.2.0"] and case["reason"] and case["source"]["quote"], case["id"]


def observed_from_bundle(bundle: dict, terminology: dict) -> Observed:
    ra = risk_assessment(bundle)

    key = concept_key
    evidence = {}
    for p in ra.get("prediction", []):
        # what the rationale lists in brackets (1.0.0 and 1.1.0 publish it so); a clinical rationale
        # names no rule and no linkId: then the evidence as data (the triage-evidence extension)
        listed = RATIONALE_PART.findall(p["rationale"])
        for rule_id, shown in listed:
            evidence[rule_id] = frozenset(part.split(" = ")[0] for part in shown.split(", ") if part)
        if listed:
            continue
        for x in p.get("extension", []):
            if x.get("url") == EVIDENCE:
                parts = x.get("extension", [])
                rule_id = next(part["valueId"] for part in parts if part["url"] == "rule")
                evidence[rule_id] = frozenset(part["valueString"] for part in parts
                                              if part["url"] == "answer")
    return Observed(disposition(bundle),
                    tuple(key(p["outcome"], terminology["conditions"]) for p in ra.get("prediction", [])),
                    {key(sr["code"], terminology["procedures"]): sr["priority"]
                     for sr in resources(bundle, "ServiceRequest")},
                    ra.get("mitigation", ""), evidence)


@pytest.mark.parametrize("version,case", RUNS, ids=[f"{v}:{c['id']}" for v, c in RUNS])
def test_vignette(client, terminology, version, case):
    response = post_triage(client, questionnaire_response(case["answers"], subject="Patient/vignette"),
                           f"?rules-version={version}")
    assert response.status_code == 200, response.get_data(as_text=True)
    seen = observed_from_bundle(response.get_json(force=True), terminology)
    assert not problems(case, seen), f"{case['file']}: {case['title']} (source {case['source']['file']})"


def test_figures_are_printed_for_every_version(capsys):
    """The figures a release note quotes; 1.1.0 must meet every expectation of its own vignettes."""
    data = clinical_data()
    rows = all_figures(REGISTRY, data.vignettes, data)
    with capsys.disabled():
        print("\n" + figures_table(rows))
    for label, fig in rows:
        if "own" in label:
            assert fig.agree == fig.total, label
        assert fig.total and fig.mean_proposals <= fig.most_proposals


def test_vignette_quotes_are_in_their_sources():
    sources = ROOT.parent / "shared" / "sources"
    if not sources.is_dir():
        pytest.skip("shared/sources is not beside this checkout (CI and the dev machines have it)")
    squash = lambda text: " ".join(text.split())  # noqa: E731
    texts = {p.name: squash(p.read_text(encoding="utf-8")) for p in sources.glob("*.txt")}
    for case in VIGNETTES:
        assert squash(case["source"]["quote"]) in texts[case["source"]["file"]], case["id"]
