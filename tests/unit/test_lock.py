"""The hash-checked locks (scripts/lock) hold what pyproject.toml asks for, within its ranges."""
from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# name==version [; marker] \ followed by --hash lines (the form uv and pip-compile write)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
REFRESH = "the lock is out of date: run scripts/lock"


def read_lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, [hashes])} of one lock file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (ROOT / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in pins, f"{name}: {current} pinned twice"
            pins[current] = (match.group(2), [])
        elif line.strip().startswith("--hash=") and current:
            pins[current][1].append(line.strip().split("=", 1)[1].rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"{name}: unexpected line {line!r}")
    return pins


RUNTIME = read_lock("requirements.lock")
TEST = read_lock("requirements-test.lock")
INSTALLER = read_lock("requirements-pip.lock")


def needs(requirements: list[str]) -> list[Requirement]:
    return [r for r in map(Requirement, requirements)
            if r.marker is None or r.marker.evaluate({"python_version": "3.11"})]


@pytest.mark.parametrize("req", needs(PYPROJECT["dependencies"]), ids=str)
def test_every_runtime_dependency_is_locked_within_its_range(req):
    name = canonicalize_name(req.name)
    assert name in RUNTIME, f"{req.name} is not in requirements.lock: {REFRESH}"
    version = RUNTIME[name][0]
    assert req.specifier.contains(version, prereleases=True), \
        f"requirements.lock pins {req.name}=={version}, outside {req.specifier}: {REFRESH}"


@pytest.mark.parametrize("req", needs(PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["test"]),
                         ids=str)
def test_every_test_dependency_is_locked_within_its_range(req):
    name = canonicalize_name(req.name)
    assert name in TEST, f"{req.name} is not in requirements-test.lock: {REFRESH}"
    assert req.specifier.contains(TEST[name][0], prereleases=True), \
        f"requirements-test.lock pins {req.name}=={TEST[name][0]}, outside {req.specifier}: {REFRESH}"


def test_every_pin_carries_sha256_hashes():
    for lock in (RUNTIME, TEST, INSTALLER):
        for name, (version, hashes) in lock.items():
            assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), \
                f"{name}=={version} has no sha256 hash: pip --require-hashes would refuse the lock"


def test_the_test_lock_keeps_the_runtime_pins():
    # The tests run on the versions the service is served with.
    for name, (version, hashes) in RUNTIME.items():
        assert TEST.get(name, (None,))[0] == version, f"{name}: {REFRESH}"


def test_the_runtime_lock_holds_no_test_tools():
    test_only = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["optional-dependencies"]["test"]}
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    assert not (test_only - runtime) & set(RUNTIME), "test tools in the runtime lock"


def test_serve_and_the_image_install_from_the_lock():
    venv = (ROOT / "scripts" / "lib" / "venv.sh").read_text()
    assert "--require-hashes -r \"$lock\"" in venv and "--no-deps -e ." in venv
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile


def test_the_installer_lock_holds_pip_alone():
    # Installed by the stock pip of a new venv before anything else (scripts/lib/venv.sh, issue 20).
    assert set(INSTALLER) == {"pip"}
