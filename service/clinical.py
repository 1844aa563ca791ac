"""The clinical data the rule reviews run on: clinical/, read and mapped to facts for the domain.

clinical/vignettes/*.yaml are the stories (answers, the expected result, the source passage);
clinical/golden/ holds the stored answer sets (answers.json) and each published version's freeze
(vX_Y_Z.json, written once by tests/golden/freeze.py). Here they are read, and each one's answers
mapped to facts through mappings/ exactly as $triage maps them, into the plain `ClinicalData` that
the domain's review, release note, rule diff and safety case take (service/triage/review.py): the
domain itself reads no file and imports nothing of the app. The paths of what those commands write
(docs/, the shipped sign-off folder) are here too.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from service.catalog import Catalog, read_catalog
from service.config import PROJECT_ROOT
from service.mapping import answers_to_facts
from service.triage.facts import Facts
from service.triage.review import AnswerSet, ClinicalData

CLINICAL = PROJECT_ROOT / "clinical"
VIGNETTES = CLINICAL / "vignettes"
GOLDEN = CLINICAL / "golden"
ANSWERS = GOLDEN / "answers.json"
MAPPINGS = PROJECT_ROOT / "mappings"
SIGNOFF_DIR = MAPPINGS / "signoff"  # shipped empty: the project signs nothing
DOCS = PROJECT_ROOT / "docs"
SAFETY_CASE = DOCS / "safety-case.md"


def note_path(version: str) -> Path:
    """The release note of a rule version (legtriage rules release --write)."""
    return DOCS / f"rules-{version}.md"


def load_vignettes(directory: Path = VIGNETTES) -> list[dict]:
    """The stories as written, each with the name of its file."""
    cases = []
    for path in sorted(directory.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            case["file"] = path.name
            cases.append(case)
    return cases


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return read_catalog(MAPPINGS)  # the data and its words; the FHIR checks are the service's


def facts_of(answers: Mapping[str, Any]) -> Facts:
    """The facts of compact answers (linkId -> value or list of values), the way $triage maps them."""
    values = {link: value if isinstance(value, list) else [value] for link, value in answers.items()}
    return answers_to_facts(values, catalog())[0]


def facts_of_response(qr: dict) -> Facts:
    """The facts of a whole QuestionnaireResponse, checked and mapped as $triage does."""
    from service.fhir_io.incoming import check_against_questionnaire  # the FHIR layer, only here

    answers = check_against_questionnaire(qr, "QuestionnaireResponse", catalog())
    return answers_to_facts(answers.values, catalog())[0]


def stored_answer_sets(path: Path = ANSWERS) -> list[AnswerSet]:
    """clinical/golden/answers.json: the vignettes' answers at the freeze, the examples, random sets."""
    if not path.exists():
        return []
    out = []
    for case in json.loads(path.read_text(encoding="utf-8")):
        kind = case["id"].split(":")[0]
        if "qr" in case:
            out.append(AnswerSet(case["id"], f"answers.json {kind}", facts_of_response(case["qr"]), True))
        else:
            out.append(AnswerSet(case["id"], f"answers.json {kind}", facts_of(case["answers"])))
    return out


def frozen_dispositions(directory: Path = GOLDEN) -> dict[str, dict[str, str]]:
    """Each frozen version's disposition of every answer set: version -> answer set id -> code."""
    out = {}
    for path in sorted(directory.glob("v*_*_*.json")):
        version = path.stem[1:].replace("_", ".")
        cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
        out[version] = {case_id: case["disposition"] for case_id, case in cases.items()}
    return out


@lru_cache(maxsize=1)
def clinical_data() -> ClinicalData:
    """Everything the reviews need, read once per process."""
    c = catalog()
    return ClinicalData(
        vignettes=[{**case, "facts": facts_of(case["answers"])} for case in load_vignettes()],
        stored=stored_answer_sets(),
        frozen=frozen_dispositions(),
        forms={foreign.form.canonical: foreign.form.facts for _, foreign in sorted(c.forms.items())},
        link_ids={fact: link for link, fact in c.fact_map.items()},
        priorities=c.disposition_priorities,
        displays=c.disposition_displays,
        terms=terminology(),
        wording=c.wording)


def terminology() -> dict:
    """mappings/terminology.yaml as written: the words of causes and proposals."""
    return yaml.safe_load((MAPPINGS / "terminology.yaml").read_text())
