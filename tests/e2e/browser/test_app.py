"""The clinician page /app/ and its SMART EHR launch, in real headless Chromium.

A simulated user fills the LHC-Forms form the way a person does (clicks the question's widgets, finds
them by the question texts of the served Questionnaire), presses Triage and reads the result; axe-core
checks the page before and after; only 127.0.0.1 is reachable and every other request is counted
(zero expected). The SMART launch runs against a test-double EHR (tests/e2e/browser/ehr.py) on 127.0.0.1
that checks PKCE S256 and the state, and records what "Save to record" writes.

SCREENSHOT_DIR=docs/img keeps the screenshots used by docs/app.md.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from service.triage.engine import Registry
from tests.e2e.browser.lhc import LhcQuestions
from tests.e2e.browser.ehr import CLIENT_ID, LAUNCH_ID, PATIENT, RunningEhr
from tests.support.servers import gunicorn
from tests.support import ROOT

RULES = Registry().default_version  # the page shows the version that answered
# The service's own audience: the EHR's authorization server names it in the access tokens it issues
# to the app, besides its FHIR base (a token for the EHR alone is not one for this service).
SERVICE_AUDIENCE = "https://legtriage.clinic.example"

pytestmark = pytest.mark.browser

AXE = ROOT / ".cache" / "npm-axe" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")

CASES: dict[str, dict[str, Any]] = {
    # A stroke sign: difficulty speaking, with sudden numbness of the left leg.
    "emergency": {"numbness.side": "left", "numbness.onset": "sudden", "red-flags.speech": True,
                  "red-flags.confusion": False, "history.age": 67},
    # Signs of a clot: one swollen leg with calf pain.
    "urgent": {"numbness.side": "right", "numbness.onset": "gradual",
               "circulation.swelling-one-leg": True, "circulation.calf-pain": True, "history.age": 54},
    # Gradual burning numbness of both feet for months, with diabetes.
    "routine": {"numbness.side": "both", "numbness.onset": "gradual", "numbness.location": ["toes", "sole"],
                "numbness.duration": "months", "numbness.sensations": ["burning"],
                "history.diabetes": "yes", "history.age": 61},
    # A leg that fell asleep in one position and recovered within minutes of moving.
    "self-care": {"numbness.side": "right", "numbness.onset": "sudden", "numbness.duration": "minutes",
                  "numbness.pattern": "positional", "numbness.relieved-by-moving": True,
                  "red-flags.weakness": False, "history.age": 27},
}
WHAT_TO_DO = {"emergency": "call emergency services", "urgent": "within 24 hours",
              "routine": "book an appointment", "self-care": "no visit needed"}


# ---- servers ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ehr():
    running = RunningEhr(extra_audience=(SERVICE_AUDIENCE,))
    yield running.ehr
    running.stop()


def _app_env(ehr, **extra: str) -> dict[str, str]:
    # connect-src follows from the allow-listed EHR (its FHIR base and token endpoint share an origin)
    return {"LEGTRIAGE_LOG_LEVEL": "warning", "LEGTRIAGE_SMART_CLIENT_ID": CLIENT_ID,
            "LEGTRIAGE_APP_EHR_ISSUERS": ehr.fhir_base, **extra}


@pytest.fixture(scope="module")
def app_server(ehr, tmp_path_factory):
    """The service as production builds it (service:create_app()), registered with the EHR."""
    log = tmp_path_factory.mktemp("app-gunicorn") / "gunicorn.log"
    with gunicorn(log, env=_app_env(ehr), workers=1) as server:
        yield server
    assert "eyJ" not in server.log(), "a token reached the service's logs"


@pytest.fixture(scope="module")
def auth_server(ehr, tmp_path_factory):
    """The same with the FHIR API's auth on, trusting the EHR's token signing key."""
    folder = tmp_path_factory.mktemp("app-auth")
    (folder / "jwks.json").write_text(json.dumps({"keys": [ehr.public_jwk]}))
    env = _app_env(ehr, LEGTRIAGE_AUTH_ENABLED="true", LEGTRIAGE_AUTH_JWKS_FILE=str(folder / "jwks.json"),
                   LEGTRIAGE_AUTH_ISSUERS=ehr.issuer, LEGTRIAGE_AUTH_AUDIENCE=SERVICE_AUDIENCE,
                   LEGTRIAGE_CDS_AUTH_ENABLED="false")
    with gunicorn(folder / "gunicorn.log", env=env, workers=1) as server:
        yield server
    assert "eyJ" not in server.log(), "a token reached the service's logs"


@pytest.fixture(scope="module")
def assets_installed():
    from service.api.app import VENDOR_FILES
    from service.config import load_settings

    folder = load_settings({}).app_assets_dir
    missing = [name for name in VENDOR_FILES if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"the web app's files are missing under {folder}: {', '.join(missing)}; run "
                    "scripts/lib/web-assets.sh", pytrace=False)


@pytest.fixture(scope="module")
def axe_installed():
    if not AXE.is_file():
        pytest.fail(f"axe-core missing at {AXE}: run scripts/lib/test-tools.sh", pytrace=False)


# ---- the page as a user sees it -----------------------------------------------------------------

class AppPage(LhcQuestions):
    """/app/ in a browser tab: the questions found by their texts, and what went wrong on the way."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.on("pageerror", lambda err: self.console.append(f"page error: {err}"))
        page.on("console", lambda msg: msg.type == "error" and self.console.append(msg.text))

    def open(self, url: str) -> "AppPage":
        self.page.goto(url)
        self.wait_for_form()
        return self

    def wait_for_form(self) -> None:
        self.page.get_by_role("button", name="Triage", exact=True).wait_for()
        self.page.locator("#triage:enabled").wait_for()  # (wait_for_function's eval meets the CSP)
        config = self.page.evaluate("JSON.parse(document.getElementById('legtriage-config').textContent)")
        self.items = {}

        def index(items: list[dict]) -> None:  # groups (our form) or flat (another hospital's)
            for item in items:
                if item["type"] != "group":
                    self.items[item["linkId"]] = item
                index(item.get("item", []))

        index(config["questionnaire"]["item"])

    def fill(self, answers: dict[str, Any]) -> None:
        for link_id, value in answers.items():
            self.answer(link_id, value)
        self.page.locator("header h1").click()  # like clicking outside: closes an open list

    def triage(self):
        self.page.get_by_role("button", name="Triage", exact=True).click()

    @property
    def result(self):
        return self.page.locator("#result")

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "Refused to" in m]


def axe_run(page) -> tuple[dict[str, list[dict]], int]:
    """axe-core's violations by impact, and how many of its rules passed. axe is evaluated through
    the DevTools protocol, which the page's CSP does not govern: no inline script is allowed for it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found, passed = page.evaluate("""async () => {
        const r = await axe.run(document);
        return [r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help,
                                        where: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary)})),
                r.passes.length];
    }""")
    by_impact: dict[str, list[dict]] = {}
    for v in found:
        by_impact.setdefault(v["impact"] or "none", []).append(v)
    return by_impact, passed


def assert_accessible(page, when: str) -> None:
    found, passed = axe_run(page)
    counts = {impact: len(v) for impact, v in sorted(found.items())}
    print(f"\naxe-core {when}: {passed} rules passed; violations by impact {counts or '{}'}: "
          f"{[(v['id'], v['impact'], v['nodes']) for vs in found.values() for v in vs]}")
    serious = [v for impact in SERIOUS for v in found.get(impact, [])]
    assert serious == [], f"axe-core {when}: {serious}"


@pytest.fixture()
def app_page(offline, axe_installed, assets_installed):
    offline.context.set_default_timeout(20_000)
    page = offline.context.new_page()
    page.set_viewport_size({"width": 1000, "height": 800})
    yield AppPage(page)
    assert offline.escaped == [], f"requests left 127.0.0.1: {offline.escaped}"


# ---- the page on its own ------------------------------------------------------------------------

NEURO_INTAKE = "http://clinic.example.org/fhir/Questionnaire/neuro-intake"


def test_the_page_renders_another_hospitals_form_and_triages_it(app_page, app_server):
    """/app/?questionnaire=… renders a mapped foreign form (issue 15); its result names what it did not ask."""
    page = app_page.open(app_server.base + "/app/?questionnaire=" + NEURO_INTAKE).page
    labels = page.locator("lhc-item.lhc-item-question .lhc-de-label .question").all_inner_texts()
    assert labels == [item["text"] for item in app_page.items.values()]
    assert "side" in app_page.items and "onset-sudden" in app_page.items
    app_page.fill({"side": "7771000", "onset-sudden": "LA33-6", "face-arm": "LA33-6"})
    with page.expect_response(lambda r: r.url.endswith("/$triage")) as answer:
        app_page.triage()
    assert answer.value.status == 200
    sent = json.loads(answer.value.request.post_data)
    assert sent["questionnaire"].split("|")[0] == NEURO_INTAKE
    banner = app_page.result.locator(".banner")
    banner.wait_for()
    assert banner.get_attribute("data-disposition") == "emergency"
    text = app_page.result.inner_text()
    assert "unknown, not absent" in text and "Sudden, severe headache" in text
    assert_accessible(page, "after triage of another hospital's form")
    assert app_page.console == []


def test_an_unknown_questionnaire_is_a_404_page(app_server):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(app_server.base + "/app/?questionnaire=http://example.org/other", timeout=5)
    assert err.value.code == 404 and "does not triage that questionnaire" in err.value.read().decode()

def test_the_form_shows_every_question_and_passes_axe(app_page, app_server, screenshot):
    page = app_page.open(app_server.base + "/app/").page
    labels = page.locator("lhc-item.lhc-item-question .lhc-de-label .question").all_inner_texts()
    assert labels == [item["text"] for item in app_page.items.values()]
    assert page.get_by_role("button", name="Triage", exact=True).is_enabled()
    assert page.get_by_role("button", name="Save to record").count() == 0  # not launched from an EHR
    assert_accessible(page, "before triage")
    screenshot(page, "app-form")
    assert app_page.console == []


@pytest.mark.parametrize("case", CASES)
def test_a_user_fills_the_form_and_reads_the_result(app_page, app_server, case, screenshot):
    page = app_page.open(app_server.base + "/app/").page
    app_page.fill(CASES[case])
    with page.expect_response(lambda r: r.url.endswith("/$triage")) as answer:
        app_page.triage()
    assert answer.value.status == 200
    result = app_page.result
    banner = result.locator(".banner")
    banner.wait_for()
    # The disposition in words (not colour alone), and what to do now.
    assert re.search(rf"\b{re.escape(case)}\b", banner.inner_text(), re.I), banner.inner_text()
    assert WHAT_TO_DO[case] in banner.inner_text().lower()
    assert banner.get_attribute("data-disposition") == case
    assert f"Rules: Leg numbness triage rules {RULES}" in result.locator(".rules-version").inner_text()
    safety = result.locator(".safety-net")
    assert "Call emergency services at once" in safety.inner_text()

    proposals = result.get_by_role("checkbox")
    if case == "self-care":
        assert proposals.count() == 0
        assert "Change position, stand up or walk around" in result.locator(".advice").inner_text()
    else:
        assert proposals.count() >= 1
        first = proposals.first
        first.check()  # a clinician ticks what they accept
        assert first.is_checked()
        assert result.locator(".proposal .priority").first.inner_text() in (
            "Immediately (stat)", "Urgent", "Routine")
        causes = result.locator(".cause")
        assert causes.count() >= 1
        source = causes.first.locator("details").first
        quoted = source.locator("blockquote")
        assert not quoted.is_visible()  # the source passage opens on request
        source.locator("summary").click()
        assert quoted.is_visible() and len(quoted.inner_text()) > 20
    assert_accessible(page, f"after triage ({case})")
    screenshot(result, f"app-result-{case}")
    assert app_page.console == []


def test_service_errors_show_next_to_the_question_they_concern(app_page, app_server, screenshot):
    page = app_page.open(app_server.base + "/app/").page
    app_page.fill({"numbness.side": "both", "red-flags.weakness": True})  # onset forgotten
    with page.expect_response(lambda r: r.url.endswith("/$triage")) as answer:
        app_page.triage()
    assert answer.value.status == 422
    onset = app_page.question("numbness.onset")
    assert "Please answer this question" in onset.locator(".item-error").inner_text()
    assert app_page.question("numbness.side").locator(".item-error").count() == 0
    summary = page.locator("#errors")
    assert "How did the numbness start?" in summary.inner_text()
    assert not app_page.result.is_visible()
    onset.scroll_into_view_if_needed()
    screenshot(page, "app-error")
    # Then the user answers it and the same form is triaged.
    app_page.fill({"numbness.onset": "sudden"})
    app_page.triage()
    app_page.result.locator(".banner").wait_for()
    assert page.locator(".item-error").count() == 0
    assert [m for m in app_page.console if "status of 422" not in m] == []


def test_the_result_prints_without_buttons(app_page, app_server):
    page = app_page.open(app_server.base + "/app/").page
    app_page.fill(CASES["urgent"])
    app_page.triage()
    app_page.result.locator(".banner").wait_for()
    page.emulate_media(media="print")
    assert not page.get_by_role("button", name="Triage").is_visible()
    assert not page.get_by_role("button", name="Print").is_visible()
    assert app_page.result.locator(".banner").is_visible()
    border = app_page.result.locator(".banner").evaluate("b => getComputedStyle(b).borderTopColor")
    assert border == "rgb(0, 0, 0)"  # on paper the disposition stands out without colour


# ---- the SMART EHR launch -----------------------------------------------------------------------

def launch(app_page: AppPage, server, ehr) -> AppPage:
    app_page.page.goto(f"{server.base}/app/launch?iss={ehr.fhir_base}&launch={LAUNCH_ID}")
    app_page.page.wait_for_url(re.compile(r"/app/\?code="), timeout=20_000)
    app_page.wait_for_form()
    return app_page


def test_ehr_launch_then_save_to_record_writes_one_transaction(app_page, app_server, ehr, screenshot):
    before = len(ehr.transactions)
    page = launch(app_page, app_server, ehr).page
    # Authorization request: code flow, PKCE S256, a state, aud = the EHR's FHIR base (the EHR checked).
    auth = ehr.authorize_requests[-1]
    assert auth["code_challenge_method"] == "S256" and auth["redirect_uri"] == app_server.base + "/app/"
    assert auth["client_id"] == CLIENT_ID and auth["aud"] == ehr.fhir_base
    assert len(auth["state"]) >= 43  # 256 random bits (SMART: at least 122)
    token = ehr.token_requests[-1]
    assert token["code_verifier"] and token["grant_type"] == "authorization_code"
    assert ehr.problems == []
    banner = page.locator("#patient")
    banner.wait_for()
    assert "Ada Lovelace" in banner.inner_text() and "1957-03-14" in banner.inner_text()

    app_page.fill(CASES["emergency"])
    app_page.triage()
    result = app_page.result
    result.locator(".banner").wait_for()
    proposals = result.get_by_role("checkbox")
    count = proposals.count()
    assert count >= 2  # an emergency carries only what the emergency needs (rules 1.1.0)
    chosen = (0, count - 1)
    ticked = [proposals.nth(i) for i in chosen]
    names = [result.locator(".proposal label").nth(i).inner_text() for i in chosen]
    for box in ticked:
        box.check()
    page.get_by_role("button", name="Save to record").click()
    saved = page.locator("#saved .saved-ok")
    saved.wait_for()
    assert "Saved to the record of Ada Lovelace" in saved.inner_text()
    assert "the questionnaire, the triage result and 2 proposals" in saved.inner_text()
    assert_accessible(page, "after Save to record (EHR launch)")
    # The picture shows the patient banner and the result; the filled form is in the other pictures.
    page.evaluate("() => { for (const id of ['form-section']) document.getElementById(id).hidden = true;"
                  " document.querySelector('.intro').hidden = true; }")
    screenshot(page.locator("main"), "app-ehr-saved")

    # One transaction, the service's Ready to store form with the ticked proposals only, which the
    # EHR's FHIR engine (Medplum's) validated and applied: every entry created.
    assert len(ehr.transactions) == before + 1  # one transaction, nothing else written
    assert ehr.problems == []
    bundle, answer = ehr.transactions[-1], ehr.responses[-1]
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["QuestionnaireResponse", "RiskAssessment", "ServiceRequest", "ServiceRequest"]
    assert all(e["request"]["method"] == "POST" and e["request"]["ifNoneExist"].startswith(
        "identifier=") for e in bundle["entry"])
    assert [e["response"]["status"].split()[0] for e in answer["entry"]] == ["201"] * 4
    qr_entry = bundle["entry"][0]
    assert qr_entry["resource"]["subject"] == {"reference": f"Patient/{PATIENT['id']}"}
    assert qr_entry["resource"]["status"] == "completed"
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for ref in re.findall(r'"reference": "([^"]+)"', json.dumps(bundle)):
        assert not ref.startswith("urn:uuid:") or ref in full_urls, f"dangling reference {ref}"
    where = ["/".join(e["response"]["location"].split("/")[:2]) for e in answer["entry"]]
    qr_at, ra_at = where[0], where[1]
    for entry, name, sr_at in zip(bundle["entry"][2:], names, where[2:]):
        sr = entry["resource"]
        assert sr["status"] == "draft" and sr["intent"] == "proposal"
        assert sr["code"]["text"] in name
        status, stored = ehr.engine.request("GET", sr_at)  # as the EHR keeps it: its own ids
        assert status == 200
        assert stored["subject"] == {"reference": f"Patient/{PATIENT['id']}"}
        assert stored["supportingInfo"] == [{"reference": ra_at, "type": "RiskAssessment"},
                                            {"reference": qr_at, "type": "QuestionnaireResponse"}]
    # the same transaction again (a retry) creates nothing new
    status, again = ehr.engine.post_bundle(bundle)
    assert status == 200 and [e["response"]["status"].split()[0] for e in again["entry"]] == ["200"] * 4
    assert app_page.console == []


def test_a_state_the_app_did_not_send_is_refused(app_page, app_server, ehr):
    tokens_before = len(ehr.token_requests)
    ehr.tamper_state = True
    try:
        app_page.page.goto(f"{app_server.base}/app/launch?iss={ehr.fhir_base}&launch={LAUNCH_ID}")
        app_page.page.wait_for_url(re.compile(r"/app/\?code="))
        notice = app_page.page.locator("#notice")
        notice.wait_for()
        assert "sign-in from the EHR could not be completed" in notice.inner_text()
    finally:
        ehr.tamper_state = False
    assert len(ehr.token_requests) == tokens_before  # the code was never exchanged
    assert app_page.page.get_by_role("button", name="Save to record").count() == 0


def test_a_launch_from_an_ehr_not_on_the_allow_list_is_a_400_page(app_page, app_server, ehr):
    """The browser is never sent to another EHR's /authorize with our client id, state and challenge."""
    other = RunningEhr()
    try:
        page = app_page.page
        for iss in (other.ehr.fhir_base, ehr.fhir_base.replace("127.0.0.1", "localhost")):
            answer = page.goto(f"{app_server.base}/app/launch?iss={iss}&launch={LAUNCH_ID}")
            assert answer.status == 400
            page.get_by_role("heading", name="The EHR launch cannot start").wait_for()
            assert "not one this service is set up for" in page.locator("[role=alert]").inner_text()
            assert CLIENT_ID not in page.content()
        page.wait_for_timeout(300)  # nothing scripted follows
        assert other.ehr.authorize_requests == [] and other.ehr.problems == []
        assert page.url.startswith(app_server.base + "/app/launch")
    finally:
        other.stop()


def test_no_patient_banner_when_the_ehr_shows_its_own(app_page, app_server, ehr):
    ehr.need_patient_banner = False
    try:
        page = launch(app_page, app_server, ehr).page
    finally:
        ehr.need_patient_banner = True
    assert ehr.fhir_requests[-1] == f"GET Patient/{PATIENT['id']}"
    assert not page.locator("#patient").is_visible()
    app_page.fill(CASES["self-care"])
    app_page.triage()
    page.get_by_role("button", name="Save to record").click()
    assert "Saved to the record of Ada Lovelace: the questionnaire and the triage result (no proposals " \
        "were ticked)" in \
        page.locator("#saved .saved-ok").inner_text()


def test_with_auth_on_the_launched_page_triages_with_the_ehr_token(app_page, auth_server, ehr):
    page = launch(app_page, auth_server, ehr).page
    page.locator("#patient").wait_for()
    app_page.fill(CASES["routine"])
    with page.expect_response(lambda r: r.url.endswith("/$triage")) as answer:
        app_page.triage()
    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"].startswith("Bearer ey")
    assert app_page.result.locator(".banner").get_attribute("data-disposition") == "routine"
    assert page.get_by_role("button", name="Save to record").is_visible()


def test_with_auth_on_the_page_alone_says_to_open_it_from_the_ehr(app_page, auth_server):
    page = app_page.open(auth_server.base + "/app/").page
    app_page.fill(CASES["emergency"])
    with page.expect_response(lambda r: r.url.endswith("/$triage")) as answer:
        app_page.triage()
    assert answer.value.status == 401
    assert "Open the form from the patient's record in the EHR" in page.locator("#errors").inner_text()


def test_a_clinical_versions_result_reads_in_clinical_words(app_page, app_server, screenshot, make_app):
    """A rule version written in clinical words (the test-only module of tests/e2e/test_explanations.py):
    the page shows each reason with the answers in words and the source by its title, and nothing
    for the rules' authors (rule ids, file names). The $triage answer is that module's Bundle."""
    from service.pipeline import triage
    from tests.support import questionnaire_response
    from tests.e2e.test_explanations import CLINICAL_VERSION, clinical_module

    clinical = make_app()
    registry = clinical.extensions["legtriage"].registry
    registry.modules[CLINICAL_VERSION] = clinical_module()
    registry.default_version = CLINICAL_VERSION  # the unpinned triage below is meant for it
    with clinical.test_request_context():
        bundle = triage(questionnaire_response(CASES["emergency"]), "QuestionnaireResponse").bundle
    page = app_page.open(app_server.base + "/app/").page
    page.route("**/$triage", lambda route: route.fulfill(
        status=200, content_type="application/fhir+json", body=json.dumps(bundle)))
    app_page.fill(CASES["emergency"])
    app_page.triage()
    result = app_page.result
    result.locator(".banner").wait_for()
    why = result.locator(".cause .why").first.inner_text()
    assert why.startswith("Stroke warning signs. Reported: difficulty speaking or understanding speech.")
    assert "Not present: confusion." in why
    source = result.locator(".cause details").first
    assert source.locator("summary").inner_text() == "Source: What Causes Numbness in the Legs?"
    source.locator("summary").click()
    assert source.locator("blockquote").inner_text() == "Numbness in your face, or involving an entire arm or leg"
    text = result.inner_text()
    for word in ("[stroke-signs]", ".txt", "(source:", "red-flags.speech", "fired"):
        assert word not in text
    assert_accessible(page, "after triage with a clinical rule version")
    screenshot(result, "app-result-clinical")
    assert app_page.console == []
