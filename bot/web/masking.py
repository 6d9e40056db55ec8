"""Personal data masked for the console: phones, e-mail addresses, СНИЛС, certificate
numbers, dates (of birth) and full names, in stored fields and inside free text.

Each mask keeps just enough to tell two values apart at a glance (the last two digits of
a phone, the first letter of a name) and nothing that identifies the person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

MASK = "•"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# СНИЛС: 123-456-789 01, 123 456 789 01 or 11 digits in a row
_SNILS = re.compile(r"(?<!\d)\d{3}[- ]?\d{3}[- ]?\d{3}[- ]?\d{2}(?!\d)")
# Phones: +7 / 8 and ten digits with any spaces, dashes and brackets; also 10 bare digits
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\s?7|8|7)?[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)"
)
# Any other run of 6 or more digits: certificate and document numbers
_NUMBER = re.compile(r"(?<!\d)\d{6,}(?!\d)")
_DATE = re.compile(r"(?<!\d)(0?[1-9]|[12]\d|3[01])[./](0?[1-9]|1[0-2])[./](\d{4}|\d{2})(?!\d)")
# Cyrillic letters are written as escapes here: code holds no Russian text.
_NAME_WORD = (
    r"[\u0410-\u042f\u0401][\u0430-\u044f\u0451]+(?:-[\u0410-\u042f\u0401][\u0430-\u044f\u0451]+)?"
)
# Three capitalised Cyrillic words in a row (Фамилия Имя Отчество), or two with the last
# a patronymic
_FULL_NAME = re.compile(
    rf"\b{_NAME_WORD}\s+{_NAME_WORD}\s+{_NAME_WORD}\b"
    rf"|\b{_NAME_WORD}\s+[\u0410-\u042f\u0401][\u0430-\u044f\u0451]+(?:\u0432\u0438\u0447|\u0432\u043d\u0430|\u0438\u0447\u043d\u0430|\u0438\u043d\u0438\u0447\u043d\u0430)\b"
)


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) < 4:
        return MASK * 3
    return f"+7 {MASK * 3} {MASK * 3}-{MASK * 2}-{digits[-2:]}"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}{MASK * 3}@{domain}"


def mask_name(value: str) -> str:
    """«Иванова Мария Сергеевна» -> «И••• М••• С•••»."""
    return " ".join(f"{word[:1]}{MASK * 3}" for word in value.split() if word)


def mask_number(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return MASK * max(len(digits) - 2, 3) + digits[-2:] if digits else ""


def mask_date(value: date | str | None) -> str:
    if value is None:
        return ""
    year = value.year if isinstance(value, date) else ""
    return f"{MASK * 2}.{MASK * 2}.{year or MASK * 4}"


def found_values(text: str) -> list[str]:
    """The pieces of personal data recognisable in `text` (to mask their echoes)."""
    if not text:
        return []
    return [
        match.group()
        for pattern in (_EMAIL, _SNILS, _PHONE, _NUMBER, _DATE, _FULL_NAME)
        for match in pattern.finditer(text)
    ]


def mask_value(value: str) -> str:
    if "@" in value:
        return mask_email(value)
    digits = re.sub(r"\D", "", value)
    if _DATE.fullmatch(value.strip()):
        return f"{MASK * 2}.{MASK * 2}.{MASK * 4}"
    if len(digits) >= 10 and len(digits) <= 11 and _PHONE.fullmatch(value.strip()):
        return mask_phone(value)
    if digits and len(digits) * 2 >= len(value.strip()):
        return mask_number(value)
    return mask_name(value)


def mask_known(text: str, names: Iterable[str] = (), values: Iterable[str] = ()) -> str:
    """Only the values known to be this conversation's personal data masked: for the
    bot's own messages, whose examples and hotline numbers are not anyone's data."""
    if not text:
        return text
    for value in sorted({v for v in values if v and len(v) > 3}, key=len, reverse=True):
        text = text.replace(value, mask_value(value))
    return _mask_names(text, names)


def _mask_names(text: str, names: Iterable[str]) -> str:
    known = sorted(
        {word for name in names for word in name.split() if len(word) > 1},
        key=len,
        reverse=True,
    )
    if not known:
        return text
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(word) for word in known) + r")[\u0430-\u044f\u0451]{0,3}\b",
        re.IGNORECASE,
    )
    return pattern.sub(lambda m: f"{m.group()[:1]}{MASK * 3}", text)


def mask_text(text: str, names: Iterable[str] = (), values: Iterable[str] = ()) -> str:
    """Free text with every recognisable piece of personal data masked. `names` are full
    names known to belong to this conversation (the parent's children): each of their
    words is masked wherever it stands; `values` (phones, numbers) likewise."""
    if not text:
        return text
    for value in sorted({v for v in values if v and len(v) > 3}, key=len, reverse=True):
        text = text.replace(value, mask_value(value))
    text = _EMAIL.sub(lambda m: mask_email(m.group()), text)
    text = _SNILS.sub(lambda m: f"{MASK * 3}-{MASK * 3}-{MASK * 3} {MASK * 2}", text)
    text = _PHONE.sub(lambda m: mask_phone(m.group()), text)
    text = _NUMBER.sub(lambda m: mask_number(m.group()), text)
    text = _DATE.sub(lambda m: f"{MASK * 2}.{MASK * 2}.{MASK * 4}", text)
    text = _mask_names(text, names)
    return _FULL_NAME.sub(lambda m: mask_name(m.group()), text)
