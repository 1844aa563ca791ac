"""Each foreign form's mapping as a FHIR R4 ConceptMap, so a terminology team can review it."""
from __future__ import annotations

from service.catalog import BASE, Catalog
from service.forms import NOT_REPORTED, Form


def concept_map_id(form: Form) -> str:
    return f"{form.questionnaire.get('id') or form.url.rsplit('/', 1)[-1]}-{form.version}".replace(".", "-")


def concept_map(form: Form, catalog: Catalog) -> dict:
    """Foreign answer codings -> our answers, one group per mapped item of the form."""
    our_link = {fact: link for link, fact in catalog.fact_map.items()}
    groups = []
    for item in form.items.values():
        if not item.answers:
            continue
        ours = our_link[item.fact]
        our_item = catalog.items[ours]
        by_system: dict[str, list[dict]] = {}
        for (system, code), value in item.answers.items():
            element = {"code": code}
            display = _display(form, item.link_id, system, code)
            if display:
                element["display"] = display
            if value is NOT_REPORTED:
                element["target"] = [{"equivalence": "unmatched",
                                      "comment": f"Says nothing: {ours} stays not reported "
                                                 "(never read as 'no')."}]
            elif our_item.type == "choice":
                element["target"] = [{"code": value, "display": catalog.answer_displays[value],
                                      "equivalence": "equivalent",
                                      "comment": f"{form.url.rsplit('/', 1)[-1]} {item.link_id} -> "
                                                 f"{ours}"}]
            else:
                element["target"] = [{"display": "Yes" if value is True else "No",
                                      "equivalence": "equivalent",
                                      "comment": f"{form.url.rsplit('/', 1)[-1]} {item.link_id} -> "
                                                 f"{ours} = {str(value).lower()} (valueBoolean)"}]
            by_system.setdefault(system, []).append(element)
        for system, elements in by_system.items():
            groups.append({"source": system, "target": catalog.answers_system, "element": elements})
    unmapped_value = [i.link_id for i in form.items.values() if not i.answers]
    description = (f"How the answers of {form.canonical} become the facts of the leg numbness "
                   f"triage (mappings/forms/{form.path.name}). One group per mapped item.")
    if unmapped_value:
        description += (" Items passed through as values: "
                        + ", ".join(f"{l} -> {our_link[form.items[l].fact]}" for l in unmapped_value) + ".")
    if form.unmapped:
        description += " Items of the form no fact reads (ignored with a warning): " + ", ".join(form.unmapped) + "."
    return {
        "resourceType": "ConceptMap",
        "id": concept_map_id(form),
        "url": f"{BASE}/ConceptMap/{concept_map_id(form)}",
        "version": form.version,
        "name": "".join(part.capitalize() for part in concept_map_id(form).split("-")) + "ToLegNumbness",
        "title": f"{form.questionnaire.get('title', form.url)} {form.version} -> leg numbness triage",
        "status": "active",
        "publisher": "legtriage",
        "description": description,
        "sourceCanonical": form.canonical,
        "targetCanonical": f"{catalog.questionnaire_url}|{catalog.questionnaire_version}",
        "group": groups,
    }


def _display(form: Form, link_id: str, system: str, code: str) -> str | None:
    for item in form.questionnaire.get("item", []):
        if item.get("linkId") == link_id:
            for option in item.get("answerOption", []):
                coding = option.get("valueCoding", {})
                if coding.get("system") == system and coding.get("code") == code:
                    return coding.get("display")
    return None
