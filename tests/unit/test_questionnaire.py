"""The Questionnaire data file matches the contract table in DESIGN.md."""
from __future__ import annotations

import re

import pytest

from tests.support import ITEMS, QUESTIONNAIRE, ROOT

DESIGN = ROOT.parent / "shared" / "DESIGN.md"


def design_table() -> dict[str, dict]:
    if not DESIGN.exists():
        pytest.skip("shared/DESIGN.md is not beside this checkout (CI and the dev machines have it)")
    rows = {}
    # Only the table of our own Questionnaire: DESIGN.md also tabulates other hospitals' forms.
    section = DESIGN.read_text().split("## The Questionnaire (contract)", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        m = re.match(r"\| `([a-z0-9.-]+)` \| ([a-z, ]+) \| (.*) \|$", line)
        if not m:
            continue
        link_id, kind, text = m.groups()
        codes = re.findall(r"`([a-z0-9-]+)`", text) if kind.startswith("choice") else []
        rows[link_id] = {"type": kind.split(",")[0].strip(), "required": "required" in kind,
                         "repeats": "repeats" in kind, "codes": codes}
    return rows


def test_every_item_of_the_contract_is_there_exactly():
    table = design_table()
    ours = {}
    for group in QUESTIONNAIRE["item"]:
        ours[group["linkId"]] = {"type": "group", "required": False, "repeats": False, "codes": []}
    for link_id, item in ITEMS.items():
        ours[link_id] = {"type": item["type"], "required": bool(item.get("required")),
                         "repeats": bool(item.get("repeats")),
                         "codes": [o["valueCoding"]["code"] for o in item.get("answerOption", [])]}
    assert ours == table


def test_items_sit_in_their_group():
    for link_id, item in ITEMS.items():
        assert link_id.split(".")[0] == item["group"]
