"""The records store's commands (settings from the same LEGTRIAGE_* variables as the service):

    python -m service.store migrate          # make or upgrade the schema (the service also does at start)
    python -m service.store purge [--days N] # remove audit events, CDS cards and feedback older than LEGTRIAGE_AUDIT_RETENTION_DAYS (or N)
    python -m service.store report [--json]  # CDS Hooks feedback: acceptance and override rates
    python -m service.store count            # how many audit events are stored
"""
from __future__ import annotations

import argparse
import json
import sys

from service.config import ConfigError, load_settings
from service.records import ReportRow, StoreUnavailable, now_us
from service.store import open_store


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def report_markdown(rows: list[ReportRow]) -> str:
    lines = ["# CDS Hooks feedback", "",
             "Acceptance and override rates per feedback item on the cards issued, by service, "
             "disposition and rules version.", "",
             "| service | disposition | rules version | cards | cards with feedback | accepted | "
             "overridden | acceptance rate | override rate |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.service} | {r.disposition or '(card not on record)'} | "
                     f"{r.rules_version or '–'} | {r.cards} | {r.cards_with_feedback} | {r.accepted} | "
                     f"{r.overridden} | {_rate(r.acceptance_rate)} | {_rate(r.override_rate)} |")
    if not rows:
        lines.append("| (no cards and no feedback yet) | | | 0 | 0 | 0 | 0 | – | – |")
    reasons = [(r, code, n) for r in rows for code, n in r.override_reasons]
    if reasons:
        lines += ["", "## Override reasons", "",
                  "| service | disposition | rules version | override reason | count |",
                  "|---|---|---|---|---:|"]
        lines += [f"| {r.service} | {r.disposition or '(card not on record)'} | {r.rules_version or '–'} "
                  f"| {code} | {n} |" for r, code, n in reasons]
    return "\n".join(lines)


def report_json(rows: list[ReportRow]) -> dict:
    return {"rows": [{
        "service": r.service, "disposition": r.disposition, "rulesVersion": r.rules_version,
        "cards": r.cards, "cardsWithFeedback": r.cards_with_feedback, "feedback": r.feedback,
        "accepted": r.accepted, "overridden": r.overridden,
        "acceptanceRate": r.acceptance_rate, "overrideRate": r.override_rate,
        "overrideReasons": [{"code": code, "count": n} for code, n in r.override_reasons],
    } for r in rows]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.store", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="make or upgrade the schema")
    purge = commands.add_parser("purge", help="remove audit events, CDS cards and feedback past the retention period")
    purge.add_argument("--days", type=int, help="keep this many days (default: LEGTRIAGE_AUDIT_RETENTION_DAYS)")
    report = commands.add_parser("report", help="feedback rates by service, disposition and rules version")
    report.add_argument("--json", action="store_true", help="the same figures as JSON")
    commands.add_parser("count", help="how many audit events are stored")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    store = open_store(settings)
    try:
        if args.command == "migrate":
            print(f"schema at revision {store.migrate()}")
        elif args.command == "purge":
            days = settings.audit_retention_days if args.days is None else args.days
            if days < 1:
                parser.error("--days must be at least 1")
            removed = store.purge(now_us() - days * 86_400_000_000)
            print(f"removed {removed.audits} audit event(s), {removed.cards} CDS card(s) and "
                  f"{removed.feedback} feedback item(s) older than {days} day(s)")
        elif args.command == "report":
            rows = store.report()
            print(json.dumps(report_json(rows), indent=2) if args.json else report_markdown(rows))
        elif args.command == "count":
            print(store.count_audits())
    except StoreUnavailable as err:
        print(f"{err}: is the database reachable?", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
