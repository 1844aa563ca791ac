"""Signing keys and token facts shared by the two JWT checks: the FHIR API's (service/auth.py) and
the CDS clients' (service/cds/trust.py).

Here: the key sets (a JWKS file re-read when it changes, a JWKS URL fetched and cached), which key
checks a token, the replay guard (each jti once), and the small rules on a token both checks apply
(the bearer header, a jti's shape, times as JSON numbers), and the 401 both answer with. What a
refusal says is each caller's policy: the API names the reason, the CDS endpoints say nothing.

PyJWT parses each key (``jwt.PyJWK``). Its ``PyJWKSet`` is not used: it neither skips keys meant
for encryption nor refuses private key material, and it fills in a guessed ``alg`` (RS256 for any
RSA key), which hides whether a key pins its algorithm. Its ``PyJWKClient`` is not used either: it
fetches with urllib (environment proxies, no cap on the size or total time of the answer), drops
keys without a kid (the API accepts a kid-less token when one key fits), fails once its cache has
expired and the key server is down (here the last good keys keep serving through an outage), and
holds a lock made at import across the fetch (a gevent worker would deadlock on it).
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from service.config import CLEARTEXT, ConfigError, https_or_loopback
from service.fhir_io.outcome import FhirError, Issue

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 16_384
MAX_JTI_CHARS = 256
JWKS_URL_TIMEOUT_SECONDS = 5
JWKS_URL_MAX_BYTES = 1_048_576
JWKS_URL_CACHE_SECONDS = 300
JWKS_URL_MIN_REFRESH_SECONDS = 30  # an unknown kid triggers a refetch at most this often
KEY_FAMILIES = {"R": "RSA", "P": "RSA", "E": "EC"}  # by the first letter of an asymmetric alg
EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


# ---- the token -----------------------------------------------------------------------------------

def refusal(realm: str, text: str, code: str, error: str | None) -> FhirError:
    """401 with the RFC 6750 challenge; no error attribute when there is none to say (no credentials
    were sent, or the policy says nothing)."""
    challenge = f'Bearer realm="{realm}"'
    if error:
        challenge += f', error="{error}", error_description="{text.replace(chr(34), chr(39))}"'
    return FhirError(401, [Issue(code, text)], headers={"WWW-Authenticate": challenge})


def bearer(header: str | None) -> str:
    """The token of an 'Authorization: Bearer <token>' header; '' when there is none."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def numeric_date(value: Any) -> bool:
    """RFC 7519's NumericDate, a JSON number (PyJWT also reads "1999999999" as a time)."""
    return type(value) in (int, float) and math.isfinite(value)


def valid_jti(jti: Any) -> bool:
    return isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_CHARS


# ---- key sets ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SigningKey:
    kid: str | None
    jwk: jwt.PyJWK
    alg: str | None  # the JWK's own "alg", when it names one
    kty: str
    crv: str | None


def parse_jwks(data: Any) -> list[SigningKey]:
    """The signature keys of a JWKS document; ValueError when it holds none."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS (an object with a 'keys' list)")
    keys = []
    for raw in data["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        if any(name in raw for name in ("d", "p", "q", "k")):
            # A private or symmetric key in a published key set is a configuration mistake.
            raise ValueError("the JWKS holds private or symmetric key material; publish public keys only")
        try:
            jwk = jwt.PyJWK(raw)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue  # a key type this service cannot use; the others still count
        keys.append(SigningKey(raw.get("kid"), jwk, raw.get("alg"), raw.get("kty", ""), raw.get("crv")))
    if not keys:
        raise ValueError("the JWKS holds no usable signature keys")
    return keys


class _KeySet:
    """The keys last read from a source. A source that turns empty or invalid trusts no key until it
    is valid again (how an operator revokes keys at runtime), said once in a warning."""

    where: Any
    _keys: list[SigningKey] | None = None

    def _reread(self, read: Callable[[], bytes], broken: str, valid_again: str) -> None:
        trusted = self._keys is None or bool(self._keys)
        try:
            self._keys = parse_jwks(json.loads(read()))
        except (OSError, ValueError) as err:
            self._keys = []
            if trusted:
                log.warning(broken, self.where, type(err).__name__)
        else:
            if not trusted:
                log.info(valid_again, self.where, len(self._keys))


_LOCK_GUARD = threading.Lock()


class FileKeys(_KeySet):
    """A JWKS file, read at start and re-read when it changes (key rotation without a restart).

    A file that becomes empty, unreadable, invalid or is deleted trusts no key until it is valid
    again: emptying it is how an operator revokes keys at runtime. Said once per change, in a
    warning, not on every request.
    """

    def __init__(self, path: Path, setting: str = "LEGTRIAGE_AUTH_JWKS_FILE") -> None:
        self.where = self.path = path
        try:
            self._seen = self._signature()
            self._keys = parse_jwks(json.loads(path.read_bytes()))
        except (OSError, ValueError) as err:
            raise ConfigError(f"invalid configuration: {setting}: {path}: {err}") from None

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _read(self) -> bytes:
        if self._seen is None:
            raise FileNotFoundError("the file is gone")
        return self.path.read_bytes()

    def keys(self, refresh: bool = False) -> list[SigningKey]:
        seen = self._signature()
        if seen != self._seen:
            self._seen = seen
            self._reread(self._read,
                         "JWKS file %s is missing or invalid (%s): no signing key is trusted until it is "
                         "valid again",
                         "JWKS file %s is valid again: %d signing key(s) trusted")
        return self._keys or []


class UrlKeys(_KeySet):
    """A JWKS URL, fetched on first use with a timeout, cached, refetched when stale or on a new kid.

    https only (loopback aside); a redirect is a failed fetch, never followed (service/fetching.py).
    An unreachable key server (or an HTTP error) keeps the cached keys, so a key server outage
    does not lock every caller out; an answer that is an empty or invalid key set trusts no key
    until the URL serves a valid one (revocation), said once in a warning.
    """

    def __init__(self, url: str) -> None:
        if not https_or_loopback(url):  # checked with the settings too; keys never come in cleartext
            raise ConfigError(f"invalid configuration: {url}: {CLEARTEXT}")
        self.where = self.url = url
        self._fetched = 0.0
        self._lock: threading.Lock | None = None

    def _worker_lock(self) -> threading.Lock:
        # Made on first use, in the worker: the app is built in gunicorn's master before the
        # gevent worker patches threading, and a real lock held across the fetch (which yields to
        # other greenlets) would deadlock the worker when a second request waits on it.
        with _LOCK_GUARD:  # a real lock, never held across I/O
            if self._lock is None:
                self._lock = threading.Lock()
            return self._lock

    def keys(self, refresh: bool = False) -> list[SigningKey]:
        now = time.monotonic()
        with self._worker_lock():
            stale = self._keys is None or now - self._fetched > JWKS_URL_CACHE_SECONDS
            wanted = refresh and now - self._fetched > JWKS_URL_MIN_REFRESH_SECONDS
            if stale or wanted:
                try:
                    body = self._fetch()
                except OSError as err:
                    log.warning("JWKS URL %s could not be fetched: %s", self.url, type(err).__name__)
                else:
                    self._reread(lambda: body,
                                 "JWKS URL %s answered an empty or invalid key set (%s): no signing key "
                                 "is trusted until it serves a valid one",
                                 "JWKS URL %s serves a valid key set again: %d signing key(s) trusted")
                self._fetched = now  # also after a failure: do not hammer the key server
            if self._keys is None:
                raise FhirError(503, [Issue("transient", "The signing keys cannot be fetched right "
                                            "now; try again shortly.")], headers={"Retry-After": "30"})
            return self._keys

    def _fetch(self) -> bytes:
        # The configured URL and no other: a redirect is a failed fetch, never followed (an
        # allow-listed address answering 302 would otherwise make another host's keys trusted).
        from service import fetching  # see fetching.py: imported where it is first used

        try:
            return fetching.get(self.url, {"Accept": "application/json"}, JWKS_URL_TIMEOUT_SECONDS,
                                JWKS_URL_MAX_BYTES)
        except fetching.Refused as err:
            raise OSError(str(err)) from None


KeySource = FileKeys | UrlKeys


def fitting_keys(source: KeySource, kid: str | None, alg: str) -> list[SigningKey]:
    """The keys of `source` that can check a signature made with `alg` (an asymmetric algorithm)
    and, when the token names a kid, carry it. None fitting: the source is asked once more, for
    fresh keys (an issuer at a JWKS URL may have rotated its keys)."""
    family = KEY_FAMILIES[alg[0]]

    def fits(k: SigningKey) -> bool:
        return (k.kty == family and k.alg in (None, alg) and (family != "EC" or k.crv == EC_CURVES[alg])
                and (kid is None or k.kid == kid))

    for refresh in (False, True):
        keys = [k for k in source.keys(refresh=refresh) if fits(k)]
        if keys:
            return keys
    return []


# ---- each token once -----------------------------------------------------------------------------

class ReplayCache:
    """jti values seen in this process, each kept until its token expires (records off, tests)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, until: float) -> bool:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
                self._next_sweep = now + 60
            key = (issuer, jti)
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = until
            return True


class StoreReplays:
    """jti values seen by every worker and replica: a row per (iss, jti) in the records store
    (service/records/, table token_seen), kept until the token expires. A store that cannot be
    reached accepts nothing: 503 with Retry-After, never a token it cannot check."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def first_use(self, issuer: str, jti: str, until: float) -> bool:
        from service.records import StoreUnavailable
        try:
            return self.store.first_use(issuer, jti, until)
        except StoreUnavailable:
            raise FhirError(503, [Issue("transient", "The service cannot check the token right now; "
                                        "try again shortly.")], headers={"Retry-After": "5"}) from None


Replays = ReplayCache | StoreReplays


def replay_guard(records: Any) -> Replays:
    """Shared replay protection when the records store keeps it (SQLite or PostgreSQL), else (records
    off) this process's memory: a token could then be replayed once per worker."""
    if callable(getattr(records, "first_use", None)):
        return StoreReplays(records)
    return ReplayCache()
