"""One GET to a server the configuration names (a JWKS, an allow-listed `jku`, an EHR's FHIR server).

What comes back is trusted as keys or as patient data, so the exchange is narrow: the URL asked and
no other (redirects are refused, never followed: an allow-listed address answering 302 must not
make another host's keys or answers count), no proxy or .netrc from the environment, status 200
only, a cap on the (decoded) body, and a total deadline enforced on the socket itself. requests'
own timeouts are per connect and per read, so a server sending a byte every second could hold a
call for as long as it likes; here a watchdog shuts the connection down when the deadline passes,
which ends a blocked read at once (in a gevent worker and in a thread alike).

Anything that goes wrong is `Refused`; callers turn it into their own answer (401, 412 or 503).

Callers import this module where they fetch, not at start: requests and urllib3 (about 5 MB per
process) stay out of a service that never fetches, and where one does they are loaded in the
worker, after gevent has patched the standard library (ssl included, which urllib3 binds at import).
"""
from __future__ import annotations

import contextvars
import socket
import threading

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CHUNK_BYTES = 16_384


class Refused(Exception):
    """The server's answer is not one to read (status, redirect, size, time, a broken exchange)."""


class _Watchdog:
    """Shuts down every connection of one call when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()  # never held across I/O
        self._socks: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        # A duplicate of the descriptor, held until the call ends: shutting it down ends the
        # connection for every descriptor of it (the TLS layer wraps and detaches the original),
        # and its number cannot be reused by another connection meanwhile.
        dup = sock.dup()
        with self._lock:
            self._socks.append(dup)
            expired = self.expired
        if expired:
            _shutdown(dup)

    def start(self) -> None:
        self._timer.start()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for sock in socks:
            _shutdown(sock)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


# The watchdog of the call running here: a context variable, which each greenlet (gevent) and each
# thread has its own of. (A threading.local made at import, in gunicorn's master before gevent
# patches, would be one slot shared by every greenlet of a worker.)
_CURRENT: contextvars.ContextVar[_Watchdog | None] = contextvars.ContextVar("fetch_watchdog", default=None)


class _Watched:
    def _new_conn(self):  # urllib3: the connected socket, before TLS
        sock = super()._new_conn()
        watchdog = _CURRENT.get()
        if watchdog is not None:
            watchdog.watch(sock)
        return sock


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def get(url: str, headers: dict[str, str], seconds: float, max_bytes: int) -> bytes:
    """The body of a 200 answer to GET `url`, received whole within `seconds`; Refused otherwise."""
    watchdog = _Watchdog(seconds)
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment: the request goes to `url` only
    session.max_redirects = 0
    for prefix in ("http://", "https://"):
        session.mount(prefix, _Adapter())
    current = _CURRENT.set(watchdog)
    watchdog.start()
    try:
        with session.get(url, stream=True, allow_redirects=False, timeout=(seconds, seconds),
                         headers=headers) as resp:
            if resp.status_code != 200:
                raise Refused(f"HTTP {resp.status_code}")  # a redirect included: never followed
            body = bytearray()
            for chunk in resp.iter_content(CHUNK_BYTES):
                body += chunk
                if len(body) > max_bytes:
                    raise Refused("the answer is too large")
        if watchdog.expired:
            raise Refused("no complete answer in time")
        return bytes(body)
    except Refused:
        raise
    except Exception as err:  # noqa: BLE001 - a broken exchange (cut at the deadline, reset, TLS, bad framing)
        if watchdog.expired:
            raise Refused("no complete answer in time") from None
        raise Refused(type(err).__name__) from None
    finally:
        _CURRENT.reset(current)
        watchdog.close()
        session.close()
