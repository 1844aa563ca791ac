"""Answering a Questionnaire rendered by LHC-Forms as a user does: each question found by its text."""
from __future__ import annotations

import re
from typing import Any


class LhcQuestions:
    """For a page driver that has `page` (Playwright) and `items` (linkId -> Questionnaire item)."""

    page: Any
    items: dict[str, dict]

    def question(self, link_id: str):
        """The rendered question whose label shows the item's text, as a user finds it."""
        label = re.compile("^" + re.escape(self.items[link_id]["text"]) + "$")
        return self.page.locator("lhc-item.lhc-item-question").filter(
            has=self.page.locator(".lhc-de-label .question", has_text=label))

    def answer(self, link_id: str, value: Any) -> None:
        item, question = self.items[link_id], self.question(link_id)
        if item["type"] == "choice":
            field = question.get_by_role("combobox")
            for code in value if isinstance(value, list) else [value]:
                field.click()
                self._option(item, code).click()
            field.press("Escape")  # a multi-select list stays open over the next questions
        elif item["type"] == "boolean":
            question.get_by_role("radio", name="Yes" if value else "No", exact=True).click()
        else:
            field = question.get_by_role("textbox")
            field.click()
            field.press_sequentially(str(value))
            field.press("Tab")

    def _option(self, item: dict, code: str):
        """The autocomplete list entry ("1:  Left leg") showing the answer's display text."""
        display = next(o["valueCoding"]["display"] for o in item["answerOption"]
                       if o["valueCoding"]["code"] == code)
        entry = re.compile(r"^\d+:\s+" + re.escape(display) + "$")
        return self.page.locator("#completionOptions li").filter(has_text=entry)
