"""The app exactly as production builds it, plus the browser tests' pages on the same origin.

gunicorn loads `tests.e2e.browser.site:app_with_test_pages()`. The page and the LHC-Forms files sit
under /_browser-test and /_lforms beside the real endpoints, so the page's fetch() calls are
same-origin, as for an SDC form filler hosted next to its FHIR server.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PAGES = Path(__file__).resolve().parent / "pages"
# Installed by scripts/lib/test-tools.sh (npm package lforms, pinned there).
LFORMS_DIST = ROOT / ".cache" / "npm-lforms" / "node_modules" / "lforms" / "dist" / "lforms"
LFORMS_FILES = ("webcomponent/styles.css", "webcomponent/assets/lib/zone.min.js",
                "webcomponent/lhc-forms.js", "fhir/R4/lformsFHIR.min.js")


def app_with_test_pages():
    """create_app() behind a static-file layer that only answers /_browser-test and /_lforms."""
    from werkzeug.middleware.shared_data import SharedDataMiddleware

    from service import create_app

    return SharedDataMiddleware(create_app(), {"/_browser-test": str(PAGES),
                                               "/_lforms": str(LFORMS_DIST)})
