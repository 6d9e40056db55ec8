"""Helpers for the reminder and campaign tests: a fixed clock, parents made in bulk, and
what went to the outbox."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from storage.models import Reminder, TranscriptEntry, User


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


async def make_parents(
    app,
    count: int,
    *,
    channel: str = "telegram",
    first_id: int = 1,
    **fields,
) -> list[int]:
    """Insert `count` parents of `channel` (platform ids first_id, first_id + 1, ...)."""
    values = [
        {
            "channel": channel,
            "platform_user_id": str(first_id + n),
            "chat_id": str(first_id + n),
            "name": "",
            "reachable": True,
            **fields,
        }
        for n in range(count)
    ]
    async with app.db.session() as session:
        ids = await session.scalars(insert(User).returning(User.id), values)
        return list(ids)


async def plan_due(app, user_ids: list[int], due: datetime) -> None:
    async with app.db.session() as session:
        await session.execute(
            insert(Reminder),
            [
                {
                    "user_id": uid,
                    "kind": "confirm_data",
                    "seq": 1,
                    "due_at": due,
                    "state": "planned",
                }
                for uid in user_ids
            ],
        )


async def outgoing(app, kind: str, user_id: int | None = None) -> list[TranscriptEntry]:
    """The outgoing transcript rows (the outbox) of `kind`, oldest first."""
    query = select(TranscriptEntry).where(
        TranscriptEntry.direction == "out", TranscriptEntry.kind == kind
    )
    if user_id is not None:
        query = query.where(TranscriptEntry.user_id == user_id)
    async with app.db.session() as session:
        return list(await session.scalars(query.order_by(TranscriptEntry.id)))


async def per_user(app, kind: str) -> Counter[int]:
    return Counter(row.user_id for row in await outgoing(app, kind))
