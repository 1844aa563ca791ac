"""Other hospitals' forms: mapping files that turn a foreign Questionnaire's answers into our facts.

One YAML file per foreign Questionnaire (canonical + version) in mappings/forms/, beside the
Questionnaire it maps (`resource:`). Each item names the fact it answers; a choice item lists what
each answer coding means for that fact, or that it says nothing (`not-reported: true`, e.g. LOINC
"Unknown"), which leaves the fact unreported: the rules never read that as "no". Integer and boolean
items pass their value through. Checked at start with marshmallow: every fact exists, every mapped
value is one the fact allows, `side` and `onset` are reachable, every linkId is an item of the form
of a matching type. A problem stops the service with a message naming the file and the line.

Pure data and checks: no Flask, no FHIR I/O (service/fhir_io reads the responses).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import orjson
import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.triage.facts import FACT_NAMES, load_facts

NOT_REPORTED = object()  # the answer says nothing about the fact ("Unknown")
REQUIRED_FACTS = ("side", "onset")  # without them no rule can place the numbness in time and side
REPEATING_FACTS = ("locations", "sensations", "medications")
FORM_ITEM_TYPES = ("choice", "boolean", "integer")


class FormError(RuntimeError):
    """A mapping file the service cannot run on; the message names the file and the line."""


class AnswerSchema(Schema):
    class Meta:
        unknown = RAISE

    system = fields.String(required=True, validate=validate.Length(min=1))
    code = fields.String(required=True, validate=validate.Length(min=1))
    value = fields.Raw(allow_none=False)
    not_reported = fields.Boolean(data_key="not-reported")

    @validates_schema
    def value_or_not_reported(self, data: dict, **kwargs: Any) -> None:
        if ("value" in data) == bool(data.get("not_reported")):
            raise ValidationError("give either value or not-reported: true", "value")


class AnswerList(fields.Field):
    """Inline list of answers, or the name of an entry of `answer-lists`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return AnswerSchema(many=True).load(value)


class ItemSchema(Schema):
    class Meta:
        unknown = RAISE

    fact = fields.String(required=True, validate=validate.OneOf(FACT_NAMES))
    answers = AnswerList()


class MappingSchema(Schema):
    class Meta:
        unknown = RAISE

    questionnaire = fields.String(required=True, validate=validate.Regexp(r"^\S+\|\S+\Z"))
    resource = fields.String(required=True)
    answer_lists = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(AnswerSchema)),
                               data_key="answer-lists")
    items = fields.Dict(keys=fields.String(), values=fields.Nested(ItemSchema), required=True)


@dataclass(frozen=True)
class FormItem:
    link_id: str
    type: str
    required: bool
    fact: str
    answers: dict[tuple[str, str], Any]  # (system, code) -> fact value or NOT_REPORTED
    options: frozenset[tuple[str, str]]  # the answer codings the form itself offers


@dataclass(frozen=True)
class Form:
    """A foreign Questionnaire and how its answers become facts."""

    url: str
    version: str
    questionnaire: dict
    items: dict[str, FormItem]  # mapped items by linkId
    unmapped: tuple[str, ...]  # linkIds of the form that no fact reads
    path: Path  # the mapping file
    questionnaire_file: str = ""  # the Questionnaire's file name, beside the mapping

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    @property
    def facts(self) -> frozenset[str]:
        return frozenset(i.fact for i in self.items.values())



def required_link_ids(items: Mapping[str, Any]) -> list[str]:
    """The linkIds a response must answer, of a form's items (ours: service/catalog.py's Item; another
    hospital's: FormItem): each has `link_id` and `required`."""
    return [i.link_id for i in items.values() if i.required]


def flat_items(items: list[dict]) -> Iterator[dict]:
    """A Questionnaire's items, each group followed by the items inside it, all the way down."""
    for item in items:
        yield item
        yield from flat_items(item.get("item", []))


def load_forms(forms_dir: Path) -> dict[str, Form]:
    """Every mapping file in `forms_dir` (mappings/forms), keyed by the form's canonical URL."""
    forms: dict[str, Form] = {}
    for path in sorted(Path(forms_dir).glob("*.yaml")):
        form = load_form(path)
        if form.url in forms:
            raise FormError(f"{path}: a second mapping for {form.url} (one per form: "
                            f"{forms[form.url].path.name})")
        forms[form.url] = form
    return forms


def load_form(path: Path) -> Form:
    """Read and check one mapping file and the Questionnaire it names; FormError on a problem."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except OSError as err:
        raise FormError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise FormError(f"{path}{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    try:
        data = MappingSchema().load(raw if isinstance(raw, dict) else {"": raw})
    except ValidationError as err:
        key_path, message = _first_error(err.messages)
        raise FormError(f"{path}, line {_line(node, key_path)}: {'.'.join(key_path)}: {message}") from None

    def fail(key_path: list[str], message: str) -> FormError:
        return FormError(f"{path}, line {_line(node, key_path)}: {'.'.join(key_path)}: {message}")

    questionnaire = _read_questionnaire(path.parent / data["resource"], path, node, fail)
    declared = f"{questionnaire.get('url')}|{questionnaire.get('version')}"
    if data["questionnaire"] != declared:
        raise fail(["questionnaire"], f"says {data['questionnaire']}, but {data['resource']} is {declared}")
    form_items = {i["linkId"]: i for i in flat_items(questionnaire.get("item", []))}
    lists = data.get("answer_lists", {})

    items: dict[str, FormItem] = {}
    for link_id, spec in data["items"].items():
        where = ["items", link_id]
        item = form_items.get(link_id)
        if item is None:
            raise fail(where, f"the form has no item {link_id!r}")
        kind = item.get("type")
        if kind not in FORM_ITEM_TYPES:
            raise fail(where, f"item type {kind!r} cannot answer a fact ({', '.join(FORM_ITEM_TYPES)})")
        answers = spec.get("answers")
        answers_at = where + ["answers"]
        if isinstance(answers, str):
            if answers not in lists:
                raise fail(answers_at, f"no answer list {answers!r} under answer-lists")
            answers, answers_at = lists[answers], ["answer-lists", answers]
        fact = spec["fact"]
        if kind == "choice" and not answers:
            raise fail(where, "a choice item needs `answers`: what each coding means")
        if kind != "choice" and answers:
            raise fail(where + ["answers"], f"a {kind} item passes its value through: no answers")
        mapped: dict[tuple[str, str], Any] = {}
        for n, answer in enumerate(answers or []):
            key = (answer["system"], answer["code"])
            if key in mapped:
                raise fail(answers_at + [str(n)], f"{key[0]}|{key[1]} is mapped twice")
            if answer.get("not_reported"):
                mapped[key] = NOT_REPORTED
                continue
            problem = _fact_value_problem(fact, answer["value"])
            if problem:
                raise fail(answers_at + [str(n), "value"], f"{link_id}: {problem}")
            mapped[key] = answer["value"]
        if kind != "choice":
            probe = {"integer": 1, "boolean": True}[kind]
            if _fact_value_problem(fact, probe):
                raise fail(where + ["fact"], f"a {kind} answer cannot be the fact {fact!r}")
        options = frozenset((o["valueCoding"].get("system"), o["valueCoding"].get("code"))
                            for o in item.get("answerOption", []) if "valueCoding" in o)
        unknown = set(mapped) - options
        if options and unknown:
            raise fail(where + ["answers"], "codings the form does not offer: "
                       + ", ".join(f"{s}|{c}" for s, c in sorted(unknown)))
        items[link_id] = FormItem(link_id, kind, bool(item.get("required")), fact, mapped, options)

    by_fact: dict[str, str] = {}
    for item in items.values():
        if item.fact in by_fact:
            raise fail(["items", item.link_id, "fact"], f"{item.fact!r} is answered by "
                       f"{by_fact[item.fact]!r} already")
        by_fact[item.fact] = item.link_id
    missing = [f for f in REQUIRED_FACTS if f not in by_fact]
    if missing:
        raise fail(["items"], f"the form must reach {' and '.join(REQUIRED_FACTS)}; "
                   f"it does not reach {', '.join(missing)}")
    unmapped = tuple(link for link, i in form_items.items()
                     if link not in items and i.get("type") != "display")
    return Form(questionnaire["url"], questionnaire["version"], questionnaire, items, unmapped, path,
                data["resource"])


def _fact_value_problem(fact: str, value: Any) -> str | None:
    """Why `value` is not one `fact` allows (checked by the facts schema itself), or None."""
    probe = [value] if fact in REPEATING_FACTS else value
    try:
        load_facts({fact: probe})
    except ValidationError as err:
        messages = err.messages.get(fact, err.messages)
        return f"{value!r} is not a value of the fact {fact!r}: {messages}"
    return None


def _read_questionnaire(qpath: Path, path: Path, node: yaml.Node, fail) -> dict:
    try:
        questionnaire = orjson.loads(qpath.read_bytes())
    except OSError:
        raise fail(["resource"], f"no file {qpath.name} beside the mapping") from None
    except orjson.JSONDecodeError as err:
        raise fail(["resource"], f"{qpath.name} is not JSON: {err}") from None
    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        raise fail(["resource"], f"{qpath.name} is not a Questionnaire")
    return questionnaire


def _first_error(messages: Any, trail: list[str] | None = None) -> tuple[list[str], str]:
    """The key path and text of the first problem in marshmallow's nested messages."""
    trail = trail or []
    if isinstance(messages, list):
        if messages and all(isinstance(m, str) for m in messages):
            return trail, " ".join(messages)
        for m in messages:
            return _first_error(m, trail)
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key in ("value", "key") and trail and trail[-1] not in ("answers",):
            # fields.Dict reports under "key"/"value" of the entry: the entry is the place
            return _first_error(value, trail)
        return _first_error(value, trail + [str(key)])
    return trail, str(messages)


def _line(node: yaml.Node | None, key_path: list[str]) -> int:
    """The 1-based line of the deepest node of `key_path` that exists in the composed YAML."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in key_path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key or k.value.replace("-", "_") == key:
                    node, line = v, k.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# ---- what a form can and cannot ask ---------------------------------------------------------------

@dataclass(frozen=True)
class Coverage:
    form: Form
    reached: tuple[str, ...]  # facts the form answers
    not_asked: tuple[str, ...]  # warning signs (facts) the form cannot ask
    unmapped_items: tuple[str, ...]  # the form's items no fact reads
    unmapped_answers: tuple[tuple[str, str, str], ...]  # (linkId, system, code) offered, not mapped


def coverage(form: Form, signs: tuple[str, ...]) -> Coverage:
    """What `form` reaches and cannot ask, given the rules' warning signs
    (service/triage/signs.py: warning_sign_facts)."""
    unmapped_answers = tuple((item.link_id, s, c) for item in form.items.values()
                             for s, c in sorted(item.options - set(item.answers)))
    return Coverage(form, tuple(sorted(form.facts)), tuple(s for s in signs if s not in form.facts),
                    form.unmapped, unmapped_answers)


def coverage_report(cov: Coverage, labels: dict[str, str]) -> str:
    """The coverage of one mapping as Markdown; `labels` names each fact in words."""
    form = cov.form
    word = lambda fact: f"{labels.get(fact, fact)} (`{fact}`)"  # noqa: E731
    lines = [f"# Coverage of {form.canonical}", "", f"Mapping: `{form.path.name}`; "
             f"{len(form.items)} items mapped onto {len(cov.reached)} facts.", "",
             "## Facts the form reaches", ""]
    lines += [f"- {word(f)} <- `{next(i.link_id for i in form.items.values() if i.fact == f)}`"
              for f in cov.reached]
    lines += ["", "## Warning signs the form cannot ask", "",
              "Never read as \"no\": the result names them and its safety net asks about them.", ""]
    lines += [f"- {word(f)}" for f in cov.not_asked] or ["- none"]
    lines += ["", "## Items of the form no fact reads (ignored with a warning)", ""]
    lines += [f"- `{link}`" for link in cov.unmapped_items] or ["- none"]
    lines += ["", "## Answer codings the form offers that the mapping does not know (422)", ""]
    lines += [f"- `{link}`: {s}|{c}" for link, s, c in cov.unmapped_answers] or ["- none"]
    return "\n".join(lines) + "\n"
