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
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

ENV_PREFIX = "LEGTRIAGE_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


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

    @post_load
    def make_settings(self, data: dict[str, Any], **kwargs: Any) -> Settings:
        data["workers"] = data["workers"] or 2 * (os.cpu_count() or 1)
        data["default_rules_version"] = data["default_rules_version"] or None
        data["public_base_url"] = data["public_base_url"].rstrip("/")
        data["mappings_dir"] = Path(data["mappings_dir"])
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
            name = key[len(ENV_PREFIX):].lower()
            if name.startswith("auth_") or name.startswith("cors_"):
                continue  # read by their own modules
            raw[name] = value.strip()
    raw = {k: v for k, v in raw.items() if v != ""}
    raw.update(overrides or {})
    if isinstance(raw.get("mappings_dir"), Path):
        raw["mappings_dir"] = str(raw["mappings_dir"])
    try:
        return _SCHEMA.load(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{ENV_PREFIX}{name.upper()}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
            for name, msgs in sorted(err.messages.items())
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
