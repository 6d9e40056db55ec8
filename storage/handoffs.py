"""Conversations handed to hotline staff: the queue every operator and every process sees.

A handoff is opened for a parent (reason asked | faq_unknown | faq_person) and sets
users.with_person_since, so the bot stops answering the parent's free text (the
`with_person` hook). It waits in the queue until an operator takes it; taking is one
conditional UPDATE (`state = 'waiting'`), so of two operators taking at once exactly one
wins, in one process or across several on PostgreSQL. A taken conversation the operator
leaves unanswered goes back to the queue; one where neither side wrote for a while, or
that the operator closes, is closed and the conversation returns to the bot.

Every function works in the caller's transaction; the caller queues what the parent is
told (storage.outbox) in the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.events import record_event
from storage.models import Handoff, TranscriptEntry, User, utcnow

REASONS = ("asked", "faq_unknown", "faq_person")
OPEN = ("waiting", "taken")
# How an open handoff ended (handoffs.closed_by and the handoff_closed event's detail).
BY_OPERATOR, BY_SILENCE, BY_ERASURE = "operator", "silence", "erased"
# Outcomes of `take`.
TAKEN, ALREADY_YOURS, TAKEN_BY_OTHER, GONE = "taken", "yours", "other", "gone"


def aware(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite gives naive ones back)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def open_handoff_of(session: AsyncSession, user_id: int) -> Handoff | None:
    """The parent's open (waiting or taken) handoff, if any."""
    return await session.scalar(
        select(Handoff).where(Handoff.user_id == user_id, Handoff.state.in_(OPEN))
    )


async def open_handoff(
    session: AsyncSession,
    user: User,
    reason: str,
    question: str | None = None,
    *,
    now: datetime | None = None,
) -> tuple[Handoff, bool]:
    """Put the parent in the queue; (the handoff, True) or (their open one, False) when
    they already are in it. Sets users.with_person_since and records a `handoff` event."""
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    existing = await open_handoff_of(session, user.id)
    if existing is not None:
        return existing, False
    now = now or utcnow()
    handoff = Handoff(
        user_id=user.id,
        reason=reason,
        question=(question or None) and question[:2000],
        state="waiting",
        created_at=now,
        waiting_since=now,
        returned=0,
    )
    try:
        async with session.begin_nested():
            session.add(handoff)
            await session.flush()
    except IntegrityError:
        # Another process opened one for this parent at the same moment (the partial
        # unique index): that one is theirs.
        found = await open_handoff_of(session, user.id)
        if found is None:
            raise
        return found, False
    user.with_person_since = now
    record_event(session, "handoff", reason, user=user, at=now)
    return handoff, True


@dataclass(frozen=True)
class Taking:
    outcome: str  # TAKEN, ALREADY_YOURS, TAKEN_BY_OTHER or GONE
    handoff: Handoff | None
    user: User | None = None


async def take(
    session: AsyncSession, handoff_id: int, login: str, *, now: datetime | None = None
) -> Taking:
    """An operator takes a waiting conversation: one conditional UPDATE, so when two take
    it at the same moment one gets TAKEN and the other TAKEN_BY_OTHER (with who has it)."""
    now = now or utcnow()
    result = await session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.state == "waiting")
        .values(state="taken", taken_by=login, taken_at=now)
        .execution_options(synchronize_session=False)
    )
    handoff = await session.get(Handoff, handoff_id, populate_existing=True)
    if handoff is None or handoff.state == "closed":
        return Taking(GONE, handoff)
    user = await session.get(User, handoff.user_id)
    if result.rowcount == 1:
        return Taking(TAKEN, handoff, user)
    if handoff.taken_by == login:
        return Taking(ALREADY_YOURS, handoff, user)
    return Taking(TAKEN_BY_OTHER, handoff, user)


async def release(session: AsyncSession, handoff: Handoff, login: str) -> bool:
    """The operator puts a conversation they hold back in the queue."""
    result = await session.execute(
        update(Handoff)
        .where(Handoff.id == handoff.id, Handoff.state == "taken", Handoff.taken_by == login)
        .values(
            state="waiting",
            waiting_since=utcnow(),
            taken_by=None,
            taken_at=None,
            returned=Handoff.returned + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def operator_replied(
    session: AsyncSession, handoff: Handoff, *, now: datetime | None = None
) -> None:
    now = now or utcnow()
    handoff.last_operator_reply_at = now
    if handoff.first_reply_at is None:
        handoff.first_reply_at = now


async def parent_wrote(session: AsyncSession, user_id: int, at: datetime) -> None:
    """A message of the parent during a handoff (it is in the transcript already)."""
    await session.execute(
        update(Handoff)
        .where(Handoff.user_id == user_id, Handoff.state.in_(OPEN))
        .values(last_parent_message_at=at)
        .execution_options(synchronize_session=False)
    )


async def close(
    session: AsyncSession, handoff_id: int, by: str, *, now: datetime | None = None
) -> tuple[Handoff, User] | None:
    """Close an open handoff (conditionally: closed once, whoever tries); the conversation
    returns to the bot. None when it was closed already."""
    now = now or utcnow()
    result = await session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.state.in_(OPEN))
        .values(state="closed", closed_at=now, closed_by=by)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    handoff = await session.get(Handoff, handoff_id, populate_existing=True)
    assert handoff is not None
    user = await session.get(User, handoff.user_id)
    assert user is not None
    user.with_person_since = None
    record_event(session, "handoff_closed", by, user=user, at=now)
    return handoff, user


async def return_unanswered(session: AsyncSession, now: datetime, after: timedelta) -> list[int]:
    """Taken conversations the operator has not answered for `after` go back to the
    queue: nothing written since taking it, or the parent's last message unanswered."""
    cutoff = now - after
    replied_since_taken = Handoff.last_operator_reply_at >= Handoff.taken_at
    stale = or_(
        and_(
            or_(Handoff.last_operator_reply_at.is_(None), ~replied_since_taken),
            Handoff.taken_at < cutoff,
        ),
        and_(
            replied_since_taken,
            Handoff.last_parent_message_at > Handoff.last_operator_reply_at,
            Handoff.last_parent_message_at < cutoff,
        ),
    )
    ids = list(await session.scalars(select(Handoff.id).where(Handoff.state == "taken", stale)))
    if not ids:
        return []
    result = await session.execute(
        update(Handoff)
        .where(Handoff.id.in_(ids), Handoff.state == "taken", stale)
        .values(
            state="waiting",
            waiting_since=now,
            taken_by=None,
            taken_at=None,
            returned=Handoff.returned + 1,
        )
        .returning(Handoff.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def silent(session: AsyncSession, now: datetime, after: timedelta) -> list[int]:
    """Taken conversations where neither the parent nor the operator wrote for `after`."""
    cutoff = now - after
    quiet = [
        Handoff.state == "taken",
        Handoff.taken_at < cutoff,
        or_(Handoff.last_operator_reply_at.is_(None), Handoff.last_operator_reply_at < cutoff),
        or_(Handoff.last_parent_message_at.is_(None), Handoff.last_parent_message_at < cutoff),
    ]
    return list(await session.scalars(select(Handoff.id).where(*quiet)))


async def clear_orphans(session: AsyncSession) -> int:
    """Parents marked as with a person whose handoff is gone (the retention purge deletes
    old rows): the conversation returns to the bot."""
    result = await session.execute(
        update(User)
        .where(
            User.with_person_since.is_not(None),
            ~exists(select(Handoff.id).where(Handoff.user_id == User.id, Handoff.state.in_(OPEN))),
        )
        .values(with_person_since=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


@dataclass
class QueueRow:
    handoff: Handoff
    user: User
    last_in: TranscriptEntry | None  # the latest message the parent wrote

    def waited(self, now: datetime) -> timedelta:
        return now - (aware(self.handoff.waiting_since) or now)


async def queue(session: AsyncSession) -> tuple[list[QueueRow], list[QueueRow]]:
    """The waiting conversations, newest waiting first, and the taken ones (taken longest
    ago first), each with the parent's latest message."""
    found = (
        await session.execute(
            select(Handoff, User)
            .join(User, User.id == Handoff.user_id)
            .where(Handoff.state.in_(OPEN))
            .order_by(Handoff.waiting_since.desc(), Handoff.id.desc())
        )
    ).all()
    latest = await _latest_in(session, [user.id for _, user in found])
    rows = [QueueRow(handoff, user, latest.get(user.id)) for handoff, user in found]
    waiting = [row for row in rows if row.handoff.state == "waiting"]
    taken = sorted(
        (row for row in rows if row.handoff.state == "taken"),
        key=lambda row: aware(row.handoff.taken_at) or utcnow(),
    )
    return waiting, taken


async def _latest_in(session: AsyncSession, user_ids: list[int]) -> dict[int, TranscriptEntry]:
    if not user_ids:
        return {}
    newest = (
        select(func.max(TranscriptEntry.id))
        .where(
            TranscriptEntry.user_id.in_(user_ids),
            TranscriptEntry.direction == "in",
            TranscriptEntry.payload.is_(None),  # what they wrote, not a button pressed
            TranscriptEntry.text != "",
            ~TranscriptEntry.text.startswith("/"),  # nor a command
        )
        .group_by(TranscriptEntry.user_id)
    )
    ids = list(await session.scalars(newest))
    if not ids:
        return {}
    entries = await session.scalars(select(TranscriptEntry).where(TranscriptEntry.id.in_(ids)))
    return {entry.user_id: entry for entry in entries}
