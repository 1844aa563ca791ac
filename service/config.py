"""Settings from LEGTRIAGE_* environment variables, declared once, validated once at start.

Each setting is declared once, in ``Settings`` below: its type, its field (default and checks), and
its line in the README's tables (``settings_table``; ``legtriage settings`` prints them and a test
holds the README to them). The variable is LEGTRIAGE_ and the attribute's name in capitals; any
other LEGTRIAGE_* variable stops the start, so a misspelt setting is never silently ignored.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields as dc_fields
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


class PathField(fields.String):
    """A folder or file: a string (environment) or a path (overrides); a Path once loaded."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(os.fspath(value) if isinstance(value, os.PathLike) else value,
                                    attr, data, **kwargs)


SERVICE, AUTH = "service", "auth"  # the README's two tables: "Configuration", and "Security"'s auth table


def setting(kind: fields.Field, meaning: str, default: str | None = None, table: str = SERVICE) -> Any:
    """One setting: its field (type, default, checks) and its README line (`default`: as said there,
    when the field's own default does not say it well)."""
    return field(metadata={"field": kind, "meaning": meaning, "default": default, "table": table})


@dataclass(frozen=True)
class Settings:
    """The service's settings, each declared once: type, field (default, checks), README line."""

    host: str = setting(
        fields.String(load_default="127.0.0.1", validate=validate.Length(min=1)), "address to bind",
        "`127.0.0.1` (the container image: `0.0.0.0`)")
    port: int = setting(
        fields.Integer(load_default=8080, validate=validate.Range(1, 65535)), "port to bind")
    workers: int = setting(
        fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 64)),
        "gunicorn worker processes", "CPU count")
    log_level: str = setting(
        fields.String(load_default="info", validate=validate.OneOf(LOG_LEVELS)),
        ", ".join(f"`{level}`" for level in LOG_LEVELS))
    max_body_bytes: int = setting(
        fields.Integer(load_default=1_048_576, validate=validate.Range(1024, 64 * 1_048_576)),
        "larger request bodies get 413")
    default_rules_version: str | None = setting(
        fields.String(load_default=None, allow_none=True),
        "rule version used when a caller names none", "newest active")
    public_base_url: str = setting(
        fields.Url(load_default="http://localhost:8080", require_tld=False, schemes={"http", "https"}),
        "where callers reach the service (CapabilityStatement)")
    mappings_dir: Path = setting(
        PathField(load_default=str(PROJECT_ROOT / "mappings")),
        "Questionnaire, fact map, terminology", "`mappings/` of the checkout")
    auth_enabled: bool = setting(
        fields.Boolean(load_default=False),
        "`true`: require a bearer JWT on `/fhir` (but `/fhir/metadata`); not on `/cds-services`", table=AUTH)
    auth_jwks_file: Path | None = setting(
        PathField(load_default=None, allow_none=True),
        "the trusted public signing keys, a JWKS file; re-read when it changes; emptied, deleted or "
        "invalid, it trusts no key until valid again (revocation)", table=AUTH)
    auth_jwks_url: str | None = setting(
        fields.Url(load_default=None, allow_none=True, require_tld=False, schemes={"http", "https"}),
        "or a JWKS URL (`https://…`), fetched with a 5 s timeout and cached 5 minutes; an answer "
        "that is an empty set trusts no key until valid again", table=AUTH)
    auth_issuers: tuple[str, ...] = setting(
        CommaList(load_default=()), "comma-separated accepted `iss` values, e.g. `https://ehr.example.org`",
        "none (required with auth)", table=AUTH)
    auth_audience: tuple[str, ...] = setting(
        CommaList(load_default=()),
        "comma-separated accepted `aud` values, e.g. `https://legtriage.example.org`",
        "none (required with auth)", table=AUTH)
    auth_algorithms: tuple[str, ...] = setting(
        CommaList(load_default=("RS384", "ES384", "RS256"),
                  validate=[validate.Length(min=1), validate.ContainsOnly(AUTH_ALGORITHMS)]),
        "accepted signature algorithms; asymmetric only: `none` and HMAC are never accepted", table=AUTH)
    auth_leeway_seconds: int = setting(
        fields.Integer(load_default=30, validate=validate.Range(0, 300)),
        "clock skew allowed on `exp`, `nbf`, `iat`", table=AUTH)
    auth_jti_window_seconds: int = setting(
        fields.Integer(load_default=0, validate=validate.Range(0, 86400)),
        "above 0 every token needs a `jti`, accepted once, and must expire within the window",
        "`0` (off)", table=AUTH)
    auth_max_lifetime_seconds: int = setting(
        fields.Integer(load_default=86400, validate=validate.Range(0, 31_536_000)),
        "a token whose `exp` is further away is refused; `0`: no limit", table=AUTH)
    cors_origins: tuple[str, ...] = setting(
        CommaList(load_default=()),
        "comma-separated browser origins (or `*`) that may call the API and send `Authorization`",
        "none (CORS off)", table=AUTH)
    # None: not set either way; with the FHIR API's auth on that refuses the start
    cds_auth_enabled: bool = setting(
        fields.Boolean(load_default=None, allow_none=True),
        "`true`: every CDS Hooks call needs the CDS client's JWT",
        "`false`; must be set when `LEGTRIAGE_AUTH_ENABLED=true`")
    cds_issuers_file: Path | None = setting(
        PathField(load_default=None, allow_none=True),
        "JSON list of trusted CDS clients: `iss` with `jwks_file`, `jwks_url` and/or allow-listed `jku` "
        "URLs, optional `tenants`")
    cds_discovery_auth: bool = setting(
        fields.Boolean(load_default=False), "with CDS auth on, `GET /cds-services` needs the JWT too")
    cds_fhir_servers: tuple[str, ...] = setting(
        CommaList(load_default=()),
        "comma-separated `fhirServer` base URLs the service may query when a prefetch is missing",
        "none (never fetch)")
    cds_freshness_hours: int = setting(
        fields.Integer(load_default=72, validate=validate.Range(1, 24 * 365)),
        "how old a completed QuestionnaireResponse may be to give a card")
    cds_prompt_in_progress: bool = setting(
        fields.Boolean(load_default=False),
        "an in-progress questionnaire gets an info card linking to the web app (`/app/launch`)")
    smart_client_id: str | None = setting(
        fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^[\x21-\x7e]{1,255}\Z")),
        "the web app's client id at the EHR's authorization server", "(none: no EHR launch)")
    app_ehr_issuers: tuple[str, ...] = setting(
        CommaList(load_default=()),
        "comma-separated FHIR base URLs (`iss`) `/app/launch` accepts (https, loopback aside); any other "
        "is a 400 page", "none; required with the client id")
    app_frame_ancestors: tuple[str, ...] = setting(
        CspSources(load_default=("'self'",), validate=validate.Length(min=1)),
        "who may embed `/app/` in a frame (CSP `frame-ancestors`), e.g. `'self' https://ehr.example.org`")
    app_connect_src: tuple[str, ...] = setting(
        CspSources(load_default=(), hosts_only=True),
        "where `/app/` may connect besides this service and the EHR issuers' origins (CSP `connect-src`): "
        "token endpoints on other origins; no `https:` or wildcards")
    app_assets_dir: Path = setting(
        PathField(load_default=str(PROJECT_ROOT / "web" / "dist")),
        "the LHC-Forms and fhirclient.js files that `scripts/lib/web-assets.sh` installs",
        "`web/dist/` of the checkout")
    data_dir: Path = setting(
        PathField(load_default=str(PROJECT_ROOT / "var"), validate=validate.Length(min=1)),
        "where the embedded SQLite records store lives",
        "`var/` of the checkout (the image: `/var/lib/legtriage`, a volume)")
    database_url: str = setting(  # the SQLAlchemy URL: sqlite:///… or postgresql+psycopg://…
        fields.String(load_default=None, allow_none=True),
        "`postgresql://user:password@host:5432/db` for several replicas (or `sqlite:///path`)",
        "SQLite in the data dir")
    audit_retention_days: int = setting(
        fields.Integer(load_default=2190, validate=validate.Range(1, 36500)),
        "audit events, CDS cards and feedback older than this go at the next `purge`")
    audit_open_lab: bool = setting(
        fields.Boolean(load_default=False),
        "`true`: `GET /fhir/AuditEvent` open while auth is off (a lab only)")
    signoff_dir: Path = setting(
        PathField(load_default=str(PROJECT_ROOT / "mappings" / "signoff"), validate=validate.Length(min=1)),
        "the hospital's clinical sign-off files, one per rule version (see \"Clinical safety\")",
        "`mappings/signoff/` of the checkout (shipped empty)")
    require_signoff: bool = setting(
        fields.Boolean(load_default=False),
        "`true`: only signed-off rule versions run: the service refuses to start with an unsigned default, "
        "and a pinned unsigned version is a 422")
    records_enabled: bool = setting(
        fields.Boolean(load_default=True),
        "`false` records nothing (for measuring what recording costs; never in production)")


class _SettingsChecks(Schema):
    """What concerns several settings at once, and the values made from what was read."""

    class Meta:
        unknown = RAISE


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
        for name, kind in self.fields.items():
            if isinstance(kind, PathField) and data[name] is not None:
                data[name] = Path(data[name])
        data["workers"] = data["workers"] or (os.cpu_count() or 1)  # gevent: one per CPU
        data["default_rules_version"] = data["default_rules_version"] or None
        data["public_base_url"] = data["public_base_url"].rstrip("/")
        data["cds_fhir_servers"] = tuple(u.rstrip("/") for u in data["cds_fhir_servers"])
        data["app_ehr_issuers"] = tuple(u.rstrip("/") for u in data["app_ehr_issuers"])
        data["cds_auth_enabled"] = bool(data["cds_auth_enabled"])
        data["database_url"] = (_database_url(data["database_url"]) if data["database_url"]
                                else f"sqlite:///{_embedded_database(data['data_dir'])}")
        return Settings(**data)


def _embedded_database(data_dir: Path) -> Path:
    """The embedded records store's SQLite file in LEGTRIAGE_DATA_DIR."""
    return (data_dir / "legtriage.sqlite3").resolve()


def embedded_database(settings: Settings) -> Path | None:
    """The embedded SQLite file when the records go there (no LEGTRIAGE_DATABASE_URL), else None.
    Known without SQLAlchemy, so that a first start can launch its migration child before loading it."""
    file = _embedded_database(settings.data_dir)
    return file if settings.database_url == f"sqlite:///{file}" else None


SettingsSchema = _SettingsChecks.from_dict({f.name: f.metadata["field"] for f in dc_fields(Settings)},
                                           name="SettingsSchema")
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
    try:
        return _SCHEMA.load(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{ENV_PREFIX}{name.upper()}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
            for name, msgs in sorted(err.messages.items())
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def _shown(value: Any) -> str:
    """A default as the README says it."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        value = ",".join(value)
    return f"`{value}`"


def settings_table(table: str = SERVICE) -> str:
    """The README's table of the settings of `table` (SERVICE or AUTH), in Markdown."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dc_fields(Settings):
        if f.metadata["table"] == table:
            default = f.metadata["default"] or _shown(f.metadata["field"].load_default)
            lines.append(f"| `{ENV_PREFIX}{f.name.upper()}` | {default} | {f.metadata['meaning']} |")
    return "\n".join(lines) + "\n"
