"""Clinical sign-off is the hospital's data (DESIGN.md "Releasing a rule version"): sign-off files in
LEGTRIAGE_SIGNOFF_DIR, checked at start; the Library says whether a version is signed; with
LEGTRIAGE_REQUIRE_SIGNOFF=true an unsigned version neither starts as the default nor runs pinned."""
from __future__ import annotations

import re

import json
from pathlib import Path

import pytest

from service.config import ConfigError, load_settings
from service.triage.engine import Registry
from service.triage.signoff import less_urgent_stories
from tests.support.fhir import assert_valid_fhir
from tests.support import ROOT, example, post_triage

STORIES = less_urgent_stories("1.1.0")
DEFAULT = Registry().default_version


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def signoff_text(version: str = "1.1.0", decisions: dict[str, tuple[str, str]] | None = None,
                 reviewer: str = "Dr Jane Example", role: str = "Clinical safety officer") -> str:
    if decisions is None:
        decisions = {s: ("accept", "Reviewed the answer sets; the change is right.")
                     for s in less_urgent_stories(version) or ()}
    lines = [f"version: {version}", "reviewer:", f"  name: {reviewer}", f"  role: {role}",
             "date: 2026-12-05", "decisions:" + (" {}" if not decisions else "")]
    for story, (decision, reason) in decisions.items():
        lines += [f"  {story}:", f"    decision: {decision}", f"    reason: {reason}"]
    return "\n".join(lines) + "\n"


def libraries(app) -> dict[str, dict]:
    bundle = app.test_client().get("/fhir/Library").get_json()
    return {e["resource"]["version"]: e["resource"] for e in bundle["entry"]}


def test_the_project_ships_the_folder_with_its_readme_and_no_sign_off():
    folder = ROOT / "mappings" / "signoff"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md"]
    assert load_settings(environ={}).signoff_dir == folder
    assert STORIES, "1.1.0 has less urgent stories to decide"


def test_the_settings_come_from_the_environment(tmp_path):
    settings = load_settings(environ={"LEGTRIAGE_SIGNOFF_DIR": str(tmp_path),
                                      "LEGTRIAGE_REQUIRE_SIGNOFF": "true"})
    assert settings.signoff_dir == tmp_path and settings.require_signoff is True
    with pytest.raises(ConfigError, match="LEGTRIAGE_REQUIRE_SIGNOFF"):
        load_settings(environ={"LEGTRIAGE_REQUIRE_SIGNOFF": "perhaps"})


def test_a_signed_version_has_approval_date_and_reviewer(tmp_path, make_app):
    app = make_app(signoff_dir=write(tmp_path, "1.1.0.yaml", signoff_text()))
    lib = libraries(app)["1.1.0"]
    assert lib["approvalDate"] == "2026-12-05"
    assert lib["reviewer"] == [{"name": "Dr Jane Example (Clinical safety officer)"}]
    assert "Clinical sign-off pending" not in lib["description"]
    assert_valid_fhir(lib)
    old = libraries(app)["1.0.0"]
    assert "approvalDate" not in old and "Clinical sign-off pending" in old["description"]


def test_a_story_without_a_decision_or_a_reject_is_no_sign_off(tmp_path, make_app):
    first, *rest = STORIES
    missing = {s: ("accept", "fine") for s in rest}
    app = make_app(signoff_dir=write(tmp_path / "a", "1.1.0.yaml", signoff_text(decisions=missing)))
    lib = libraries(app)["1.1.0"]
    assert "approvalDate" not in lib and "reviewer" not in lib
    assert "Clinical sign-off pending: 1.1.0.yaml by Dr Jane Example" in lib["description"]
    assert f"no decision for: {first}" in lib["description"]
    assert_valid_fhir(lib)

    rejected = dict(missing, **{first: ("reject", "keep it routine")})
    app = make_app(signoff_dir=write(tmp_path / "b", "1.1.0.yaml", signoff_text(decisions=rejected)))
    lib = libraries(app)["1.1.0"]
    assert "approvalDate" not in lib
    assert f"rejected: {first} (keep it routine)" in lib["description"]


@pytest.mark.parametrize("name, text, says", [
    ("1.1.0.yaml", signoff_text(decisions={"routine-to-self-care-nope": ("accept", "x")}),
     r"1\.1\.0\.yaml, line 7, story routine-to-self-care-nope: .*not a less urgent story"),
    ("1.1.0.yaml", signoff_text(decisions={STORIES[0]: ("approve", "x")}),
     rf"1\.1\.0\.yaml, line 8, story {STORIES[0]}: decisions\.{STORIES[0]}\.decision: Must be one of"),
    ("1.1.0.yaml", signoff_text(decisions={STORIES[0]: ("accept", "''")}),
     rf"line 9, story {STORIES[0]}: .*reason"),
    ("1.1.0.yaml", signoff_text().replace("  role: Clinical safety officer\n", ""),
     r"1\.1\.0\.yaml, line 2: reviewer\.role: Missing data"),
    ("1.0.0.yaml", signoff_text(), r"1\.0\.0\.yaml, line 1: version: '1\.1\.0' in a file named 1\.0\.0\.yaml"),
    ("9.9.9.yaml", signoff_text(version="9.9.9"), r"9\.9\.9\.yaml, line 1: version: 9\.9\.9 is not a published"),
    ("1.1.0.yaml", "version: [1.1.0\n", r"1\.1\.0\.yaml, line 2: not YAML"),
    ("signed.yaml", signoff_text(), r"named after its version"),
])
def test_a_bad_file_stops_the_start_naming_file_line_and_story(tmp_path, name, text, says, make_app):
    with pytest.raises(ConfigError, match=says) as err:
        make_app(signoff_dir=write(tmp_path, name, text))
    assert "LEGTRIAGE_SIGNOFF_DIR" in str(err.value)


def test_a_missing_folder_stops_the_start(tmp_path, make_app):
    with pytest.raises(ConfigError, match="is not a folder"):
        make_app(signoff_dir=tmp_path / "nowhere")


def test_required_sign_off_refuses_to_start_with_an_unsigned_default(tmp_path, make_app):
    with pytest.raises(ConfigError, match=rf"default rule version {re.escape(DEFAULT)} has no clinical sign-off"):
        make_app(signoff_dir=tmp_path, require_signoff=True)
    stories = less_urgent_stories(DEFAULT)
    partial = {s: ("accept", "fine") for s in stories[1:]}
    with pytest.raises(ConfigError, match=rf"{re.escape(DEFAULT)} has no clinical sign-off .*{stories[0]}"):
        make_app(signoff_dir=write(tmp_path, f"{DEFAULT}.yaml",
                                         signoff_text(DEFAULT, decisions=partial)),
                 require_signoff=True)


def test_required_sign_off_refuses_a_pinned_unsigned_version(tmp_path, make_app):
    folder = write(tmp_path, f"{DEFAULT}.yaml", signoff_text(DEFAULT))
    client = make_app(signoff_dir=folder, require_signoff=True).test_client()
    assert post_triage(client, example("qr-urgent-dvt")).status_code == 200
    refused = post_triage(client, example("qr-urgent-dvt"), "?rules-version=1.0.0")
    assert refused.status_code == 422
    outcome = refused.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["code"] == "business-rule" and issue["expression"] == ["rules-version"]
    assert "Rules version 1.0.0 has no clinical sign-off" in issue["diagnostics"]
    # a first version has no stories: reviewer, role and date sign it
    write(folder, "1.0.0.yaml", signoff_text(version="1.0.0"))
    client = make_app(signoff_dir=folder, require_signoff=True).test_client()
    assert post_triage(client, example("qr-urgent-dvt"), "?rules-version=1.0.0").status_code == 200


def test_without_the_requirement_unsigned_versions_run(client):
    assert post_triage(client, example("qr-urgent-dvt"), "?rules-version=1.0.0").status_code == 200


def test_the_stories_the_service_checks_are_the_release_notes():
    note = (ROOT / "docs" / "rules-1.1.0.md").read_text(encoding="utf-8")
    data = json.loads((ROOT / "service" / "triage" / "releases" / "1.1.0.json").read_text())
    assert [s["id"] for s in data["less_urgent"]] == STORIES
    for story in STORIES:
        assert f"### `{story}`:" in note
