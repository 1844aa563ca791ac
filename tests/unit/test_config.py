"""Settings: read once from LEGTRIAGE_* variables, with clear messages on bad values."""
from __future__ import annotations

from pathlib import Path

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
    # authentication: keys, issuers and audience when it is on; asymmetric algorithms only
    ({"LEGTRIAGE_AUTH_ENABLED": "true"}, "LEGTRIAGE_AUTH_JWKS_FILE"),
    ({"LEGTRIAGE_AUTH_ENABLED": "true", "LEGTRIAGE_AUTH_JWKS_URL": "http://127.0.0.1:9/j"},
     "LEGTRIAGE_AUTH_ISSUERS"),
    ({"LEGTRIAGE_AUTH_ENABLED": "true", "LEGTRIAGE_AUTH_JWKS_URL": "http://127.0.0.1:9/j",
      "LEGTRIAGE_AUTH_ISSUERS": "x"}, "LEGTRIAGE_AUTH_AUDIENCE"),
    ({"LEGTRIAGE_AUTH_ALGORITHMS": "RS384,HS256"}, "LEGTRIAGE_AUTH_ALGORITHMS"),
    ({"LEGTRIAGE_AUTH_ALGORITHMS": "none"}, "LEGTRIAGE_AUTH_ALGORITHMS"),
    ({"LEGTRIAGE_AUTH_JWKS_URL": "file:///etc/passwd"}, "LEGTRIAGE_AUTH_JWKS_URL"),
    ({"LEGTRIAGE_AUTH_ENABLED": "maybe"}, "LEGTRIAGE_AUTH_ENABLED"),
    # CDS Hooks
    ({"LEGTRIAGE_CDS_FHIR_SERVERS": "ftp://ehr.example.org"}, "LEGTRIAGE_CDS_FHIR_SERVERS"),
    ({"LEGTRIAGE_CDS_FHIR_SERVERS": "https://user:pw@ehr.example.org"}, "LEGTRIAGE_CDS_FHIR_SERVERS"),
    ({"LEGTRIAGE_CDS_FRESHNESS_HOURS": "0"}, "LEGTRIAGE_CDS_FRESHNESS_HOURS"),
    ({"LEGTRIAGE_CDS_AUTH_ENABLED": "maybe"}, "LEGTRIAGE_CDS_AUTH_ENABLED"),
    ({"LEGTRIAGE_CDS_DISCOVERY_AUTH": "true"}, "LEGTRIAGE_CDS_DISCOVERY_AUTH"),
    # cleartext where tokens and keys travel (loopback aside)
    ({"LEGTRIAGE_CDS_FHIR_SERVERS": "https://ehr.example.org/fhir,http://ehr.example.org/fhir"},
     "LEGTRIAGE_CDS_FHIR_SERVERS: http:// would carry tokens or keys in cleartext"),
    ({"LEGTRIAGE_CDS_FHIR_SERVERS": "http://127.0.0.1.example.org/fhir"}, "LEGTRIAGE_CDS_FHIR_SERVERS"),
    ({"LEGTRIAGE_AUTH_JWKS_URL": "http://keys.example.org/jwks.json"}, "LEGTRIAGE_AUTH_JWKS_URL: http://"),
    ({"LEGTRIAGE_CDS_AUTH_ENABLED": "true", "LEGTRIAGE_CDS_ISSUERS_FILE": "/x.json",
      "LEGTRIAGE_PUBLIC_BASE_URL": "http://legtriage.clinic.example"}, "LEGTRIAGE_PUBLIC_BASE_URL: http://"),
])
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_unknown_default_rules_version_fails_at_start(make_app):
    with pytest.raises(ConfigError, match="LEGTRIAGE_DEFAULT_RULES_VERSION"):
        make_app(default_rules_version="0.0.1")


# ---- each setting declared once: the README's tables come from the declarations ------------------

def test_the_readme_tables_are_the_declared_settings():
    from service.config import AUTH, SERVICE, settings_table
    from tests.support import ROOT

    readme = (ROOT / "README.md").read_text()
    for table in (SERVICE, AUTH):
        assert settings_table(table) in readme, f"README: paste `legtriage settings` ({table} table)"


def test_every_setting_is_in_one_table_and_legtriage_settings_prints_them():
    from click.testing import CliRunner

    from service.cli import cli
    from service.config import AUTH, ENV_PREFIX, SERVICE, SETTING_NAMES, settings_table

    tables = settings_table(SERVICE) + settings_table(AUTH)
    for name in SETTING_NAMES:
        assert tables.count(f"| `{ENV_PREFIX}{name.upper()}` |") == 1, name
    result = CliRunner().invoke(cli, ["settings"])
    assert result.exit_code == 0 and result.stdout == settings_table(SERVICE) + "\n" + settings_table(AUTH)


def test_an_override_may_be_a_path_and_paths_come_back_as_paths(tmp_path):
    s = load_settings({"LEGTRIAGE_AUTH_JWKS_FILE": "/etc/jwks.json"}, {"data_dir": tmp_path})
    assert s.data_dir == tmp_path and s.auth_jwks_file == Path("/etc/jwks.json")
    assert s.database_url == f"sqlite:///{(tmp_path / 'legtriage.sqlite3').resolve()}"
