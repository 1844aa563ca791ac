"""The domain is pure (issue #10, item 4; issue 26): service/triage/ imports nothing of the app (its
settings, catalog, mapping, forms, FHIR layer, Flask), directly or through anything it imports, and
reads no file of the checkout's clinical data or tests: service/clinical.py reads those and hands
them in as plain data. The answers -> facts mapping and the forms import without web or FHIR
libraries too."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT

FORBIDDEN = ("flask", "werkzeug", "gunicorn", "jwt", "jsonschema_rs", "fhir", "pydantic")
DOMAIN = ["service.triage.engine", "service.triage.facts", "service.triage.model",
          "service.triage.reads", "service.triage.report", "service.triage.review",
          "service.triage.release", "service.triage.safety_case", "service.triage.signoff",
          "service.triage.signs", "service.triage.wording"]
# Above the domain, yet free of web and FHIR libraries.
PURE_DATA = ["service.mapping", "service.forms"]

# In a fresh interpreter: a meta path finder refuses the forbidden packages (and their submodules)
# and, while the domain is imported, any module of the service outside service.triage (service.config,
# catalog, mapping, forms, fhir_io, ...); every domain module is imported, then the pure data modules.
# Then, with the clinical data read by the app, an audit hook refuses any file of tests/ or clinical/
# opened or listed while the domain runs its reviews, release notes, rule diff and safety case.
CHILD = r"""
import importlib, json, os, pathlib, sys, tempfile
FORBIDDEN = %(forbidden)r
ROOT = %(root)r

class Refuse:
    app = True  # refuse the app's modules too (only while the domain is imported)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"the pure domain imported {name}")
        if self.app and name.startswith("service.") and not name.startswith("service.triage"):
            raise ImportError(f"the domain imported {name} of the app")
        return None

refuse = Refuse()
sys.meta_path.insert(0, refuse)
from service.triage.rules import discover
for name in %(domain)r:
    importlib.import_module(name)
rule_modules = [m.module.__name__ for m in discover().values()]
refuse.app = False
for name in %(pure_data)r:
    importlib.import_module(name)
loaded = sorted(n for n in sys.modules if n.split(".")[0] in FORBIDDEN)
sys.meta_path.remove(refuse)

from service.clinical import clinical_data
from service.triage import release, report, review, safety_case
from service.triage.engine import Registry
data = clinical_data()
registry = Registry()
private = tuple(os.path.join(ROOT, d) + os.sep for d in ("tests", "clinical"))
read = []

def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if (path + os.sep).startswith(private):
            read.append(path)

sys.addaudithook(hook)
with tempfile.TemporaryDirectory() as empty:
    review.all_figures(registry, data.vignettes, data)
    new = registry.modules[release.released(registry)[-1]]
    release.render(registry.get(new.replaces), new, data)
    safety_case.render(registry, data, pathlib.Path(empty))
print(json.dumps({"rule_modules": rule_modules, "loaded": loaded, "read": read}))
"""


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code % {"forbidden": FORBIDDEN, "root": str(ROOT),
                                                         "domain": DOMAIN, "pure_data": PURE_DATA}],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_domain_imports_nothing_of_the_app_and_reads_no_clinical_or_test_file():
    result = run_child(CHILD)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout)
    expected = sorted(f"service.triage.rules.{p.stem}" for p in (ROOT / "service/triage/rules").glob("v*.py"))
    assert sorted(found["rule_modules"]) == expected and expected
    assert sorted(p.stem for p in (ROOT / "service/triage").glob("*.py")) == \
        sorted(n.rsplit(".", 1)[1] for n in DOMAIN), "a new domain module: add it to DOMAIN"
    assert found["loaded"] == []
    assert found["read"] == []


def test_the_check_fails_when_the_domain_reaches_flask():
    # The same child, made to import the app factory's module on the way: the finder must refuse.
    result = run_child(CHILD.replace('importlib.import_module(name)\nrule_modules',
                                     'importlib.import_module(name)\nimport service.state\nrule_modules'))
    assert result.returncode != 0
    assert "the pure domain imported flask" in result.stderr or \
        "the domain imported service." in result.stderr


def test_the_check_fails_when_the_domain_imports_the_app_or_reads_tests():
    for app_module in ("service.config", "service.catalog", "service.mapping", "service.forms",
                       "service.fhir_io.outgoing", "service.clinical"):
        result = run_child(CHILD.replace('importlib.import_module(name)\nrule_modules',
                                         f'importlib.import_module(name)\nimport {app_module}\nrule_modules'))
        assert result.returncode != 0 and "of the app" in result.stderr, app_module
    reads = CHILD.replace("    review.all_figures(registry, data.vignettes, data)\n",
                          "    review.all_figures(registry, data.vignettes, data)\n"
                          "    open(os.path.join(ROOT, 'clinical', 'golden', 'answers.json')).close()\n")
    found = json.loads(run_child(reads).stdout)
    assert found["read"] and found["read"][0].endswith("answers.json")
