"""The retention rule: transcript rows older than `[retention] days` are purged, with the
other dated rows that hold personal data (through the personal-data registry,
storage/personal_data.py), and anonymous counts of the purged days are kept.

Whole days go at a time, in the region's time zone: the purge takes every row older
than the start of the day `days` before today. In the same transaction, before the rows
are deleted, their counts are added to stats_daily per (day, channel): "messages_in",
"messages_out" (sent) and "active_parents" (distinct parents who wrote that day). A purge
killed midway leaves nothing (the transaction rolls back); a second run finds nothing
older and adds nothing, so the counts are never doubled. Days the ticker has already
rolled up into stats_daily (storage/stats.py) are not added again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, distinct, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StatsDaily, TranscriptEntry, User
from storage.personal_data import erase_older_than

METRICS = ("messages_in", "messages_out", "active_parents")


def cutoff(now: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The start (in UTC) of the region's day `days` days before `now`'s day."""
    day = (now.astimezone(zone) - timedelta(days=days)).date()
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _day(session: AsyncSession, column: Any, zone: ZoneInfo, before: datetime) -> Any:
    """The region's calendar day of a stored UTC time, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(zone.key, column), Date)
    # SQLite keeps UTC times as text: shift by the zone's offset (Russia's zones keep one
    # offset all year).
    offset = int((zone.utcoffset(before.replace(tzinfo=None)) or timedelta()).total_seconds())
    return func.date(column, f"{offset:+d} seconds")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


async def daily_counts(
    session: AsyncSession, before: datetime, zone: ZoneInfo
) -> dict[tuple[date, str, str], int]:
    """(day, channel, metric) -> count of the transcript rows older than `before`."""
    t = TranscriptEntry
    day = _day(session, t.created_at, zone, before).label("day")
    joined = select(day, User.channel).join(User, User.id == t.user_id)
    counts: dict[tuple[date, str, str], int] = {}
    incoming = await session.execute(
        joined.add_columns(func.count(), func.count(distinct(t.user_id)))
        .where(t.created_at < before, t.direction == "in")
        .group_by(day, User.channel)
    )
    for when, channel, messages, parents in incoming:
        counts[(_as_date(when), channel, "messages_in")] = int(messages)
        counts[(_as_date(when), channel, "active_parents")] = int(parents)
    outgoing = await session.execute(
        joined.add_columns(func.count())
        .where(t.created_at < before, t.direction == "out", t.status == "sent")
        .group_by(day, User.channel)
    )
    for when, channel, messages in outgoing:
        counts[(_as_date(when), channel, "messages_out")] = int(messages)
    return counts


async def add_stats(session: AsyncSession, counts: dict[tuple[date, str, str], int]) -> None:
    """Add `counts` to stats_daily (an existing row of the same day, channel and metric
    grows by the count)."""
    if not counts:
        return
    rows = [
        {"day": day, "channel": channel, "metric": metric, "value": value}
        for (day, channel, metric), value in sorted(counts.items())
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(StatsDaily).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "channel", "metric"],
        set_={"value": StatsDaily.value + statement.excluded.value},
    )
    await session.execute(statement)


async def purge(
    session: AsyncSession, now: datetime, days: int, zone: ZoneInfo
) -> tuple[datetime, dict[str, int]]:
    """In the caller's transaction: keep the counts of every day older than the cutoff,
    then erase those rows through the registry. (the cutoff, rows deleted per table)."""
    from storage.stats import rolled_through, start_of, transcript_counts

    before = cutoff(now, days, zone)
    through = await rolled_through(session)
    if through is None:
        counts = await daily_counts(session, before, zone)
    else:
        # The days the ticker has rolled up are in stats_daily already.
        since = start_of(through + timedelta(days=1), zone)
        counts = await transcript_counts(session, since, before, zone) if since < before else {}
    await add_stats(session, counts)
    return before, await erase_older_than(session, before)
