"""The domain is pure (issue #10, item 4): the rules, the engine, the facts and the answers -> facts
mapping import with the web and FHIR libraries unavailable, directly or through anything they import."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT

FORBIDDEN = ("flask", "werkzeug", "gunicorn", "jwt", "jsonschema_rs", "fhir", "pydantic")

# In a fresh interpreter: a meta path finder refuses the forbidden packages (and their submodules),
# then every domain module is imported; any import of them on the way, however indirect, fails.
CHILD = r"""
import importlib, json, sys
FORBIDDEN = %(forbidden)r

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"the pure domain imported {name}")
        return None

sys.meta_path.insert(0, Refuse())
from service.triage.rules import discover
modules = ["service.triage.engine", "service.triage.facts", "service.triage.model",
           "service.triage.report", "service.triage.review", "service.triage.reads", "service.mapping"]
for name in modules:
    importlib.import_module(name)
rule_modules = [m.module.__name__ for m in discover().values()]
print(json.dumps({"rule_modules": rule_modules,
                  "loaded": sorted(n for n in sys.modules if n.split(".")[0] in FORBIDDEN)}))
"""


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code % {"forbidden": FORBIDDEN}], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_domain_imports_without_web_or_fhir_libraries():
    result = run_child(CHILD)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    expected = sorted(f"service.triage.rules.{p.stem}" for p in (ROOT / "service/triage/rules").glob("v*.py"))
    assert sorted(found["rule_modules"]) == expected and expected
    assert found["loaded"] == []


def test_the_check_fails_when_the_domain_reaches_flask():
    # The same child, made to import the app factory's module on the way: the finder must refuse.
    result = run_child(CHILD.replace('"service.mapping"]', '"service.mapping", "service.state"]'))
    assert result.returncode != 0
    assert "the pure domain imported flask" in result.stderr
