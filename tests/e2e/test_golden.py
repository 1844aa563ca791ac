"""Published rule versions never change behaviour: each is held to its freeze (clinical/golden/).

The freeze of 1.0.0 was made from the code before 1.1.0 existed, 1.1.0's when it was published, on
every vignette of 1.0.0's time, the examples and 360 seeded random answer sets (stored as data). Each
answer set is posted with the version pinned; what a clinician and a client see must be what was
frozen. A new version is frozen once, when it is published: python -m tests.golden.freeze X.Y.Z.
"""
from __future__ import annotations

import json

import pytest

from tests.golden import freeze

FROZEN = sorted(p.stem[1:].replace("_", ".") for p in freeze.GOLDEN.glob("v*.json"))


@pytest.fixture(scope="module")
def observed(app):
    client = app.test_client()
    return {version: freeze.run(client, version) for version in FROZEN}


def test_the_freezes_cover_vignettes_examples_and_random_answer_sets():
    ids = [c["id"] for c in freeze.answer_sets()]
    assert {"1.0.0", "1.1.0"} <= set(FROZEN)
    assert len(ids) == len(set(ids))
    assert sum(i.startswith("vignette:") for i in ids) >= 100
    assert sum(i.startswith("example:") for i in ids) >= 6
    assert sum(i.startswith("random:") for i in ids) >= 300


@pytest.mark.parametrize("version", FROZEN)
def test_a_published_version_answers_as_frozen(observed, version):
    frozen = json.loads(freeze.version_file(version).read_text(encoding="utf-8"))["cases"]
    now = observed[version]
    assert now.keys() == frozen.keys()
    for field in ("disposition", "causes", "proposals", "advice", "note"):
        changed = [case for case in frozen if now[case][field] != frozen[case][field]]
        assert not changed, f"{version}: {field} changed for {len(changed)} answer sets, e.g. " \
                            f"{changed[0]}: {frozen[changed[0]][field]!r} -> {now[changed[0]][field]!r}"


@pytest.mark.parametrize("version", FROZEN)
def test_a_published_version_gives_byte_identical_bundles(observed, version):
    """The whole Bundle, timestamps blanked, byte for byte (ids, order, every element)."""
    frozen = json.loads(freeze.version_file(version).read_text(encoding="utf-8"))["cases"]
    changed = [c for c in frozen if observed[version][c]["bundle_sha256"] != frozen[c]["bundle_sha256"]]
    assert not changed, f"{version}: {len(changed)} Bundles differ from the freeze, e.g. {changed[:3]}"
