"""Clinical sign-off of rule versions: data the deploying hospital owns (DESIGN.md "Releasing a rule
version").

One YAML file per version in LEGTRIAGE_SIGNOFF_DIR (default mappings/signoff/ of the checkout, which
the project ships empty: nobody here is the hospital's clinical safety officer), named
`X.Y.Z.yaml`, in the format of mappings/signoff/README.md: the version, the reviewer's name and
role, the date, and for each less urgent story of the version's release note (docs/rules-X.Y.Z.md;
their ids are in service/triage/releases/X.Y.Z.json) a decision, accept or reject, with the reason.

Checked at start: a file the service cannot read stops it, with a message naming the file, the line
and the story. A valid file signs its version only when every less urgent story is accepted: a
story without a decision, or any reject, leaves the version unsigned (the Library says why).
No Flask.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

STORIES_DIR = Path(__file__).with_name("releases")
DECISIONS = ("accept", "reject")
_VERSION_FILE = re.compile(r"^(\d+\.\d+\.\d+)\.ya?ml\Z")


class SignoffError(RuntimeError):
    """A sign-off file the service cannot run with; the message names the file, line and story."""


class UnsignedRulesVersion(LookupError):
    """LEGTRIAGE_REQUIRE_SIGNOFF is on and the version asked for has no clinical sign-off."""

    def __init__(self, version: str, why: str, asked_by: str | None = None):
        super().__init__(version)
        self.version, self.why, self.asked_by = version, why, asked_by


class ReviewerSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1))
    role = fields.String(required=True, validate=validate.Length(min=1))


class DecisionSchema(Schema):
    class Meta:
        unknown = RAISE

    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    reason = fields.String(required=True, validate=validate.Length(min=1))


class SignoffSchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.String(required=True)
    reviewer = fields.Nested(ReviewerSchema, required=True)
    date = fields.Date(required=True)
    decisions = fields.Dict(keys=fields.String(), values=fields.Nested(DecisionSchema),
                            load_default=dict)


@dataclass(frozen=True)
class Signoff:
    """One version's sign-off file, read and checked against its release note's stories."""

    version: str
    file: str
    reviewer: str
    role: str
    date: date
    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()  # (story, reason)
    undecided: tuple[str, ...] = ()

    @property
    def signed(self) -> bool:
        return not self.rejected and not self.undecided

    def why_not(self) -> str:
        parts = []
        if self.rejected:
            parts.append("rejected: " + "; ".join(f"{s} ({r})" for s, r in self.rejected))
        if self.undecided:
            parts.append("no decision for: " + ", ".join(self.undecided))
        return f"{self.file} by {self.reviewer}, {self.role}: " + "; ".join(parts)


@dataclass(frozen=True)
class Signoffs:
    """The sign-off of every version that has a file; a version without one is unsigned."""

    directory: Path
    by_version: dict[str, Signoff] = field(default_factory=dict)

    def signed(self, version: str) -> Signoff | None:
        found = self.by_version.get(version)
        return found if found is not None and found.signed else None

    def why_unsigned(self, version: str) -> str:
        found = self.by_version.get(version)
        if found is None:
            return f"no sign-off file {version}.yaml in the sign-off folder"
        return found.why_not()


def less_urgent_stories(version: str, stories_dir: Path = STORIES_DIR) -> list[str] | None:
    """The ids of the less urgent stories of a version's release note; [] for a first version;
    None when the version succeeds another but its stories were never generated."""
    path = stories_dir / f"{version}.json"
    if not path.exists():
        return None
    return [s["id"] for s in json.loads(path.read_text(encoding="utf-8"))["less_urgent"]]


def _lines(node: yaml.Node, path: tuple = ()) -> Iterable[tuple[tuple, int]]:
    """(path of keys, 1-based line) of every key and value in a composed YAML document."""
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            yield sub, key.start_mark.line + 1
            for inner, line in _lines(value, sub):
                if inner != sub:
                    yield inner, line


def _flatten(messages: Any, path: tuple = ()) -> Iterable[tuple[tuple, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "value" and path and path[-2:-1] == ("decisions",):  # Dict field: value errors
                yield from _flatten(value, path)
            elif key == "key":
                yield from _flatten(value, path)
            else:
                yield from _flatten(value, path + (key,))
    elif isinstance(messages, list):
        yield path, " ".join(str(m) for m in messages)
    else:
        yield path, str(messages)


def read_file(path: Path, published: dict[str, Any], stories_dir: Path = STORIES_DIR) -> Signoff:
    """Read one sign-off file; SignoffError names the file, the line and the story."""
    name = path.name
    match = _VERSION_FILE.match(name)
    if not match:
        raise SignoffError(f"{path}: a sign-off file is named after its version, X.Y.Z.yaml")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SignoffError(f"{path}, line {mark.line + 1 if mark else '?'}: not YAML: "
                           f"{getattr(err, 'problem', err)}") from None
    lines = dict(_lines(node)) if node is not None else {}
    if not isinstance(data, dict):
        raise SignoffError(f"{path}, line 1: a mapping with version, reviewer, date and decisions")

    def fail(where: tuple, what: str) -> SignoffError:
        line = next((lines[where[:n]] for n in range(len(where), -1, -1) if where[:n] in lines), 1)
        story = f", story {where[1]}" if len(where) > 1 and where[0] == "decisions" else ""
        return SignoffError(f"{path}, line {line}{story}: {'.'.join(map(str, where)) or 'file'}: {what}")

    try:
        loaded = SignoffSchema().load(data)
    except ValidationError as err:
        where, what = sorted(_flatten(err.messages), key=lambda p: lines.get(p[0], 0))[0]
        raise fail(where, what) from None
    version = loaded["version"]
    if version != match.group(1):
        raise fail(("version",), f"{version!r} in a file named {name}: the file signs {match.group(1)}")
    if version not in published:
        raise fail(("version",), f"{version} is not a published rule version "
                                 f"(published: {', '.join(published)})")
    stories = less_urgent_stories(version, stories_dir)
    if stories is None:
        if published[version].replaces:
            raise fail(("version",), f"the release note's stories of {version} are missing "
                                     "(legtriage rules release --write)")
        stories = []
    decisions = loaded["decisions"]
    for story in decisions:
        if story not in stories:
            raise fail(("decisions", story), "not a less urgent story of the release note of "
                                             f"{version} (docs/rules-{version}.md): "
                                             + (", ".join(stories) or "it has none"))
    return Signoff(
        version, name, loaded["reviewer"]["name"], loaded["reviewer"]["role"], loaded["date"],
        tuple(s for s in stories if decisions.get(s, {}).get("decision") == "accept"),
        tuple((s, decisions[s]["reason"]) for s in stories
              if decisions.get(s, {}).get("decision") == "reject"),
        tuple(s for s in stories if s not in decisions))


def load(directory: Path, published: dict[str, Any], stories_dir: Path = STORIES_DIR) -> Signoffs:
    """Every sign-off file of the folder (README.md and other non-YAML files are left alone)."""
    found: dict[str, Signoff] = {}
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.suffix not in (".yaml", ".yml"):
                continue
            signoff = read_file(path, published, stories_dir)
            if signoff.version in found:
                raise SignoffError(f"{path}: {signoff.version} is signed off twice "
                                   f"({found[signoff.version].file} and {path.name})")
            found[signoff.version] = signoff
    else:
        raise SignoffError(f"LEGTRIAGE_SIGNOFF_DIR: {directory} is not a folder")
    return Signoffs(directory, found)
