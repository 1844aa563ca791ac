# Shared by scripts/serve, scripts/test and scripts/load-test: make .venv from the hash-checked locks
# (scripts/lock writes them from pyproject.toml), then the project itself without its dependencies.
#   ensure_venv          the runtime only: requirements.lock (scripts/serve)
#   ensure_venv test     the runtime and the test tools: requirements-test.lock (scripts/test)
#
# The installer is locked too: `python3 -m venv` brings whatever pip the Python was shipped with
# (23.2.1 on Python 3.11.7), and an old pip in --require-hashes mode cannot install a lock whose
# packages ask for an extra of another pinned package once a newer release of it exists upstream
# (pytest-cov's `coverage[toml]`, issue 20). So the first thing installed into a new venv is the pip
# of requirements-pip.lock, by hash (pip itself has no dependencies, so the stock pip can do that
# much); the locks are then installed by that pip, whatever has been released since.
#
# Returns non-zero, after saying which step failed, when anything fails: also when this file is
# sourced into a shell without `set -e`.
ensure_venv() {
  local python=${PYTHON:-python3} lock=requirements.lock stamp=.venv/.legtriage-runtime
  if [ "${1:-}" = test ]; then
    lock=requirements-test.lock stamp=.venv/.legtriage-test
  fi
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv || { _venv_failed "$python -m venv .venv"; return 1; }
  fi
  # Reinstall only when a lock or pyproject.toml changed since the last install.
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ requirements-pip.lock -nt "$stamp" ] \
     || [ pyproject.toml -nt "$stamp" ]; then
    rm -f .venv/.legtriage-runtime .venv/.legtriage-test
    local pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" --require-hashes -r requirements-pip.lock \
      || { _venv_failed "the installer (requirements-pip.lock)"; return 1; }
    # --require-hashes: every package, dependencies included, must be in the lock with a matching
    # hash; the project then goes in with --no-deps, so nothing outside the lock is resolved.
    "${pip[@]}" --require-hashes -r "$lock" || { _venv_failed "$lock"; return 1; }
    "${pip[@]}" --no-deps -e . || { _venv_failed "the project (pip install --no-deps -e .)"; return 1; }
    touch "$stamp"
    # The test lock holds the runtime lock's pins (scripts/lock), so it serves both.
    if [ "$lock" = requirements-test.lock ]; then touch .venv/.legtriage-runtime; fi
  fi
}

_venv_failed() {
  echo "ensure_venv: installing $1 into .venv failed (see pip's message above); nothing was started" >&2
}
