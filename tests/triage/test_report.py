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
    rows = [line for line in out.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(module.rules)
    for rule, row in zip(module.rules, rows):
        assert f"`{rule.id}`" in row and rule.floor.code in row and rule.cites[0].file in row


def test_report_rejects_an_unknown_version():
    result = subprocess.run([sys.executable, "-m", "service.triage.report", "--version", "0.0.0"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "published: 1.0.0" in result.stderr
