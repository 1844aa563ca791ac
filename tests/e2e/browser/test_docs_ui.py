"""The browsable API docs at /docs work offline: Swagger UI comes from the installed package,
renders every operation of /openapi.yaml, and "Try it out" reaches $triage, with every request
that is not for 127.0.0.1 aborted (a clinic network may have no internet).
"""
from __future__ import annotations

import json
import urllib.request

import pytest
import yaml

pytestmark = pytest.mark.browser

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TRIAGE_PATH = "/fhir/QuestionnaireResponse/$triage"


def served_spec(base: str) -> dict:
    with urllib.request.urlopen(base + "/openapi.yaml", timeout=10) as resp:
        return yaml.safe_load(resp.read())


@pytest.fixture()
def docs(offline, live_server):
    page = offline.context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(live_server + "/docs/")
    page.locator(".opblock").first.wait_for()
    yield page
    assert errors == []
    assert offline.escaped == [], f"requests left 127.0.0.1: {offline.escaped}"


def test_docs_render_every_operation_of_the_spec(docs, live_server, screenshot):
    spec = served_spec(live_server)
    expected = sorted((method, path) for path, ops in spec["paths"].items()
                      for method in ops if method in HTTP_METHODS)
    assert ("post", TRIAGE_PATH) in expected
    rendered = docs.locator(".opblock").evaluate_all("""blocks => blocks.map(b => [
        b.querySelector('.opblock-summary-method').textContent.trim().toLowerCase(),
        b.querySelector('.opblock-summary-path').getAttribute('data-path')])""")
    assert sorted(map(tuple, rendered)) == expected
    assert spec["info"]["title"] in docs.locator(".info .title").inner_text()
    assert docs.locator(".errors-wrapper").count() == 0  # "Failed to load API definition" etc.
    screenshot(docs, "docs")


def test_try_it_out_runs_triage_from_the_docs(docs):
    # The spec lists a relative server ("/") for docs opened on any host and port.
    docs.locator(".servers select").select_option("/")
    op = docs.locator(".opblock-post").filter(has=docs.locator(f'[data-path="{TRIAGE_PATH}"]'))
    op.locator(".opblock-summary").click()
    try_it = op.get_by_role("button", name="Try it out")
    if try_it.count():  # already on when the docs set tryItOutEnabled
        try_it.click()
    assert json.loads(op.locator("textarea.body-param__text").input_value())["resourceType"] in (
        "QuestionnaireResponse", "Parameters")  # an example from the spec is filled in
    op.get_by_role("button", name="Execute").click()
    status = op.locator(".live-responses-table tbody .response-col_status")
    status.wait_for()
    assert status.inner_text().strip() == "200"
    body = json.loads(op.locator(".live-responses-table .response-col_description pre.microlight")
                      .first.inner_text())
    assert body["resourceType"] == "Bundle" and body["type"] == "collection"
    assert body["entry"][0]["resource"]["resourceType"] == "RiskAssessment"
