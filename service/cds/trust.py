"""Which CDS clients the CDS Hooks endpoints trust: the client's JWT on each call (CDS Hooks 2.0.1).

The EHR (the CDS client) signs a short-lived JWT for every call and sends it as
``Authorization: Bearer <JWT>``. Trusted clients are configured one by one in
LEGTRIAGE_CDS_ISSUERS_FILE::

    [{"iss": "https://sandbox.cds-hooks.org", "jku": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"]},
     {"iss": "https://ehr.example.org", "jwks_file": "/etc/legtriage/ehr-jwks.json", "tenants": ["north"]}]

Each issuer has a JWKS file, a JWKS URL, or a list of allow-listed ``jku`` URLs (or several of
these). A ``jku`` header is honoured only when it is in that issuer's list; any other ``jku`` is
refused before anything is fetched (the token names where its keys are: fetching what it names is
an SSRF and a forged-key hole). Checked: header ``alg`` (asymmetric only: never ``none`` or HMAC),
``typ`` "JWT", ``kid``; claims ``iss``, ``aud`` (this endpoint's *public* URL, built from
LEGTRIAGE_PUBLIC_BASE_URL, because behind a proxy the request's Host is not what the client
signed), ``exp``, ``iat`` (not ahead by more than the leeway), ``nbf`` when present, ``jti``
(never twice per issuer while the token lives, across workers and replicas: the replay guard of
service/keys.py), a lifetime of at most an hour, and ``tenant`` when
the issuer lists tenants. Any failure is 401 with ``WWW-Authenticate: Bearer`` and no reason: the
reason would help an attacker tune a forgery, and the client's operators see it in no log either
(the JWT is never logged).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.config import AUTH_ALGORITHMS, CLEARTEXT, ConfigError, https_or_loopback
from service.fhir_io.outcome import FhirError
from service.keys import (MAX_TOKEN_CHARS, FileKeys, KeySource, ReplayCache, Replays, UrlKeys, bearer,
                          fitting_keys, numeric_date, refusal, valid_jti)

SETTING = "LEGTRIAGE_CDS_ISSUERS_FILE"
ALGORITHMS = AUTH_ALGORITHMS  # every asymmetric one: never none or HMAC
LEEWAY_SECONDS = 60
MAX_LIFETIME_SECONDS = 3600
REALM = "legtriage-cds-hooks"


def unauthorized() -> FhirError:
    """The one answer to every failed check: which check failed is not said."""
    return refusal(REALM, "Authentication is required.", "login", error=None)


class IssuerSchema(Schema):
    class Meta:
        unknown = RAISE

    iss = fields.String(required=True, validate=validate.Length(min=1, max=512))
    jwks_file = fields.String(validate=validate.Length(min=1))
    jwks_url = fields.Url(require_tld=False, schemes={"http", "https"})
    jku = fields.List(fields.Url(require_tld=False, schemes={"http", "https"}), load_default=list)
    tenants = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)

    @validates_schema
    def has_keys(self, data: dict, **kwargs: Any) -> None:
        if not (data.get("jwks_file") or data.get("jwks_url") or data.get("jku")):
            raise ValidationError("give jwks_file, jwks_url or jku: where this issuer's keys are", "iss")
        if data.get("jwks_file") and data.get("jwks_url"):
            raise ValidationError("jwks_file or jwks_url, not both", "jwks_url")
        for name, urls in (("jwks_url", [data.get("jwks_url")] if data.get("jwks_url") else []),
                           ("jku", data.get("jku", []))):
            bad = [u for u in urls if not https_or_loopback(u)]
            if bad:
                raise ValidationError(f"{CLEARTEXT}: {', '.join(bad)}", name)


@dataclass(frozen=True)
class Issuer:
    iss: str
    keys: KeySource | None  # None: only keys named by an allow-listed jku
    jku: dict[str, UrlKeys]
    tenants: frozenset[str]


def load_issuers(path: Path) -> dict[str, Issuer]:
    """The trusted CDS clients of LEGTRIAGE_CDS_ISSUERS_FILE; ConfigError naming the problem."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigError(f"invalid configuration: {SETTING}: {path}: {err}") from None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"invalid configuration: {SETTING}: {path}: a non-empty JSON list of issuers")
    try:
        entries = IssuerSchema(many=True).load(raw)
    except ValidationError as err:
        raise ConfigError(f"invalid configuration: {SETTING}: {path}: {err.messages}") from None
    issuers: dict[str, Issuer] = {}
    for i, entry in enumerate(entries):
        if entry["iss"] in issuers:
            raise ConfigError(f"invalid configuration: {SETTING}: {path}: [{i}] repeats iss {entry['iss']}")
        keys: KeySource | None = None
        if entry.get("jwks_file"):
            file = Path(entry["jwks_file"])
            if not file.is_absolute():
                file = path.parent / file
            keys = FileKeys(file, setting=f"{SETTING} [{i}].jwks_file")
        elif entry.get("jwks_url"):
            keys = UrlKeys(entry["jwks_url"])
        issuers[entry["iss"]] = Issuer(entry["iss"], keys, {u: UrlKeys(u) for u in entry["jku"]},
                                       frozenset(entry["tenants"]))
    return issuers


class CdsVerifier:
    """Checks CDS client JWTs against the configured issuers."""

    def __init__(self, issuers: dict[str, Issuer], replays: Replays | None = None) -> None:
        self.issuers = issuers
        self.replays = replays or ReplayCache()  # shared across workers: the records store's

    def verify(self, authorization: str | None, audiences: tuple[str, ...]) -> dict[str, Any]:
        """The token's claims, or FhirError 401 (no reason given)."""
        token = bearer(authorization)
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise unauthorized()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise unauthorized() from None
        alg, kid = header.get("alg"), header.get("kid")
        if (alg not in ALGORITHMS or str(header.get("typ", "")).upper() != "JWT"
                or not isinstance(kid, str) or not kid):
            raise unauthorized()
        issuer = self.issuers.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if issuer is None:
            raise unauthorized()
        jku = header.get("jku")
        if jku is not None:
            source = issuer.jku.get(jku) if isinstance(jku, str) else None
        else:
            source = issuer.keys
        if source is None:
            raise unauthorized()  # a jku this issuer never listed: refused before any fetch
        keys = fitting_keys(source, kid, alg)
        if not keys:
            raise unauthorized()
        key = keys[0]
        try:
            claims = jwt.decode(token, key.jwk.key, algorithms=[alg], audience=list(audiences),
                                issuer=issuer.iss, leeway=LEEWAY_SECONDS,
                                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.InvalidTokenError:
            raise unauthorized() from None
        now = time.time()
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not all(numeric_date(claims.get(name)) for name in ("exp", "iat", "nbf") if name in claims):
            raise unauthorized()  # PyJWT reads "1999999999" as a time; RFC 7519 says a JSON number
        if iat > now + LEEWAY_SECONDS or exp - iat > MAX_LIFETIME_SECONDS:
            raise unauthorized()
        if issuer.tenants and claims.get("tenant") not in issuer.tenants:
            raise unauthorized()
        if not valid_jti(jti):
            raise unauthorized()
        if not self.replays.first_use(issuer.iss, jti, exp + LEEWAY_SECONDS):
            raise unauthorized()
        return claims
