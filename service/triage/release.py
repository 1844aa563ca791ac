"""The release note of a rule version: legtriage rules release [X.Y.Z ...] [--write]

For a version and the one it succeeds (`REPLACES`), every stored answer set is run with both: the
answer sets frozen in clinical/golden/answers.json (vignettes, examples and seeded random sets) and
the vignettes written since (clinical/vignettes). Every disposition change is listed, none left out,
grouped into stories a clinician can read: one story per change of disposition (from -> to) and the
reasons each version gives for its disposition (the titles of the rules that set it). Less urgent
changes come first. Each story has a stable id (from, to and a digest of those reasons), which a
hospital's sign-off file names with its decision (service/triage/signoff.py).

    legtriage rules release 1.1.0      # print docs/rules-1.1.0.md
    legtriage rules release --write    # write docs/rules-X.Y.Z.md of every version with a
                                       # predecessor, and the stories' ids
                                       # (service/triage/releases/X.Y.Z.json)

The note starts with the comparison of the two versions' rules (`legtriage rules diff`).
Generic over versions: nothing here names one. Deterministic: no dates or times of the run.
The answer sets come in as plain data (review.ClinicalData, read by service/clinical.py).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from service.triage import report
from service.triage.engine import Registry, evaluate
from service.triage.facts import Facts
from service.triage.model import Assessment, Disposition
from service.triage.review import AnswerSet, ClinicalData
from service.triage.rules import RuleModule

STORIES_DIR = Path(__file__).with_name("releases")  # shipped with the service (sign-off checks)


@dataclass
class Story:
    id: str
    old: Disposition
    new: Disposition
    old_reasons: tuple[str, ...]  # rule titles that set the old disposition
    new_reasons: tuple[str, ...]
    sets: list[tuple[AnswerSet, Assessment, Assessment]]

    @property
    def less_urgent(self) -> bool:
        return self.new < self.old


def answer_sets(data: ClinicalData, up_to: str | None = None) -> list[AnswerSet]:
    """Every stored answer set: clinical/golden/answers.json, then the vignettes written since. With
    `up_to`, the vignettes written for a later version are left out (a story whose `versions:` are all
    newer), so a version's release note, and the sign-off that rests on it, stay as they were when
    later versions add stories."""
    out = list(data.stored)
    known = {s.id for s in data.stored}
    for case in data.vignettes:
        if up_to is not None and "versions" in case and \
                all(_semver(v) > _semver(up_to) for v in case["versions"]):
            continue
        if f"vignette:{case['id']}" not in known:
            out.append(AnswerSet(f"vignette:{case['id']}", "clinical/vignettes, written since",
                                 case["facts"]))
    return out


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _reasons(module: RuleModule, a: Assessment) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.rule.title for f in a.findings if f.rule.floor == a.disposition))


def _reason_ids(a: Assessment) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.rule.id for f in a.findings if f.rule.floor == a.disposition))


def stories(old: RuleModule, new: RuleModule, sets: list[AnswerSet]) -> list[Story]:
    """Every answer set whose disposition differs, in stories; less urgent first."""
    grouped: dict[tuple, Story] = {}
    for s in sets:
        a_old, a_new = evaluate(old, s.facts), evaluate(new, s.facts)
        if a_old.disposition == a_new.disposition:
            continue
        key = (a_old.disposition, a_new.disposition, _reason_ids(a_old), _reason_ids(a_new))
        if key not in grouped:
            digest = hashlib.sha256(json.dumps([k if isinstance(k, tuple) else int(k) for k in key])
                                    .encode()).hexdigest()[:6]
            grouped[key] = Story(f"{a_old.disposition.code}-to-{a_new.disposition.code}-{digest}",
                                 a_old.disposition, a_new.disposition, _reasons(old, a_old),
                                 _reasons(new, a_new), [])
        grouped[key].sets.append((s, a_old, a_new))
    return sorted(grouped.values(), key=lambda st: (
        not st.less_urgent, int(st.new) - int(st.old) if st.less_urgent else 0,
        -int(st.old), -len(st.sets), st.id))


def _words(items: tuple[str, ...], none: str) -> str:
    return "; ".join(f"\u201c{i}\u201d" for i in items) if items else none


def _common_answers(facts: list[Facts]) -> tuple[tuple[str, object], ...]:
    first = facts[0].known()
    return tuple((k, v) for k, v in first.items() if all(f.known().get(k) == v for f in facts[1:]))


def render(old: RuleModule, new: RuleModule, data: ClinicalData) -> tuple[str, list[Story]]:
    sets = answer_sets(data, up_to=new.version)
    found = stories(old, new, sets)
    wording = data.wording
    display = data.displays
    origins = Counter(s.origin for s in sets)
    changed = sum(len(st.sets) for st in found)
    less = [st for st in found if st.less_urgent]
    more = [st for st in found if not st.less_urgent]
    moves = Counter((st.old, st.new) for st in found for _ in st.sets)

    out = [report.diff(old, new, data).rstrip(), "",
           "## Every disposition change over the stored answer sets", "",
           f"{len(sets)} answer sets were run with {old.version} and {new.version}: "
           + ", ".join(f"{n} from {origin}" for origin, n in sorted(origins.items())) + ". "
           f"{changed} change disposition: {sum(len(st.sets) for st in less)} less urgent in "
           f"{len(less)} stories, {sum(len(st.sets) for st in more)} more urgent in {len(more)} "
           "stories. Every one is listed below; less urgent changes first, because each of them "
           "needs a clinician's decision.", "",
           "| from | to | answer sets | stories |", "|---|---|---|---|"]
    for (a, b), n in sorted(moves.items(), key=lambda kv: (kv[0][1] > kv[0][0], -kv[0][0], kv[0][1])):
        out.append(f"| {display[a.code]} | {display[b.code]} | {n} | "
                   f"{sum(1 for st in found if (st.old, st.new) == (a, b))} |")
    out += ["", "### Sign-off", "",
            f"A hospital signs {new.version} off with a file `{new.version}.yaml` in "
            "`LEGTRIAGE_SIGNOFF_DIR` (format: `mappings/signoff/README.md`) that has a decision, "
            "accept or reject with the reason, for each less urgent story below by its id: "
            + (", ".join(f"`{st.id}`" for st in less) if less else "none (no change is less urgent)")
            + ".", ""]
    for st in found:
        direction = "less urgent" if st.less_urgent else "more urgent"
        out += [f"### `{st.id}`: {display[st.old.code]} \u2192 {display[st.new.code]} "
                f"({direction}, {len(st.sets)} answer set{'s' if len(st.sets) != 1 else ''})", "",
                f"{old.version} said {display[st.old.code].lower()} because of: "
                f"{_words(st.old_reasons, 'no rule (the default)')}. {new.version} says "
                f"{display[st.new.code].lower()} because of: "
                f"{_words(st.new_reasons, 'no rule (the default)')}.", ""]
        common = wording.answers(_common_answers([s.facts for s, _, _ in st.sets]))
        if len(st.sets) > 1 and common:
            out += [f"Common to all of them: {common}", ""]
        out += ["| answer set | the answers |", "|---|---|"]
        for s, _, _ in sorted(st.sets, key=lambda t: t[0].id):
            out.append(f"| `{s.id}` | {report._cell(wording.answers(tuple(s.facts.known().items())) or '-')} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n", found


def stories_data(version: str, found: list[Story]) -> dict:
    """What the service needs at start to check a sign-off file: the less urgent stories' ids."""
    return {"version": version,
            "less_urgent": [{"id": st.id, "from": st.old.code, "to": st.new.code,
                             "answer_sets": len(st.sets)} for st in found if st.less_urgent],
            "more_urgent": [{"id": st.id, "from": st.old.code, "to": st.new.code,
                             "answer_sets": len(st.sets)} for st in found if not st.less_urgent]}


def stories_path(version: str) -> Path:
    return STORIES_DIR / f"{version}.json"


def generate(registry: Registry, version: str, data: ClinicalData) -> tuple[str, str]:
    """(the release note, the stories' JSON) of a version that succeeds another."""
    new = registry.get(version)
    if not new.replaces:
        raise ValueError(f"{version} succeeds no version: it has no release note")
    text, found = render(registry.get(new.replaces), new, data)
    data = json.dumps(stories_data(version, found), indent=1) + "\n"
    return text, data


def released(registry: Registry) -> list[str]:
    return [v for v, m in registry.modules.items() if m.replaces]
