"""The data the service runs on, loaded from mappings/ and checked once at start.

The Questionnaire, the CodeSystems and the OperationDefinition are FHIR resources: the FHIR layer
holds them to R4 and gives them their narrative (service/fhir_io/served.py passes its check in
here); the fact map and the terminology are our own shapes (validated with marshmallow).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.forms import Form, FormError, flat_items, load_forms
from service.triage.facts import FACT_NAMES
from service.triage.model import Disposition
from service.triage.wording import Wording

BASE = "http://legtriage.example.org/fhir"  # the canonical base of every resource the service defines
SUPPORTED_ITEM_TYPES = ("group", "choice", "boolean", "integer")


class CatalogError(RuntimeError):
    """mappings/ holds something the service cannot run on; the message names the file and field."""


# Holds one FHIR resource of mappings/ to R4; raises CatalogError naming the file (the FHIR layer's).
FhirCheck = Callable[[dict, Path], None]


class ConceptSchema(Schema):
    class Meta:
        unknown = RAISE

    system = fields.String()  # a key of the file's `systems` (TerminologySchema checks it)
    code = fields.String(validate=validate.Regexp(r"^[0-9]+(-[0-9])?\Z"))
    display = fields.String()
    text = fields.String(required=True, validate=validate.Length(min=1))

    @validates_schema
    def coded_or_text(self, data: dict, **kwargs: Any) -> None:
        coded = [k in data for k in ("system", "code", "display")]
        if any(coded) and not all(coded):
            raise ValidationError("a coded concept needs system, code and display together")


class TerminologySchema(Schema):
    class Meta:
        unknown = RAISE

    systems = fields.Dict(keys=fields.String(), values=fields.Url(), required=True)
    conditions = fields.Dict(keys=fields.String(), values=fields.Nested(ConceptSchema), required=True)
    procedures = fields.Dict(keys=fields.String(), values=fields.Nested(ConceptSchema), required=True)

    @validates_schema
    def systems_are_declared(self, data: dict, **kwargs: Any) -> None:
        for group in ("conditions", "procedures"):
            for key, term in data.get(group, {}).items():
                if "system" in term and term["system"] not in data.get("systems", {}):
                    raise ValidationError(f"{group}.{key}: system {term['system']!r} is not one of "
                                          f"systems: {sorted(data.get('systems', {}))}")


class FactMapSchema(Schema):
    class Meta:
        unknown = RAISE

    questionnaire = fields.String(required=True)
    facts = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.OneOf(FACT_NAMES)),
                        required=True)


@dataclass(frozen=True)
class Item:
    """What the Questionnaire says of one linkId."""

    link_id: str
    type: str
    required: bool
    repeats: bool
    codes: frozenset[str]  # allowed answer codes of a choice item
    min_value: int | None
    max_value: int | None
    path: str  # e.g. "numbness.side" sits in group "numbness"


@dataclass(frozen=True)
class ForeignForm:
    """Another hospital's Questionnaire as the response checks read it (service/fhir_io/incoming.py).

    Like our own form's index, but each choice answer is "system|code": a foreign form codes its
    answers in several systems (LOINC, SNOMED CT, its own). Only mapped items are in `items`.
    """

    form: Form
    items: dict[str, Item]
    answers_system = None  # each coding names its own system


def coding_key(system: object, code: object) -> str:
    return f"{system}|{code}"


def _foreign_form(form: Form, path: Path, check_fhir: FhirCheck | None) -> ForeignForm:
    if check_fhir:
        check_fhir(form.questionnaire, path.parent / path.name)
    items = {link: Item(link_id=link, type=i.type, required=i.required, repeats=False,
                        codes=frozenset(coding_key(s, c) for s, c in i.answers),
                        min_value=None, max_value=None, path="")
             for link, i in form.items.items()}
    return ForeignForm(form, items)


@dataclass(frozen=True)
class Catalog:
    questionnaire: dict
    questionnaire_url: str
    questionnaire_version: str
    items: dict[str, Item]
    codesystems: dict[str, dict]  # by id
    operation_definition: dict
    fact_map: dict[str, str]  # linkId -> fact name
    conditions: dict[str, dict]
    procedures: dict[str, dict]
    answer_displays: dict[str, str]
    answers_system: str  # url of the answer CodeSystem
    disposition_system: str  # url of the disposition CodeSystem
    disposition_displays: dict[str, str]  # disposition code -> display
    disposition_priorities: dict[str, str]  # disposition code -> ServiceRequest.priority
    systems: dict[str, str]  # terminology.yaml's system keys -> code system url
    wording: Wording  # each fact in the Questionnaire's words (question text, answer displays)
    # by id: the extensions the service emits, and the ValueSets of the Questionnaire's answer
    # lists and of the disposition extension (served for EHR validators)
    structure_definitions: dict[str, dict] = field(default_factory=dict)
    value_sets: dict[str, dict] = field(default_factory=dict)
    forms: dict[str, ForeignForm] = field(default_factory=dict)  # other hospitals' forms, by url


def _read_json(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as err:
        raise CatalogError(f"{path}: {err}") from None


def _read_yaml(path: Path, schema: Schema) -> dict:
    try:
        return schema.load(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as err:
        raise CatalogError(f"{path}: {err}") from None
    except ValidationError as err:
        raise CatalogError(f"{path}: {err.messages}") from None


def _index_items(items: list[dict], parent: str = "") -> dict[str, Item]:
    index: dict[str, Item] = {}
    for item in items:
        ext = {e["url"].rsplit("/", 1)[-1]: e.get("valueInteger") for e in item.get("extension", [])}
        link_id = item["linkId"]
        if item.get("type") not in SUPPORTED_ITEM_TYPES:
            raise CatalogError(f"questionnaire.json: item {link_id} has type {item.get('type')!r}; "
                               f"this service reads {', '.join(SUPPORTED_ITEM_TYPES)}")
        if link_id in index:
            raise CatalogError(f"questionnaire.json: duplicate linkId {link_id}")
        index[link_id] = Item(
            link_id=link_id, type=item["type"], required=bool(item.get("required")),
            repeats=bool(item.get("repeats")),
            codes=frozenset(o["valueCoding"]["code"] for o in item.get("answerOption", [])
                            if "valueCoding" in o),
            min_value=ext.get("minValue"), max_value=ext.get("maxValue"), path=parent)
        index.update(_index_items(item.get("item", []), link_id))
    return index


def read_catalog(mappings_dir: Path, check_fhir: FhirCheck | None = None) -> Catalog:
    """Read and check everything in mappings/; raises CatalogError naming the file on a problem.

    `check_fhir` holds each FHIR resource to R4 before it is read (the service passes the FHIR
    layer's, service/fhir_io/served.py, which also adds the narratives); without it the resources
    are read as written (the rule reviews of service/clinical.py need only their words)."""
    d = Path(mappings_dir)
    questionnaire = _read_json(d / "questionnaire.json")
    codesystems = {}
    for name in ("codesystem-leg-numbness-answers.json", "codesystem-triage-disposition.json",
                 "codesystem-cds-override-reason.json"):
        cs = _read_json(d / name)
        codesystems[cs["id"]] = cs
    opdef = _read_json(d / "operationdefinition-triage.json")
    if check_fhir:
        check_fhir(questionnaire, d / "questionnaire.json")
        for cs in codesystems.values():
            check_fhir(cs, d / f"codesystem-{cs['id']}.json")
        check_fhir(opdef, d / "operationdefinition-triage.json")

    items = _index_items(questionnaire["item"])
    answers = codesystems["leg-numbness-answers"]
    displays = {c["code"]: c["display"] for c in answers["concept"]}
    for item in items.values():
        missing = item.codes - displays.keys()
        if missing:
            raise CatalogError(f"questionnaire: {item.link_id} uses codes not in the answer "
                               f"CodeSystem: {sorted(missing)}")

    fact_map = _read_yaml(d / "facts.yaml", FactMapSchema())
    canonical = f"{questionnaire['url']}|{questionnaire['version']}"
    if fact_map["questionnaire"] != canonical:
        raise CatalogError(f"facts.yaml: maps {fact_map['questionnaire']}, not {canonical}")
    unknown = set(fact_map["facts"]) - set(items)
    if unknown:
        raise CatalogError(f"facts.yaml: linkIds not in the questionnaire: {sorted(unknown)}")

    dispositions = codesystems["triage-disposition"]
    disposition_displays = {c["code"]: c["display"] for c in dispositions["concept"]}
    priorities = {c["code"]: p["valueCode"] for c in dispositions["concept"]
                  for p in c.get("property", []) if p["code"] == "priority"}
    wanted = {d.code for d in Disposition}
    if set(disposition_displays) != wanted or set(priorities) != wanted:
        raise CatalogError(f"codesystem-triage-disposition.json: codes {sorted(disposition_displays)}, "
                           f"each with a priority; the rules speak of {sorted(wanted)}")

    terms = _read_yaml(d / "terminology.yaml", TerminologySchema())
    definitions = _conformance(d, "StructureDefinition", "structuredefinition-*.json")
    value_sets = _conformance(d, "ValueSet", "valueset-*.json")
    _check_value_sets(questionnaire, codesystems, definitions, value_sets)
    return Catalog(
        questionnaire=questionnaire, questionnaire_url=questionnaire["url"],
        questionnaire_version=questionnaire["version"], items=items,
        codesystems=codesystems,
        operation_definition=opdef, fact_map=fact_map["facts"], conditions=terms["conditions"],
        procedures=terms["procedures"], answer_displays=displays, answers_system=answers["url"],
        disposition_system=dispositions["url"], disposition_displays=disposition_displays,
        disposition_priorities=priorities, systems=terms["systems"],
        wording=_wording(questionnaire, fact_map["facts"]),
        structure_definitions=definitions, value_sets=value_sets,
        forms=_load_forms(d / "forms", questionnaire, d / "questionnaire.json", check_fhir))


def _wording(questionnaire: dict, fact_map: dict[str, str]) -> Wording:
    items = {i["linkId"]: i for i in flat_items(questionnaire["item"])}
    question = {fact: items[link].get("text", link) for link, fact in fact_map.items()}
    displays = {fact: {o["valueCoding"]["code"]: o["valueCoding"].get("display") or o["valueCoding"]["code"]
                       for o in items[link].get("answerOption", []) if "valueCoding" in o}
                for link, fact in fact_map.items()}
    return Wording(question, displays)


def _conformance(d: Path, rtype: str, pattern: str) -> dict[str, dict]:
    # Not held to the compiled schema like the files above: StructureDefinition would pull
    # ElementDefinition into it (megabytes more in every worker) for data no request can change;
    # tests/e2e/test_conformance.py holds these files to fhir.resources and the HL7 schema.
    found: dict[str, dict] = {}
    for path in sorted(d.glob(pattern)):
        resource = _read_json(path)
        rid = resource.get("id")
        if resource.get("resourceType") != rtype or not isinstance(rid, str):
            raise CatalogError(f"{path.name}: expected a {rtype} with an id")
        if resource.get("url") != f"{BASE}/{rtype}/{rid}":
            raise CatalogError(f"{path.name}: url must be {BASE}/{rtype}/{rid}")
        if path.name != f"{rtype.lower()}-{rid}.json" or rid in found:
            raise CatalogError(f"{path.name}: the file name must be {rtype.lower()}-{rid}.json")
        found[rid] = resource
    return found


def answer_value_set_id(link_id: str) -> str:
    """The id of the ValueSet that lists a choice item's answer options."""
    return "leg-numbness-" + link_id.replace(".", "-")


def _check_value_sets(questionnaire: dict, codesystems: dict[str, dict], definitions: dict[str, dict],
                      value_sets: dict[str, dict]) -> None:
    """Each choice item has its ValueSet, listing the same codes in the same order, each ValueSet
    draws on a CodeSystem of mappings/, and every binding names a ValueSet of mappings/."""
    def listed(vs: dict) -> list[str]:
        return [c["code"] for inc in vs.get("compose", {}).get("include", []) for c in inc.get("concept", [])]

    options: dict[str, list[str]] = {}

    def walk(nodes: list[dict]) -> None:
        for node in nodes:
            if node.get("type") == "choice":
                options[node["linkId"]] = [o["valueCoding"]["code"] for o in node.get("answerOption", [])
                                           if "valueCoding" in o]
            walk(node.get("item", []))

    walk(questionnaire["item"])
    for link_id, codes in options.items():
        vid = answer_value_set_id(link_id)
        if vid not in value_sets:
            raise CatalogError(f"valueset-{vid}.json: missing; it lists the answers of {link_id}")
        if listed(value_sets[vid]) != codes:
            raise CatalogError(f"valueset-{vid}.json: codes {listed(value_sets[vid])} differ from the "
                               f"answerOption codes of {link_id} {codes}")
    systems = {cs["url"]: cs for cs in codesystems.values()}
    for vid, vs in value_sets.items():
        for inc in vs.get("compose", {}).get("include", []):
            cs = systems.get(inc.get("system"))
            if cs is None:
                raise CatalogError(f"valueset-{vid}.json: includes {inc.get('system')}, not a CodeSystem of mappings/")
            unknown = set(c["code"] for c in inc.get("concept", [])) - {c["code"] for c in cs["concept"]}
            if unknown:
                raise CatalogError(f"valueset-{vid}.json: codes not in {cs['id']}: {sorted(unknown)}")
    canonicals = {f"{vs['url']}|{vs['version']}" for vs in value_sets.values()} | {vs["url"] for vs in value_sets.values()}
    for sid, sd in definitions.items():
        for element in sd.get("differential", {}).get("element", []):
            bound = element.get("binding", {}).get("valueSet")
            if bound and bound not in canonicals:
                raise CatalogError(f"structuredefinition-{sid}.json: {element['path']} is bound to "
                                   f"{bound}, not a ValueSet of mappings/")


def _load_forms(forms_dir: Path, ours: dict, our_path: Path,
                check_fhir: FhirCheck | None) -> dict[str, ForeignForm]:
    try:
        forms = load_forms(forms_dir) if forms_dir.is_dir() else {}
    except FormError as err:
        raise CatalogError(str(err)) from None
    our_url = ours["url"]
    if our_url in forms:
        raise CatalogError(f"{forms[our_url].path.parent / forms[our_url].questionnaire_file}: has the "
                           f"canonical url {our_url} of {our_path}; maps our own Questionnaire "
                           f"(facts.yaml does that)")
    # Questionnaires are served and read by id (GET /fhir/Questionnaire/{id}): a second form with an id
    # already taken would silently replace the first one there, so it stops the start.
    taken = {ours.get("id"): our_path}
    for form in forms.values():
        qpath = form.path.parent / form.questionnaire_file
        qid = form.questionnaire.get("id")
        if qid in taken:
            raise CatalogError(f"{qpath}: Questionnaire id {qid!r} is already the id of {taken[qid]}: "
                               f"give each form its own id")
        taken[qid] = qpath
    return {url: _foreign_form(form, form.path.parent / form.questionnaire_file, check_fhir)
            for url, form in forms.items()}
