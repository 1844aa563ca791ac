"""gunicorn settings, from the same validated LEGTRIAGE_* settings as the app (service/config.py)."""
import sys

from service.config import ConfigError, load_settings
from service.logs import gunicorn_logconfig_dict

try:
    _settings = load_settings()
except ConfigError as _err:
    # SystemExit passes through gunicorn's config loader, which would print a traceback for any
    # Exception: the operator gets the one line naming the variable, and exit status 2.
    print(f"legtriage: {_err}", file=sys.stderr)
    sys.exit(2)

wsgi_app = "service:create_app()"
bind = f"{_settings.host}:{_settings.port}" if ":" not in _settings.host else f"[{_settings.host}]:{_settings.port}"
# Worker settings, chosen with bench/run on 2 cores (figures and method: docs/performance.md).
# - sync, 2 x CPU workers (LEGTRIAGE_WORKERS): a $triage is short CPU work in the app that never
#   waits on I/O, so threads add nothing; gthread (2 x 4 threads, 4 x 2) gave no steadier req/s or
#   p99 than sync x 4, and in the prototype it pinned keep-alive connections to one worker.
#   Between 2, 3 and 4 sync workers the differences stayed within the noise of the shared machine.
workers = _settings.workers
worker_class = "sync"
loglevel = _settings.log_level
timeout = 30  # a $triage takes about a millisecond: this only frees a worker a stuck client holds
graceful_timeout = 20
keepalive = 5  # read by gthread only: a sync worker closes each connection after its response
# Recycling is a safety net against leaks, and none shows (worker RSS stays flat: docs/performance.md).
# Recycling often restarts workers every few seconds under load, and a fresh worker answers its first
# requests several times slower: so rarely, jittered so that the workers do not restart together.
max_requests = 50000
max_requests_jitter = 5000
preload_app = True


def pre_fork(server, worker):
    """Freeze what the app allocated at start out of the cyclic GC before each worker forks."""
    # A full collection walked all of them: a pause every few thousand requests, the slowest answers
    # (docs/performance.md); frozen objects are also never written by the GC, so their pages stay
    # shared between the workers.
    import gc

    gc.freeze()


accesslog = None  # the app logs one JSON line per request itself (gunicorn.access is off in logconfig_dict)
errorlog = "-"
control_socket_disable = True  # gunicorn 27's control socket is not used; it would write under $HOME
# gunicorn's own logs: JSON lines on stdout, without client addresses or request fragments
logconfig_dict = gunicorn_logconfig_dict(_settings.log_level)

# gunicorn puts "Server: gunicorn" on every response, read from this module global per response;
# name the service instead, so the banner tells nobody which server software (or version) runs.
import gunicorn.http.wsgi  # noqa: E402
gunicorn.http.wsgi.SERVER = "legtriage"
