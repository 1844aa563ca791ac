"""The one command line: `legtriage …` (the console script of pyproject.toml).

    legtriage check                              check the settings and mappings, as the service starts
    legtriage settings                           every setting, its default and meaning (the README's tables)
    legtriage migrate | purge [--days N] | report [--json] | count      the records store
    legtriage forms coverage MAPPING.yaml...     what a foreign form's mapping covers
    legtriage rules table [VERSION]              the rule table for clinical review
    legtriage rules diff OLD NEW                 what changed between two rule versions
    legtriage rules review                       vignette figures: under- and over-triage per version
    legtriage rules release [VERSION...] [--write]   the release notes docs/rules-X.Y.Z.md
    legtriage rules safety-case [--write]        docs/safety-case.md
    legtriage devtoken --issuer … --audience …   a test key and token, to try authentication locally

The commands only read arguments and print: the work is done by the modules they name, which have no
command line of their own. Imports are made inside each command, so that `legtriage devtoken` does
not build the app and `legtriage --help` answers at once. In the container image, where the
application is copied rather than installed, `/opt/venv/bin/legtriage` runs this module
(docker/legtriage); `python -m service.cli` does the same anywhere.

A refused argument or input is one line on stderr, `legtriage: …` naming it, and exit status 2 (1
when the database is not reachable or a mapping file is bad).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


class Failure(click.ClickException):
    """One line on stderr, `legtriage: <message>`, and the exit status given (2 unless said)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"legtriage: {self.format_message()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """legtriage: the FHIR R4 triage service for leg numbness, its records and its rule versions.

    The service and records commands read the same LEGTRIAGE_* settings as the service.
    """


def main(argv: list[str] | None = None) -> None:
    """The console script's entry point."""
    cli.main(args=argv, prog_name="legtriage")


# --------------------------------------------------------------------------- check


@cli.command()
def check() -> None:
    """Check the start-up inputs and exit (scripts/serve runs it first).

    Builds the app once from the LEGTRIAGE_* settings, the way gunicorn will, so that a bad value (a
    setting, the mappings folder, the default rule version) is reported as one line naming it, with
    exit status 2, before gunicorn prints anything of its own.
    """
    from service import create_app
    from service.catalog import CatalogError
    from service.config import ConfigError

    try:
        create_app()
    except (ConfigError, CatalogError) as err:
        raise Failure(str(err)) from None


@cli.command()
def settings() -> None:
    """Every LEGTRIAGE_* setting, its default and meaning: the README's two tables (Markdown)."""
    from service.config import AUTH, SERVICE, settings_table

    click.echo(settings_table(SERVICE))
    click.echo(settings_table(AUTH), nl=False)


# --------------------------------------------------------------------------- the records store


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def report_markdown(rows: list) -> str:
    """The feedback report (rows of `Records.report()`) as Markdown."""
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


def report_json(rows: list) -> dict:
    """The same figures as JSON."""
    return {"rows": [{
        "service": r.service, "disposition": r.disposition, "rulesVersion": r.rules_version,
        "cards": r.cards, "cardsWithFeedback": r.cards_with_feedback, "feedback": r.feedback,
        "accepted": r.accepted, "overridden": r.overridden,
        "acceptanceRate": r.acceptance_rate, "overrideRate": r.override_rate,
        "overrideReasons": [{"code": code, "count": n} for code, n in r.override_reasons],
    } for r in rows]}


def _with_store(work) -> None:
    """Open the records store of the LEGTRIAGE_* settings, run `work(settings, store)`, close it."""
    from service.config import ConfigError, load_settings
    from service.records import StoreUnavailable
    from service.records.store import open_store

    try:
        settings = load_settings()
    except ConfigError as err:
        raise Failure(str(err)) from None
    store = open_store(settings)
    try:
        work(settings, store)
    except StoreUnavailable as err:
        raise Failure(f"{err}: is the database reachable?", exit_code=1) from None
    finally:
        store.close()


@cli.command()
def migrate() -> None:
    """Make or upgrade the records schema (the service also does at start)."""
    _with_store(lambda settings, store: click.echo(f"schema at revision {store.migrate()}"))


@cli.command()
@click.option("--days", type=click.IntRange(min=1),
              help="keep this many days (default: LEGTRIAGE_AUDIT_RETENTION_DAYS)")
def purge(days: int | None) -> None:
    """Remove audit events, CDS cards and feedback past the retention period."""
    from service.records import now_us

    def work(settings, store) -> None:
        keep = settings.audit_retention_days if days is None else days
        removed = store.purge(now_us() - keep * 86_400_000_000)
        click.echo(f"removed {removed.audits} audit event(s), {removed.cards} CDS card(s) and "
                   f"{removed.feedback} feedback item(s) older than {keep} day(s)")
    _with_store(work)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="the same figures as JSON")
def report(as_json: bool) -> None:
    """CDS Hooks feedback: acceptance and override rates by service, disposition and rules version."""
    def work(settings, store) -> None:
        rows = store.report()
        click.echo(json.dumps(report_json(rows), indent=2) if as_json else report_markdown(rows))
    _with_store(work)


@cli.command()
def count() -> None:
    """How many audit events are stored."""
    _with_store(lambda settings, store: click.echo(store.count_audits()))


# --------------------------------------------------------------------------- other hospitals' forms


@cli.group()
def forms() -> None:
    """Other hospitals' forms (mappings/forms/)."""


@forms.command("coverage")
@click.argument("mappings", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rules-version", help="rule module whose warning signs count (default: newest)")
def forms_coverage(mappings: tuple[Path, ...], rules_version: str | None) -> None:
    """Check each mapping file and print its coverage: the facts it reaches, the warning signs it
    cannot ask, the items and answer codings it does not map."""
    from service.clinical import MAPPINGS
    from service.fhir_io.served import load_catalog
    from service.forms import FormError, coverage, coverage_report, load_form
    from service.triage.rules import discover
    from service.triage.signs import warning_sign_facts

    modules = discover()
    module = modules.get(rules_version) if rules_version else list(modules.values())[-1]
    if module is None:
        raise Failure(f"unknown rules version {rules_version}; published: {', '.join(modules)}")
    labels = load_catalog(MAPPINGS).wording.question
    signs = warning_sign_facts(module)
    failed = False
    for path in mappings:
        try:
            form = load_form(path)
        except FormError as err:
            click.echo(f"error: {err}", err=True)
            failed = True
            continue
        click.echo(coverage_report(coverage(form, signs), labels))
    if failed:
        sys.exit(1)


# --------------------------------------------------------------------------- rule versions


@cli.group()
def rules() -> None:
    """The rule versions: their table, diff, vignette figures, release notes and safety case."""


def _registry_with(*versions: str):
    """The published rule modules, after checking that each version named is one of them."""
    from service.triage.engine import Registry

    registry = Registry()
    for version in versions:
        if version not in registry.modules:
            raise Failure(f"unknown rules version {version}; published: {', '.join(registry.versions)}")
    return registry


def _shown(path: Path) -> str:
    """A path written, as the checkout names it where it is inside it."""
    from service.config import PROJECT_ROOT

    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


@rules.command("table")
@click.argument("version", required=False)
def rules_table(version: str | None) -> None:
    """Print the rule table of VERSION (default: the default version) for clinical review: each rule
    with its condition in clinical words, its disposition floor, causes, proposals and citations."""
    from service.clinical import terminology
    from service.triage import report

    registry = _registry_with(*([version] if version else []))
    sys.stdout.write(report.render(registry.get(version), terminology()))


@rules.command("diff")
@click.argument("old")
@click.argument("new")
def rules_diff(old: str, new: str) -> None:
    """Print what changed from rule version OLD to NEW, for clinical sign-off: rules added, removed and
    changed, the steps after the rules, and every vignette whose result changes (the first part of
    docs/rules-NEW.md)."""
    from service.clinical import clinical_data
    from service.triage import report

    registry = _registry_with(old, new)
    sys.stdout.write(report.diff(registry.get(old), registry.get(new), clinical_data()))


@rules.command("review")
def rules_review() -> None:
    """The vignette figures of every version: under- and over-triage (Markdown)."""
    from service.clinical import clinical_data
    from service.triage import review

    registry = _registry_with()
    data = clinical_data()
    sys.stdout.write("Under-triage: a lower disposition than expected (by the expected one); "
                     "over-triage: a higher one.\n\n")
    sys.stdout.write(review.figures_table(review.all_figures(registry, data.vignettes, data)))


@rules.command("release")
@click.argument("versions", nargs=-1)
@click.option("--write", is_flag=True,
              help="write docs/rules-X.Y.Z.md and service/triage/releases/X.Y.Z.json")
def rules_release(versions: tuple[str, ...], write: bool) -> None:
    """Print the release note of each VERSION (default: every version with a predecessor): every
    disposition change against its predecessor over all stored answer sets, in stories."""
    from service.clinical import clinical_data, note_path
    from service.triage import release

    registry = _registry_with(*versions)
    for version in versions:
        if not registry.get(version).replaces:
            raise Failure(f"{version} succeeds no version: it has no release note")
    for version in versions or release.released(registry):
        text, data = release.generate(registry, version, clinical_data())
        if write:
            note_path(version).write_text(text, encoding="utf-8")
            release.STORIES_DIR.mkdir(exist_ok=True)
            release.stories_path(version).write_text(data, encoding="utf-8")
            click.echo(f"{_shown(note_path(version))}, {_shown(release.stories_path(version))}")
        else:
            sys.stdout.write(text)


@rules.command("safety-case")
@click.option("--write", is_flag=True, help="write docs/safety-case.md")
@click.option("--signoff-dir", type=click.Path(path_type=Path),
              help="the sign-off files to report (default: the shipped, empty mappings/signoff/)")
def rules_safety_case(write: bool, signoff_dir: Path | None) -> None:
    """Print the clinical safety case (docs/safety-case.md), every figure measured as it runs."""
    from service import clinical
    from service.triage import safety_case

    text = safety_case.render(_registry_with(), clinical.clinical_data(),
                              signoff_dir or clinical.SIGNOFF_DIR)
    if write:
        clinical.SAFETY_CASE.write_text(text, encoding="utf-8")
        click.echo(_shown(clinical.SAFETY_CASE))
    else:
        sys.stdout.write(text)


# --------------------------------------------------------------------------- trying authentication


@cli.command()
@click.option("--issuer", required=True, help="the token's iss (LEGTRIAGE_AUTH_ISSUERS)")
@click.option("--audience", required=True, help="the token's aud (LEGTRIAGE_AUTH_AUDIENCE)")
@click.option("--scope", help="the token's scope claim, e.g. 'user/QuestionnaireResponse.write'")
@click.option("--subject", default="dev-user", show_default=True, help="the token's sub")
@click.option("--lifetime", type=click.IntRange(1, 86400), default=3600, show_default=True,
              help="seconds until exp (keep it within LEGTRIAGE_AUTH_JTI_WINDOW_SECONDS when that is on)")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="where the key and the JWKS go (default: .cache/devtoken of the checkout)")
def devtoken(issuer: str, audience: str, scope: str | None, subject: str, lifetime: int,
             folder: Path | None) -> None:
    """A test key set and a signed test token, to try the service with authentication on.

    Writes DIR/private-key.pem (an RSA key, mode 0600; made once and then reused, so earlier tokens
    stay valid) and DIR/jwks.json (its public half, what LEGTRIAGE_AUTH_JWKS_FILE points at), prints
    the token on stdout and, on stderr, the settings that make the service trust it.

    For development and tests only: a real deployment trusts the keys of its EHR or authorization
    server, never a key made on the machine that runs the service.
    """
    from service.devtoken import DEFAULT_DIR, make_token

    folder = folder or DEFAULT_DIR
    click.echo(make_token(folder, issuer, audience, scope, subject, lifetime))
    click.echo(f"devtoken: signed with {folder / 'private-key.pem'}; the service trusts it with\n"
               f"  LEGTRIAGE_AUTH_ENABLED=true LEGTRIAGE_AUTH_JWKS_FILE={folder / 'jwks.json'} "
               f"LEGTRIAGE_AUTH_ISSUERS={issuer} LEGTRIAGE_AUTH_AUDIENCE={audience} "
               f"LEGTRIAGE_CDS_AUTH_ENABLED=false", err=True)


if __name__ == "__main__":
    main()
