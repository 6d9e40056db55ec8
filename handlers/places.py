"""Small lookups in the region profile shared by the guided dialogues."""

from __future__ import annotations

from rapidfuzz import fuzz, process

from handlers.municipality import names_of, normalise_name
from texts import Municipality, Region

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
