"""Reminder rows: planning a series, stopping it, snoozing, and claiming the due ones.

Every function works inside the caller's session (one transaction) and takes the
current time as an argument, so the same code runs in a dialogue step, in the
ticker and in tests with a fixed clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.linking import linked_ids
from storage.models import Reminder, TranscriptEntry, User
from storage.requests import as_utc

KIND = "confirm_data"


async def planned(session: AsyncSession, user_id: int, kind: str = KIND) -> list[Reminder]:
    """The user's reminders still to come, soonest first."""
    rows = await session.scalars(
        select(Reminder)
        .where(
            Reminder.user_id.in_(linked_ids(user_id)),
            Reminder.kind == kind,
            Reminder.state == "planned",
        )
        .order_by(Reminder.due_at, Reminder.id)
    )
    return list(rows)


async def plan_series(
    session: AsyncSession, user_id: int, due_times: Sequence[datetime], kind: str = KIND
) -> list[Reminder]:
    """Plan reminders at `due_times` (numbered 1, 2, ...) unless some are already planned."""
    existing = await planned(session, user_id, kind)
    if existing:
        return existing
    rows = [
        Reminder(user_id=user_id, kind=kind, seq=n, due_at=due, state="planned", attempts=0)
        for n, due in enumerate(due_times, start=1)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


async def stop(session: AsyncSession, user_id: int, state: str, kind: str = KIND) -> int:
    """Stop the user's reminders: planned ones become `state` ("confirmed" or
    "opted_out"), and a reminder already in the outbox but not yet sent is withdrawn
    (its outgoing row expires). Returns how many reminders were stopped."""
    stopped = await session.execute(
        update(Reminder)
        .execution_options(synchronize_session=False)
        .where(
            Reminder.user_id.in_(linked_ids(user_id)),
            Reminder.kind == kind,
            Reminder.state == "planned",
        )
        .values(state=state, last_error=None)
    )
    withdrawn = list(
        await session.scalars(
            update(TranscriptEntry)
            .execution_options(synchronize_session=False)
            .where(
                TranscriptEntry.user_id.in_(linked_ids(user_id)),
                TranscriptEntry.direction == "out",
                TranscriptEntry.kind == "reminder",
                TranscriptEntry.status == "pending",
            )
            .values(status="expired", error=f"reminders stopped: {state}", sent_at=None)
            .returning(TranscriptEntry.id)
        )
    )
    if withdrawn:
        await session.execute(
            update(Reminder)
            .execution_options(synchronize_session=False)
            .execution_options(synchronize_session=False)
            .where(Reminder.user_id.in_(linked_ids(user_id)), Reminder.transcript_id.in_(withdrawn))
            .values(state=state)
        )
    return (stopped.rowcount or 0) + len(withdrawn)


async def snooze(
    session: AsyncSession, user_id: int, until: datetime, seq: int = 1, kind: str = KIND
) -> Reminder:
    """Remind again at `until`: the next planned reminder moves there when it is due
    sooner; otherwise a new one is planned for then (a later one stays where it is)."""
    upcoming = await planned(session, user_id, kind)
    if upcoming and as_utc(upcoming[0].due_at) <= until:
        upcoming[0].due_at = until
        return upcoming[0]
    last_seq = await session.scalar(
        select(func.max(Reminder.seq)).where(
            Reminder.user_id == user_id, Reminder.kind == kind, Reminder.state == "sent"
        )
    )
    row = Reminder(
        user_id=user_id,
        kind=kind,
        seq=last_seq or seq,
        due_at=until,
        state="planned",
        attempts=0,
    )
    session.add(row)
    await session.flush()
    return row


async def due_channels(session: AsyncSession, now: datetime) -> list[str]:
    """The channels of reachable parents with a reminder due by `now`."""
    rows = await session.scalars(
        select(User.channel)
        .join(Reminder, Reminder.user_id == User.id)
        .where(
            Reminder.state == "planned",
            Reminder.due_at <= now,
            User.reachable.is_(True),
            User.with_person_since.is_(None),
        )
        .distinct()
    )
    return sorted(rows)


async def waiting_in_outbox(session: AsyncSession, channel: str) -> int:
    """Reminders of `channel` queued in the outbox and not yet sent."""
    return (
        await session.scalar(
            select(func.count())
            .select_from(TranscriptEntry)
            .join(User, TranscriptEntry.user_id == User.id)
            .where(
                User.channel == channel,
                TranscriptEntry.kind == "reminder",
                TranscriptEntry.status == "pending",
            )
        )
        or 0
    )


async def claim_due(
    session: AsyncSession, now: datetime, channel: str, limit: int
) -> list[tuple[Reminder, User]]:
    """Lock up to `limit` due reminders of reachable parents in `channel`, oldest first.

    On PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED: a second ticker running at
    the same moment takes other rows, never these. Parents who blocked the bot are left
    out (their reminders wait until they write again), and so are parents talking with a
    person from the hotline (theirs wait until the conversation is back with the bot)."""
    query = (
        select(Reminder, User)
        .join(User, Reminder.user_id == User.id)
        .where(
            Reminder.state == "planned",
            Reminder.due_at <= now,
            User.channel == channel,
            User.reachable.is_(True),
            User.with_person_since.is_(None),
        )
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Reminder)
    )
    return [(reminder, user) for reminder, user in (await session.execute(query)).all()]


async def supersede(
    session: AsyncSession, user_ids: list[int], keep: list[int], now: datetime, kind: str = KIND
) -> int:
    """Retire these users' reminders due by `now` other than the ones in `keep` (the ones
    being sent): after downtime only one reminder goes out, not one per missed day."""
    result = await session.execute(
        update(Reminder)
        .execution_options(synchronize_session=False)
        .where(
            Reminder.user_id.in_(user_ids),
            Reminder.kind == kind,
            Reminder.state == "planned",
            Reminder.due_at <= now,
            Reminder.id.not_in(keep),
        )
        .values(state="superseded")
    )
    return result.rowcount or 0


async def mark_all(
    session: AsyncSession, ids: list[int], state: str, **values: object
) -> list[int]:
    """Move claimed reminders from planned to `state`; returns the ids moved. The update
    is conditional on "planned", so one another ticker has just taken is not moved (and
    not sent) here."""
    if not ids:
        return []
    result = await session.scalars(
        update(Reminder)
        .execution_options(synchronize_session=False)
        .where(Reminder.id.in_(ids), Reminder.state == "planned")
        .values(state=state, attempts=Reminder.attempts + 1, **values)
        .returning(Reminder.id)
    )
    return list(result)


async def fail(session: AsyncSession, reminder_id: int, error: str) -> None:
    """A claimed reminder that could not be turned into a message."""
    await session.execute(
        update(Reminder)
        .execution_options(synchronize_session=False)
        .where(Reminder.id == reminder_id)
        .values(state="failed", sent_at=None, last_error=error[:500])
    )
