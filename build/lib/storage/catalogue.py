"""Catalogue queries: search programs by the parent's filters, fetch one program."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Program

_WORD = re.compile(r"[0-9a-zа-я]+")
# A query word this close to a word of the program (0-100) counts as a match, for typos.
FUZZY_SCORE = 80


def normalise(value: str) -> str:
    return " ".join(_WORD.findall(value.lower().replace("ё", "е")))


def search_text(title: str, organisation: str, address: str) -> str:
    return normalise(f"{title} {organisation} {address}")


@dataclass(frozen=True)
class Filters:
    municipality_id: str | None = None
    age: int | None = None
    direction: str | None = None
    funding: str | None = None
    keyword: str = ""


def _word_matches(word: str, words: list[str], text: str) -> bool:
    if _stem(word) in text:
        return True
    return any(fuzz.ratio(word, candidate) >= FUZZY_SCORE for candidate in words)


def keyword_matches(keyword: str, text: str) -> bool:
    wanted = [w for w in normalise(keyword).split() if len(w) >= 2]
    words = text.split()
    return all(_word_matches(word, words, text) for word in wanted)


def _stem(word: str) -> str:
    # Russian endings vary («робототехнику», «робототехника»): compare a stem.
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


async def search(session: AsyncSession, filters: Filters) -> list[int]:
    """Ids of matching programs, those with places first, then by title.

    A keyword is first matched by the stems of its words in SQL; only when that finds
    nothing are the programs compared word by word with typos allowed."""
    query = select(Program.id, Program.search_text)
    if filters.municipality_id:
        query = query.where(Program.municipality_id == filters.municipality_id)
    if filters.age is not None:
        query = query.where(Program.age_from <= filters.age, Program.age_to >= filters.age)
    if filters.direction:
        query = query.where(Program.direction == filters.direction)
    if filters.funding:
        query = query.where(Program.funding == filters.funding)
    no_places = case((Program.places_left == 0, 1), else_=0)
    query = query.order_by(no_places, Program.title, Program.id)
    wanted = [w for w in normalise(filters.keyword).split() if len(w) >= 2]
    if not wanted:
        return list((await session.scalars(query.with_only_columns(Program.id))).all())
    exact = query.with_only_columns(Program.id)
    for word in wanted:
        exact = exact.where(Program.search_text.contains(_stem(word), autoescape=True))
    found = list((await session.scalars(exact)).all())
    if found:
        return found
    rows = (await session.execute(query)).all()
    return [row.id for row in rows if keyword_matches(filters.keyword, row.search_text)]


async def programs_by_id(session: AsyncSession, ids: list[int]) -> list[Program]:
    if not ids:
        return []
    found = {p.id: p for p in await session.scalars(select(Program).where(Program.id.in_(ids)))}
    return [found[i] for i in ids if i in found]
