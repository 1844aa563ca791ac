"""The release note of each rule version lists every disposition change over every stored answer set
(DESIGN.md "Releasing a rule version"), and is regenerated here: a stale note fails."""
from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter

import pytest

from service import clinical
from service.clinical import clinical_data, note_path
from service.triage import release
from service.triage.engine import Registry, evaluate
from tests.support import ROOT


@pytest.fixture(scope="module")
def registry():
    return Registry()


@pytest.fixture(scope="module")
def sets():
    return release.answer_sets(clinical_data())


def test_every_release_note_and_its_stories_are_current(registry):
    notes = sorted(p.name for p in (ROOT / "docs").glob("rules-*.md")
                   if re.fullmatch(r"rules-\d+\.\d+\.\d+\.md", p.name))
    assert notes == sorted(f"rules-{v}.md" for v in release.released(registry)), \
        "a docs/rules-X.Y.Z.md for each version that succeeds another, and no other"
    for version in release.released(registry):
        text, data = release.generate(registry, version, clinical_data())
        hint = "legtriage rules release --write"
        assert note_path(version).read_text(encoding="utf-8") == text, \
            f"docs/rules-{version}.md is stale: {hint}"
        assert release.stories_path(version).read_text(encoding="utf-8") == data, \
            f"service/triage/releases/{version}.json is stale: {hint}"


def test_the_answer_sets_are_every_stored_one(sets):
    stored = json.loads(clinical.ANSWERS.read_text())
    ids = [s.id for s in sets]
    assert len(ids) == len(set(ids))
    assert {c["id"] for c in stored} <= set(ids)
    counts = Counter(i.split(":")[0] for i in ids)
    assert counts["random"] == 360 and counts["example"] == 6 and counts["vignette"] >= 108


@pytest.mark.parametrize("version", Registry().versions[1:])
def test_the_note_lists_every_change_once_with_counts_that_match(registry, version):
    sets = release.answer_sets(clinical_data(), up_to=version)  # stories written for a later version are not its note's
    new = registry.get(version)
    old = registry.get(new.replaces)
    changed = {s.id: (evaluate(old, s.facts).disposition, evaluate(new, s.facts).disposition)
               for s in sets}
    changed = {k: v for k, v in changed.items() if v[0] != v[1]}
    less = sum(b < a for a, b in changed.values())
    text = note_path(version).read_text(encoding="utf-8")
    part = text[text.index("## Every disposition change over the stored answer sets"):]
    listed = re.findall(r"^\| `([^`]+)` \|", part, re.MULTILINE)
    assert sorted(listed) == sorted(changed), "every changed answer set, each exactly once"
    assert f"{len(sets)} answer sets were run" in part
    assert f"{len(changed)} change disposition: {less} less urgent" in part
    assert f"{len(changed) - less} more urgent" in part
    data = json.loads(release.stories_path(version).read_text())
    assert sum(s["answer_sets"] for s in data["less_urgent"]) == less
    headings = re.findall(r"^### `([^`]+)`", part, re.MULTILINE)
    ids = [s["id"] for s in data["less_urgent"]] + [s["id"] for s in data["more_urgent"]]
    assert headings == ids, "the stories in order, less urgent first"
    firsts = [h for h in headings if h in {s["id"] for s in data["less_urgent"]}]
    assert headings[:len(firsts)] == firsts


def test_the_generator_is_generic_over_version_pairs(registry, sets):
    """Any pair: 1.0.0 as if it succeeded 1.1.0 shows the same changes, the other way round."""
    forward = release.stories(registry.get("1.0.0"), registry.get("1.1.0"), sets)
    backward_module = dataclasses.replace(registry.get("1.0.0"), version="9.9.9", replaces="1.1.0")
    backward = release.stories(registry.get("1.1.0"), backward_module, sets)
    count = lambda found, less: sum(len(s.sets) for s in found if s.less_urgent == less)  # noqa: E731
    assert count(forward, True) == count(backward, False) > 0
    assert count(forward, False) == count(backward, True) > 0
    assert all(s.id.startswith(f"{s.old.code}-to-{s.new.code}-") for s in backward)


def test_story_ids_do_not_depend_on_which_answer_sets_are_stored(registry, sets):
    """A story's id is its change and its reasons: a sign-off stays valid when sets are added."""
    old, new = registry.get("1.0.0"), registry.get("1.1.0")
    full = {s.id for s in release.stories(old, new, sets)}
    half = {s.id for s in release.stories(old, new, sets[::2])}
    assert half <= full and half
