# Sourced by the scripts that need Debian packages (test-tools.sh, container-test, make-base-image,
# load-test, bench/run): one way to install what is missing.
#
#   apt_install [--no-recommends] WHO PACKAGE...
#
# As root (or with sudo that needs no password): apt-get update + install, quietly; on failure the last
# lines of apt's output and one line naming WHO and the packages, and a non-zero return (the caller
# decides whether that is fatal). Otherwise: one line saying what to install, and a non-zero return.
apt_install() {
  local extra=()
  if [ "${1:-}" = --no-recommends ]; then extra=(--no-install-recommends); shift; fi
  local who=$1; shift
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "$who: $* missing; as root: apt-get install $*" >&2
      return 1
    fi
  fi
  echo "$who: installing $* from Debian" >&2
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/legtriage-apt.XXXXXX")
  if { "${sudo[@]}" apt-get update -qq \
       && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${extra[@]}" "$@"; } \
      >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  tail -n 20 "$log" >&2
  rm -f "$log"
  echo "$who: installing $* from Debian failed" >&2
  return 1
}
