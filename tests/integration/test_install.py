"""A fresh machine installs from the locks, whatever upstream has released since (issue 20).

`python3 -m venv` brings the pip the Python was shipped with; scripts/lib/venv.sh must put the
locked installer (requirements-pip.lock) in first and then install both locks with it. These tests
do exactly that in a brand-new venv made the way venv.sh makes it, with the stock pip as the start.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

# What ensure_venv reads: the locks, the project's metadata and its package (for `pip install -e .`).
PROJECT_FILES = ["pyproject.toml", "requirements-pip.lock", "requirements.lock", "requirements-test.lock",
                 "README.md", "scripts/lib/venv.sh"]


def copy_project(dest: Path) -> Path:
    for name in PROJECT_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "service", dest / "service",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def run_ensure_venv(project: Path, *args: str) -> subprocess.CompletedProcess:
    # Sourced into a shell *without* `set -e`, as a caller might: the status must still say failure.
    script = f'. scripts/lib/venv.sh; ensure_venv {" ".join(args)}; echo "ensure_venv-status=$?"'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONHOME"))}
    # The Python this suite runs on is the one a newcomer's python3 is; its stock venv pip is the start.
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    return subprocess.run(["bash", "-c", script], cwd=project, env=env, capture_output=True,
                          text=True, timeout=900)


def status_of(result: subprocess.CompletedProcess) -> int:
    line = [x for x in result.stdout.splitlines() if x.startswith("ensure_venv-status=")]
    assert line, result.stdout + result.stderr
    return int(line[-1].split("=", 1)[1])


def test_the_locks_install_into_a_brand_new_venv_from_its_stock_pip(tmp_path):
    project = copy_project(tmp_path)
    result = run_ensure_venv(project, "test")
    assert status_of(result) == 0, result.stderr[-4000:]
    python = project / ".venv" / "bin" / "python"
    pip_version = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    locked_pip = (ROOT / "requirements-pip.lock").read_text().split("pip==", 1)[1].split()[0]
    assert pip_version == locked_pip, "the venv's installer is not the locked one"
    # Everything of the test lock is there at its pinned version (pip check: nothing inconsistent).
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                            text=True, check=True).stdout
    for pin in ("coverage==", "pytest-cov==", "flask=="):
        assert pin in frozen.lower()
    assert (project / ".venv" / ".legtriage-test").exists()
    assert (project / ".venv" / ".legtriage-runtime").exists()


def test_ensure_venv_fails_loudly_when_an_install_fails_even_without_set_e(tmp_path):
    project = copy_project(tmp_path)
    lock = project / "requirements-pip.lock"
    version = lock.read_text().split("pip==", 1)[1].split()[0]
    # A hash that matches no file: pip must refuse, and ensure_venv must say so and return non-zero.
    lock.write_text(f"pip=={version} \\\n    --hash=sha256:{'0' * 64}\n")
    result = run_ensure_venv(project)
    assert status_of(result) != 0, result.stdout + result.stderr
    assert "ensure_venv: installing the installer (requirements-pip.lock) into .venv failed" in result.stderr
    assert not (project / ".venv" / ".legtriage-runtime").exists()


def test_a_failed_lock_install_is_retried_next_time(tmp_path):
    project = copy_project(tmp_path)
    lock = project / "requirements.lock"
    lock.write_text("definitely-not-a-package-legtriage==0.0.1 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    first = run_ensure_venv(project)
    assert status_of(first) != 0
    assert "ensure_venv: installing requirements.lock into .venv failed" in first.stderr
    # No stamp was left behind, so the next call tries again instead of believing the venv is ready.
    second = run_ensure_venv(project)
    assert status_of(second) != 0


@pytest.mark.parametrize("where", ["scripts/lib/venv.sh", "Dockerfile"])
def test_the_locked_installer_goes_in_before_the_locks(where):
    # Comments aside, the installer's lock is installed before any other lock.
    code = "\n".join(line for line in (ROOT / where).read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    first_install = code.index("--require-hashes -r requirements-pip.lock")
    assert first_install < code.index("--require-hashes -r", first_install + 1)
