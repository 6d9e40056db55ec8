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
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Limits:
    """Platform pacing: `per_second` calls overall; per chat a burst, then `chat_per_second`."""

    per_second: float = 0.0  # 0: unlimited
    chat_per_second: float = 0.0  # 0: unlimited
    chat_burst: int = 1


TELEGRAM_LIMITS = Limits(per_second=30, chat_per_second=1, chat_burst=5)
VK_LIMITS = Limits(per_second=20)


class RateLimiter:
    """Spaces calls `1/per_second` apart overall and keeps a token bucket per chat.

    The overall spacing is measured between the moments calls are actually let
    through (callers queue on a lock), so a stalled event loop cannot release a
    bunch of overdue calls at once and trip the platform's flood control.
    """

    MAX_CHATS = 10_000
    MARGIN = 1.1  # space calls a little wider than the limit: clocks and networks jitter

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._last = -1e9
        self._lock = asyncio.Lock()
        self._chats: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, stamp

    @property
    def interval(self) -> float:
        return self.MARGIN / self.limits.per_second if self.limits.per_second else 0.0

    async def acquire(self, chat_id: str) -> None:
        if self.limits.chat_per_second:
            await self._chat_token(chat_id)
        if self.limits.per_second:
            async with self._lock:
                wait = self._last + self.interval - time.monotonic()
                while wait > 0:
                    await asyncio.sleep(wait)
                    wait = self._last + self.interval - time.monotonic()
                self._last = time.monotonic()

    async def _chat_token(self, chat_id: str) -> None:
        rate, burst = self.limits.chat_per_second, self.limits.chat_burst
        while True:
            now = time.monotonic()
            tokens, stamp = self._chats.pop(chat_id, (float(burst), now))
            tokens = min(float(burst), tokens + (now - stamp) * rate)
            if tokens >= 1:
                self._chats[chat_id] = (tokens - 1, now)
                while len(self._chats) > self.MAX_CHATS:
                    self._chats.popitem(last=False)
                return
            self._chats[chat_id] = (tokens, now)
            await asyncio.sleep((1 - tokens) * self.MARGIN / rate)

    def penalise(self, seconds: float) -> None:
        """After a flood-control answer, hold every call back for `seconds`."""
        self._last = max(self._last, time.monotonic() + seconds - self.interval)


class Delivery:
    MAX_RETRY_LATER = 20  # flood-control answers waited out for one message
    MAX_TEMPORARY = 5  # 5xx / timeouts retried for one message
    BACKOFF_BASE = 0.5
    BACKOFF_MAX = 30.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self.senders: dict[str, Sender] = {}
        self.limiters: dict[str, RateLimiter] = {}

    def register(self, channel: str, sender: Sender, limits: Limits | None = None) -> None:
        self.senders[channel] = sender
        self.limiters[channel] = RateLimiter(limits or Limits())

    async def pace(self, channel: str, chat_id: str) -> None:
        """Wait for the channel's rate limits to allow one more platform call."""
        limiter = self.limiters.get(channel)
        if limiter is not None:
            await limiter.acquire(chat_id)

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
            await self.pace(channel, chat_id)
            try:
                return await sender.send(chat_id, reply)
            except RetryLater as exc:
                waits += 1
                if waits > self.MAX_RETRY_LATER:
                    raise DeliveryError(f"flood control did not end: {exc.reason}") from exc
                log.info("%s asks to wait %.1fs: %s", channel, exc.retry_after, exc.reason)
                limiter = self.limiters.get(channel)
                if limiter is not None:
                    limiter.penalise(exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TemporaryFailure as exc:
                failures += 1
                if failures > self.MAX_TEMPORARY:
                    raise DeliveryError(exc.reason) from exc
                delay = min(self.BACKOFF_MAX, self.BACKOFF_BASE * 2 ** (failures - 1))
                log.info("%s send failed (%s); retry in %.1fs", channel, exc.reason, delay)
                await asyncio.sleep(delay)

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
