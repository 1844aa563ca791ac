"""The FHIR API's bearer-JWT check (service/auth.py says when it applies): the token's header, its
signature by a configured key, its claims, and each jti once within the window. Loaded only when
LEGTRIAGE_AUTH_ENABLED is on, so that PyJWT and cryptography stay out of the service otherwise.
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt

from service.config import Settings
from service.fhir_io.outcome import FhirError
from service.keys import (MAX_JTI_CHARS, MAX_TOKEN_CHARS, KeySource, ReplayCache, Replays, SigningKey, bearer,
                          fitting_keys, numeric_date, refusal, valid_jti)

REALM = "legtriage"


def bearer_token(header: str | None) -> str:
    """The token of an 'Authorization: Bearer <token>' header; 401 when there is none."""
    token = bearer(header)
    if not token:
        raise unauthorized("A bearer token is required: send Authorization: Bearer <JWT>.",
                           code="login", error=None)
    if len(token) > MAX_TOKEN_CHARS:
        raise unauthorized("The bearer token is too long.")
    return token


def unauthorized(text: str, code: str = "security", error: str | None = "invalid_token") -> FhirError:
    """401 saying what is wrong (RFC 6750 challenge); no error attribute when no credentials were sent."""
    return refusal(REALM, text, code, error)


# ---- tokens -----------------------------------------------------------------------------------

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
    """The token's JOSE header, read here rather than by PyJWT so each refusal can say what is wrong.

    ``jwt.get_unverified_header`` (the CDS check's) refuses a non-string kid and any crit itself,
    before the algorithm is looked at, and a stray character in the header as "not a JWT": the
    reasons this check gives, in its order, would change.
    """
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

    def __init__(self, settings: Settings, keys: KeySource, replays: Replays | None = None) -> None:
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
            if value is not None and not numeric_date(value):
                raise unauthorized(f"The token's {name} claim must be a number (seconds since 1970).")
        if self.max_lifetime and claims["exp"] - time.time() > self.max_lifetime + self.leeway:
            raise unauthorized(f"The token lives longer than {self.max_lifetime} s, the longest "
                               "lifetime this service accepts.")
        if self.jti_window:
            self._check_replay(claims)
        return claims

    def _key_for(self, kid: str | None, alg: str) -> SigningKey:
        keys = fitting_keys(self.keys, kid, alg)
        if not keys:
            raise unauthorized("The token's signing key (kid) is not a trusted key for its algorithm.")
        if len(keys) > 1:
            raise unauthorized("The token names no kid and several keys fit: send a kid.")
        return keys[0]

    def _check_replay(self, claims: dict[str, Any]) -> None:
        jti, exp = claims.get("jti"), claims["exp"]
        if not valid_jti(jti):
            raise unauthorized(f"The token's jti must be a string of 1 to {MAX_JTI_CHARS} characters.")
        if exp - time.time() > self.jti_window + self.leeway:
            raise unauthorized(f"The token lives longer than {self.jti_window} s: with replay "
                               "protection, send short-lived tokens (one per request).")
        if not self.replays.first_use(str(claims["iss"]), jti, exp + self.leeway):
            raise unauthorized("The token was already used (jti replay).")
