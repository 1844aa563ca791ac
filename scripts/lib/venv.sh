# Shared by scripts/serve and scripts/test: make .venv from the hash-checked locks (scripts/lock
# writes them from pyproject.toml), then the project itself without its dependencies.
#   ensure_venv          the runtime only: requirements.lock (scripts/serve)
#   ensure_venv test     the runtime and the test tools: requirements-test.lock (scripts/test)
ensure_venv() {
  local python=${PYTHON:-python3} lock=requirements.lock stamp=.venv/.legtriage-runtime
  if [ "${1:-}" = test ]; then
    lock=requirements-test.lock stamp=.venv/.legtriage-test
  fi
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  # Reinstall only when the lock or pyproject.toml changed since the last install.
  if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    # --require-hashes: every package, dependencies included, must be in the lock with a matching
    # hash; the project then goes in with --no-deps, so nothing outside the lock is resolved.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    rm -f .venv/.legtriage-runtime .venv/.legtriage-test
    touch "$stamp"
    # The test lock holds the runtime lock's pins (scripts/lock), so it serves both.
    if [ "$lock" = requirements-test.lock ]; then touch .venv/.legtriage-runtime; fi
  fi
}
