"""deploy/compose/check and deploy/kubernetes/check: everything a deployment command still needs,
listed in one run (compose itself reports one ${VAR:?} per run; kubectl apply reports nothing)."""
from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path

import pytest

from tests.integration.test_deploy import (COMPOSE, COMPOSE_REQUIRED, LAB_ENV, REPO, clean_env, compose_binary,
                                           run)

COMPOSE_CHECK = REPO / "deploy" / "compose" / "check"
K8S_CHECK = REPO / "deploy" / "kubernetes" / "check"
EXAMPLE_ENV = REPO / "deploy" / "compose" / "example.env"


def listed(stderr: str) -> list[str]:
    """The variable names a failed check lists, in order."""
    return re.findall(r"^  ([A-Z_][A-Z0-9_]*)(?: is required|:)", stderr, re.MULTILINE)


def compose_check(*args: str, **env: str):
    return run([str(COMPOSE_CHECK), *args], env=clean_env(**env))


@pytest.fixture()
def no_env_file(tmp_path) -> str:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return str(empty)


def test_compose_check_lists_every_required_variable_at_once(no_env_file):
    result = compose_check("--env-file", no_env_file)
    assert result.returncode == 1 and result.stdout == ""
    assert sorted(listed(result.stderr)) == sorted(COMPOSE_REQUIRED), result.stderr


def test_what_the_check_lists_is_what_compose_requires(no_env_file, tmp_path):
    """Cross-checked with the real compose binary: each variable the check lists stops compose
    when it alone is missing, and with all of them set compose and the check both pass."""
    names = listed(compose_check("--env-file", no_env_file).stderr)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    issuers = tmp_path / "cds-issuers.json"
    issuers.write_text("[]")
    values = {**COMPOSE_REQUIRED, "DEPLOY_JWKS_FILE": str(jwks), "DEPLOY_CDS_ISSUERS_FILE": str(issuers)}
    for name in names:
        rest = {k: v for k, v in values.items() if k != name}
        result = run([compose_binary(), "-f", str(COMPOSE), "--env-file", no_env_file, "config", "--quiet"],
                     env=clean_env(**rest))
        assert result.returncode != 0 and f"required variable {name} is missing" in result.stderr
        check = compose_check("--env-file", no_env_file, **rest)
        assert check.returncode == 1 and listed(check.stderr) == [name], check.stderr
    result = run([compose_binary(), "-f", str(COMPOSE), "--env-file", no_env_file, "config", "--quiet"],
                 env=clean_env(**values))
    assert result.returncode == 0, result.stderr
    check = compose_check("--env-file", no_env_file, **values)
    assert check.returncode == 0 and check.stderr == "", check.stderr


def test_compose_check_reads_the_env_file_and_the_lab_variant_passes(tmp_path):
    assert compose_check("--env-file", str(LAB_ENV)).returncode == 0
    filled = tmp_path / "filled.env"
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    text = EXAMPLE_ENV.read_text()
    text = text.replace("DEPLOY_JWKS_FILE=\n", f"DEPLOY_JWKS_FILE={jwks}\n")
    text = text.replace("DEPLOY_CDS_ISSUERS_FILE=\n", f"DEPLOY_CDS_ISSUERS_FILE={jwks}\n")
    text = text.replace("LEGTRIAGE_AUTH_ISSUERS=\n", 'LEGTRIAGE_AUTH_ISSUERS="https://ehr.clinic.example"\n')
    filled.write_text(text)
    result = compose_check("--env-file", str(filled))
    assert result.returncode == 1 and listed(result.stderr) == ["LEGTRIAGE_AUTH_AUDIENCE"], result.stderr
    # the shell wins over the file, as in compose: an empty value there counts as missing
    result = compose_check("--env-file", str(filled), LEGTRIAGE_AUTH_AUDIENCE="aud", LEGTRIAGE_AUTH_ISSUERS="")
    assert listed(result.stderr) == ["LEGTRIAGE_AUTH_ISSUERS"], result.stderr


def test_the_example_env_names_exactly_the_required_variables():
    names = re.findall(r"^([A-Z_][A-Z0-9_]*)=", EXAMPLE_ENV.read_text(), re.MULTILINE)
    assert sorted(names) == sorted(COMPOSE_REQUIRED)


def test_compose_check_says_when_the_jwks_file_is_not_there(no_env_file, tmp_path):
    result = compose_check("--env-file", no_env_file,
                           **{**COMPOSE_REQUIRED, "DEPLOY_JWKS_FILE": str(tmp_path / "missing.json"),
                              "DEPLOY_CDS_ISSUERS_FILE": str(tmp_path / "gone.json")})
    assert result.returncode == 1 and "DEPLOY_JWKS_FILE: " in result.stderr
    assert "missing.json is not a file" in result.stderr
    assert "DEPLOY_CDS_ISSUERS_FILE: " in result.stderr and "gone.json is not a file" in result.stderr


# --------------------------------------------------------------------------- Kubernetes

def fake_kubectl(folder: Path, script: str) -> dict[str, str]:
    """A PATH whose kubectl is `script` (a cluster answering as the test needs)."""
    folder.mkdir(exist_ok=True)
    kubectl = folder / "kubectl"
    kubectl.write_text("#!/bin/sh\n" + script)
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    return clean_env(PATH=f"{folder}:/usr/bin:/bin")


def test_kubernetes_check_lists_the_placeholders_and_the_missing_jwks(tmp_path):
    env = fake_kubectl(tmp_path / "bin", 'echo \'Error from server (NotFound): configmaps "legtriage-jwks" '
                                         'not found\' >&2; exit 1\n')
    result = run([str(K8S_CHECK)], env=env)
    assert result.returncode == 1
    assert "LEGTRIAGE_AUTH_ISSUERS is still a CHANGE-ME placeholder" in result.stderr
    assert "LEGTRIAGE_AUTH_AUDIENCE is still a CHANGE-ME placeholder" in result.stderr
    assert 'configmaps "legtriage-jwks" not found' in result.stderr
    assert "kubectl create configmap legtriage-jwks --from-file=jwks.json=./jwks.json" in result.stderr
    assert ("kubectl create configmap legtriage-cds-issuers --from-file=cds-issuers.json=./cds-issuers.json"
            in result.stderr)


def test_kubernetes_check_passes_once_everything_is_there(tmp_path):
    manifests = tmp_path / "manifests"
    shutil.copytree(REPO / "deploy" / "kubernetes", manifests)
    config = manifests / "configmap.yaml"
    config.write_text(config.read_text().replace("https://CHANGE-ME.ehr.invalid", "https://ehr.clinic.example")
                      .replace("https://CHANGE-ME.legtriage.invalid", "https://triage.clinic.example"))
    asked = tmp_path / "asked"
    env = fake_kubectl(tmp_path / "bin", f'echo "$@" > {asked}; echo \'{{"keys": []}}\'\n')
    result = run([str(K8S_CHECK), "--dir", str(manifests), "-n", "clinic"], env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "get configmap legtriage-cds-issuers -n clinic" in asked.read_text()  # the last one asked
    env = fake_kubectl(tmp_path / "bin", "exit 0\n")  # the ConfigMap is there, without jwks.json
    result = run([str(K8S_CHECK), "--dir", str(manifests)], env=env)
    assert result.returncode == 1 and "has no key jwks.json" in result.stderr
    assert "legtriage-cds-issuers has no key cds-issuers.json" in result.stderr


def test_the_deployment_commands_say_what_they_need():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Deployment"):]
    for needed in ("DEPLOY_JWKS_FILE", "LEGTRIAGE_AUTH_ISSUERS", "LEGTRIAGE_AUTH_AUDIENCE",
                   "DEPLOY_CDS_ISSUERS_FILE", "kubectl create configmap legtriage-cds-issuers",
                   "deploy/compose/check", "deploy/compose/lab.env", "deploy/kubernetes/check",
                   "kubectl create configmap legtriage-jwks", "CHANGE-ME"):
        assert needed in section, needed
