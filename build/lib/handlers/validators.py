"""Checks of what a parent types, before it is used or sent anywhere."""

from __future__ import annotations

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
