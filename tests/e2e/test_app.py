"""The web app's server side: pages, files, security headers, settings and auth (no browser here;
tests/e2e/browser/test_app.py drives the page in Chromium)."""
from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import pytest

from service.api.app import VENDOR_FILES
from service.config import ConfigError, load_settings

EHR = "https://ehr.example.org/fhir"


class Scripts(HTMLParser):
    """Every <script> of a page, and every element's ngCspNonce."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self.nonces: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "ngcspnonce" in attrs:
            self.nonces.append(attrs["ngcspnonce"])
        if tag == "script":
            self.scripts.append({**attrs, "text": ""})
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1]["text"] += data


def fetch(client, path: str):
    """GET, read and close (a file response keeps its file open until closed)."""
    resp = client.get(path)
    resp.get_data()
    resp.close()
    return resp


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def parse(html: str) -> Scripts:
    parser = Scripts()
    parser.feed(html)
    return parser


def csp(resp) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else ""
            for d in (p.strip() for p in resp.headers["Content-Security-Policy"].split(";"))}


@pytest.fixture(scope="module")
def smart_client(make_app):
    return make_app(smart_client_id="legtriage-app", app_ehr_issuers=[EHR]).test_client()


def test_the_page_embeds_the_questionnaire_and_runs_no_inline_script(client):
    resp = client.get("/app/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = parse(resp.get_data(as_text=True))
    inline = [s for s in page.scripts if "src" not in s]
    assert [s.get("type") for s in inline] == ["application/json"]  # data, never executed
    config = json.loads(inline[0]["text"])
    assert config["questionnaire"]["url"] == "http://legtriage.example.org/fhir/Questionnaire/leg-numbness"
    assert set(config["dispositions"]) == {"emergency", "urgent", "routine", "self-care"}
    assert config["safetyNet"]["1.0.0"] and config["authEnabled"] is False
    sources = [s["src"] for s in page.scripts if "src" in s]
    assert all(not re.match(r"^(https?:)?//", src) for src in sources), sources  # no CDN
    for src in sources:
        assert fetch(client, "/app/" + src).status_code == 200, src


def test_content_security_policy(client):
    first, second = client.get("/app/"), client.get("/app/")
    policy = csp(first)
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in first.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in first.headers["Content-Security-Policy"]
    assert policy["default-src"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'self'" and first.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert policy["connect-src"] == "'self'"  # no blanket https: the EHRs' origins come from the allow-list
    # LHC-Forms (Angular) adds <style> elements with the nonce it finds on an ngCspNonce element.
    nonce = parse(first.get_data(as_text=True)).nonces
    assert len(nonce) == 1 and policy["style-src"] == f"'self' 'nonce-{nonce[0]}'"
    assert csp(second)["style-src"] != policy["style-src"]  # a new nonce per response
    assert first.headers["Referrer-Policy"] == "no-referrer"
    assert first.headers["Cache-Control"] == "no-store"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert "nonce" not in csp(fetch(client, "/app/assets/app.js"))["style-src"]


def test_frame_ancestors_and_connect_src_are_settings(make_app):
    app = make_app(app_frame_ancestors="'self' https://ehr.example.org",
                   app_ehr_issuers=[EHR, "https://ehr.example.org:8443/r4/", "http://127.0.0.1:9/fhir"],
                   app_connect_src="https://ehr.example.org https://auth.example.org")
    resp = app.test_client().get("/app/")
    policy = csp(resp)
    assert policy["frame-ancestors"] == "'self' https://ehr.example.org"
    # the allow-listed EHRs' origins (each once), then the token endpoints the operator adds
    assert policy["connect-src"] == ("'self' https://ehr.example.org https://ehr.example.org:8443 "
                                     "http://127.0.0.1:9 https://auth.example.org")
    assert "X-Frame-Options" not in resp.headers  # it cannot name another origin: CSP says it


@pytest.mark.parametrize("name, value", [
    ("LEGTRIAGE_APP_FRAME_ANCESTORS", "'self'; script-src *"),
    ("LEGTRIAGE_APP_FRAME_ANCESTORS", "'none' https://ehr.example.org"),
    ("LEGTRIAGE_APP_CONNECT_SRC", "'unsafe-inline'"),
    ("LEGTRIAGE_APP_CONNECT_SRC", "https:"),  # any https origin: name the token endpoints
    ("LEGTRIAGE_APP_CONNECT_SRC", "https://*.example.org"),
    ("LEGTRIAGE_APP_CONNECT_SRC", "*"),
    ("LEGTRIAGE_APP_EHR_ISSUERS", "http://ehr.example.org/fhir"),  # the token would travel in cleartext
    ("LEGTRIAGE_APP_EHR_ISSUERS", "https://ehr.example.org/fhir?x=1"),
    ("LEGTRIAGE_APP_EHR_ISSUERS", "https://u:p@ehr.example.org/fhir"),
    ("LEGTRIAGE_SMART_CLIENT_ID", "two words"),
])
def test_bad_app_settings_stop_the_start(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_app_without_slash_redirects_keeping_the_query(client):
    resp = client.get("/app?code=abc&state=xyz")
    assert resp.status_code == 308 and resp.headers["Location"] == "app/?code=abc&state=xyz"


def test_a_client_id_needs_the_ehr_allow_list():
    with pytest.raises(ConfigError, match="LEGTRIAGE_APP_EHR_ISSUERS: required with LEGTRIAGE_SMART_CLIENT_ID"):
        load_settings({"LEGTRIAGE_SMART_CLIENT_ID": "legtriage-app"})
    s = load_settings({"LEGTRIAGE_SMART_CLIENT_ID": "x",
                       "LEGTRIAGE_APP_EHR_ISSUERS": "https://ehr.example.org/fhir/, http://localhost:9/fhir"})
    assert s.app_ehr_issuers == ("https://ehr.example.org/fhir", "http://localhost:9/fhir")


@pytest.mark.parametrize("iss", ["https://evil.example.org/fhir", "http://ehr.example.org/fhir",
                                 "https://ehr.example.org/fhir/other", "https://ehr.example.org",
                                 "https://ehr.example.org.evil.example/fhir", "https://EHR.example.org/fhir"])
def test_launch_from_an_ehr_not_on_the_allow_list_is_a_400_page(smart_client, iss):
    resp = smart_client.get("/app/launch", query_string={"iss": iss, "launch": "abc"})
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    body = text(resp)
    assert "not one this service is set up for" in body
    assert "Traceback" not in body and "legtriage-app" not in body  # no client id handed to it
    assert csp(resp)["connect-src"] == "'self' https://ehr.example.org"
    ok = smart_client.get("/app/launch", query_string={"iss": EHR + "/", "launch": "abc"})
    assert ok.status_code == 200  # a trailing slash is the same base


def test_launch_needs_a_client_id(client):
    resp = client.get("/app/launch?iss=https://ehr.example.org/fhir&launch=abc")
    assert resp.status_code == 404
    assert "LEGTRIAGE_SMART_CLIENT_ID" in resp.get_data(as_text=True)


@pytest.mark.parametrize("query", ["", "?launch=abc", "?iss=https://ehr.example.org/fhir",
                                   "?iss=javascript:alert(1)&launch=abc",
                                   "?iss=https://user@ehr.example.org/fhir&launch=abc"])
def test_launch_without_a_usable_iss_and_launch_says_to_open_it_from_the_ehr(smart_client, query):
    resp = smart_client.get("/app/launch" + query)
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    assert "Open the form from the patient's record in the EHR" in text(resp)


def test_launch_page_hands_fhirclient_the_client_id_and_scopes(smart_client):
    resp = smart_client.get("/app/launch?iss=https://ehr.example.org/fhir&launch=abc")
    assert resp.status_code == 200
    page = parse(resp.get_data(as_text=True))
    config = json.loads(next(s["text"] for s in page.scripts if s.get("type") == "application/json"))
    assert config["clientId"] == "legtriage-app" and config["redirectUri"] == "./"
    assert set(config["scope"].split()) >= {"launch", "patient/Patient.r",
                                            "patient/QuestionnaireResponse.c", "patient/ServiceRequest.c"}
    assert [s["src"] for s in page.scripts if "src" in s] == [
        "assets/vendor/fhirclient/fhir-client.min.js", "assets/launch.js"]
    assert "https://ehr.example.org" not in resp.get_data(as_text=True)  # iss is read by fhirclient


def test_missing_form_files_are_said_in_plain_words(tmp_path, caplog, make_app):
    client = make_app(app_assets_dir=str(tmp_path)).test_client()
    with caplog.at_level("WARNING", logger="service.api.app"):
        resp = client.get("/app/")
    assert resp.status_code == 503 and resp.mimetype == "text/html"
    page = text(resp)
    assert "The form cannot be shown" in page and "scripts/lib/web-assets.sh" in page
    # the page is open to anyone: the server's folder is in its log, not on the page (issue 23, item 19)
    assert str(tmp_path) not in resp.get_data(as_text=True) and str(tmp_path) in caplog.text
    for name in VENDOR_FILES:
        assert name in page
    assert fetch(client, "/app/assets/vendor/lforms/lhc-forms.js").status_code == 404
    launch = make_app(app_assets_dir=str(tmp_path), smart_client_id="x",
                      app_ehr_issuers=EHR).test_client().get(
        "/app/launch?iss=https://ehr.example.org/fhir&launch=abc")
    assert launch.status_code == 503 and "The form cannot be shown" in text(launch)


@pytest.mark.parametrize("path", ["/app/assets/../config.py", "/app/assets/vendor/lforms/index.html",
                                  "/app/assets/vendor/../../service/config.py", "/app/assets/nothing.js",
                                  "/app/assets/static/app.js"])
def test_only_the_listed_files_are_served(client, path):
    assert fetch(client, path).status_code == 404


def test_asset_types(client):
    assert fetch(client, "/app/assets/app.js").mimetype == "text/javascript"
    assert fetch(client, "/app/assets/app.css").mimetype == "text/css"
    vendor = fetch(client, "/app/assets/vendor/lforms/lhc-forms.js")
    assert vendor.mimetype == "text/javascript" and "max-age=86400" in vendor.headers["Cache-Control"]


def test_with_auth_on_the_page_is_open_and_triage_is_not(tmp_path, make_app):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    (tmp_path / "jwks.json").write_text(json.dumps(
        {"keys": [{**jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True), "kid": "k", "use": "sig"}]}))
    client = make_app(auth_enabled=True, auth_jwks_file=str(tmp_path / "jwks.json"),
                      auth_issuers=["https://ehr.example.org"],
                      auth_audience=["https://legtriage.example.org"], cds_auth_enabled=False,
                      public_base_url="https://legtriage.example.org", smart_client_id="legtriage-app",
                      app_ehr_issuers=EHR).test_client()
    assert client.get("/app/").status_code == 200
    page = parse(client.get("/app/").get_data(as_text=True))
    assert json.loads(next(s["text"] for s in page.scripts if "src" not in s))["authEnabled"] is True
    assert client.get("/app/launch?iss=https://ehr.example.org/fhir&launch=a").status_code == 200
    assert fetch(client, "/app/assets/app.js").status_code == 200
    assert client.post("/fhir/QuestionnaireResponse/$triage", json={}).status_code == 401


def test_the_service_needs_an_audience_of_its_own(tmp_path):
    """An access token the EHR issued for its own FHIR server (for any app) is not one for this service."""
    env = {"LEGTRIAGE_AUTH_ENABLED": "true", "LEGTRIAGE_AUTH_JWKS_URL": "https://ehr.example.org/jwks",
           "LEGTRIAGE_AUTH_ISSUERS": "https://ehr.example.org", "LEGTRIAGE_CDS_AUTH_ENABLED": "false",
           "LEGTRIAGE_SMART_CLIENT_ID": "legtriage-app", "LEGTRIAGE_APP_EHR_ISSUERS": EHR}
    for audience in (EHR, EHR + "/", "https://legtriage.example.org," + EHR):
        with pytest.raises(ConfigError, match="LEGTRIAGE_AUTH_AUDIENCE: names an EHR's FHIR base"):
            load_settings({**env, "LEGTRIAGE_AUTH_AUDIENCE": audience})
    with pytest.raises(ConfigError, match="LEGTRIAGE_AUTH_AUDIENCE"):
        load_settings({**env, "LEGTRIAGE_APP_EHR_ISSUERS": "", "LEGTRIAGE_SMART_CLIENT_ID": "",
                       "LEGTRIAGE_CDS_FHIR_SERVERS": EHR, "LEGTRIAGE_AUTH_AUDIENCE": EHR})
    assert load_settings({**env, "LEGTRIAGE_AUTH_AUDIENCE": "https://legtriage.example.org"}).auth_audience
