"""The clinician's review report lists every rule with its condition, outcome and citation
(`legtriage rules table`, `legtriage rules diff`)."""
from __future__ import annotations

from click.testing import CliRunner

from service.cli import cli
from service.triage.engine import Registry
from tests.support import ROOT


def legtriage(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_report_lists_every_rule_with_citation():
    result = legtriage("rules", "table")
    assert result.exit_code == 0, result.output
    out = result.stdout
    module = Registry().get()
    assert out.startswith(f"# {module.title} {module.version} (active")
    assert module.version == "1.2.0"  # the default report is the newest active version
    rows = [line for line in out.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(module.rules)
    for rule, row in zip(module.rules, rows):
        assert f"`{rule.id}`" in row and rule.floor.code in row and rule.cites[0].file in row


def test_report_rejects_an_unknown_version():
    result = legtriage("rules", "table", "0.0.0")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "legtriage: unknown rules version 0.0.0; published: 1.0.0, 1.1.0, 1.2.0\n"


def test_the_diff_report_opens_the_release_note():
    """docs/rules-X.Y.Z.md begins with what `legtriage rules diff` prints (tests/unit/triage/test_release.py regenerates
    the whole note and fails when it is stale)."""
    result = legtriage("rules", "diff", "1.0.0", "1.1.0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert (ROOT / "docs" / "rules-1.1.0.md").read_text(encoding="utf-8").startswith(out.rstrip())
    for heading in ("## Release note", "## Summary", "## Sign-off", "## Rules added", "## Rules removed",
                    "## Rules changed", "## Vignettes whose disposition or proposals change",
                    "## Vignette figures"):
        assert heading in out
    assert "`sudden-whole-leg`" in out and "`f3-raynaud-attack`" in out
    for rule in ("sciatica", "fell-asleep", "distal-symmetric", "both-legs-systemic", "tight-clothing", "cold"):
        assert f"| `{rule}` |" in out


def test_the_diff_rejects_an_unknown_version():
    for args in (("1.0.0", "9.9.9"), ("9.9.9", "1.1.0")):
        result = legtriage("rules", "diff", *args)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.splitlines() == [
            "legtriage: unknown rules version 9.9.9; published: 1.0.0, 1.1.0, 1.2.0"]
