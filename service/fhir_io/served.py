"""mappings/ as the service serves it: each FHIR resource held to R4 and given its narrative.

service/catalog.py reads and checks the data of mappings/ without knowing FHIR; this wraps it for
the service (create_app, `legtriage forms coverage`): the Questionnaires, CodeSystems and the
OperationDefinition are checked with the compiled R4 schema $triage uses (service/fhir_io/structure.py)
before they are read, and every resource the service serves gets its generated narrative.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from service.catalog import Catalog, CatalogError, read_catalog
from service.fhir_io import structure
from service.fhir_io.narrative import with_text


def check_resource(resource: dict, path: Path) -> None:
    """Hold one resource of mappings/ to R4; CatalogError names its file and the first problems."""
    # With the compiled schema $triage uses (derived from the official HL7 R4 JSON schema), not
    # fhir.resources: importing it cost start-up time and memory in every worker (docs/performance.md).
    # tests/unit/fhir_io/test_structure.py still holds mappings/ to fhir.resources.
    rtype = resource.get("resourceType")
    try:
        issues = structure.check(resource, str(rtype), str(rtype), once=True)  # at start only
    except ValueError:
        raise CatalogError(f"{path}: resourceType {str(rtype)[:40]!r} is not one mappings/ may hold") from None
    if issues:
        raise CatalogError(f"{path}: not a valid FHIR R4 resource: "
                           + "; ".join(f"{i.expression}: {i.diagnostics}" for i in issues[:5]))


def load_catalog(mappings_dir: Path, validate_fhir: bool = True) -> Catalog:
    """Read and check mappings/ (CatalogError names the file on a problem), FHIR resources included
    unless `validate_fhir` is False; every served resource with its narrative."""
    catalog = read_catalog(mappings_dir, check_resource if validate_fhir else None)
    # Narrative last: what was checked is the data as written in mappings/.
    return replace(
        catalog, questionnaire=with_text(catalog.questionnaire),
        codesystems={k: with_text(v) for k, v in catalog.codesystems.items()},
        operation_definition=with_text(catalog.operation_definition),
        structure_definitions={k: with_text(v) for k, v in catalog.structure_definitions.items()},
        value_sets={k: with_text(v) for k, v in catalog.value_sets.items()})
