"""Who may call the service: bearer-JWT auth (off by default) and the CORS allow-list (off by default).

Auth (LEGTRIAGE_AUTH_ENABLED=true): every request needs ``Authorization: Bearer <JWT>`` except the
public paths below (health, readiness, the CapabilityStatement, the OpenAPI spec and its docs) and
CORS preflights. The JWT must be signed with an accepted asymmetric algorithm (RS384, ES384, RS256 by
default; never ``none`` or HMAC) by a key of the configured JWKS (file or URL), name a trusted ``iss``
and this service in ``aud``, carry ``exp`` and, when given, a ``nbf``/``iat`` that has arrived. With a
jti window, each ``jti`` is accepted once. This is the CDS Hooks model (the EHR signs a short-lived
JWT per request) and also fits access tokens from an authorization server (window 0).
Everything else is 401 with an OperationOutcome and ``WWW-Authenticate: Bearer`` (RFC 6750).
Token-supplied key locations (``jku``, ``x5u``) are never fetched: keys come from configuration only.

With a jti window, each (iss, jti) accepted is a row in the records store until the token expires
(StoreReplays), so a token is accepted once across all workers and replicas. With records off
(LEGTRIAGE_RECORDS_ENABLED=false, benchmarks) the cache is per process: a stolen, still-valid token
could then be replayed once per worker.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, g, request

from service import fetching
from service.config import CLEARTEXT, ConfigError, Settings, https_or_loopback
from service.fhir_io.outcome import FhirError, Issue

log = logging.getLogger(__name__)

REALM = "legtriage"
# Open without a token. FHIR says the CapabilityStatement is public; orchestrators probe health.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/fhir/metadata", "/openapi.yaml"})
# /app/ is a page and its files, no data: it calls $triage with the EHR's token (docs/app.md).
PUBLIC_PREFIXES = ("/docs/", "/app/")
# CDS Hooks calls carry the CDS client's own JWT, checked by service/cds/trust.py against the CDS
# trust configuration (per-issuer keys, per-endpoint aud); the FHIR API's single-audience bearer
# check cannot express that, so it leaves these paths alone.
CDS_PREFIX = "/cds-services"
MAX_TOKEN_CHARS = 16_384
JWKS_URL_TIMEOUT_SECONDS = 5
JWKS_URL_MAX_BYTES = 1_048_576
JWKS_URL_CACHE_SECONDS = 300
JWKS_URL_MIN_REFRESH_SECONDS = 30  # an unknown kid triggers a refetch at most this often
EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Accept"]
CORS_EXPOSE_HEADERS = ["WWW-Authenticate", "Location", "Content-Location"]


def init_app(app: Flask, settings: Settings) -> None:
    """CORS if origins are configured; the bearer-token check if auth is enabled (checked at start)."""
    if settings.cors_origins:
        from flask_cors import CORS
        anyone = "*" in settings.cors_origins
        CORS(app, origins="*" if anyone else list(settings.cors_origins), send_wildcard=anyone,
             allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS,
             supports_credentials=False, max_age=600)
    if not settings.auth_enabled:
        return
    verifier = Verifier(settings, _key_source(settings), replay_guard(app.extensions["legtriage"].records))
    app.extensions["legtriage.auth"] = verifier

    if not settings.cds_auth_enabled:
        log.warning("FHIR API auth is on but CDS Hooks auth is off: /cds-services answers anyone; "
                    "set LEGTRIAGE_CDS_AUTH_ENABLED=true and LEGTRIAGE_CDS_ISSUERS_FILE")

    @app.before_request
    def require_bearer_token() -> None:
        if request.method == "OPTIONS" or is_public(request.path) or is_cds(request.path):
            return  # preflights carry no credentials by design
        # The claims stay on g: the audit record names the caller (iss, sub), and the audit
        # search checks the token's scope.
        g.token_claims = verifier.verify(bearer_token(request.headers.get("Authorization")))


def is_cds(path: str) -> bool:
    return path == CDS_PREFIX or path.startswith(CDS_PREFIX + "/")


def is_public(path: str) -> bool:
    path = path.rstrip("/") or "/"
    return (path in PUBLIC_PATHS or path in ("/docs", "/app")
            or path.startswith(PUBLIC_PREFIXES))


def bearer_token(header: str | None) -> str:
    """The token of an 'Authorization: Bearer <token>' header; 401 when there is none."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("A bearer token is required: send Authorization: Bearer <JWT>.",
                           code="login", error=None)
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise unauthorized("The bearer token is too long.")
    return token


def unauthorized(text: str, code: str = "security", error: str | None = "invalid_token") -> FhirError:
    """401 with the RFC 6750 challenge; no error attribute when no credentials were sent."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}", error_description="{text.replace(chr(34), chr(39))}"'
    return FhirError(401, [Issue(code, text)], headers={"WWW-Authenticate": challenge})


# ---- keys -------------------------------------------------------------------------------------

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


_LOCK_GUARD = threading.Lock()


class FileKeys:
    """A JWKS file, read at start and re-read when it changes (key rotation without a restart).

    A file that becomes empty, unreadable, invalid or is deleted trusts no key until it is valid
    again: emptying it is how an operator revokes keys at runtime. Said once per change, in a
    warning, not on every request.
    """

    def __init__(self, path: Path, setting: str = "LEGTRIAGE_AUTH_JWKS_FILE") -> None:
        self.path = path
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

    def keys(self, refresh: bool = False) -> list[SigningKey]:
        seen = self._signature()
        if seen != self._seen:
            self._seen = seen
            trusted = bool(self._keys)
            try:
                if seen is None:
                    raise FileNotFoundError("the file is gone")
                self._keys = parse_jwks(json.loads(self.path.read_bytes()))
            except (OSError, ValueError) as err:
                self._keys = []
                if trusted:
                    log.warning("JWKS file %s is missing or invalid (%s): no signing key is trusted "
                                "until it is valid again", self.path, type(err).__name__)
            else:
                if not trusted:
                    log.info("JWKS file %s is valid again: %d signing key(s) trusted", self.path,
                                len(self._keys))
        return self._keys


class UrlKeys:
    """A JWKS URL, fetched on first use with a timeout, cached, refetched when stale or on a new kid.

    https only (loopback aside); a redirect is a failed fetch, never followed (service/fetching.py).
    An unreachable key server (or an HTTP error) keeps the cached keys, so a key server outage
    does not lock every caller out; an answer that is an empty or invalid key set trusts no key
    until the URL serves a valid one (revocation), said once in a warning.
    """

    def __init__(self, url: str) -> None:
        if not https_or_loopback(url):  # checked with the settings too; keys never come in cleartext
            raise ConfigError(f"invalid configuration: {url}: {CLEARTEXT}")
        self.url = url
        self._keys: list[SigningKey] | None = None
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
                    self._take(body)
                self._fetched = now  # also after a failure: do not hammer the key server
            if self._keys is None:
                raise FhirError(503, [Issue("transient", "The signing keys cannot be fetched right "
                                            "now; try again shortly.")], headers={"Retry-After": "30"})
            return self._keys

    def _take(self, body: bytes) -> None:
        trusted = self._keys is None or bool(self._keys)
        try:
            self._keys = parse_jwks(json.loads(body))
        except ValueError as err:
            self._keys = []
            if trusted:
                log.warning("JWKS URL %s answered an empty or invalid key set (%s): no signing key "
                            "is trusted until it serves a valid one", self.url, type(err).__name__)
        else:
            if not trusted:
                log.info("JWKS URL %s serves a valid key set again: %d signing key(s) trusted",
                            self.url, len(self._keys))

    def _fetch(self) -> bytes:
        # The configured URL and no other: a redirect is a failed fetch, never followed (an
        # allow-listed address answering 302 would otherwise make another host's keys trusted).
        try:
            return fetching.get(self.url, {"Accept": "application/json"}, JWKS_URL_TIMEOUT_SECONDS,
                                JWKS_URL_MAX_BYTES)
        except fetching.Refused as err:
            raise OSError(str(err)) from None


def _key_source(settings: Settings) -> FileKeys | UrlKeys:
    if settings.auth_jwks_file is not None:
        return FileKeys(settings.auth_jwks_file)
    return UrlKeys(settings.auth_jwks_url)


# ---- tokens -----------------------------------------------------------------------------------

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


def replay_guard(records: Any) -> ReplayCache | StoreReplays:
    """Shared replay protection when the records store keeps it (SQLite or PostgreSQL), else (records
    off) this process's memory: a token could then be replayed once per worker."""
    if callable(getattr(records, "first_use", None)):
        return StoreReplays(records)
    return ReplayCache()


_CLAIM_ERRORS = [  # most specific first: PyJWT's exceptions subclass each other
    (jwt.ExpiredSignatureError, "expired", "The token has expired."),
    (jwt.ImmatureSignatureError, "security", "The token is not valid yet (nbf or iat is in the future)."),
    (jwt.InvalidAudienceError, "security", "The token's audience (aud) is not this service."),
    (jwt.InvalidIssuerError, "security", "The token's issuer (iss) is not trusted."),
    (jwt.InvalidSignatureError, "security", "The token's signature does not verify."),
    (jwt.InvalidAlgorithmError, "security", "The token's algorithm does not match its key."),
    (jwt.DecodeError, "security", "The token is malformed."),
]


def _jose_header(token: str) -> dict[str, Any]:
    """The token's JOSE header, read here rather than by PyJWT so each refusal can say what is wrong."""
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise unauthorized("The token is not a JWT.") from None
    if type(header) is not dict or token.count(".") != 2:
        raise unauthorized("The token is not a JWT.")
    return header


class Verifier:
    """Checks bearer JWTs against the configured keys, issuers, audiences and replay window."""

    def __init__(self, settings: Settings, keys: FileKeys | UrlKeys,
                 replays: ReplayCache | StoreReplays | None = None) -> None:
        self.keys = keys
        self.algorithms = settings.auth_algorithms
        self.issuers = list(settings.auth_issuers)
        self.audience = list(settings.auth_audience)
        self.leeway = settings.auth_leeway_seconds
        self.jti_window = settings.auth_jti_window_seconds
        self.max_lifetime = settings.auth_max_lifetime_seconds
        self.replays = replays or ReplayCache()

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims when it is acceptable; FhirError 401 otherwise."""
        header = _jose_header(token)
        alg = header.get("alg")
        if type(alg) is not str or alg not in self.algorithms:
            raise unauthorized(f"Algorithm {str(alg)[:16]!r} is not accepted; use one of "
                               f"{', '.join(self.algorithms)}.")
        if "crit" in header:
            # RFC 7515 4.1.11: a verifier must refuse extensions it does not understand, and this
            # service understands none.
            raise unauthorized("The token names critical header extensions (crit); none is supported.")
        for name in ("kid", "typ", "cty"):
            if name in header and type(header[name]) is not str:
                raise unauthorized(f"The token's {name} header must be a string.")
        key = self._key_for(header.get("kid"), alg)
        required = ["exp", "iss", "aud"] + (["jti"] if self.jti_window else [])
        try:
            claims = jwt.decode(token, key.jwk.key, algorithms=[alg], audience=self.audience,
                                issuer=self.issuers, leeway=self.leeway,
                                options={"require": required, "verify_signature": True})
        except jwt.MissingRequiredClaimError as err:
            raise unauthorized(f"The token lacks the {err.claim!r} claim.") from None
        except jwt.PyJWTError as err:
            for kind, code, text in _CLAIM_ERRORS:
                if isinstance(err, kind):
                    raise unauthorized(text, code=code) from None
            raise unauthorized("The token is invalid.") from None
        for name in ("exp", "nbf", "iat"):
            # PyJWT reads a numeric string as a time; RFC 7519 says NumericDate, a JSON number.
            value = claims.get(name)
            if value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
                raise unauthorized(f"The token's {name} claim must be a number (seconds since 1970).")
        if self.max_lifetime and claims["exp"] - time.time() > self.max_lifetime + self.leeway:
            raise unauthorized(f"The token lives longer than {self.max_lifetime} s, the longest "
                               "lifetime this service accepts.")
        if self.jti_window:
            self._check_replay(claims)
        return claims

    def _key_for(self, kid: Any, alg: str) -> SigningKey:
        def usable(k: SigningKey) -> bool:
            family = {"R": "RSA", "P": "RSA", "E": "EC"}[alg[0]]
            return (k.kty == family and k.alg in (None, alg)
                    and (family != "EC" or k.crv == EC_CURVES[alg]))

        for refresh in (False, True):
            keys = [k for k in self.keys.keys(refresh=refresh) if usable(k)]
            if kid is not None:
                keys = [k for k in keys if k.kid == kid]
            if len(keys) == 1:
                return keys[0]
            if len(keys) > 1:
                raise unauthorized("The token names no kid and several keys fit: send a kid.")
        raise unauthorized("The token's signing key (kid) is not a trusted key for its algorithm.")

    def _check_replay(self, claims: dict[str, Any]) -> None:
        jti, exp = claims.get("jti"), claims["exp"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise unauthorized("The token's jti must be a string of 1 to 256 characters.")
        if exp - time.time() > self.jti_window + self.leeway:
            raise unauthorized(f"The token lives longer than {self.jti_window} s: with replay "
                               "protection, send short-lived tokens (one per request).")
        if not self.replays.first_use(str(claims["iss"]), jti, exp + self.leeway):
            raise unauthorized("The token was already used (jti replay).")
