"""Checks of what a parent types, before it is used or sent anywhere."""

from __future__ import annotations

import re
from datetime import date
from functools import cache

import phonenumbers

from handlers.understanding import words

# Numbers up to 001-001-998 were issued before check digits existed: accepted as they are.
SNILS_UNCHECKED_MAX = 1001998


def snils_digits(value: str) -> str:
    """The digits of a СНИЛС as typed ("112-233-445 95", "11223344595" ...)."""
    return "".join(ch for ch in value if ch.isdigit())


def snils_check_number(first_nine: str) -> int:
    """The control number of a СНИЛС from its first nine digits (the ПФР algorithm)."""
    total = sum(int(ch) * (9 - i) for i, ch in enumerate(first_nine))
    if total < 100:
        return total
    if total in (100, 101):
        return 0
    return (total % 101) % 100


def snils_ok(value: str) -> bool:
    """True when `value` has 11 digits and its check number matches.

    A valid checksum says nothing about whether the number exists or belongs to the
    child: only the in-person confirmation with documents establishes that.
    """
    digits = snils_digits(value)
    if len(digits) != 11:
        return False
    if int(digits[:9]) <= SNILS_UNCHECKED_MAX:
        return True
    return snils_check_number(digits[:9]) == int(digits[9:])


def format_snils(value: str) -> str:
    """ "11223344595" -> "112-233-445 95" (11 digits expected)."""
    d = snils_digits(value)
    return f"{d[0:3]}-{d[3:6]}-{d[6:9]} {d[9:11]}"


# -- dates, ages and phones as parents write them ------------------------------------------
_DMY = re.compile(r"^(\d{1,2})[./\-\s]+(\d{1,2})[./\-\s]+(\d{4}|\d{2})$")
_YMD = re.compile(r"^(\d{4})[./\-\s]+(\d{1,2})[./\-\s]+(\d{1,2})$")
_DDMMYYYY = re.compile(r"^(\d{2})(\d{2})(\d{4})$")
_HALF = re.compile(r"\d+[.,]\d+")


@cache
def _date_forms() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(day month-word year, a trailing «г.» / «года»), from the words file."""
    forms = words()
    endings = "|".join(map(re.escape, forms.day_endings))
    year_words = "|".join(map(re.escape, forms.year_words))
    word_month = re.compile(
        rf"^(\d{{1,2}})(?:\s*-?\s*(?:{endings}))?\s+([^\W\d_]+)\.?\s+(\d{{4}}|\d{{2}})$"
    )
    return word_month, re.compile(rf"\s*(?:{year_words})\.?$")


def _year(value: str, today: date | None) -> int:
    """A two-digit year in this century unless that is in the future."""
    year = int(value)
    if len(value) > 2:
        return year
    now = (today or date.today()).year
    return 2000 + year if 2000 + year <= now else 1900 + year


def month_of(word: str) -> int | None:
    """The month a word names («мая», «март», «сент.»), or None."""
    word = word.lower().replace("ё", "е")
    for stem, month in words().months:
        if word.startswith(stem) and (len(stem) >= 4 or len(word) <= len(stem) + 1):
            return month
    return None


def parse_date(text: str, today: date | None = None) -> date | None:
    """A date as parents type it: 05.03.2015, 5.3.15, 5/3/2015, 5 3 2015, 05032015,
    2015-03-05, «5 марта 2015», «5-го марта 2015 г.»; None when it is not a real date."""
    word_month, year_word = _date_forms()
    value = year_word.sub("", " ".join(text.lower().replace("ё", "е").split()))
    value = value.strip(" .,")
    year = month = day = 0
    if found := _YMD.match(value):
        year, month, day = (int(g) for g in found.groups())
    elif found := _DMY.match(value) or _DDMMYYYY.match(value):
        day, month = int(found.group(1)), int(found.group(2))
        year = _year(found.group(3), today)
    elif found := word_month.match(value):
        day, year = int(found.group(1)), _year(found.group(3), today)
        month = month_of(found.group(2)) or 0
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_age(text: str) -> int | None:
    """An age in whole years as parents type it: «7», «7 лет», «ему 7», «семь», «семь с
    половиной», «семилетний», «7,5»; None when there is no age or more than one number."""
    value = text.lower().replace("ё", "е")
    value = _HALF.sub(lambda m: m.group().replace(",", ".").split(".")[0], value)
    tokens = re.findall(r"\d+|[^\W\d_]+", value)
    lexicon = words()
    found: set[int] = set()
    for token in tokens:
        if token.isdigit():
            found.add(int(token))
        elif token in lexicon.numbers:
            found.add(lexicon.numbers[token])
        else:
            for stem, years in lexicon.age_stems:
                rest = token[len(stem) :]
                if token.startswith(stem) and rest.startswith(lexicon.age_endings):
                    found.add(years)
                    break
    return found.pop() if len(found) == 1 else None


_PHONE_START = re.compile(r"[+\d(]")


def normalise_phone(text: str) -> str | None:
    """A Russian mobile or landline number as +7 XXX XXX-XX-XX, or None. Written with +7,
    8 or 7 in front or without it, with spaces, dashes, dots or brackets, and after a word
    such as «тел.» or «мой номер:»."""
    start = _PHONE_START.search(text)
    if start is None:
        return None
    number_part = text[start.start() :].strip()
    if any(ch.isalpha() for ch in number_part):
        return None
    digits = "".join(ch for ch in number_part if ch.isdigit())
    if len(digits) == 11 and digits[0] in "78" and not number_part.startswith("+"):
        number_part = "+7" + digits[1:]
    try:
        number = phonenumbers.parse(number_part, "RU")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 7 or phonenumbers.region_code_for_number(number) != "RU":
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
