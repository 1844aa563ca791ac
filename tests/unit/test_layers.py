"""The service's rooms import one way (issue 26): no import cycle, and no import that climbs a layer.

Layers, lowest first: the domain (service/triage), other hospitals' forms (service/forms.py), the
data of mappings/ (service/catalog.py), answers -> facts (service/mapping.py), the FHIR layer
(service/fhir_io). A module imports from its own layer or lower ones, also inside functions; the
app above them (pipeline, state, api, cds, clinical, cli, create_app) may import any of them.
Read from the source, nothing is imported."""
from __future__ import annotations

import ast

from tests.support import ROOT

LAYERS = ("service.triage", "service.forms", "service.catalog", "service.mapping", "service.fhir_io")


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted((ROOT / "service").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _layer(module: str) -> int | None:
    return next((n for n, top in enumerate(LAYERS) if module == top or module.startswith(top + ".")), None)


def _imports(tree: ast.AST, module_level_only: bool) -> set[str]:
    nodes = tree.body if module_level_only else ast.walk(tree)  # type: ignore[attr-defined]
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("service"):
            found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "service" \
                else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("service")}
    return found


def test_no_import_climbs_a_layer():
    climbs = []
    for module, tree in _modules().items():
        mine = _layer(module)
        if mine is None:
            continue
        for imported in _imports(tree, module_level_only=False):
            theirs = _layer(imported)
            if (theirs is None or theirs > mine):
                climbs.append(f"{module} imports {imported}")
    assert not climbs


def test_no_import_cycle():
    modules = _modules()

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {m: {resolve(i) for i in _imports(tree, module_level_only=True)} - {m, ""}
             for m, tree in modules.items()}
    seen: set[str] = set()

    def walk(module: str, trail: tuple[str, ...]) -> None:
        if module in trail:
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(module):] + (module,)))
        if module in seen:
            return
        for imported in sorted(graph[module]):
            walk(imported, trail + (module,))
        seen.add(module)

    for module in sorted(graph):
        walk(module, ())


def test_the_checks_see_a_climb_and_a_cycle():
    forms = ast.parse("def f():\n    from service.catalog import read_catalog\n")
    assert _imports(forms, module_level_only=False) == {"service.catalog"}
    assert _layer("service.catalog") > _layer("service.forms")
    assert _imports(forms, module_level_only=True) == set()  # an import inside a function: no cycle
