"""Settings from LEGTRIAGE_* environment variables, validated once at start.

| variable                         | default                  | meaning                                            |
|----------------------------------|--------------------------|----------------------------------------------------|
| LEGTRIAGE_HOST                   | 127.0.0.1                | address gunicorn binds to (0.0.0.0 in containers)  |
| LEGTRIAGE_PORT                   | 8080                     | port gunicorn binds to                             |
| LEGTRIAGE_WORKERS                | 2 x CPU count            | gunicorn worker processes                          |
| LEGTRIAGE_LOG_LEVEL              | info                     | debug, info, warning, error, critical              |
| LEGTRIAGE_MAX_BODY_BYTES         | 1048576                  | larger request bodies get 413                      |
| LEGTRIAGE_DEFAULT_RULES_VERSION  | (newest active)          | rule module version used when a caller names none  |
| LEGTRIAGE_PUBLIC_BASE_URL        | http://localhost:8080    | where callers reach the service (CapabilityStatement, docs) |
| LEGTRIAGE_MAPPINGS_DIR           | ./mappings of the checkout | folder with the Questionnaire, fact map, terminology |
| LEGTRIAGE_AUTH_ENABLED           | false                    | require a bearer JWT on /fhir (but /fhir/metadata); not on /cds-services |
| LEGTRIAGE_AUTH_JWKS_FILE         | (none)                   | JWKS file with the trusted signing keys (reloaded when it changes) |
| LEGTRIAGE_AUTH_JWKS_URL          | (none)                   | or a JWKS URL, fetched with a timeout and cached   |
| LEGTRIAGE_AUTH_ISSUERS           | (none)                   | comma-separated `iss` values accepted (required with auth) |
| LEGTRIAGE_AUTH_AUDIENCE          | (none)                   | comma-separated `aud` values accepted (required with auth) |
| LEGTRIAGE_AUTH_ALGORITHMS        | RS384,ES384,RS256        | signature algorithms accepted (asymmetric only)    |
| LEGTRIAGE_AUTH_LEEWAY_SECONDS    | 30                       | clock skew allowed on exp, nbf and iat             |
| LEGTRIAGE_AUTH_JTI_WINDOW_SECONDS| 0 (off)                  | >0: each jti is accepted once, and tokens must expire within this many seconds |
| LEGTRIAGE_AUTH_MAX_LIFETIME_SECONDS | 86400            | tokens whose exp is further away than this are refused (0: no limit) |
| LEGTRIAGE_CORS_ORIGINS           | (none: CORS off)         | comma-separated browser origins allowed to call the API, or * |
| LEGTRIAGE_CDS_AUTH_ENABLED       | false; with auth on: must be set | every CDS Hooks call needs the CDS client's JWT |
| LEGTRIAGE_CDS_ISSUERS_FILE       | (none)                   | JSON list of trusted CDS clients: iss, jwks_file or jwks_url, jku, tenants |
| LEGTRIAGE_CDS_DISCOVERY_AUTH     | false                    | with CDS auth on, GET /cds-services needs the JWT too |
| LEGTRIAGE_CDS_FHIR_SERVERS       | (none: never fetch)      | comma-separated fhirServer base URLs the service may query |
| LEGTRIAGE_CDS_FRESHNESS_HOURS    | 72                       | how old a completed QuestionnaireResponse may be to give an actionable card |
| LEGTRIAGE_CDS_PROMPT_IN_PROGRESS | false                    | an in-progress QuestionnaireResponse gets an info card with a link to the web app |
| LEGTRIAGE_SMART_CLIENT_ID        | (none: launch off)       | the web app's client id at the EHR's authorization server |
| LEGTRIAGE_APP_EHR_ISSUERS        | (none; required with the client id) | comma-separated FHIR base URLs (iss) /app/launch accepts (https, loopback aside) |
| LEGTRIAGE_APP_FRAME_ANCESTORS    | 'self'                   | CSP frame-ancestors of /app/: who may embed the page (e.g. the EHR's origin) |
| LEGTRIAGE_APP_CONNECT_SRC        | (none)                   | CSP connect-src of /app/ beyond 'self' and the EHR issuers' origins: token endpoints |
| LEGTRIAGE_APP_ASSETS_DIR         | ./web/dist of the checkout | LHC-Forms and fhirclient.js files (scripts/lib/web-assets.sh puts them there) |
| LEGTRIAGE_DATA_DIR               | ./var of the checkout    | where the embedded SQLite store lives              |
| LEGTRIAGE_DATABASE_URL           | (SQLite in the data dir) | sqlite:///path or postgresql://user:pw@host/db (replicas) |
| LEGTRIAGE_RECORDS_ENABLED        | true                     | false: record nothing (benchmarks only), no audit search |
| LEGTRIAGE_AUDIT_RETENTION_DAYS   | 2190                     | audit events older than this are removed by `legtriage purge`            |
| LEGTRIAGE_AUDIT_OPEN_LAB         | false                    | true: GET /fhir/AuditEvent open while auth is off (a lab only) |
| LEGTRIAGE_SIGNOFF_DIR            | ./mappings/signoff of the checkout | the hospital's clinical sign-off files, one per rule version |
| LEGTRIAGE_REQUIRE_SIGNOFF        | false                    | true: only signed-off rule versions run (the default, and any pinned) |
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

ENV_PREFIX = "LEGTRIAGE_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# Asymmetric only: with an HMAC algorithm a published public key would become a shared secret.
AUTH_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    log_level: str
    max_body_bytes: int
    default_rules_version: str | None
    public_base_url: str
    mappings_dir: Path
    auth_enabled: bool
    auth_jwks_file: Path | None
    auth_jwks_url: str | None
    auth_issuers: tuple[str, ...]
    auth_audience: tuple[str, ...]
    auth_algorithms: tuple[str, ...]
    auth_leeway_seconds: int
    auth_jti_window_seconds: int
    auth_max_lifetime_seconds: int
    cors_origins: tuple[str, ...]
    cds_auth_enabled: bool
    cds_issuers_file: Path | None
    cds_discovery_auth: bool
    cds_fhir_servers: tuple[str, ...]
    cds_freshness_hours: int
    cds_prompt_in_progress: bool
    smart_client_id: str | None
    app_ehr_issuers: tuple[str, ...]
    app_frame_ancestors: tuple[str, ...]
    app_connect_src: tuple[str, ...]
    app_assets_dir: Path
    data_dir: Path
    database_url: str  # SQLAlchemy URL: sqlite:///… or postgresql+psycopg://…
    records_enabled: bool
    audit_retention_days: int
    audit_open_lab: bool
    signoff_dir: Path
    require_signoff: bool


class CommaList(fields.Field):
    """A comma-separated string (environment) or a list (overrides) -> tuple of non-empty strings."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValidationError("must be a comma-separated list")
        return tuple(v.strip() for v in value if v.strip())


def _origin(value: str) -> bool:
    """'*' or scheme://host[:port], the form browsers send in the Origin header."""
    from urllib.parse import urlsplit
    if value == "*":
        return True
    parts = urlsplit(value)
    return (parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.path
            and not parts.query and not parts.fragment and "@" not in parts.netloc)


def _base_url(value: str) -> bool:
    """An http(s) URL without credentials, query or fragment: a FHIR server's base."""
    from urllib.parse import urlsplit
    parts = urlsplit(value)
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
            and not parts.fragment and "@" not in parts.netloc)


def is_loopback(url: str) -> bool:
    """The URL's host is this machine (localhost or a loopback address): cleartext never leaves it."""
    import ipaddress
    from urllib.parse import urlsplit
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def https_or_loopback(url: str) -> bool:
    """Tokens and keys travel to (or from) this URL: TLS unless it stays on this machine."""
    from urllib.parse import urlsplit
    scheme = urlsplit(url).scheme.lower()
    return scheme == "https" or (scheme == "http" and is_loopback(url))


CLEARTEXT = "http:// would carry tokens or keys in cleartext: use https:// (http only to localhost)"
# A CSP source expression: a keyword, a scheme ("https:") or a host source; never a separator or
# anything that could start another directive.
_CSP_KEYWORDS = ("'self'", "'none'")
_CSP_SOURCE = re.compile(r"(?:[a-z][a-z0-9+.-]*:|(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[A-Za-z0-9.-]+"
                         r"(?::(?:[0-9]{1,5}|\*))?(?:/[^\s;,']*)?)")  # fullmatch


class CspSources(CommaList):
    """CSP sources separated by commas or spaces, each a keyword, a scheme or a host source."""

    def __init__(self, *args: Any, hosts_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hosts_only = hosts_only

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        sources = super()._deserialize(value, attr, data, **kwargs)
        bad = [s for s in sources if s not in _CSP_KEYWORDS and not _CSP_SOURCE.fullmatch(s)]
        if bad:
            raise ValidationError(f"not a CSP source ('self', 'none', https: or https://host[:port]): "
                                  f"{' '.join(bad)[:200]}")
        if "'none'" in sources and len(sources) > 1:
            raise ValidationError("'none' cannot be combined with other sources")
        if self.hosts_only:
            blanket = [s for s in sources if s.endswith(":") or s.startswith("*") or "://*" in s]
            if blanket:
                raise ValidationError(f"name origins (https://host[:port]), not a whole scheme or a "
                                      f"wildcard: {' '.join(blanket)[:200]}")
        return sources


def _database_url(value: str) -> str | None:
    """The SQLAlchemy URL for a LEGTRIAGE_DATABASE_URL (psycopg 3 for PostgreSQL), None if unusable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        url = make_url(value)
    except ArgumentError:
        return None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        if not url.host and not url.query.get("host"):
            return None
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.drivername == "sqlite" and url.database and url.database != ":memory:":
        return url.render_as_string(hide_password=False)
    return None


class SettingsSchema(Schema):
    class Meta:
        unknown = RAISE

    host = fields.String(load_default="127.0.0.1", validate=validate.Length(min=1))
    port = fields.Integer(load_default=8080, validate=validate.Range(1, 65535))
    workers = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 64))
    log_level = fields.String(load_default="info", validate=validate.OneOf(LOG_LEVELS))
    max_body_bytes = fields.Integer(load_default=1_048_576, validate=validate.Range(1024, 64 * 1_048_576))
    default_rules_version = fields.String(load_default=None, allow_none=True)
    public_base_url = fields.Url(load_default="http://localhost:8080", require_tld=False,
                                 schemes={"http", "https"})
    mappings_dir = fields.String(load_default=str(PROJECT_ROOT / "mappings"))
    auth_enabled = fields.Boolean(load_default=False)
    auth_jwks_file = fields.String(load_default=None, allow_none=True)
    auth_jwks_url = fields.Url(load_default=None, allow_none=True, require_tld=False,
                               schemes={"http", "https"})
    auth_issuers = CommaList(load_default=())
    auth_audience = CommaList(load_default=())
    auth_algorithms = CommaList(load_default=("RS384", "ES384", "RS256"), validate=[
        validate.Length(min=1), validate.ContainsOnly(AUTH_ALGORITHMS)])
    auth_leeway_seconds = fields.Integer(load_default=30, validate=validate.Range(0, 300))
    auth_jti_window_seconds = fields.Integer(load_default=0, validate=validate.Range(0, 86400))
    auth_max_lifetime_seconds = fields.Integer(load_default=86400, validate=validate.Range(0, 31_536_000))
    cors_origins = CommaList(load_default=())
    # None: not set either way; with the FHIR API's auth on that refuses the start
    cds_auth_enabled = fields.Boolean(load_default=None, allow_none=True)
    cds_issuers_file = fields.String(load_default=None, allow_none=True)
    cds_discovery_auth = fields.Boolean(load_default=False)
    cds_fhir_servers = CommaList(load_default=())
    cds_freshness_hours = fields.Integer(load_default=72, validate=validate.Range(1, 24 * 365))
    cds_prompt_in_progress = fields.Boolean(load_default=False)
    smart_client_id = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Regexp(r"^[\x21-\x7e]{1,255}\Z"))
    app_ehr_issuers = CommaList(load_default=())
    app_frame_ancestors = CspSources(load_default=("'self'",), validate=validate.Length(min=1))
    app_connect_src = CspSources(load_default=(), hosts_only=True)
    app_assets_dir = fields.String(load_default=str(PROJECT_ROOT / "web" / "dist"))
    data_dir = fields.String(load_default=str(PROJECT_ROOT / "var"), validate=validate.Length(min=1))
    database_url = fields.String(load_default=None, allow_none=True)
    records_enabled = fields.Boolean(load_default=True)
    audit_retention_days = fields.Integer(load_default=2190, validate=validate.Range(1, 36500))
    audit_open_lab = fields.Boolean(load_default=False)
    signoff_dir = fields.String(load_default=str(PROJECT_ROOT / "mappings" / "signoff"),
                                validate=validate.Length(min=1))
    require_signoff = fields.Boolean(load_default=False)

    @validates_schema
    def auth_needs_keys_and_allow_lists(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Auth on means: keys to check signatures with, and explicit issuers and audiences to trust.
        if data.get("auth_enabled"):
            if not data.get("auth_jwks_file") and not data.get("auth_jwks_url"):
                raise ValidationError("auth is enabled: set LEGTRIAGE_AUTH_JWKS_FILE or "
                                      "LEGTRIAGE_AUTH_JWKS_URL", "auth_enabled")
            if data.get("auth_jwks_file") and data.get("auth_jwks_url"):
                raise ValidationError("set LEGTRIAGE_AUTH_JWKS_FILE or LEGTRIAGE_AUTH_JWKS_URL, "
                                      "not both", "auth_jwks_url")
            for name in ("auth_issuers", "auth_audience"):
                if not data.get(name):
                    raise ValidationError("required when auth is enabled", name)
            if data.get("cds_auth_enabled") is None:
                # The CDS Hooks endpoints have their own trust (service/cds/trust.py): a deployment
                # that secures the FHIR API must say whether they are secured too, never by default.
                raise ValidationError("must be set (true or false) when LEGTRIAGE_AUTH_ENABLED=true: "
                                      "true checks each CDS client's JWT (with LEGTRIAGE_CDS_ISSUERS_FILE), "
                                      "false leaves /cds-services open to anyone", "cds_auth_enabled")
        if data.get("auth_jwks_url") and not https_or_loopback(data["auth_jwks_url"]):
            raise ValidationError(CLEARTEXT, "auth_jwks_url")
        if ((data.get("auth_enabled") or data.get("cds_auth_enabled"))
                and not https_or_loopback(data.get("public_base_url") or "http://localhost")):
            raise ValidationError(f"{CLEARTEXT} (clients send their tokens to this address)",
                                  "public_base_url")
        if data.get("cds_auth_enabled") and not data.get("cds_issuers_file"):
            raise ValidationError("CDS auth is enabled: set LEGTRIAGE_CDS_ISSUERS_FILE",
                                  "cds_issuers_file")
        if data.get("cds_discovery_auth") and not data.get("cds_auth_enabled"):
            raise ValidationError("needs LEGTRIAGE_CDS_AUTH_ENABLED=true", "cds_discovery_auth")
        for name in ("cds_fhir_servers", "app_ehr_issuers"):
            bad = [u for u in data.get(name, ()) if not _base_url(u)]
            if bad:
                raise ValidationError(f"not a FHIR base URL (http(s)://host[:port][/path], no query, "
                                      f"no credentials): {', '.join(bad)}", name)
            bad = [u for u in data.get(name, ()) if not https_or_loopback(u)]
            if bad:
                raise ValidationError(f"{CLEARTEXT}: {', '.join(bad)}", name)
        if data.get("auth_enabled"):
            ehrs = {u.rstrip("/") for n in ("app_ehr_issuers", "cds_fhir_servers") for u in data.get(n, ())}
            shared = [a for a in data.get("auth_audience", ()) if a.rstrip("/") in ehrs]
            if shared:
                # A token for the EHR's FHIR server (any app's) would then be a token for this service.
                raise ValidationError(f"names an EHR's FHIR base ({', '.join(shared)}): this service "
                                      f"needs an audience of its own, e.g. LEGTRIAGE_PUBLIC_BASE_URL",
                                      "auth_audience")
        if data.get("smart_client_id") and not data.get("app_ehr_issuers"):
            raise ValidationError("required with LEGTRIAGE_SMART_CLIENT_ID: the FHIR base URLs (iss) of "
                                  "the EHRs that may launch the web app", "app_ehr_issuers")
        bad = [o for o in data.get("cors_origins", ()) if not _origin(o)]
        if bad:
            raise ValidationError(f"not an origin (scheme://host[:port] or *): {', '.join(bad)}",
                                  "cors_origins")
        url = data.get("database_url")
        if url and _database_url(url) is None:
            raise ValidationError("must be sqlite:///path or postgresql://user:password@host[:port]/db",
                                  "database_url")

    @post_load
    def make_settings(self, data: dict[str, Any], **kwargs: Any) -> Settings:
        data["workers"] = data["workers"] or 2 * (os.cpu_count() or 1)
        data["default_rules_version"] = data["default_rules_version"] or None
        data["public_base_url"] = data["public_base_url"].rstrip("/")
        data["mappings_dir"] = Path(data["mappings_dir"])
        data["auth_jwks_file"] = Path(data["auth_jwks_file"]) if data["auth_jwks_file"] else None
        data["cds_issuers_file"] = Path(data["cds_issuers_file"]) if data["cds_issuers_file"] else None
        data["cds_fhir_servers"] = tuple(u.rstrip("/") for u in data["cds_fhir_servers"])
        data["app_ehr_issuers"] = tuple(u.rstrip("/") for u in data["app_ehr_issuers"])
        data["cds_auth_enabled"] = bool(data["cds_auth_enabled"])
        data["app_assets_dir"] = Path(data["app_assets_dir"])
        data["data_dir"] = Path(data["data_dir"])
        data["signoff_dir"] = Path(data["signoff_dir"])
        data["database_url"] = (_database_url(data["database_url"]) if data["database_url"]
                                else f"sqlite:///{(data['data_dir'] / 'legtriage.sqlite3').resolve()}")
        return Settings(**data)


_SCHEMA = SettingsSchema()
SETTING_NAMES = tuple(f.name for f in dc_fields(Settings))


def load_settings(environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read LEGTRIAGE_* variables (plus explicit overrides) into validated Settings."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            raw[key[len(ENV_PREFIX):].lower()] = value.strip()
    raw = {k: v for k, v in raw.items() if v != ""}
    raw.update(overrides or {})
    for name in ("mappings_dir", "auth_jwks_file", "cds_issuers_file", "app_assets_dir", "data_dir",
                 "signoff_dir"):
        if isinstance(raw.get(name), Path):
            raw[name] = str(raw[name])
    try:
        return _SCHEMA.load(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{ENV_PREFIX}{name.upper()}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
            for name, msgs in sorted(err.messages.items())
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
