"""Who may call the service: bearer-JWT auth (off by default) and the CORS allow-list (off by default).

Auth (LEGTRIAGE_AUTH_ENABLED=true): every request needs ``Authorization: Bearer <JWT>`` except the
public paths below (health, readiness, the CapabilityStatement, the OpenAPI spec and its docs) and
CORS preflights. The JWT must be signed with an accepted asymmetric algorithm (RS384, ES384, RS256 by
default; never ``none`` or HMAC) by a key of the configured JWKS (file or URL), name a trusted ``iss``
and this service in ``aud``, carry ``exp`` and, when given, a ``nbf``/``iat`` that has arrived. With a
jti window, each ``jti`` is accepted once. This is the CDS Hooks model (the EHR signs a short-lived
JWT per request) and also fits access tokens from an authorization server (window 0).
Everything else is 401 with an OperationOutcome and ``WWW-Authenticate: Bearer`` (RFC 6750).
The check itself is service/bearer.py, loaded only when auth is on.
Token-supplied key locations (``jku``, ``x5u``) are never fetched: keys come from configuration only.

With a jti window, each (iss, jti) accepted is a row in the records store until the token expires
(StoreReplays), so a token is accepted once across all workers and replicas. With records off
(LEGTRIAGE_RECORDS_ENABLED=false, benchmarks) the cache is per process: a stolen, still-valid token
could then be replayed once per worker.
"""
from __future__ import annotations

import logging

from flask import Flask, g, request

from service.config import Settings

log = logging.getLogger(__name__)

# Open without a token. FHIR says the CapabilityStatement is public; orchestrators probe health.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/fhir/metadata", "/openapi.yaml"})
# /app/ is a page and its files, no data: it calls $triage with the EHR's token (docs/app.md).
PUBLIC_PREFIXES = ("/docs/", "/app/")
# CDS Hooks calls carry the CDS client's own JWT, checked by service/cds/trust.py against the CDS
# trust configuration (per-issuer keys, per-endpoint aud); the FHIR API's single-audience bearer
# check cannot express that, so it leaves these paths alone.
CDS_PREFIX = "/cds-services"
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
    # The token check, PyJWT and cryptography are loaded only now: without auth they stay out of
    # the service's processes.
    from service.bearer import Verifier, bearer_token
    from service.keys import FileKeys, KeySource, UrlKeys, replay_guard

    keys: KeySource = (FileKeys(settings.auth_jwks_file) if settings.auth_jwks_file is not None
                       else UrlKeys(settings.auth_jwks_url))
    verifier = Verifier(settings, keys, replay_guard(app.extensions["legtriage"].records))
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
