"""The one way out: every message the bot sends, a reply or a notification, goes here.

A channel registers a `Sender` for its platform. `deliver()` sends replies already
recorded in the transcript (the dialogue engine records them) and writes back the
outcome: the platform message id, or the failure reason. `notify()` is for messages
that do not answer an incoming one (a request status change, a reminder): it
records them in the user's transcript first, then delivers them.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import update

from handlers.core import Reply
from storage.db import Database
from storage.models import TranscriptEntry, User, utcnow

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send that failed for good; `reason` is stored on the transcript row."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class Sender(Protocol):
    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Send one reply; return the platform message id. Raise DeliveryError on failure."""


class Delivery:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.senders: dict[str, Sender] = {}

    def register(self, channel: str, sender: Sender) -> None:
        self.senders[channel] = sender

    async def deliver(self, channel: str, chat_id: str, replies: list[Reply]) -> bool:
        """Send replies in order; stop at the first failure. True when all were sent."""
        sender = self.senders.get(channel)
        for reply in replies:
            if sender is None:
                await self._record(reply, None, f"no sender for channel {channel!r}")
                return False
            try:
                message_id = await sender.send(chat_id, reply)
            except DeliveryError as exc:
                log.warning("delivery to %s/%s failed: %s", channel, chat_id, exc.reason)
                await self._record(reply, None, exc.reason)
                if exc.unreachable:
                    await self._mark_unreachable(channel, chat_id)
                return False
            await self._record(reply, message_id, None)
        return True

    async def notify(self, user_id: int, replies: list[Reply]) -> bool:
        """Record replies in the user's transcript and deliver them to their messenger."""
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise LookupError(f"no user {user_id}")
            channel, chat_id, reachable = user.channel, user.chat_id, user.reachable
            for reply in replies:
                entry = TranscriptEntry(
                    user_id=user_id,
                    direction="out",
                    text=reply.text,
                    buttons=reply.buttons_json(),
                    status="pending",
                )
                session.add(entry)
                await session.flush()
                reply.transcript_id = entry.id
        if not reachable:
            for reply in replies:
                await self._record(reply, None, "user unreachable")
            return False
        return await self.deliver(channel, chat_id, replies)

    async def _record(self, reply: Reply, message_id: str | None, error: str | None) -> None:
        if reply.transcript_id is None:
            return
        async with self.db.session() as session:
            await session.execute(
                update(TranscriptEntry)
                .where(TranscriptEntry.id == reply.transcript_id)
                .values(
                    status="failed" if error else "sent",
                    error=error[:500] if error else None,
                    platform_message_id=message_id,
                    sent_at=None if error else utcnow(),
                )
            )

    async def _mark_unreachable(self, channel: str, chat_id: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(User)
                .where(User.channel == channel, User.chat_id == chat_id)
                .values(reachable=False)
            )
