"""Russian agreement for generated text, with pymorphy3's dictionaries (offline).

Templates ask for it through format specs, so the words stay in texts/ru:

    "{high:год,gent}"  the number and «год» agreeing with it in the genitive
                       (18 -> «18 лет», 21 -> «21 года»)
    "{age_to:год}"     the same in the nominative (21 -> «21 год», 22 -> «22 года»)
    "{name:datv}"      a person's full name in the dative
                       («Иванов Пётр Сергеевич» -> «Иванову Петру Сергеевичу»)
    "{name:+зачислен}" the name and a word agreeing with the person's gender
                       («Иванова Мария зачислена»; «зачислен(а)» if it is not known)

`Texts` wraps every int and str parameter so that these specs work; a parameter with
no spec formats as before.
"""

from __future__ import annotations

from functools import lru_cache

from texts.morph import analyzer as morph

# Counted forms the dictionary gives by rule where Russian takes another word.
SUPPLETIVE = {"годов": "лет"}
CASES = frozenset({"nomn", "gent", "datv", "accs", "ablt", "loct"})
_PERSON = ("Name", "Surn", "Patr")


@lru_cache(maxsize=4096)
def agree(word: str, n: int, case: str = "nomn") -> str:
    """`word` (in its dictionary form) in `case`, agreeing with the number `n`."""
    parse = morph().parse(word)[0]
    if case != "nomn":
        parse = parse.inflect({case}) or parse
    agreed = parse.make_agree_with_number(abs(n))
    counted = agreed.word if agreed else word
    return SUPPLETIVE.get(counted, counted)


def _capitalised_like(word: str, model: str) -> str:
    return word[:1].upper() + word[1:] if model[:1].isupper() else word


@lru_cache(maxsize=4096)
def person_gender(full_name: str) -> str | None:
    """ "masc" or "femn" by the first name or the patronymic; None if neither tells
    (unknown, or a name of either gender such as «Саша» without a patronymic)."""
    for word in full_name.split():
        genders = {
            p.tag.gender
            for p in morph().parse(word)
            if ("Name" in p.tag or "Patr" in p.tag) and p.tag.gender in ("masc", "femn")
        }
        if len(genders) == 1:
            return genders.pop()
    return None


@lru_cache(maxsize=4096)
def agree_with_person(word: str, full_name: str) -> str:
    """A short participle or adjective (in its masculine form) for this person:
    «зачислен» -> «зачислена» for a girl; both forms when the gender is not known."""
    gender = person_gender(full_name)
    if gender == "masc":
        return word
    feminine = morph().parse(word)[0].inflect({"femn"})
    if feminine is None:
        return word
    if gender == "femn":
        return feminine.word
    ending = feminine.word[len(word) :] if feminine.word.startswith(word) else ""
    return f"{word}({ending})" if ending else f"{word}/{feminine.word}"


@lru_cache(maxsize=4096)
def person_in_case(full_name: str, case: str) -> str:
    """A full name ("Иванов Пётр Сергеевич", "Петрова Анна") in `case`. The gender comes
    from the first name or the patronymic; a word the dictionary does not know as part
    of a name stays as written."""
    analyser = morph()
    words = full_name.split()
    parses = [analyser.parse(word) for word in words]
    gender = person_gender(full_name)
    out = []
    for word, options in zip(words, parses, strict=True):
        chosen = next(
            (
                p
                for p in options
                if any(t in p.tag for t in _PERSON)
                and p.tag.case == "nomn"
                and (gender is None or p.tag.gender == gender)
            ),
            None,
        )
        inflected = chosen.inflect({case}) if chosen else None
        out.append(_capitalised_like(inflected.word, word) if inflected else word)
    return " ".join(out)


class Count(int):
    """An int that formats "{n:год,gent}" as the number and the agreeing word."""

    def __format__(self, spec: str) -> str:
        word, _, case = spec.partition(",")
        if not word or not word.isalpha() or word.isascii():
            return super().__format__(spec)
        return f"{int(self)} {agree(word, int(self), case or 'nomn')}"


class Phrase(str):
    """A str that formats "{name:datv}" as a person's name in that case."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        if spec in CASES:
            return person_in_case(str(self), spec)
        if spec.startswith("+") and spec[1:].isalpha():
            return f"{self} {agree_with_person(spec[1:], str(self))}"
        word, _, case = spec.partition(",")
        if word and word.isalpha() and not word.isascii():
            # A count given as text: agree with it when it is a number, else use the
            # form for "many".
            number = int(self) if self.strip().isdigit() else 5
            return f"{self} {agree(word, number, case or 'nomn')}"
        return super().__format__(spec)


def wrapped(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Count(value)
    if isinstance(value, str):
        return Phrase(value)
    return value
