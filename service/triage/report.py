"""The rule table of a rule module for clinical review (`legtriage rules table [VERSION]`).

Each rule with its condition in clinical words, the disposition floor, the causes and proposals it
raises, the passages it cites, and what it adds beyond the sources. No code reading needed.

    legtriage rules diff 1.0.0 1.1.0

prints what changed between two versions for sign-off: rules added, removed and changed (condition,
floor, causes, proposals, citations), the steps after the rules, and every vignette whose
disposition or proposals change (the first part of docs/rules-X.Y.Z.md, which
service/triage/release.py completes with every disposition change over all stored answer sets).
"""
from __future__ import annotations

from collections import Counter

from service.triage import review
from service.triage.engine import Registry, evaluate
from service.triage.model import Disposition
from service.triage.reads import facts_read, random_facts
from service.triage.review import ClinicalData
from service.triage.rules import RuleModule


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render(module: RuleModule, terms: dict) -> str:
    label = lambda section, key: terms[section][key]["text"]  # noqa: E731
    lines = [
        f"# {module.title} {module.version} ({module.status}, {module.date})",
        "",
        f"{len(module.rules)} rules. The disposition is the highest floor among the rules that fire; "
        "an unanswered question never counts as 'no'.",
        "",
        "| # | rule | condition | floor | causes (risk) | proposals | sources | beyond the sources |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, rule in enumerate(module.rules, 1):
        causes = ", ".join(f"{label('conditions', c)} ({r.code})" for c, r in rule.causes) or "-"
        proposals = ", ".join(label("procedures", p) for p in rule.proposals) or "-"
        cites = "; ".join(f'{c.file}: "{c.quote}"' for c in rule.cites)
        lines.append(f"| {n} | {_cell(rule.title)} (`{rule.id}`) | {_cell(rule.condition)} | "
                     f"{rule.floor.code} | {_cell(causes)} | {_cell(proposals)} | {_cell(cites)} | "
                     f"{_cell(rule.common_sense or '-')} |")
    lines += ["", "Main referral by disposition: " + ", ".join(
        f"{d.code} → {label('procedures', key)}" for d, key in module.main_referral.items()),
        "", "## Advice", ""]
    for adv in module.self_care_advice:
        lines.append(f"- self-care: {adv.text} ({', '.join(c.file for c in adv.cites)})")
    for adv in module.safety_net_advice:
        lines.append(f"- always: {adv.text} ({', '.join(c.file for c in adv.cites)})")
    return "\n".join(lines) + "\n"


# ---- the diff of two versions ---------------------------------------------------------------------

def _aspects(rule, label) -> dict[str, str]:
    """What a clinician compares of one rule, as text."""
    return {
        "title": rule.title,
        "condition": " ".join(rule.condition.split()),
        "floor": rule.floor.code,
        "causes": ", ".join(f"{label('conditions', c)} ({r.code})" for c, r in rule.causes) or "-",
        "proposals": ", ".join(label("procedures", p) for p in rule.proposals) or "-",
        "citations": "; ".join(f'{c.file}: "{c.quote}"' for c in rule.cites),
        "beyond the sources": rule.common_sense or "-",
        "answers its rationale lists (uses)": ", ".join(rule.uses),
    }


# A module's steps after its rules, and what the engine does where a module has none.
STEPS = (("order of the causes", "rank_causes", "highest risk first"),
         ("proposals", "choose_proposals", "every proposal of every rule that fired"),
         ("advice", "advise", "self-care advice for self-care results, the safety net always"))


def _definitions(module: RuleModule) -> dict[str, str]:
    """The module's documented helper predicates (not rules): name -> docstring."""
    predicates = {rule.when for rule in module.rules}
    steps = {getattr(module, name) for _, name, _ in STEPS}
    return {name: " ".join(fn.__doc__.split()) for name, fn in vars(module.module).items()
            if callable(fn) and getattr(fn, "__module__", None) == module.module.__name__
            and fn.__doc__ and fn not in predicates and fn not in steps and not name.startswith("_")
            and name != "yes"}


def _status(module: RuleModule) -> str:
    if module.retired:
        return (f"{module.version} published {module.date}, retired {module.retired}"
                + (f" (superseded by {module.superseded_by})" if module.superseded_by else ""))
    return f"{module.version} {module.status} since {module.date}"


def _step(module: RuleModule, name: str, plain: str) -> str:
    fn = getattr(module, name)
    return " ".join((fn.__doc__ or "").split()) if fn is not None else plain


def _wrong_uses(module: RuleModule) -> list[tuple[str, list[str], list[str]]]:
    fact_sets = list(random_facts(6000))
    out = []
    for rule in module.rules:
        read = facts_read(rule.when, fact_sets)
        if read != set(rule.uses):
            out.append((rule.id, sorted(set(rule.uses) - read), sorted(read - set(rule.uses))))
    return out


def _up_to(registry: Registry, version: str):
    """The registry as it was when `version` was the newest (for a diff that stays what it was)."""
    from types import SimpleNamespace
    modules = {v: m for v, m in registry.modules.items()
               if tuple(map(int, v.split("."))) <= tuple(map(int, version.split(".")))}
    return SimpleNamespace(modules=modules, versions=list(modules))


def diff(old: RuleModule, new: RuleModule, data: ClinicalData) -> str:
    """What changed from `old` to `new`; the stories are data's vignettes, the stored answer sets
    its answers.json (service/clinical.py reads both)."""
    terms = data.terms
    label = lambda section, key: terms[section][key]["text"]  # noqa: E731
    old_rules, new_rules = {r.id: r for r in old.rules}, {r.id: r for r in new.rules}
    added = [r for i, r in new_rules.items() if i not in old_rules]
    removed = [r for i, r in old_rules.items() if i not in new_rules]
    changed = []
    for rule_id in (i for i in new_rules if i in old_rules):
        a, b = _aspects(old_rules[rule_id], label), _aspects(new_rules[rule_id], label)
        if a != b:
            changed.append((new_rules[rule_id], [(k, a[k], b[k]) for k in a if a[k] != b[k]]))

    # the stories of the two versions (a later version's own stories are not part of this diff)
    cases = [c for c in data.vignettes
             if review.applies(c, old.version) or review.applies(c, new.version)]
    replaced = {c["replaces"] for c in cases if "replaces" in c}
    stories = []
    for case in cases:
        if case["id"] in replaced:
            continue
        r_old, r_new = review.assess(old, case), review.assess(new, case)
        p_old, p_new = [p.key for p in r_old.proposals], [p.key for p in r_new.proposals]
        if r_old.disposition != r_new.disposition or set(p_old) != set(p_new):
            stories.append((case, r_old, r_new, p_old, p_new))
    moved = [s for s in stories if s[1].disposition != s[2].disposition]
    up = sum(s[2].disposition > s[1].disposition for s in moved)
    ran = len([c for c in cases if c["id"] not in replaced])

    out = [f"# Rule module {new.version} compared with {old.version}", ""]
    note = getattr(new.module, "RELEASE_NOTE", "")
    if note:
        out += ["## Release note", "", note, ""]
    out += ["## Summary", "",
            f"- Rules: {len(old.rules)} in {old.version}, {len(new.rules)} in {new.version}: "
            f"{len(added)} added, {len(removed)} removed, {len(changed)} changed, "
            f"{len(new.rules) - len(added) - len(changed)} unchanged.",
            f"- Vignettes: {ran} stories run with both versions; {len(moved)} change disposition "
            f"({up} more urgent, {len(moved) - up} less urgent), "
            f"{sum(set(s[3]) != set(s[4]) for s in stories)} change proposals.",
            f"- Status: {_status(old)}; {_status(new)}; every published version stays pinnable "
            "with `rules-version`.", "",
            "## Sign-off", "",
            "Clinical sign-off is the deploying hospital's data, not part of this note: a file in "
            "`LEGTRIAGE_SIGNOFF_DIR` with a decision for every less urgent story of \"Every "
            "disposition change over the stored answer sets\" below (`mappings/signoff/README.md`). "
            "The Library of a version says whether it is signed.", "",
            "## Rules added", ""]
    for rule in added:
        aspects = _aspects(rule, label)
        out += [f"### `{rule.id}`: {rule.title}", "", "| aspect | " + new.version + " |", "|---|---|"]
        out += [f"| {k} | {_cell(v)} |" for k, v in aspects.items() if k != "title"] + [""]
    if not added:
        out += ["None.", ""]
    out += ["## Rules removed", ""]
    out += [f"- `{r.id}`: {r.title}" for r in removed] or ["None."]
    out += ["", "## Rules changed", ""]
    for rule, rows in changed:
        out += [f"### `{rule.id}`: {rule.title}", "",
                f"| aspect | {old.version} | {new.version} |", "|---|---|---|"]
        out += [f"| {k} | {_cell(a)} | {_cell(b)} |" for k, a, b in rows] + [""]
    out += ["## Definitions the rules share", "",
            "Named parts of conditions (a change here changes every rule that uses it).", "",
            f"| definition | {old.version} | {new.version} |", "|---|---|---|"]
    old_defs, new_defs = _definitions(old), _definitions(new)
    for name in list(old_defs) + [n for n in new_defs if n not in old_defs]:
        a, b = old_defs.get(name, "-"), new_defs.get(name, "-")
        if a != b:
            out.append(f"| `{name}` | {_cell(a)} | {_cell(b)} |")
    out += ["", "## After the rules", "", f"| step | {old.version} | {new.version} |", "|---|---|---|"]
    out += [f"| {label_} | {_cell(_step(old, name, plain))} | {_cell(_step(new, name, plain))} |"
            for label_, name, plain in STEPS]
    out += ["", f"### Advice texts of {new.version}", ""]
    texts = getattr(new.module, "ADVICE", new.self_care_advice + new.safety_net_advice)
    old_texts = {a.text for a in old.self_care_advice + old.safety_net_advice}
    for adv in texts:
        tag = "" if adv.text in old_texts else " (new)"
        extra = f" Beyond the sources: {adv.common_sense}" if adv.common_sense else ""
        out.append(f"- {adv.text}{tag} ({', '.join(sorted({c.file for c in adv.cites}))}){extra}")
    out += ["", f"## {old.version}'s rationale lists the wrong answers for these rules", "",
            f"The rationale a clinician sees lists a rule's `uses`. Recorded over 6,000 fact sets, "
            f"these rules of {old.version} declare facts they never read or read facts they do not "
            f"declare. {old.version} stays as published; in {new.version} every rule's `uses` is "
            "what its predicate reads (a test records it).", "",
            "| rule | declared, not read | read, not declared |", "|---|---|---|"]
    out += [f"| `{i}` | {', '.join(a) or '-'} | {', '.join(b) or '-'} |" for i, a, b in _wrong_uses(old)]
    out += ["", "## Vignettes whose disposition or proposals change", "",
            "Less urgent results first: they need the closest look.", "",
            f"| vignette | finding | story | {old.version} | {new.version} | proposals dropped | "
            "proposals added |", "|---|---|---|---|---|---|---|"]
    def order(story):
        case, r_old, r_new = story[:3]
        moved_by = r_new.disposition - r_old.disposition
        return (moved_by if moved_by else 9, case.get("finding", 99), case["id"])
    for case, r_old, r_new, p_old, p_new in sorted(stories, key=order):
        arrow = "" if r_old.disposition == r_new.disposition else \
            (" ↑" if r_new.disposition > r_old.disposition else " ↓")
        dropped = ", ".join(label("procedures", p) for p in p_old if p not in p_new) or "-"
        gained = ", ".join(label("procedures", p) for p in p_new if p not in p_old) or "-"
        out.append(f"| `{case['id']}` | {case.get('finding', '-')} | {_cell(case['title'])} | "
                   f"{r_old.disposition.code} | **{r_new.disposition.code}**{arrow} | {dropped} | "
                   f"{gained} |")
    if data.stored:
        sets = [s for s in data.stored if not s.as_response]
        moves = Counter((evaluate(old, s.facts).disposition, evaluate(new, s.facts).disposition)
                        for s in sets)
        levels = sorted(Disposition, reverse=True)
        out += ["", f"## Dispositions on the {len(sets)} stored answer sets (clinical/golden)", "",
                f"Rows: {old.version}; columns: {new.version}.", "",
                "| | " + " | ".join(d.code for d in levels) + " |", "|---" * (len(levels) + 1) + "|"]
        out += [f"| {a.code} | " + " | ".join(str(moves[(a, b)]) for b in levels) + " |" for a in levels]
    out += ["", "## Vignette figures", "",
            "Under-triage: a less urgent disposition than the vignette expects, counted by the "
            "expected disposition; over-triage: a more urgent one.", "",
            review.figures_table(review.all_figures(_up_to(Registry(), new.version), cases, data)).rstrip()]
    return "\n".join(out) + "\n"
