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
# Worker settings, chosen with bench/run and bench/slow_clients.py on 2 cores (figures and method:
# docs/performance.md).
# - gevent, one worker per CPU (LEGTRIAGE_WORKERS): a sync worker is held by one connection from its
#   accept to its last byte, so 4 idle or trickling connections stalled the whole service until
#   the 30 s timeout killed the workers; gthread with 4 threads stalled the same way under 200, and
#   with 64 threads under 800. A gevent worker waits on each connection in a greenlet and only
#   runs the app once a request is complete, so slow clients cost memory, not workers: /healthz
#   and $triage answer in milliseconds with 800 held open. gunicorn's gevent worker patches the
#   standard library in each worker after the preloaded app was built (service/keys.py creates
#   its lock in the worker for that reason). A gevent worker keeps a CPU busy by itself: with two
#   per CPU they took the CPUs from each other and split the records into more, smaller commits;
#   one per CPU served more calls at less CPU each (docs/performance.md, "Records at the speed of recording off").
# - worker_connections bounds the connections each worker holds; beyond CPU x 1,000 new ones
#   wait in the listen backlog. Internet-facing, put a buffering proxy in front (docs/deployment.md).
workers = _settings.workers
worker_class = "gevent"
worker_connections = 1000
loglevel = _settings.log_level
timeout = 30  # a $triage takes about a millisecond: this only frees a worker a stuck client holds
graceful_timeout = 20
# One request per connection, as the sync worker did: a gevent worker keeps a kept-alive connection
# to itself, so a client's connections spread unevenly over the workers (in a bench/run trial, p99
# at 16 connections went from 39 to 790 ms); closed after each answer, every request goes to
# whichever worker accepts it first.
keepalive = 0
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

    # gunicorn loaded the worker class in the master; a gevent one (by any spelling) loaded this module
    ggevent = sys.modules.get("gunicorn.workers.ggevent")
    if ggevent is not None and issubclass(server.cfg.worker_class, ggevent.GeventWorker):
        _import_what_workers_import()
    gc.freeze()
    _trim_heap()


def _import_what_workers_import() -> None:
    """Import in the master the modules each gevent worker would otherwise import for itself.

    gevent's patch_all (when a worker starts) loads gevent's thread, threading, ssl, subprocess,
    signal and select modules, and werkzeug encodes the host name with the idna codec at the first
    request. Imported once here, before the fork, they are the master's pages that every worker
    shares, rather than each worker's own: about 0.7 MB less in each worker (docs/performance.md).
    Importing is all: nothing is patched in the master, which runs unchanged.
    tests/integration/test_footprint.py checks that a worker imports nothing the master did not.
    """
    import importlib

    thread_patcher = ("gevent.monkey._patch_thread_gte313" if sys.version_info >= (3, 13)
                      else "gevent.monkey._patch_thread_lt313")
    for name in ("_threading_local", "concurrent.futures.thread", "encodings.idna", "stringprep",
                 "zope.event", "gevent.events", "gevent.local", "gevent.select", "gevent.selectors",
                 "gevent.signal", "gevent.ssl", "gevent.subprocess", "gevent.thread",
                 "gevent.threading", "gevent.time", "gevent.monkey._patch_thread_common",
                 thread_patcher):
        try:
            importlib.import_module(name)
        except ImportError:  # another gevent, laid out otherwise: that worker imports it itself
            pass


def post_fork(server, worker):
    """A worker that is told to stop while it boots stops at once.

    Until the worker installs its own handlers (after gevent's patching, ~0.1-0.2 s after the fork), it
    has the master's, which only queue the signal for a master loop that does not run in the worker:
    a TERM, INT or QUIT then was lost, and the master waited out graceful_timeout (20 s) before killing
    it. That happened to every stop that came right after a start (docs/deployment.md). Nothing has
    been accepted yet, so there is nothing to finish.
    """
    import os
    import signal

    def stop(signum, frame):
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, stop)


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system before the fork (glibc's malloc_trim).

    Building the app frees more than it keeps (start-up schemas compiled and dropped, YAML parsed,
    mappings checked): glibc keeps those pages resident, and each forked worker would count them in
    its RSS. About 2 MB per worker (docs/performance.md). Elsewhere (musl) there is no such call.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


accesslog = None  # the app logs one JSON line per request itself (gunicorn.access is off in logconfig_dict)
errorlog = "-"
control_socket_disable = True  # gunicorn 27's control socket is not used; it would write under $HOME
# gunicorn's own logs: JSON lines on stdout, without client addresses or request fragments
logconfig_dict = gunicorn_logconfig_dict(_settings.log_level)
logger_class = "service.serving.GunicornLogger"  # builds no access line for the gunicorn.access it turns off

# gunicorn puts "Server: gunicorn" on every response, read from this module global per response;
# name the service instead, so the banner tells nobody which server software (or version) runs.
import gunicorn.http.wsgi  # noqa: E402
gunicorn.http.wsgi.SERVER = "legtriage"

# gunicorn's own error answers (bad request line, 414, 431, ...) as OperationOutcomes, not HTML.
import service.serving  # noqa: E402
service.serving.install()
