"""The stored questions the bot did not answer well (faq_unanswered), read for the staff's
knowledge-base upkeep page: what the parent did next, counts by group key, marking.

What the parent did next is read from the conversation: a handoff opened within
`WINDOW` of the question is "person" (they asked for one, or the bot passed them on),
else a message of theirs within it is "went_on", else, once the window has passed,
"left". A question younger than the window with nothing after it yet has no next step
(None). Once a question is older than the window its next step can no longer change and
is kept on the row (`settle`), so a page over many questions reads counts, not the
transcript.

Every function works in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FaqUnanswered, Handoff, TranscriptEntry

WINDOW = timedelta(minutes=30)
PERSON, WENT_ON, LEFT = "person", "went_on", "left"
# What the bot did with a stored question (faq_unanswered.outcome); "answer" is kept only
# when its score was low (handlers/faq/dialogue.py).
OUTCOMES = ("unknown", "suggest", "answer", "handoff")
CHUNK = 500


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    """Which stored questions a page shows: created since `since` (None: all), with the
    bot's `outcome` and the parent's `next_step` ("" for any), marked with `resolution`
    (None: not marked yet)."""

    since: datetime | None = None
    outcome: str = ""
    next_step: str = ""
    resolution: str | None = None

    def where(self, upto: int | None = None) -> list:
        table = FaqUnanswered
        clauses = []
        if self.since is not None:
            clauses.append(table.created_at >= self.since)
        if self.outcome:
            clauses.append(table.outcome == self.outcome)
        if self.resolution is None:
            clauses.append(table.resolution.is_(None))
        else:
            clauses.append(table.resolution == self.resolution)
        if upto is not None:
            clauses.append(table.id <= upto)
        return clauses


def _next_queries():
    """Correlated subqueries: when a handoff opened for the parent after the question,
    and when the parent next wrote."""
    row = FaqUnanswered
    handoff_at = (
        select(func.min(Handoff.created_at))
        .where(Handoff.user_id == row.user_id, Handoff.created_at >= row.created_at)
        .correlate(row)
        .scalar_subquery()
    )
    # After the question's own message; rows stored before it was kept: by time.
    after = (row.message_id.is_not(None) & (TranscriptEntry.id > row.message_id)) | (
        row.message_id.is_(None) & (TranscriptEntry.created_at > row.created_at)
    )
    next_at = (
        select(func.min(TranscriptEntry.created_at))
        .where(TranscriptEntry.user_id == row.user_id, TranscriptEntry.direction == "in", after)
        .correlate(row)
        .scalar_subquery()
    )
    return handoff_at, next_at


def next_step(
    created: datetime, handoff_at: datetime | None, next_at: datetime | None, now: datetime
) -> str | None:
    created = _aware(created)
    assert created is not None
    handoff_at, next_at = _aware(handoff_at), _aware(next_at)
    if handoff_at is not None and handoff_at - created <= WINDOW:
        return PERSON
    if next_at is not None and next_at - created <= WINDOW:
        return WENT_ON
    if now - created > WINDOW:
        return LEFT
    return None


async def unsettled(
    session: AsyncSession, where: Iterable, now: datetime
) -> list[tuple[int, str | None, str, str | None, datetime, str | None]]:
    """(id, terms, outcome, best entry, created, next step) of the questions `where`
    chooses whose next step is not kept yet, read from the conversation."""
    handoff_at, next_at = _next_queries()
    row = FaqUnanswered
    found = await session.execute(
        select(
            row.id, row.terms, row.outcome, row.best_entry_id, row.created_at, handoff_at, next_at
        ).where(row.next_step.is_(None), *where)
    )
    return [
        (id_, terms, outcome, entry, created, next_step(created, h_at, n_at, now))
        for id_, terms, outcome, entry, created, h_at, n_at in found
    ]


async def settle(session: AsyncSession, now: datetime) -> int:
    """Keep the next step of every question older than the window; how many were kept."""
    rows = await unsettled(session, [FaqUnanswered.created_at < now - WINDOW], now)
    by_step: dict[str, list[int]] = {}
    for id_, *_, step in rows:
        if step is not None:
            by_step.setdefault(step, []).append(id_)
    for step, ids in by_step.items():
        for start in range(0, len(ids), CHUNK):
            await session.execute(
                update(FaqUnanswered)
                .where(FaqUnanswered.id.in_(ids[start : start + CHUNK]))
                .values(next_step=step)
                .execution_options(synchronize_session=False)
            )
    return sum(len(ids) for ids in by_step.values())


async def fill_terms(session: AsyncSession, terms_of: Callable[[str], str]) -> int:
    """Questions stored without their terms (before they were kept) get them."""
    rows = list(
        await session.execute(
            select(FaqUnanswered.id, FaqUnanswered.question).where(FaqUnanswered.terms.is_(None))
        )
    )
    for id_, question in rows:
        await session.execute(
            update(FaqUnanswered)
            .where(FaqUnanswered.id == id_)
            .values(terms=terms_of(question or ""))
            .execution_options(synchronize_session=False)
        )
    return len(rows)


@dataclass(frozen=True)
class Bucket:
    """Questions alike in everything the page counts by."""

    terms: str
    outcome: str
    entry_id: str | None
    next_step: str | None
    count: int
    last_id: int
    last_at: datetime


async def buckets(
    session: AsyncSession, filters: Filters, now: datetime, upto: int | None = None
) -> list[Bucket]:
    """The questions `filters` choose, counted by (terms, outcome, entry, next step)."""
    row = FaqUnanswered
    where = filters.where(upto)
    kept = select(
        row.terms,
        row.outcome,
        row.best_entry_id,
        row.next_step,
        func.count(),
        func.max(row.id),
        func.max(row.created_at),
    ).where(row.next_step.is_not(None), *where)
    if filters.next_step:
        kept = kept.where(row.next_step == filters.next_step)
    kept = kept.group_by(row.terms, row.outcome, row.best_entry_id, row.next_step)
    found = [
        Bucket(terms or "", outcome, entry, step, count, last_id, _aware(last_at))
        for terms, outcome, entry, step, count, last_id, last_at in await session.execute(kept)
    ]
    for id_, terms, outcome, entry, created, step in await unsettled(session, where, now):
        if filters.next_step and step != filters.next_step:
            continue
        found.append(Bucket(terms or "", outcome, entry, step, 1, id_, _aware(created)))
    return found


async def newest_id(session: AsyncSession) -> int:
    return await session.scalar(select(func.max(FaqUnanswered.id))) or 0


async def questions(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    ids = list(ids)
    found: dict[int, str] = {}
    for start in range(0, len(ids), CHUNK):
        for id_, text in await session.execute(
            select(FaqUnanswered.id, FaqUnanswered.question).where(
                FaqUnanswered.id.in_(ids[start : start + CHUNK])
            )
        ):
            found[id_] = text
    return found


async def marked_keys(session: AsyncSession, since: datetime | None, upto: int) -> set[str]:
    """The terms of questions staff marked, asked since `since`."""
    row = FaqUnanswered
    where = [row.resolution.is_not(None), row.id <= upto, row.terms.is_not(None)]
    if since is not None:
        where.append(row.created_at >= since)
    return set(await session.scalars(select(row.terms).where(*where).distinct()))


async def marked_before(
    session: AsyncSession, keys: Iterable[str]
) -> dict[str, tuple[str, datetime, str | None]]:
    """For each terms key, how its questions were last marked: (resolution, when, by)."""
    keys = list(keys)
    found: dict[str, tuple[str, datetime, str | None]] = {}
    row = FaqUnanswered
    for start in range(0, len(keys), CHUNK):
        latest = (
            select(row.terms, func.max(row.resolved_at).label("at"))
            .where(row.terms.in_(keys[start : start + CHUNK]), row.resolution.is_not(None))
            .group_by(row.terms)
            .subquery()
        )
        for terms, resolution, at, by in await session.execute(
            select(row.terms, row.resolution, row.resolved_at, row.resolved_by).join(
                latest, and_(row.terms == latest.c.terms, row.resolved_at == latest.c.at)
            )
        ):
            found[terms] = (resolution, _aware(at), by)
    return found


async def mark(
    session: AsyncSession,
    keys: Iterable[str],
    filters: Filters,
    upto: int,
    resolution: str | None,
    login: str,
    now: datetime,
) -> int:
    """Mark the questions of a group as the page showed them (`filters`, none newer than
    `upto`); `resolution` None returns marked ones to the new. How many were changed."""
    keys = list(keys)
    row = FaqUnanswered
    changed = 0
    where = filters.where(upto)
    ids: list[int] = []
    if filters.next_step:
        ids = [
            id_
            for id_, *_, step in await unsettled(session, where, now)
            if step == filters.next_step
        ]
    for start in range(0, len(keys), CHUNK):
        scope = [row.terms.in_(keys[start : start + CHUNK]), *where]
        if filters.next_step:
            scope.append((row.next_step == filters.next_step) | row.id.in_(ids))
        result = await session.execute(
            update(row)
            .where(*scope)
            .values(
                resolution=resolution,
                resolved_by=login if resolution else None,
                resolved_at=now if resolution else None,
            )
            .execution_options(synchronize_session=False)
        )
        changed += result.rowcount or 0
    return changed
