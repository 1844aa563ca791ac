"""docs/rules-coverage.md stays true: every rule appears, every id it names exists."""
from __future__ import annotations

import re

from service.triage.engine import Registry
from service.triage.review import applies
from tests.support import ROOT
from tests.e2e.test_vignettes import VIGNETTES

DOC = (ROOT / "docs" / "rules-coverage.md").read_text()


def test_every_rule_is_in_the_coverage_table():
    for version in ("1.0.0", "1.1.0"):
        rule_ids = {r.id for r in Registry().get(version).rules}
        named = set(re.findall(r"`([a-z0-9-]+)`", DOC))
        assert rule_ids <= named, (version, sorted(rule_ids - named))
    assert DOC.startswith("# Rule module 1.1.0")


def test_every_vignette_named_exists():
    vignette_ids = {c["id"] for c in VIGNETTES}
    checked = 0
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or "`" not in cells[2]:
            continue  # not a row of a coverage table (cause | sources | rules | vignettes)
        for name in re.findall(r"\b[a-z0-9]+(?:-[a-z0-9]+)+\b", cells[3]):
            assert name in vignette_ids, name
            case = next(c for c in VIGNETTES if c["id"] == name)
            assert applies(case, "1.1.0"), f"{name} holds only for {case['versions']}"
            checked += 1
    assert checked > 40
