"""СНИЛС check digits, with the official example and the edge cases of the algorithm."""

from __future__ import annotations

import pytest

from handlers.validators import format_snils, snils_ok


@pytest.mark.parametrize(
    "snils",
    [
        "112-233-445 95",  # the official example, S = 95
        "11223344595",
        "123-456-789 64",  # S = 165 -> 165 mod 101 = 64
        "087-654-303 00",  # S = 202 -> remainder 0
        "050-234-316 00",  # S = 100
        "016-103-396 00",  # S = 101
        "820-981-233 00",  # S = 201 -> remainder 100 -> 00
        "001-001-998 17",  # not checked up to 001-001-998
        " 112 233 445 95 ",
    ],
)
def test_valid_snils(snils):
    assert snils_ok(snils)


@pytest.mark.parametrize(
    "snils",
    [
        "112-233-445 94",  # wrong check number
        "123-456-789 65",
        "820-981-233 01",
        "087-654-303 01",
        "001-001-999 17",  # first number that is checked
        "112-233-445 9",  # too short
        "112-233-445 955",  # too long
        "",
        "СНИЛС нет",
    ],
)
def test_invalid_snils(snils):
    assert not snils_ok(snils)


def test_format_snils():
    assert format_snils("11223344595") == "112-233-445 95"
