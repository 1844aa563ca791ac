"""The one command line, `legtriage …` (service/cli.py): each subcommand through click's CliRunner,
the installed console script as a real process, and no other command line left in the service.

The rule table and `legtriage rules diff`'s unknown versions are in tests/unit/triage/test_report.py,
`legtriage forms coverage` on a bad mapping in tests/unit/test_forms_mapping.py, the store commands on
PostgreSQL in tests/integration/test_store.py and tests/integration/test_audit.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from service.cli import cli
from service.records import AuditRecord
from service.records.store import HEAD, SqlStore
from service.triage.engine import Registry
from tests.support import LEGTRIAGE, ROOT

RULES_NOTE = ROOT / "docs" / "rules-1.1.0.md"
PUBLISHED = ", ".join(Registry().versions)


def legtriage(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def one_line(result) -> str:
    """The single line a refused command says on stderr (nothing on stdout)."""
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("legtriage: "), result.stderr
    return lines[0]


def test_help_lists_every_command():
    result = legtriage("--help")
    assert result.exit_code == 0
    for command in ("check", "settings", "migrate", "purge", "report", "count", "forms", "rules", "devtoken"):
        assert re.search(rf"^  {command}\s", result.stdout, re.M), command
    result = legtriage("rules", "--help")
    for command in ("table", "diff", "review", "release", "safety-case"):
        assert re.search(rf"^  {command}\s", result.stdout, re.M), command


# --------------------------------------------------------------------------- check


def test_check_passes_on_good_settings_and_names_a_bad_one():
    assert legtriage("check").exit_code == 0
    result = legtriage("check", env={"LEGTRIAGE_PORT": "abc"})
    assert result.exit_code == 2
    assert one_line(result) == "legtriage: invalid configuration: LEGTRIAGE_PORT: Not a valid integer."
    result = legtriage("check", env={"LEGTRIAGE_DEFAULT_RULES_VERSION": "9.9.9"})
    assert result.exit_code == 2 and "9.9.9" in one_line(result)


# --------------------------------------------------------------------------- the records store


@pytest.fixture()
def data_dir(tmp_path) -> dict[str, str]:
    """Settings for an empty SQLite store of its own."""
    return {"LEGTRIAGE_DATA_DIR": str(tmp_path), "LEGTRIAGE_DATABASE_URL": ""}


def test_migrate_makes_the_schema(data_dir):
    result = legtriage("migrate", env=data_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"schema at revision {HEAD}\n"


def test_count_and_purge_see_the_audit_events(data_dir, tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'legtriage.sqlite3'}")
    store.start()
    store.audit(AuditRecord(kind="triage", status=200, recorded="2001-01-01T00:00:00Z"))
    store.audit(AuditRecord(kind="triage", status=200))
    store.close()
    assert legtriage("count", env=data_dir).stdout == "2\n"
    result = legtriage("purge", "--days", "30", env=data_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout == ("removed 1 audit event(s), 0 CDS card(s) and 0 feedback item(s) "
                             "older than 30 day(s)\n")
    assert legtriage("count", env=data_dir).stdout == "1\n"
    # the default is LEGTRIAGE_AUDIT_RETENTION_DAYS
    result = legtriage("purge", env={**data_dir, "LEGTRIAGE_AUDIT_RETENTION_DAYS": "7"})
    assert result.exit_code == 0 and "older than 7 day(s)" in result.stdout


def test_purge_refuses_fewer_than_one_day(data_dir):
    result = legtriage("purge", "--days", "0", env=data_dir)
    assert result.exit_code == 2 and "--days" in result.stderr


def test_report_prints_markdown_and_json(data_dir):
    result = legtriage("report", env=data_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# CDS Hooks feedback\n")
    assert "| (no cards and no feedback yet) |" in result.stdout
    result = legtriage("report", "--json", env=data_dir)
    assert result.exit_code == 0 and json.loads(result.stdout) == {"rows": []}


def test_store_commands_say_a_bad_setting_or_an_unreachable_database_in_one_line(data_dir):
    result = legtriage("count", env={**data_dir, "LEGTRIAGE_AUDIT_RETENTION_DAYS": "x"})
    assert result.exit_code == 2 and "LEGTRIAGE_AUDIT_RETENTION_DAYS" in one_line(result)
    # port 1 on the loopback: nothing listens there
    result = legtriage("count", env={**data_dir, "LEGTRIAGE_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert result.exit_code == 1 and one_line(result).endswith("is the database reachable?")


# --------------------------------------------------------------------------- forms


def test_forms_coverage_prints_what_a_mapping_covers():
    result = legtriage("forms", "coverage", str(ROOT / "mappings" / "forms" / "neuro-intake-2.3.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Coverage of ")
    assert "## Warning signs the form cannot ask" in result.stdout
    result = legtriage("forms", "coverage", "--rules-version", "9.9.9",
                       str(ROOT / "mappings" / "forms" / "neuro-intake-2.3.yaml"))
    assert result.exit_code == 2 and "9.9.9" in one_line(result)
    assert legtriage("forms", "coverage").exit_code == 2  # a mapping file is required


# --------------------------------------------------------------------------- rules


def test_rules_diff_prints_the_diff_the_release_note_opens_with():
    """DESIGN's contract: `legtriage rules diff A B` prints the diff of two rule versions; the
    release note docs/rules-1.1.0.md is made from it (its diff section comes first)."""
    result = legtriage("rules", "diff", "1.0.0", "1.1.0")
    assert result.exit_code == 0, result.output
    note = RULES_NOTE.read_text(encoding="utf-8")
    assert result.stdout.startswith("# ") and note.startswith(result.stdout.rstrip() + "\n")
    assert note[len(result.stdout.rstrip()):].startswith(
        "\n\n## Every disposition change over the stored answer sets")


def test_rules_table_of_a_named_version():
    result = legtriage("rules", "table", "1.0.0")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# ") and " 1.0.0 (" in result.stdout.splitlines()[0]


def test_rules_review_prints_the_figures_of_every_version():
    result = legtriage("rules", "review")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Under-triage: ")
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 1.")]
    # every version on its own, then each older one on the newest version's stories
    versions = Registry().versions
    assert [row.split(" ")[1] for row in rows] == versions + versions[:-1]


def test_rules_release_writes_the_note_and_its_stories(tmp_path, monkeypatch):
    from service import clinical
    from service.triage import release

    monkeypatch.setattr(clinical, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(release, "STORIES_DIR", tmp_path / "releases")
    (tmp_path / "docs").mkdir()
    result = legtriage("rules", "release", "--write")
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"{tmp_path / 'docs' / f'rules-{v}.md'}, {tmp_path / 'releases' / f'{v}.json'}\n"
                                    for v in Registry().versions[1:])
    assert (tmp_path / "docs" / "rules-1.1.0.md").read_text(encoding="utf-8") == \
        RULES_NOTE.read_text(encoding="utf-8")
    assert (tmp_path / "releases" / "1.1.0.json").read_text(encoding="utf-8") == \
        (ROOT / "service" / "triage" / "releases" / "1.1.0.json").read_text(encoding="utf-8")


def test_rules_release_refuses_a_first_version_or_an_unknown_one():
    result = legtriage("rules", "release", "1.0.0")
    assert result.exit_code == 2
    assert one_line(result) == "legtriage: 1.0.0 succeeds no version: it has no release note"
    result = legtriage("rules", "release", "2.0.0")
    assert result.exit_code == 2
    assert one_line(result) == f"legtriage: unknown rules version 2.0.0; published: {PUBLISHED}"


def test_rules_safety_case_writes_the_safety_case(tmp_path, monkeypatch):
    from service import clinical

    monkeypatch.setattr(clinical, "SAFETY_CASE", tmp_path / "safety-case.md")
    result = legtriage("rules", "safety-case", "--write")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'safety-case.md'}\n"
    assert (tmp_path / "safety-case.md").read_text(encoding="utf-8") == \
        (ROOT / "docs" / "safety-case.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- devtoken


def test_devtoken_signs_a_token_its_jwks_verifies(tmp_path):
    result = legtriage("devtoken", "--dir", str(tmp_path), "--issuer", "https://ehr.example.org",
                       "--audience", "https://legtriage.example.org", "--scope", "user/QuestionnaireResponse.write",
                       "--lifetime", "60")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert f"LEGTRIAGE_AUTH_JWKS_FILE={tmp_path / 'jwks.json'}" in result.stderr
    keys = jwt.PyJWKSet.from_json((tmp_path / "jwks.json").read_text())
    claims = jwt.decode(token, keys[jwt.get_unverified_header(token)["kid"]].key, algorithms=["RS384"],
                        audience="https://legtriage.example.org", issuer="https://ehr.example.org")
    assert claims["exp"] - claims["iat"] == 60 and claims["sub"] == "dev-user"
    assert claims["scope"] == "user/QuestionnaireResponse.write"


def test_the_service_never_imports_the_devtoken_module():
    """A key made on the service's own machine is for trying things out: the app never loads that code."""
    code = ("import sys; from service import create_app; create_app(); "
            "print(sorted(m for m in sys.modules if m in ('service.devtoken', 'service.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_devtoken_needs_an_issuer_and_a_lifetime_in_range(tmp_path):
    assert legtriage("devtoken", "--dir", str(tmp_path), "--audience", "a").exit_code == 2
    result = legtriage("devtoken", "--dir", str(tmp_path), "--issuer", "i", "--audience", "a",
                       "--lifetime", "0")
    assert result.exit_code == 2 and "--lifetime" in result.stderr
    assert not (tmp_path / "private-key.pem").exists()


# --------------------------------------------------------------------------- the installed script


def test_the_installed_console_script_prints_the_rules_diff(tmp_path):
    """The real `legtriage` of pyproject.toml's [project.scripts], run from another folder."""
    result = subprocess.run([LEGTRIAGE, "rules", "diff", "1.0.0", "1.1.0"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert RULES_NOTE.read_text(encoding="utf-8").startswith(result.stdout.rstrip() + "\n")
    result = subprocess.run([LEGTRIAGE, "rules", "diff", "1.0.0", "9.9.9"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"legtriage: unknown rules version 9.9.9; published: {PUBLISHED}"]


def test_the_image_launcher_runs_the_same_command_line(tmp_path):
    """docker/legtriage is /opt/venv/bin/legtriage in the image, where the app is copied, not installed."""
    launcher = ROOT / "docker" / "legtriage"
    assert launcher.stat().st_mode & 0o111, "the launcher is executable"
    assert launcher.read_text().startswith("#!/opt/venv/bin/python\n")
    result = subprocess.run([sys.executable, str(launcher), "rules", "table", "9.9.9"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"legtriage: unknown rules version 9.9.9; published: {PUBLISHED}"]


# --------------------------------------------------------------------------- one way in


def test_no_other_command_line_is_left():
    """No `__main__` block or argparse in the service but service/cli.py, and nothing in the
    repository runs `python -m service.…` any more (but `python -m service.cli`, the same command
    line)."""
    for path in (ROOT / "service").rglob("*.py"):
        if path.name == "cli.py" and path.parent.name == "service" or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert "__main__" not in text and "argparse" not in text, path
    assert not (ROOT / "service" / "store" / "__main__.py").exists()
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.fail(f"git ls-files: {tracked.stderr}")
    stale = []
    for name in tracked.stdout.split("\0"):
        path = ROOT / name
        if (not name or not path.is_file() or name.endswith(".lock")
                or name == "tests/integration/test_cli.py"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        stale += [f"{name}: {m.group(0)}"
                  for m in re.finditer(r"-m\"?,?\s*\"?service\.(?!cli\b)[a-z_.]+", text)]
    assert stale == [], "run these with `legtriage …`:\n" + "\n".join(stale)


def test_the_console_script_is_declared():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"legtriage": "service.cli:main"}
    assert Path(LEGTRIAGE).exists(), "pip install -e . makes the console script"
