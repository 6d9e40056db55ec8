"""Generated Russian agrees with its numbers and names: every template that takes a number
is rendered with 0, 1, 2, 5, 11, 21, 22, 25 and 101, and each counted word is checked
against pymorphy3's agreement."""

from __future__ import annotations

import re

import pytest

from texts import Texts, available_regions, load_region
from texts.grammar import CASES, agree, person_in_case
from texts.morph import analyzer

NUMBERS = (0, 1, 2, 5, 11, 21, 22, 25, 101)
# Placeholders that callers fill with a count or an age in whole years.
NUMERIC = {"n", "low", "high", "age_from", "age_to", "count", "total", "limit", "first", "last"}
NAME = "Иванов Пётр Сергеевич"
_COUNTED = re.compile(r"(?<![№\d.,–-])\b(\d+) ([а-яё]+)")


def _texts() -> list[Texts]:
    return [Texts(load_region(region_id)) for region_id in available_regions()]


def _templates(texts: Texts) -> list[tuple[str, str]]:
    out = []
    for key in texts.keys():
        raw = texts.raw(key)
        forms = raw if isinstance(raw, list) else [raw]
        names = set().union(*(Texts.placeholders(form) for form in forms))
        if names & NUMERIC:
            out.append((key, sorted(names - {"region"})))
    return out


def _agrees(number: int, word: str) -> bool:
    """Whether `word` is a form the number `number` takes in some case."""
    parses = analyzer().parse(word)
    if parses[0].tag.POS not in ("NOUN", "ADJF", "PRTF"):
        return True  # not a counted word ("из", "включительно")
    return any(agree(p.normal_form, number, case) == word for p in parses for case in sorted(CASES))


def test_there_are_templates_with_numbers_to_check():
    keys = {key for key, _ in _templates(_texts()[0])}
    assert {"catalogue.btn_show", "children.too_young", "requests.child_age"} <= keys
    assert len(keys) >= 15


@pytest.mark.parametrize("number", NUMBERS)
def test_every_template_with_a_number_agrees_with_it(number):
    problems = []
    for texts in _texts():
        for key, names in _templates(texts):
            params = {name: number if name in NUMERIC else "Х" for name in names}
            params["name"] = NAME
            params.setdefault("n", number)
            if "age" in names:
                params["age"] = texts("children.years", n=number)
            text = texts(key, **params)
            for digits, word in _COUNTED.findall(text):
                if int(digits) == number and not _agrees(number, word):
                    problems.append(f"{texts.region.id} {key}: «{digits} {word}»")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("number", "upper", "genitive"),
    [(18, "18 лет", "18 лет"), (21, "21 год", "21 года"), (22, "22 года", "22 лет")],
)
def test_age_ranges_agree_with_their_upper_bound(number, upper, genitive):
    texts = _texts()[0]
    card = texts("requests.program_age", low=5, high=number, name=NAME, age="4 года")
    assert f"Программа для детей 5–{upper}," in card
    assert f"до {genitive} включительно" in texts(
        "children.too_old", age="19 лет", low=5, high=number
    )


def test_a_childs_full_name_is_put_in_the_dative_not_left_as_a_subject():
    texts = _texts()[0]
    text = texts("requests.child_age", name=NAME, age=texts("children.years", n=10), low=5, high=18)
    assert text.startswith("Иванову Петру Сергеевичу сейчас 10 лет.")
    assert person_in_case("Петрова Анна Ивановна", "datv") == "Петровой Анне Ивановне"
    assert person_in_case("Смирнова Ольга", "datv") == "Смирновой Ольге"


def test_a_word_the_dictionary_does_not_know_as_a_name_stays_as_written():
    assert person_in_case("Zoe Smith", "datv") == "Zoe Smith"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Иванова Мария", "Иванова Мария зачислена"),
        ("Иванов Пётр Сергеевич", "Иванов Пётр Сергеевич зачислен"),
        ("Ким Саша", "Ким Саша зачислен(а)"),  # a name of either gender: both forms
    ],
)
def test_a_word_about_a_child_agrees_with_the_childs_gender(name, said):
    text = _texts()[0](
        "requests.notify.enrolled", number=7, title="Шахматы", organisation="ДДТ", name=name
    )
    assert text.startswith(f"Заявка №7: {said} на программу.\nПрограмма: Шахматы")
