"""Small lookups in the region profile shared by the guided dialogues."""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from urllib.parse import quote

from rapidfuzz import fuzz, process

from handlers.municipality import names_of, normalise_name
from texts import TEXTS_DIR, Municipality, Region

CANDIDATE_SCORE = 60


def candidates(region: Region, query: str, limit: int = 3) -> list[Municipality]:
    """Municipalities whose names or short names look a little like `query`, best first:
    offered as buttons when `find_municipality` is not sure enough to pick one."""
    names = names_of(region)
    found: list[Municipality] = []
    for name, _score, _ in process.extract(
        normalise_name(query),
        list(names),
        scorer=fuzz.WRatio,
        limit=limit * 3,
        score_cutoff=CANDIDATE_SCORE,
    ):
        if names[name] not in found:
            found.append(names[name])
    return found[:limit]


def region_note(region: Region, section: str) -> str:
    """A region profile's own note for a dialogue (`[certificate] note = "..."`), or ""."""
    table = region.extra.get(section, {})
    return str(table.get("note", "")).strip() if isinstance(table, dict) else ""


MAP_SEARCH_URL = "https://yandex.ru/maps/?text="


@lru_cache(maxsize=1)
def _place_prefix() -> re.Pattern[str]:
    """Words naming the kind of place before its name («г.», «город-курорт», «с.»), from
    texts/ru/addresses.toml: a bare word needs a space after it, a shortened one a dot."""
    table = tomllib.loads((TEXTS_DIR / "ru" / "addresses.toml").read_text(encoding="utf-8"))

    def words(key: str) -> str:
        return "|".join(re.escape(w.strip()) for w in table[key].split(",") if w.strip())

    return re.compile(
        rf"^(?:(?:{words('place_words')})\s+|(?:{words('place_abbreviations')})\.\s*)"
    )


def place_key(part: str) -> str:
    """A part of an address reduced to the place's bare name, for comparing places:
    «г. Ставрополь», «город Ставрополь» and «Ставрополь» give the same key."""
    key = normalise_name(part)
    while True:
        shorter = _place_prefix().sub("", key, count=1).strip()
        if shorter == key:
            return key
        key = shorter


def address_line(address: str, municipality: Municipality | None = None) -> str:
    """The address as a parent reads it, the place named once.

    A place written twice in a row («город Ставрополь, Ставрополь, ул. Садовая») is
    written once. With `municipality`: an address that starts with the municipality's own
    town («Ставрополь», «г. Ставрополь») names it as the profile does («город
    Ставрополь»), and the municipality's name goes in front only when the address names
    neither it nor one of its places (its short names, such as a district's centre)."""
    parts = [part.strip() for part in address.split(",") if part.strip()]
    if municipality is not None:
        own = place_key(municipality.name)
        places = {own, *(place_key(alias) for alias in municipality.aliases)}
        if parts and place_key(parts[0]) == own:
            parts[0] = municipality.name
        elif not any(place_key(part) in places for part in parts):
            parts.insert(0, municipality.name)
    kept: list[str] = []
    for part in parts:
        if kept and place_key(part) == place_key(kept[-1]):
            continue
        kept.append(part)
    return ", ".join(kept)


def map_url(region: Region, address: str) -> str:
    """A map search for the address; the region's name keeps it from matching elsewhere."""
    query = address if region.name in address else f"{region.name}, {address}"
    return MAP_SEARCH_URL + quote(query, safe="")
