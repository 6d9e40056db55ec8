"""The numbers of the statistics page, by the region's calendar days.

Past days are read from stats_daily, which the ticker fills incrementally (`rollup`):
per (day, channel) the transcript's "messages_in", "messages_out" and "active_parents"
(the same metrics the retention purge keeps), and "e:<kind>:<detail>" for each event
kind of storage/events.py except the free-form sources. The days after the last rolled
up one (today, and any the ticker has not reached yet) are counted live from the rows.
So a page over a year reads a few thousand small rows, not millions.

Requests (by their current status) and new parents (users.first_seen, users.source) are
counted live: they are one row per request or parent.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    EnrollmentRequest,
    Event,
    Program,
    StatsDaily,
    StatsRollup,
    TranscriptEntry,
    User,
    utcnow,
)
from storage.retention import _as_date, _day, add_stats

ROLLUP = "daily"
# Event kinds rolled up per day; "source" is not (its detail is free-form, users.source
# has it per parent).
ROLLED_KINDS = ("reg_step", "faq", "handoff", "handoff_closed", "reminder", "data_confirmed")
# Days rolled up per tick at most, so catching up a long history never holds the ticker.
DAYS_PER_TICK = 31
REG_STEPS = 8
FUNNEL = ("start", *(f"s{n}" for n in range(1, REG_STEPS + 1)), "finished")
REMINDER_OUTCOMES = ("sent", "confirmed", "opted_out", "failed", "unreachable")
FAQ_OUTCOMES = ("answered", "suggested", "unknown", "person")


# The one event kind drawn per week (the rest are totals of the period).
DAILY_EVENT = "e:data_confirmed:"


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment the region's `day` begins."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def event_metric(kind: str, detail: str | None) -> str:
    return f"e:{kind}:{detail or ''}"[:32]


# -- counting the rows -----------------------------------------------------------------


async def transcript_counts(
    session: AsyncSession, since: datetime, before: datetime, zone: ZoneInfo
) -> dict[tuple[date, str, str], int]:
    """(day, channel, metric) -> count of the transcript rows in [since, before)."""
    t = TranscriptEntry
    day = _day(session, t.created_at, zone, before).label("day")
    joined = select(day, User.channel).join(User, User.id == t.user_id)
    period = (t.created_at >= since, t.created_at < before)
    counts: dict[tuple[date, str, str], int] = {}
    incoming = await session.execute(
        joined.add_columns(func.count(), func.count(distinct(t.user_id)))
        .where(*period, t.direction == "in")
        .group_by(day, User.channel)
    )
    for when, channel, messages, parents in incoming:
        counts[(_as_date(when), channel, "messages_in")] = int(messages)
        counts[(_as_date(when), channel, "active_parents")] = int(parents)
    outgoing = await session.execute(
        joined.add_columns(func.count())
        .where(*period, t.direction == "out", t.status == "sent")
        .group_by(day, User.channel)
    )
    for when, channel, messages in outgoing:
        counts[(_as_date(when), channel, "messages_out")] = int(messages)
    return counts


async def event_counts(
    session: AsyncSession, since: datetime, before: datetime, zone: ZoneInfo
) -> dict[tuple[date, str, str], int]:
    """(day, channel, "e:<kind>:<detail>") -> count of the events in [since, before)."""
    day = _day(session, Event.created_at, zone, before).label("day")
    rows = await session.execute(
        select(day, Event.channel, Event.kind, Event.detail, func.count())
        .where(Event.kind.in_(ROLLED_KINDS), Event.created_at >= since, Event.created_at < before)
        .group_by(day, Event.channel, Event.kind, Event.detail)
    )
    counts: dict[tuple[date, str, str], int] = {}
    for when, channel, kind, detail, n in rows:
        key = (_as_date(when), channel or "", event_metric(kind, detail))
        counts[key] = counts.get(key, 0) + int(n)
    return counts


# -- the rollup ------------------------------------------------------------------------


async def rolled_through(session: AsyncSession) -> date | None:
    row = await session.get(StatsRollup, ROLLUP)
    return _as_date(row.through) if row is not None else None


async def _first_day(session: AsyncSession, zone: ZoneInfo) -> date | None:
    firsts = [
        await session.scalar(select(func.min(TranscriptEntry.created_at))),
        await session.scalar(select(func.min(Event.created_at))),
    ]
    found = [_aware(moment) for moment in firsts if moment is not None]
    return min(found).astimezone(zone).date() if found else None


def _aware(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def rollup(
    session: AsyncSession, now: datetime, zone: ZoneInfo, *, days: int = DAYS_PER_TICK
) -> list[date]:
    """In the caller's transaction: add the counts of up to `days` finished days after the
    last rolled-up one to stats_daily and move the mark on; the days rolled up. The mark
    row is locked (FOR UPDATE on PostgreSQL), so two runs never add a day twice."""
    yesterday = now.astimezone(zone).date() - timedelta(days=1)
    mark = await session.get(StatsRollup, ROLLUP, with_for_update=True)
    if mark is None:
        first = await _first_day(session, zone)
        start = first if first is not None and first <= yesterday else yesterday + timedelta(1)
        mark = StatsRollup(name=ROLLUP, through=start - timedelta(days=1), updated_at=utcnow())
        session.add(mark)
        await session.flush()
    through = _as_date(mark.through)
    if through >= yesterday:
        return []
    last = min(yesterday, through + timedelta(days=days))
    since, before = start_of(through + timedelta(days=1), zone), start_of(last + timedelta(1), zone)
    counts = await transcript_counts(session, since, before, zone)
    counts.update(await event_counts(session, since, before, zone))
    await add_stats(session, counts)
    mark.through, mark.updated_at = last, utcnow()
    return [through + timedelta(days=n) for n in range(1, (last - through).days + 1)]


# -- the page's numbers ----------------------------------------------------------------


@dataclass
class Stats:
    first: date
    last: date
    days: list[date]
    # channel -> one number per day of `days`
    messages: dict[str, list[int]] = field(default_factory=dict)
    parents: dict[str, list[int]] = field(default_factory=dict)
    funnel: dict[str, int] = field(default_factory=dict)
    # the Monday of each week -> data confirmations
    confirmations: dict[date, int] = field(default_factory=dict)
    # municipality id -> status -> requests
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    reminders: dict[str, int] = field(default_factory=dict)
    faq: dict[str, int] = field(default_factory=dict)
    # source ("" for none) -> new parents, most first
    sources: list[tuple[str, int]] = field(default_factory=list)
    # channel -> new parents
    new_parents: dict[str, int] = field(default_factory=dict)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def collect(session: AsyncSession, first: date, last: date, zone: ZoneInfo) -> Stats:
    """Every chart's numbers for the region's days first..last (both included)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    since, before = start_of(first, zone), start_of(last + timedelta(days=1), zone)
    counts: Counter[tuple[date, str, str]] = Counter()
    period = (StatsDaily.day >= first, StatsDaily.day <= last)
    # Per day only what is drawn per day; the events summed over the period in SQL.
    stored = await session.execute(
        select(StatsDaily.day, StatsDaily.channel, StatsDaily.metric, StatsDaily.value).where(
            *period,
            StatsDaily.metric.in_(("messages_in", "active_parents", DAILY_EVENT)),
        )
    )
    for day, channel, metric, value in stored:
        counts[(_as_date(day), channel, metric)] += int(value)
    summed = await session.execute(
        select(StatsDaily.metric, func.sum(StatsDaily.value))
        .where(*period, StatsDaily.metric.like("e:%"), StatsDaily.metric != DAILY_EVENT)
        .group_by(StatsDaily.metric)
    )
    for metric, value in summed:
        counts[(first, "", metric)] += int(value)  # the period's total, put on its first day
    through = await rolled_through(session)
    live_from = max(first, through + timedelta(days=1)) if through is not None else first
    if live_from <= last:
        live_since = start_of(live_from, zone)
        counts.update(await transcript_counts(session, live_since, before, zone))
        counts.update(await event_counts(session, live_since, before, zone))

    stats = Stats(first, last, days)
    index = {day: n for n, day in enumerate(days)}
    messages: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    parents: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    events: Counter[tuple[str, str]] = Counter()
    confirmations: Counter[date] = Counter()
    for (day, channel, metric), value in counts.items():
        if day not in index:
            continue
        if metric == "messages_in":
            messages[channel][index[day]] += value
        elif metric == "active_parents":
            parents[channel][index[day]] += value
        elif metric.startswith("e:"):
            _, kind, detail = metric.split(":", 2)
            events[(kind, detail)] += value
            if kind == "data_confirmed":
                confirmations[monday(day)] += value
    stats.messages = dict(sorted(messages.items()))
    stats.parents = dict(sorted(parents.items()))
    stats.funnel = {step: events[("reg_step", step)] for step in FUNNEL}
    weeks = sorted({monday(day) for day in days})
    stats.confirmations = {week: confirmations[week] for week in weeks}
    stats.reminders = {outcome: events[("reminder", outcome)] for outcome in REMINDER_OUTCOMES}
    stats.faq = {
        "answered": events[("faq", "answered")],
        "suggested": events[("faq", "suggested")],
        "unknown": events[("faq", "unknown")],
        "person": events[("handoff", "faq_unknown")] + events[("handoff", "faq_person")],
    }

    municipality = func.coalesce(Program.municipality_id, "")
    rows = await session.execute(
        select(municipality, EnrollmentRequest.status, func.count())
        .join(Program, Program.id == EnrollmentRequest.program_id)
        .where(EnrollmentRequest.created_at >= since, EnrollmentRequest.created_at < before)
        .group_by(municipality, EnrollmentRequest.status)
    )
    requests: dict[str, dict[str, int]] = defaultdict(dict)
    for place, status, n in rows:
        requests[place][status] = int(n)
    stats.requests = dict(sorted(requests.items(), key=lambda item: -sum(item[1].values())))

    source = func.coalesce(User.source, "")
    rows = await session.execute(
        select(source, User.channel, func.count())
        .where(User.first_seen >= since, User.first_seen < before, User.person_id.is_(None))
        .group_by(source, User.channel)
    )
    sources: Counter[str] = Counter()
    new_parents: Counter[str] = Counter()
    for name, channel, n in rows:
        sources[name] += int(n)
        new_parents[channel] += int(n)
    stats.sources = sorted(sources.items(), key=lambda item: (-item[1], item[0]))
    stats.new_parents = dict(sorted(new_parents.items()))
    return stats
