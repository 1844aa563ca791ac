"""Browser tests: the service under real gunicorn on 127.0.0.1, driven by headless Chromium.

Chromium comes from Debian (/usr/bin/chromium) and the LHC-Forms files from npm, both installed by
scripts/lib/test-tools.sh; Playwright (the `test` extra) drives the browser. A missing piece fails
the tests with a message saying how to install it: they are skipped only when
SKIP_BROWSER_TESTS=1 is set explicitly. The switch is not a LEGTRIAGE_* name on purpose: the
service refuses LEGTRIAGE_* variables it does not know, and this one is for the test harness.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.servers import gunicorn

CHROMIUM = Path("/usr/bin/chromium")
# Quiet, hermetic Chromium: no sandbox (CI runs as root), no GPU, none of its own network traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
SKIP_VAR = "SKIP_BROWSER_TESTS"
INSTALL_HINT = "run scripts/lib/test-tools.sh (or scripts/test, which calls it)"


@pytest.fixture(scope="session", autouse=True)
def browser_requested():
    """Skip only on an explicit request; otherwise a missing browser is a failure, not a skip."""
    if os.environ.get(SKIP_VAR) == "1":
        pytest.skip(f"{SKIP_VAR}=1 is set: browser tests skipped on request")
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: {INSTALL_HINT}, or set {SKIP_VAR}=1 "
                    "to skip the browser tests explicitly", pytrace=False)


@pytest.fixture(scope="session")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[test]'", pytrace=False)
    pw = sync_playwright().start()
    # launch() gives each run a fresh temporary profile (user-data dir) and deletes it on close.
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    pw.stop()


class Offline:
    """A browser context where only 127.0.0.1 is reachable; every other request is aborted and kept."""

    def __init__(self, browser):
        self.escaped: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(20_000)
        self.context.route("**/*", self._only_loopback)

    def _only_loopback(self, route):
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.escaped.append(url)
            route.abort("blockedbyclient")


@pytest.fixture()
def offline(chromium):
    ctx = Offline(chromium)
    yield ctx
    ctx.context.close()


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory):
    """Save a full-page PNG (in SCREENSHOT_DIR if set, else a pytest temp dir)."""
    wanted = os.environ.get("SCREENSHOT_DIR")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(target, name: str) -> Path:
        """`target`: a page (the full page) or a locator (that element)."""
        path = folder / f"{name}.png"
        options = {"full_page": True} if hasattr(target, "goto") else {}
        target.screenshot(path=str(path), animations="disabled", **options)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return path

    return take


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Base URL of gunicorn (the project's gunicorn.conf.py) serving site.app_with_test_pages()."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with gunicorn(log_path, env={"LEGTRIAGE_LOG_LEVEL": "warning"},
                  args=("tests.e2e.browser.site:app_with_test_pages()",)) as server:
        yield server.base
