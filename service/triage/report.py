"""Print the rule table of a rule module for clinical review: python -m service.triage.report

Each rule with its condition in clinical words, the disposition floor, the causes and proposals it
raises, the passages it cites, and what it adds beyond the sources. No code reading needed.
"""
from __future__ import annotations

import argparse
import sys

import yaml

from service.config import PROJECT_ROOT
from service.triage.engine import Registry
from service.triage.rules import RuleModule


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render(module: RuleModule, terms: dict) -> str:
    label = lambda section, key: terms[section][key]["text"]  # noqa: E731
    lines = [
        f"# {module.title} {module.version} ({module.status}, {module.date})",
        "",
        f"{len(module.rules)} rules. The disposition is the highest floor among the rules that fire; "
        "an unanswered question never counts as 'no'.",
        "",
        "| # | rule | condition | floor | causes (risk) | proposals | sources | beyond the sources |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, rule in enumerate(module.rules, 1):
        causes = ", ".join(f"{label('conditions', c)} ({r.code})" for c, r in rule.causes) or "-"
        proposals = ", ".join(label("procedures", p) for p in rule.proposals) or "-"
        cites = "; ".join(f'{c.file}: "{c.quote}"' for c in rule.cites)
        lines.append(f"| {n} | {_cell(rule.title)} (`{rule.id}`) | {_cell(rule.condition)} | "
                     f"{rule.floor.code} | {_cell(causes)} | {_cell(proposals)} | {_cell(cites)} | "
                     f"{_cell(rule.common_sense or '-')} |")
    lines += ["", "Main referral by disposition: " + ", ".join(
        f"{d.code} → {label('procedures', key)}" for d, key in module.main_referral.items()),
        "", "## Advice", ""]
    for adv in module.self_care_advice:
        lines.append(f"- self-care: {adv.text} ({', '.join(c.file for c in adv.cites)})")
    for adv in module.safety_net_advice:
        lines.append(f"- always: {adv.text} ({', '.join(c.file for c in adv.cites)})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    registry = Registry()
    parser.add_argument("--version", default=registry.default_version,
                        help=f"rule module version (published: {', '.join(registry.versions)})")
    args = parser.parse_args(argv)
    if args.version not in registry.modules:
        parser.error(f"unknown version {args.version}; published: {', '.join(registry.versions)}")
    terms = yaml.safe_load((PROJECT_ROOT / "mappings" / "terminology.yaml").read_text())
    sys.stdout.write(render(registry.get(args.version), terms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
