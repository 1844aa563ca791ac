"""What a newcomer runs first: the scripts, the examples, the switches the README and messages name."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support import EXAMPLES, LEGTRIAGE, ROOT, disposition, post_triage
from tests.support.fhir import assert_valid_fhir


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without LEGTRIAGE_* settings (the suite's own may be set), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")}
    return {**env, **extra}


EXPECTED = {"parameters-urgent-dvt": "urgent"}


def test_every_parameters_example_is_known():
    assert {p.stem for p in EXAMPLES.glob("parameters-*.json")} == set(EXPECTED)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_is_valid_fhir_and_triages(client, path):
    body = json.loads(path.read_text())
    assert_valid_fhir(body)
    response = post_triage(client, path.read_bytes())
    assert response.status_code == 200, response.get_data(as_text=True)
    if body["resourceType"] == "Parameters":
        names = [p["name"] for p in body["parameter"]]
        assert names == ["questionnaireResponse", "rulesVersion"], "show both parameters"
        assert disposition(response.get_json(force=True)) == EXPECTED[path.stem]


def test_the_readme_posts_the_parameters_example():
    readme = (ROOT / "README.md").read_text()
    for stem in EXPECTED:
        assert f"--data @examples/{stem}.json" in readme


# --------------------------------------------------------------------------- running without Chromium

def test_skipping_the_browser_tests_leaves_the_rest_of_the_suite_working():
    """The name the browser tests used to print (LEGTRIAGE_SKIP_BROWSER) and the current one both
    skip the browser tests through scripts/test, and the service's own tests still pass beside
    them: the switch must not reach the service, which refuses LEGTRIAGE_* names it does not know."""
    for switch in ("LEGTRIAGE_SKIP_BROWSER", "SKIP_BROWSER_TESTS"):
        result = subprocess.run(
            ["scripts/test", "-q", "-p", "no:cacheprovider", "tests/e2e/browser",
             "tests/e2e/api/test_fhir_read.py", "tests/integration/test_gunicorn.py"],
            cwd=ROOT, env=clean_env(**{switch: "1"}),
            capture_output=True, text=True, timeout=600)
        out = result.stdout + result.stderr
        assert result.returncode == 0, f"{switch}=1 scripts/test failed:\n{out[-3000:]}"
        assert "skipped on request" in out and " passed" in out and "error" not in out.lower(), out[-3000:]


# --------------------------------------------------------------------------- bad settings

@pytest.mark.parametrize("env, named", [
    ({"LEGTRIAGE_PORT": "abc"}, "LEGTRIAGE_PORT"),
    ({"LEGTRIAGE_WORKRES": "2"}, "LEGTRIAGE_WORKRES"),
    ({"LEGTRIAGE_DEFAULT_RULES_VERSION": "9.9.9"}, "LEGTRIAGE_DEFAULT_RULES_VERSION"),
])
def test_a_bad_setting_stops_serve_with_one_line_naming_it(env, named):
    result = subprocess.run(["scripts/serve"], cwd=ROOT, env=clean_env(**env),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and named in lines[0] and lines[0].startswith("legtriage: "), result.stderr


def test_gunicorn_alone_says_the_same_one_line():
    """The container runs gunicorn with gunicorn.conf.py directly, without scripts/serve."""
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    result = subprocess.run([str(gunicorn), "--config", "gunicorn.conf.py"], cwd=ROOT,
                            env=clean_env(LEGTRIAGE_PORT="abc"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "legtriage: invalid configuration: LEGTRIAGE_PORT: Not a valid integer."]


# --------------------------------------------------------------------------- trying auth

ISSUER, AUDIENCE = "https://ehr.example.org", "https://legtriage.example.org"


def test_a_dev_token_is_accepted_with_its_jwks(tmp_path, make_app):
    result = subprocess.run(
        [LEGTRIAGE, "devtoken", "--dir", str(tmp_path),
         "--issuer", ISSUER, "--audience", AUDIENCE, "--scope", "user/QuestionnaireResponse.write"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert f"LEGTRIAGE_AUTH_JWKS_FILE={tmp_path / 'jwks.json'}" in result.stderr
    assert (tmp_path / "private-key.pem").stat().st_mode & 0o077 == 0, "the private key is private"
    # exactly the settings it prints (with FHIR auth on, CDS auth must be decided too: issue 23)
    printed = result.stderr.splitlines()[-1].split()
    settings = dict(word.split("=", 1) for word in printed)
    assert settings["LEGTRIAGE_CDS_AUTH_ENABLED"] == "false"
    app = make_app(**{k.removeprefix("LEGTRIAGE_").lower(): v for k, v in settings.items()})
    client = app.test_client()
    body = (EXAMPLES / "qr-emergency-stroke.json").read_bytes()
    ok = post_triage(client, body, Authorization=f"Bearer {token}")
    assert ok.status_code == 200 and disposition(ok.get_json(force=True)) == "emergency"
    assert post_triage(client, body).status_code == 401
    # A second token from the same folder is signed by the same key: the first one stays valid.
    from service.devtoken import make_token
    other = make_token(tmp_path, ISSUER, "https://someone-else.example.org")
    assert post_triage(client, body, Authorization=f"Bearer {other}").status_code == 401
    assert post_triage(client, body, Authorization=f"Bearer {token}").status_code == 200


def test_the_readme_sends_a_bearer_token():
    readme = (ROOT / "README.md").read_text()
    assert "legtriage devtoken" in readme and "Authorization: Bearer" in readme
