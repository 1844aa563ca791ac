"""Settings: read once from LEGTRIAGE_* variables, with clear messages on bad values."""
from __future__ import annotations

import pytest

from service.config import ConfigError, load_settings


def test_defaults():
    s = load_settings({})
    assert (s.host, s.port, s.log_level, s.max_body_bytes) == ("127.0.0.1", 8080, "info", 1_048_576)
    assert s.workers >= 2 and s.default_rules_version is None


def test_environment_is_read():
    s = load_settings({"LEGTRIAGE_PORT": "9000", "LEGTRIAGE_WORKERS": "3", "LEGTRIAGE_LOG_LEVEL": "debug",
                       "LEGTRIAGE_PUBLIC_BASE_URL": "https://triage.clinic.example/"})
    assert (s.port, s.workers, s.log_level, s.public_base_url) == \
        (9000, 3, "debug", "https://triage.clinic.example")


@pytest.mark.parametrize("env, named", [
    ({"LEGTRIAGE_PORT": "eighty"}, "LEGTRIAGE_PORT"),
    ({"LEGTRIAGE_PORT": "70000"}, "LEGTRIAGE_PORT"),
    ({"LEGTRIAGE_LOG_LEVEL": "loud"}, "LEGTRIAGE_LOG_LEVEL"),
    ({"LEGTRIAGE_MAX_BODY_BYTES": "-1"}, "LEGTRIAGE_MAX_BODY_BYTES"),
    ({"LEGTRIAGE_PUBLIC_BASE_URL": "not a url"}, "LEGTRIAGE_PUBLIC_BASE_URL"),
    ({"LEGTRIAGE_WORKRES": "2"}, "LEGTRIAGE_WORKRES"),
])
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_unknown_default_rules_version_fails_at_start(make_app):
    with pytest.raises(ConfigError, match="LEGTRIAGE_DEFAULT_RULES_VERSION"):
        make_app(default_rules_version="0.0.1")
