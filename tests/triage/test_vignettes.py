"""Clinical vignettes (tests/vignettes/*.yaml), each run through the HTTP API."""
from __future__ import annotations

import pytest
import yaml

from tests.support import ROOT, disposition, outcome_keys, post_triage, proposal_keys, questionnaire_response

VIGNETTE_DIR = ROOT / "tests" / "vignettes"


def load_vignettes() -> list[dict]:
    cases = []
    for path in sorted(VIGNETTE_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            case["file"] = path.name
            cases.append(case)
    return cases


VIGNETTES = load_vignettes()


def test_there_are_enough_vignettes_of_every_disposition():
    counts = {}
    for case in VIGNETTES:
        counts[case["expect"]["disposition"]] = counts.get(case["expect"]["disposition"], 0) + 1
    assert len(VIGNETTES) >= 60
    assert set(counts) == {"emergency", "urgent", "routine", "self-care"}
    assert len({c["id"] for c in VIGNETTES}) == len(VIGNETTES), "vignette ids must be unique"


@pytest.mark.parametrize("case", VIGNETTES, ids=[c["id"] for c in VIGNETTES])
def test_vignette(client, terminology, case):
    response = post_triage(client, questionnaire_response(case["answers"], subject="Patient/vignette"))
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = response.get_json(force=True)
    expect = case["expect"]
    causes = outcome_keys(bundle, terminology["conditions"])
    proposals = proposal_keys(bundle, terminology["procedures"])
    why = f"{case['file']}: {case['title']} (source {case['source']['file']})"
    assert disposition(bundle) == expect["disposition"], why
    assert set(expect.get("causes") or []) <= causes, why
    assert not set(expect.get("not_causes") or []) & causes, why
    assert set(expect.get("proposals") or []) <= proposals, why
    assert not set(expect.get("not_proposals") or []) & proposals, why


def test_vignette_quotes_are_in_their_sources():
    sources = ROOT.parent / "shared" / "sources"
    if not sources.is_dir():
        pytest.skip("shared/sources is not beside this checkout (CI and the dev machines have it)")
    squash = lambda text: " ".join(text.split())  # noqa: E731
    texts = {p.name: squash(p.read_text(encoding="utf-8")) for p in sources.glob("*.txt")}
    for case in VIGNETTES:
        assert squash(case["source"]["quote"]) in texts[case["source"]["file"]], case["id"]
