"""The clinician's review report lists every rule with its condition, outcome and citation."""
from __future__ import annotations

import subprocess
import sys

from service.triage.engine import Registry
from tests.support import ROOT


def test_report_lists_every_rule_with_citation():
    out = subprocess.run([sys.executable, "-m", "service.triage.report"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    module = Registry().get()
    assert out.startswith(f"# {module.title} {module.version} (active")
    assert module.version == "1.2.0"  # the default report is the newest active version
    rows = [line for line in out.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(module.rules)
    for rule, row in zip(module.rules, rows):
        assert f"`{rule.id}`" in row and rule.floor.code in row and rule.cites[0].file in row


def test_report_rejects_an_unknown_version():
    result = subprocess.run([sys.executable, "-m", "service.triage.report", "--version", "0.0.0"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "published: 1.0.0, 1.1.0, 1.2.0" in result.stderr


def test_the_diff_report_is_docs_rules_1_1_0():
    """docs/rules-1.1.0.md is what `--diff 1.0.0 1.1.0` prints: rerun it when rules or vignettes change."""
    out = subprocess.run([sys.executable, "-m", "service.triage.report", "--diff", "1.0.0", "1.1.0"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert (ROOT / "docs" / "rules-1.1.0.md").read_text(encoding="utf-8") == out, \
        "docs/rules-1.1.0.md is stale: python -m service.triage.report --diff 1.0.0 1.1.0 > docs/rules-1.1.0.md"
    for heading in ("## Release note", "## Summary", "## Sign-off", "## Rules added", "## Rules removed",
                    "## Rules changed", "## Vignettes whose disposition or proposals change",
                    "## Vignette figures"):
        assert heading in out
    assert "`sudden-whole-leg`" in out and "`f3-raynaud-attack`" in out
    for rule in ("sciatica", "fell-asleep", "distal-symmetric", "both-legs-systemic", "tight-clothing", "cold"):
        assert f"| `{rule}` |" in out


def test_the_diff_rejects_an_unknown_version():
    result = subprocess.run([sys.executable, "-m", "service.triage.report", "--diff", "1.0.0", "9.9.9"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "9.9.9" in result.stderr
