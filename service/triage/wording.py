"""What a person reads of a result, in clinical words (DESIGN.md "Explanations").

A rule module whose `explanations` is "clinical" gets these texts: the reason (the rule's title),
the answers behind it said with the Questionnaire's own question and answer texts ("Reported:
difficulty speaking or understanding speech."), and the source by its title with the quoted passage.
No rule ids, linkIds, `field = value` pairs or file names: those travel as data, in the
triage-evidence extension (service/fhir_io/outgoing.py). Modules whose `explanations` is "legacy"
(1.0.0 and 1.1.0) keep the texts they were published with (service/fhir_io/outgoing.py).

Pure domain: the words of each fact in (service/catalog.py reads them from the Questionnaire),
strings out. No Flask, no FHIR.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable

from service.triage.model import Finding, Rule
from service.triage.rules import RuleModule

_PARENTHESIS = re.compile(r"\s+\([^)]*\)\s*\Z")


def _lower_first(text: str) -> str:
    """'Confusion' -> 'confusion', but 'HIV ...' stays (an abbreviation keeps its capitals)."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ".?!" else text + "."


class Wording:
    """The Questionnaire's words for each fact: its question text and its answers' displays."""

    def __init__(self, question: dict[str, str], displays: dict[str, dict[str, str]]):
        self.question = question  # fact -> the question's text
        self.displays = displays  # fact -> answer code -> its display
        # The same few answers come back call after call (what a rule read: a handful of facts, most
        # of them yes/no), so their words are made once per distinct set, for this Questionnaire's
        # words only (the cache lives and dies with this object; 1,024 texts of a few hundred bytes).
        self._said = lru_cache(maxsize=1024)(self._answers)

    def answers(self, read: Iterable[tuple[str, Any]]) -> str:
        """The answers a rule read, in words: 'Reported: a; b. Not present: c. Which leg is numb?
        Left leg.' Empty when it read none."""
        read = tuple(read)
        try:
            return self._said(read)
        except TypeError:  # a value that cannot be a key (a list): said afresh
            return self._answers(read)

    def _answers(self, read: tuple[tuple[str, Any], ...]) -> str:
        present, absent, said = [], [], []
        for fact, value in read:
            question = _PARENTHESIS.sub("", self.question.get(fact, fact.replace("_", " ")))
            if isinstance(value, bool):
                (present if value else absent).append(_lower_first(question))
                continue
            values = sorted(value) if isinstance(value, (set, frozenset, list, tuple)) else [value]
            words = ", ".join(self.displays.get(fact, {}).get(str(v), str(v)) for v in values)
            said.append(f"{question} {words}." if question.endswith("?") else f"{question}: {words}.")
        parts = []
        if present:
            parts.append("Reported: " + "; ".join(present) + ".")
        if absent:
            parts.append("Not present: " + "; ".join(absent) + ".")
        return " ".join(parts + said)

    def reason(self, finding: Finding, module: RuleModule) -> str:
        """One reason for a cause: the rule's title, the answers behind it, the source and passage."""
        rule = finding.rule
        text = _sentence(rule.title)
        answers = self.answers(finding.read)
        if answers:
            text += " " + answers
        return text + " " + cite_in_words(rule, module)


def cite_in_words(rule: Rule, module: RuleModule) -> str:
    """The rule's first passage, cited by its source's title: From “Title”: “passage”."""
    cite = rule.cites[0]
    return f"From \u201c{source_title(module, cite.file)}\u201d: \u201c{cite.quote}\u201d"


def source_title(module: RuleModule, file: str) -> str:
    """A source's title as the module records it (SOURCES; a test holds clinical modules' titles to
    the first line of each article)."""
    return module.sources.get(file, "a source of the rules")


def clinical_title(title: str) -> str:
    """A rule title inside a sentence: without its closing full stop."""
    return title.strip().rstrip(".")
