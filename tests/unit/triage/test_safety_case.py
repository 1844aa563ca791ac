"""docs/safety-case.md is generated (legtriage rules safety-case --write) and current; its
hazard log covers the hazards DESIGN.md names, its controls name tests that exist, and its figures
are the ones the command measures."""
from __future__ import annotations

import ast
import re

import pytest

from service.clinical import SIGNOFF_DIR, clinical_data
from service.triage import safety_case
from service.triage.engine import Registry
from tests.support import ROOT


@pytest.fixture(scope="module")
def text():
    return safety_case.render(Registry(), clinical_data(), SIGNOFF_DIR)


def test_the_safety_case_is_current(text):
    assert (ROOT / "docs" / "safety-case.md").read_text(encoding="utf-8") == text, \
        "docs/safety-case.md is stale: legtriage rules safety-case --write"


def test_it_has_the_dcb0129_parts_and_the_hazards(text):
    for heading in ("## 1. The system and its intended use", "## 2. Hazard log",
                    "## 3. Evidence: dispositions and vignette figures",
                    "## 4. Release and sign-off status of every version"):
        assert heading in text
    titles = " | ".join(h.title.lower() for h in safety_case.HAZARDS)
    for hazard in ("stroke", "cauda equina", "cord compression", "clot", "limb ischaemia",
                   "missing answer", "another hospital's form", "contradicts the disposition",
                   "changes after publication", "record is lost"):
        assert hazard in titles
    for h in safety_case.HAZARDS:
        section = text[text.index(f"### {h.id}. "):]
        section = section[:section.index("\n### ")] if "\n### " in section else section
        for part in ("**Causes**", "**Effect**", "**Tests**", "**Residual risk"):
            assert part in section, (h.id, part)


def _test_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_test_it_names_exists():
    for h in safety_case.HAZARDS:
        assert h.tests, h.id
        for test in h.tests:
            file, _, name = test.partition("::")
            assert name in _test_names(ROOT / file), f"{h.id} names {test}, which does not exist"


def test_the_figures_are_measured_not_typed(text):
    registry = Registry()
    sets = safety_case.release.answer_sets(clinical_data())
    assert f"Stored answer sets run for this case: {len(sets)} (" in text
    cases = clinical_data().vignettes
    assert f"Vignettes (clinical/vignettes): {len(cases)} stories" in text
    measured = safety_case.measure(registry.get(), sets)
    checked, failed, _ = measured.checks["a stroke sign gives an emergency"]
    assert f"{registry.get().version}: {checked - failed} of {checked} hold" in text
    for version in registry.versions:
        assert re.search(rf"^\| {re.escape(version)} \| \w+ \| ", text, re.MULTILINE)


def test_a_hospitals_sign_off_shows_in_its_own_safety_case(tmp_path):
    from tests.e2e.test_signoff import signoff_text, write
    folder = write(tmp_path, "1.1.0.yaml", signoff_text())
    text = safety_case.render(Registry(), clinical_data(), folder)
    assert "| 1.1.0 | retired | docs/rules-1.1.0.md |" in text
    assert "signed by Dr Jane Example, Clinical safety officer, 2026-12-05" in text
    assert "not signed: no sign-off file 1.0.0.yaml" in text
