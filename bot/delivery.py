"""The one way out: every message the bot sends, a reply or a notification, goes here.

A channel registers a `Sender` for its platform, with the platform's rate limits.
`deliver()` sends replies already recorded in the transcript (the dialogue engine
records them), paces them under the platform limits, waits out flood control
(`RetryLater`), retries temporary failures (`TemporaryFailure`: 5xx, timeouts) with
backoff, and writes back the outcome: the platform message id, or the failure
reason. A user who blocked the bot is marked unreachable and gets nothing more.
`notify()` is for messages that do not answer an incoming one (a request status
change, a reminder): it records them in the user's transcript first, then delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import update

from bot.pacing import MAX_LIMITS, TELEGRAM_LIMITS, VK_LIMITS, Limiter, Limits, Pacing  # noqa: F401
from handlers.core import Reply
from storage.db import Database
from storage.models import TranscriptEntry, User, utcnow

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send that failed for good; `reason` is stored on the transcript row."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class RetryLater(Exception):
    """The platform asked to slow down (Telegram 429, VK errors 6 and 9)."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TemporaryFailure(Exception):
    """A failure worth retrying with backoff (5xx, timeouts, connection errors)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Send one reply; return the platform message id.

        Raise DeliveryError on a permanent failure, RetryLater or TemporaryFailure
        when the same send may succeed later. A sender that makes several platform
        calls per reply paces each through `Delivery.pace()`.
        """


class Delivery:
    MAX_RETRY_LATER = 20  # flood-control answers waited out for one message
    MAX_TEMPORARY = 5  # 5xx / timeouts retried for one message
    BACKOFF_BASE = 0.5
    BACKOFF_MAX = 30.0

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.senders: dict[str, Sender] = {}
        self.pacing = Pacing(settings.pacing if settings is not None else None)
        self.limiters: dict[str, Limiter] = {}

    def register(
        self, channel: str, sender: Sender, limits: Limits | None = None, *, key: str = ""
    ) -> None:
        """`key` names the platform token: every channel and process with the same token
        shares one pacing (bot/pacing.py)."""
        self.senders[channel] = sender
        self.limiters[channel] = self.pacing.limiter(limits or Limits(), key or channel)

    async def pace(self, channel: str, chat_id: str) -> None:
        """Wait for the channel's rate limits to allow one more platform call."""
        limiter = self.limiters.get(channel)
        if limiter is not None:
            await limiter.acquire(chat_id)

    def paced(self, channel: str, chat_id: str) -> AbstractAsyncContextManager[None]:
        """`async with delivery.paced(channel, chat)`: one platform call, counted until it ends."""
        limiter = self.limiters.get(channel)
        return limiter.slot(chat_id) if limiter is not None else contextlib.nullcontext()

    async def deliver(self, channel: str, chat_id: str, replies: list[Reply]) -> bool:
        """Send replies in order; stop at the first failure. True when all were sent."""
        sender = self.senders.get(channel)
        for reply in replies:
            if sender is None:
                await self._record(reply, None, f"no sender for channel {channel!r}")
                return False
            try:
                message_id = await self._send(channel, sender, chat_id, reply)
            except DeliveryError as exc:
                log.warning("delivery to %s/%s failed: %s", channel, chat_id, exc.reason)
                await self._record(reply, None, exc.reason)
                if exc.unreachable:
                    await self.set_reachable(channel, chat_id, False)
                return False
            await self._record(reply, message_id, None)
        return True

    async def _send(self, channel: str, sender: Sender, chat_id: str, reply: Reply) -> str | None:
        waits = failures = 0
        while True:
            try:
                async with self.paced(channel, chat_id):
                    return await sender.send(chat_id, reply)
            except RetryLater as exc:
                waits += 1
                if waits > self.MAX_RETRY_LATER:
                    raise DeliveryError(f"flood control did not end: {exc.reason}") from exc
                log.info("%s asks to wait %.1fs: %s", channel, exc.retry_after, exc.reason)
                limiter = self.limiters.get(channel)
                if limiter is not None:
                    await limiter.penalise(exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TemporaryFailure as exc:
                failures += 1
                if failures > self.MAX_TEMPORARY:
                    raise DeliveryError(exc.reason) from exc
                delay = min(self.BACKOFF_MAX, self.BACKOFF_BASE * 2 ** (failures - 1))
                log.info("%s send failed (%s); retry in %.1fs", channel, exc.reason, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        await self.pacing.close()

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

    async def set_reachable(self, channel: str, chat_id: str, reachable: bool) -> None:
        """Mark the chat's user (un)reachable: blocked the bot, or came back."""
        async with self.db.session() as session:
            await session.execute(
                update(User)
                .where(User.channel == channel, User.chat_id == chat_id)
                .values(reachable=reachable)
            )
