"""Typed clinical facts: what the rules reason about.

Every fact is optional: None means "not reported" (the question was not answered), which is never the
same as an explicit "no" (False). Repeating answers are frozensets of codes.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields as mf, missing, post_load, validate

SIDES = ("left", "right", "both")
LOCATIONS = ("toes", "sole", "foot", "ankle-heel", "shin", "calf", "knee", "thigh-front-outer",
             "thigh-back", "buttock", "whole-leg")
ONSETS = ("sudden", "gradual")
DURATIONS = ("minutes", "hours", "days", "weeks", "months")
PATTERNS = ("constant", "comes-and-goes", "positional")
PROGRESSIONS = ("improving", "stable", "worsening", "ascending")
SENSATIONS = ("tingling", "burning", "cold", "pain", "itching", "crawling", "heaviness", "cramps")
DIABETES = ("yes", "no", "unknown")
MEDICATIONS = ("chemotherapy", "hiv", "seizure", "heart-bp", "anti-infective", "none")


@dataclass(frozen=True)
class Facts:
    # about the numbness
    side: str | None = None
    locations: frozenset[str] | None = None
    onset: str | None = None
    duration: str | None = None
    pattern: str | None = None
    relieved_by_moving: bool | None = None
    progression: str | None = None
    sensations: frozenset[str] | None = None
    # red flags
    weakness: bool | None = None
    face_or_arm_involved: bool | None = None
    speech_difficulty: bool | None = None
    confusion: bool | None = None
    vision_change: bool | None = None
    dizziness_or_incoordination: bool | None = None
    sudden_severe_headache: bool | None = None
    bladder_or_bowel_change: bool | None = None
    pain_shooting_down_both_legs: bool | None = None
    breathless_or_chest_pain: bool | None = None
    recent_injury: bool | None = None
    walking_or_balance_difficulty: bool | None = None
    # circulation
    one_leg_swollen: bool | None = None
    leg_warm_red_or_discoloured: bool | None = None
    calf_pain_standing_or_walking: bool | None = None
    claudication: bool | None = None
    leg_cold_pale_or_changed: bool | None = None
    toes_change_colour_in_cold: bool | None = None
    # back
    low_back_pain: bool | None = None
    pain_radiating_down_one_leg: bool | None = None
    # health and circumstances
    age: int | None = None
    diabetes: str | None = None
    no_recent_checkup: bool | None = None
    heavy_alcohol_use: bool | None = None
    b12_deficiency_risk: bool | None = None
    thyroid_disease: bool | None = None
    multiple_sclerosis: bool | None = None
    cancer_history: bool | None = None
    medications: frozenset[str] | None = None
    toxin_exposure: bool | None = None
    recent_immobility: bool | None = None
    recent_strain: bool | None = None
    tight_clothing: bool | None = None
    cold_exposure: bool | None = None

    def known(self) -> dict[str, Any]:
        """The facts that were reported, by name."""
        # The instance dict holds exactly the fields, in their order (a dataclass without slots sets
        # them in __init__): a third of the cost of dataclasses.fields() and getattr, per request.
        return {name: value for name, value in self.__dict__.items() if value is not None}


FACT_NAMES = tuple(f.name for f in fields(Facts))


def _codes(allowed: tuple[str, ...]) -> mf.List:
    return mf.List(mf.String(validate=validate.OneOf(allowed)), allow_none=True,
                   validate=validate.Length(min=1))


class _CodedFactsSchema(Schema):
    """Domain ranges and allowed codes of the non-boolean facts; builds a Facts object."""

    class Meta:
        unknown = RAISE

    side = mf.String(allow_none=True, validate=validate.OneOf(SIDES))
    locations = _codes(LOCATIONS)
    onset = mf.String(allow_none=True, validate=validate.OneOf(ONSETS))
    duration = mf.String(allow_none=True, validate=validate.OneOf(DURATIONS))
    pattern = mf.String(allow_none=True, validate=validate.OneOf(PATTERNS))
    progression = mf.String(allow_none=True, validate=validate.OneOf(PROGRESSIONS))
    sensations = _codes(SENSATIONS)
    age = mf.Integer(allow_none=True, strict=True, validate=validate.Range(0, 130))
    diabetes = mf.String(allow_none=True, validate=validate.OneOf(DIABETES))
    medications = _codes(MEDICATIONS)

    @post_load
    def make_facts(self, data: dict[str, Any], **kwargs: Any) -> Facts:
        for name in ("locations", "sensations", "medications"):
            if data.get(name) is not None:
                data[name] = frozenset(data[name])
        return Facts(**data)


class StrictBoolean(mf.Boolean):
    """True or False only: marshmallow's Boolean would take 1, "yes" or "on"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# Every remaining fact is a plain boolean.
FactsSchema = type("FactsSchema", (_CodedFactsSchema,), {
    name: StrictBoolean(allow_none=True)
    for name in FACT_NAMES if name not in _CodedFactsSchema._declared_fields})

_SCHEMA = FactsSchema()

# load_facts passes partial=True so that marshmallow skips the facts not reported (most of the 43 on
# a typical request; docs/performance.md). That drops no check only while no fact is required
# and none has a load default: a missing value is then never an error and never loaded. Say so here,
# at import, rather than let a later `required=True` go silently unchecked.
_NOT_OPTIONAL = [name for name, f in _SCHEMA.load_fields.items()
                 if f.required or f.load_default is not missing]
if _NOT_OPTIONAL:
    raise RuntimeError(f"facts {_NOT_OPTIONAL} are required or have a default: load_facts' "
                       "partial=True would skip their check; drop it")


# load_facts loads each fact on its own and reuses the result (below). That holds only while the schema
# checks each fact alone: a pre_load or validates_schema hook could read two facts together and would be
# skipped. Say so at import, like the check above.
def _other_hooks(schema: Schema) -> dict[str, list[str]]:
    """The schema's hooks but make_facts (which only builds Facts): any of them may read two facts."""
    hooks = {tag: [name for name, *_ in found if name != "make_facts"] for tag, found in schema._hooks.items()}
    return {tag: names for tag, names in hooks.items() if names}


if _other_hooks(_SCHEMA):
    raise RuntimeError(f"the facts schema has the hooks {_other_hooks(_SCHEMA)}: load_facts loads each "
                       "fact on its own (a hook reading several facts would be skipped); review it first")


class InvalidFacts(ValidationError):
    """Fact values outside their domain (a marshmallow ValidationError: `messages` by fact name)."""


def load_facts(data: Mapping[str, Any]) -> Facts:
    """Validate a mapping of fact name -> value and build Facts; raises InvalidFacts.

    Every fact is checked by the schema on its own (no check spans two facts), and the same few
    values come back call after call (a code of a short list, yes or no, an age), so each distinct
    (fact, value) is loaded by the schema once and its result reused: the per-call load cost ~70 µs
    (issue 21). Anything that is not a plain value, or that the schema refuses, goes through the
    schema's full load, which raises with every fact's messages.
    """
    try:
        return Facts(**{name: _loaded(name, type(value), tuple(value) if type(value) is list else value)
                        for name, value in data.items()})
    except (ValidationError, TypeError):  # refused, or a value that cannot be a key (a dict)
        pass
    try:
        return _SCHEMA.load(dict(data), partial=True)
    except ValidationError as err:
        raise InvalidFacts(err.messages) from None


@lru_cache(maxsize=1024)
def _loaded(name: str, kind: type, key: Any) -> Any:
    """What the schema makes of one fact's value (`key`: the value, a list as a tuple; `kind` its
    type, so that 1, 1.0 and True are told apart); raises ValidationError as the schema does."""
    value = list(key) if kind is list else key
    return getattr(_SCHEMA.load({name: value}, partial=True), name)


__all__ = ["Facts", "FACT_NAMES", "FactsSchema", "InvalidFacts", "load_facts", "ValidationError"]
