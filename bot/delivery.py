"""The one way out: the delivery worker that sends the outbox.

Every message to a parent is first a pending outgoing transcript row, written in the
transaction that decided to say it (storage/outbox.py). A channel registers a
`Sender` for its platform, with the platform's rate limits; the worker sends each
chat's pending rows in order, paces them under the platform limits, waits out flood
control (`RetryLater`), retries temporary failures (`TemporaryFailure`: 5xx,
timeouts) with backoff, and writes back the outcome on the row: the platform message
id, or the failure reason. A user who blocked the bot is marked unreachable and gets
nothing more. Rows left pending by a crash are sent after the restart (at least once:
a duplicate is possible only when the process died after the platform accepted a
message and before it was marked; VK's random_id, derived from the row id, makes VK
drop such a resend). A dialogue reply that waited longer than `reply_max_age` is
marked expired instead of being sent out of context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import exists, or_, select, update

from bot.pacing import (  # noqa: F401
    BACKGROUND,
    HOLD,
    MAX_LIMITS,
    TELEGRAM_LIMITS,
    VK_LIMITS,
    Limiter,
    Limits,
    Pacing,
)
from bot.telemetry import Telemetry
from handlers.core import Reply
from storage.db import Database
from storage.events import record_event
from storage.models import TranscriptEntry, User, utcnow
from storage.outbox import notify_channel, queue_replies

if TYPE_CHECKING:
    from bot.config import PacingSection

log = logging.getLogger(__name__)

# Outbox rows no parent is waiting for at that moment: sent after every other call.
BACKGROUND_KINDS = frozenset({"reminder", "campaign"})


class DeliveryError(Exception):
    """A send that failed for good; `reason` is stored on the transcript row."""

    def __init__(self, reason: str, *, unreachable: bool = False, kind: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        # For /metrics: rejected (by the platform), flood_control or temporary (gave up).
        self.kind = kind


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


def worker_identity() -> str:
    """host:pid:nonce — who holds a chat's or an update's lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_dead(owner: str) -> bool:
    """True when `owner` was a process of this host that no longer runs (killed, crashed):
    its leases can be taken over at once instead of after they expire."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        # This very process: dead only if no live worker of it has that id (a previous
        # incarnation with a recycled pid, or a worker that was stopped).
        return owner not in _LIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# The ids of this process's delivery workers that have not been stopped.
_LIVE_OWNERS: set[str] = set()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they are stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Delivery:
    """Sends the outbox. `start()` runs the worker of this process: it is woken when rows
    are queued here (at once), by PostgreSQL NOTIFY when another process queued them, and
    by a sweep every few seconds that also takes over chats whose worker died. One chat is
    sent by one worker at a time (a lease on the user row), in the order the rows were
    written; many chats are sent at once, within the platform's pacing."""

    BACKOFF_BASE = 0.5
    LEASE = timedelta(seconds=60)
    SWEEP_SECONDS = 2.0
    BATCH = 10  # rows read per query while draining one chat
    MAX_CHATS = 1000  # chats being sent at once by one process
    FLUSH_WAIT = 60.0  # how long flush() waits for rows another worker is sending

    def __init__(
        self,
        db: Database,
        *,
        reply_max_age: timedelta = timedelta(hours=24),
        worker_id: str | None = None,
        pacing: PacingSection | None = None,
        retry_max: float = 30.0,
        give_up: timedelta = timedelta(minutes=30),
        request_timeout: float = 15.0,
    ) -> None:
        self.db = db
        self.reply_max_age = reply_max_age
        # Backoff between retries doubles up to `retry_max` seconds; a send still failing
        # `give_up` after its first try fails for good. Channels give each API call
        # `request_timeout` seconds and back their polls off up to `retry_max` too.
        self.retry_max = retry_max
        self.give_up = give_up.total_seconds()
        self.request_timeout = request_timeout
        self.worker_id = worker_id or worker_identity()
        self.started_at = utcnow()
        _LIVE_OWNERS.add(self.worker_id)
        self.senders: dict[str, Sender] = {}
        self.pacing = Pacing(pacing)
        # What /metrics and /healthz report; one per process, shared with the inbox.
        self.telemetry = Telemetry()
        self.limiters: dict[str, Limiter] = {}
        self._draining: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._slots: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Any = None
        self.running = False
        # False in a process without the delivery role: what it queues is sent by the
        # delivery workers (woken by PostgreSQL NOTIFY), not here.
        self.sends = True

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

    def paced(
        self, channel: str, chat_id: str, *, longest: float = HOLD
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """`async with delivery.paced(channel, chat)`: one platform call, counted until it
        ends, or `longest` seconds after its grant at most (bot/pacing.py)."""
        limiter = self.limiters.get(channel)
        if limiter is None:
            return contextlib.nullcontext()
        return limiter.slot(chat_id, longest=longest)

    # -- the worker -----------------------------------------------------------------------
    async def start(self) -> None:
        """Run this process's delivery worker until `stop()`: first whatever was left
        pending (by a crash or a restart), then everything queued from now on."""
        if self.running:
            return
        self.running = True
        self._wake = asyncio.Event()
        await self._release_dead_leases()
        if self.db.dialect == "postgresql":
            await self._listen()
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="delivery-sweep"))

    async def stop(self) -> None:
        self.running = False
        _LIVE_OWNERS.discard(self.worker_id)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        draining = list(self._draining.values())
        for task in draining:
            task.cancel()
        await asyncio.gather(*draining, return_exceptions=True)

    async def close(self) -> None:
        """Let go of the pacing's connections (Redis); after `stop()`."""
        await self.pacing.close()

    def wake(self) -> None:
        """Look for pending rows now (another process or a script queued some)."""
        if self._wake is not None:
            self._wake.set()

    def wake_user(self, user_id: int) -> asyncio.Task[None]:
        """Send `user_id`'s pending rows now, in a task of its own (one per chat)."""
        task = self._draining.get(user_id)
        if task is not None and not task.done():
            self._again.add(user_id)
            return task
        task = asyncio.create_task(self._drain_loop(user_id), name=f"deliver-{user_id}")
        self._draining[user_id] = task

        def forget(done: asyncio.Task[None], uid: int = user_id) -> None:
            if self._draining.get(uid) is done:
                del self._draining[uid]

        task.add_done_callback(forget)
        return task

    def submit(self, replies: list[Reply]) -> None:
        """The replies were committed to the outbox: send them as soon as possible."""
        if not self.sends:
            return
        for user_id in dict.fromkeys(r.user_id for r in replies if r.user_id is not None):
            self.wake_user(user_id)

    async def _sweep_loop(self) -> None:
        assert self._wake is not None
        while self.running:
            try:
                await self.sweep()
            except Exception as exc:  # the database may be away for a moment
                log.warning("delivery sweep failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.SWEEP_SECONDS)
            self._wake.clear()

    async def sweep(self) -> int:
        """Start sending to every chat of this process's channels that has pending rows
        and no live worker on it; the number of chats started."""
        if not self.senders:
            return 0
        now = utcnow()
        async with self.db.session() as session:
            user_ids = (
                await session.scalars(
                    select(TranscriptEntry.user_id)
                    .join(User, User.id == TranscriptEntry.user_id)
                    .where(
                        TranscriptEntry.status == "pending",
                        User.channel.in_(list(self.senders)),
                        or_(
                            User.outbox_owner.is_(None),
                            User.outbox_owner == self.worker_id,
                            User.outbox_lease_until < now,
                        ),
                    )
                    .distinct()
                    .limit(self.MAX_CHATS)
                )
            ).all()
        started = 0
        for user_id in user_ids:
            if user_id not in self._draining:
                self.wake_user(user_id)
                started += 1
        return started

    async def _release_dead_leases(self) -> None:
        async with self.db.session() as session:
            owners = (
                await session.scalars(
                    select(User.outbox_owner).where(User.outbox_owner.is_not(None)).distinct()
                )
            ).all()
            dead = [owner for owner in owners if owner and owner_is_dead(owner)]
            if dead:
                await session.execute(
                    update(User)
                    .where(User.outbox_owner.in_(dead))
                    .values(outbox_owner=None, outbox_lease_until=None)
                )
                log.info("delivery: took over the chats of %d stopped worker(s)", len(dead))

    async def _listen(self) -> None:
        """PostgreSQL LISTEN: rows queued by another process wake this worker at once."""
        import asyncpg

        dsn = self.db.url.replace("postgresql+asyncpg://", "postgresql://")
        settings = {"search_path": self.db.schema} if self.db.schema else None
        try:
            self._listener = await asyncpg.connect(dsn, server_settings=settings, timeout=10)
        except Exception as exc:
            log.warning("delivery: LISTEN unavailable (%s); sweeping only", type(exc).__name__)
            return

        def notified(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            channel, _, user_id = payload.partition(":")
            if channel in self.senders and user_id.isdigit() and self.running:
                self.wake_user(int(user_id))

        await self._listener.add_listener(notify_channel(self.db.schema), notified)

    # -- one chat -------------------------------------------------------------------------
    async def _drain_loop(self, user_id: int) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.MAX_CHATS)
        async with self._slots:
            while True:
                self._again.discard(user_id)
                try:
                    await self._drain(user_id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The rows stay pending; the sweep comes back to them.
                    log.warning("delivery to user %s stopped: %s", user_id, type(exc).__name__)
                    return
                if user_id not in self._again:
                    return

    async def _claim(self, user_id: int) -> tuple[str, str, bool, list[Any]] | None:
        """Take the chat's lease: free, ours, expired, or left by a process of this host
        that no longer runs. (channel, chat id, reachable, the first pending rows), or None:
        another worker has it."""
        now = utcnow()
        async with self.db.session() as session:
            free = or_(
                User.outbox_owner.is_(None),
                User.outbox_owner == self.worker_id,
                User.outbox_lease_until < now,
            )
            row = await self._take(session, user_id, free, now)
            if row is None:
                owner = await session.scalar(select(User.outbox_owner).where(User.id == user_id))
                if owner and owner_is_dead(owner):
                    row = await self._take(session, user_id, User.outbox_owner == owner, now)
            if row is None:
                return None
            first = await self._pending(session, user_id)
        return row[0], row[1], bool(row[2]), first

    async def _pending(self, session: Any, user_id: int) -> list[Any]:
        """The next pending rows of the chat, oldest first."""
        return list(
            (
                await session.execute(
                    select(
                        TranscriptEntry.id,
                        TranscriptEntry.text,
                        TranscriptEntry.buttons,
                        TranscriptEntry.kind,
                        TranscriptEntry.created_at,
                    )
                    .where(
                        TranscriptEntry.user_id == user_id,
                        TranscriptEntry.status == "pending",
                    )
                    .order_by(TranscriptEntry.id)
                    .limit(self.BATCH)
                )
            ).all()
        )

    async def _release(self, session: Any, user_id: int) -> bool:
        """Give the chat's lease up, unless a row came in meanwhile; whether it was."""
        released = await session.execute(
            update(User)
            .where(
                User.id == user_id,
                User.outbox_owner == self.worker_id,
                ~exists().where(
                    TranscriptEntry.user_id == user_id,
                    TranscriptEntry.status == "pending",
                ),
            )
            .values(outbox_owner=None, outbox_lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return bool(released.rowcount)  # type: ignore[attr-defined]

    async def _take(self, session: Any, user_id: int, condition: Any, now: datetime) -> Any:
        return (
            await session.execute(
                update(User)
                .where(User.id == user_id, User.channel.in_(list(self.senders)), condition)
                .values(outbox_owner=self.worker_id, outbox_lease_until=now + self.LEASE)
                .returning(User.channel, User.chat_id, User.reachable)
                .execution_options(synchronize_session=False)
            )
        ).first()

    async def _drain(self, user_id: int) -> None:
        claimed = await self._claim(user_id)
        if claimed is None:
            return  # another worker is sending to this chat; it sends these rows too
        channel, chat_id, reachable, rows = claimed
        sender = self.senders[channel]
        renew_at = time.monotonic() + self.LEASE.total_seconds() / 3
        while True:
            if not rows:
                async with self.db.session() as session:
                    if await self._release(session, user_id):
                        return
                    rows = await self._pending(session, user_id)  # a row came in meanwhile
                continue
            for index, (row_id, text, buttons, kind, created_at) in enumerate(rows):
                if time.monotonic() > renew_at:
                    await self._renew(user_id)
                    renew_at = time.monotonic() + self.LEASE.total_seconds() / 3
                # The last row of a short batch: its outcome and the lease's release
                # are written in one transaction.
                last = index == len(rows) - 1 and len(rows) < self.BATCH
                reachable, released = await self._send_row(
                    channel,
                    sender,
                    chat_id,
                    user_id,
                    reachable,
                    Reply.from_stored(text, buttons, row_id, user_id),
                    kind,
                    as_utc(created_at),
                    release=last,
                )
                if released:
                    return
            async with self.db.session() as session:
                rows = await self._pending(session, user_id)

    async def _renew(self, user_id: int) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(User)
                .where(User.id == user_id, User.outbox_owner == self.worker_id)
                .values(outbox_lease_until=utcnow() + self.LEASE)
                .execution_options(synchronize_session=False)
            )

    async def _send_row(
        self,
        channel: str,
        sender: Sender,
        chat_id: str,
        user_id: int,
        reachable: bool,
        reply: Reply,
        kind: str | None,
        created_at: datetime,
        *,
        release: bool = False,
    ) -> tuple[bool, bool]:
        """Send one row and record the outcome (with `release`, also give the chat's lease
        up if nothing more is pending); whether the chat is still reachable, and whether
        the lease was given up."""
        owner = user_id if release else None
        # A reminder's result is a statistics event, written with the result.
        who = (user_id, channel) if kind == "reminder" else None
        if not reachable:
            self.telemetry.failed(channel, "unreachable", reply.transcript_id)
            return False, await self._record(
                reply, None, "user unreachable", release=owner, event=who, outcome="unreachable"
            )
        if kind in (None, "reply") and utcnow() - created_at > self.reply_max_age:
            self.telemetry.failed(channel, "expired", reply.transcript_id)
            expired = await self._record(
                reply, None, "too old to send", status="expired", release=owner
            )
            return True, expired
        if getattr(sender, "current_session_only", False) and created_at < self.started_at:
            # A terminal session is new with every run: what a previous run decided to
            # print belongs to that session.
            done = await self._record(
                reply, None, "left by a previous session", status="expired", release=owner
            )
            return True, done
        if kind not in (None, "reply") and not await self._still_pending(reply):
            return True, False  # cancelled meanwhile (a reminder the parent no longer needs)
        # No parent is waiting for a reminder or a campaign message: they give way to
        # every other call (bot/pacing.py).
        background = BACKGROUND.set(kind in BACKGROUND_KINDS)
        try:
            message_id = await self._send(channel, sender, chat_id, reply)
        except DeliveryError as exc:
            log.warning("delivery to %s user %s failed: %s", channel, user_id, exc.reason)
            reason = "unreachable" if exc.unreachable else exc.kind
            self.telemetry.failed(channel, reason, reply.transcript_id)
            if exc.unreachable:
                await self._set_user_reachable(user_id, False)
                return False, await self._record(
                    reply, None, exc.reason, release=owner, event=who, outcome="unreachable"
                )
            return True, await self._record(
                reply, None, exc.reason, release=owner, event=who, outcome="failed"
            )
        finally:
            BACKGROUND.reset(background)
        self.telemetry.sent(channel, kind, reply.transcript_id)
        return True, await self._record_sent(
            reply, message_id, release=owner, event=who, outcome="sent"
        )

    async def _record_sent(self, reply: Reply, message_id: str | None, **options: Any) -> bool:
        """Write that a row went out. This must not fail on a database hiccup (no pooled
        connection free in time on a loaded machine, a dropped connection): a row left
        pending is sent again by the sweep, and the parent would get it twice. Retried
        until it is written."""
        failures = 0
        while True:
            try:
                return await self._record(reply, message_id, None, **options)
            except Exception as exc:
                failures += 1
                delay = self.backoff(failures)
                log.warning(
                    "delivery: recording sent row %s failed (%s); again in %.1fs",
                    reply.transcript_id,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _still_pending(self, reply: Reply) -> bool:
        async with self.db.session() as session:
            status = await session.scalar(
                select(TranscriptEntry.status).where(TranscriptEntry.id == reply.transcript_id)
            )
        return status == "pending"

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row: doubling from
        BACKOFF_BASE up to `retry_max`, with jitter so that many chats failing together
        do not come back together."""
        ceiling = min(self.retry_max, self.BACKOFF_BASE * 2 ** min(failures - 1, 30))
        return random.uniform(ceiling / 2, ceiling)

    async def _send(self, channel: str, sender: Sender, chat_id: str, reply: Reply) -> str | None:
        """Send until the platform takes it or refuses it for good; temporary failures
        and flood control are waited out until `give_up` after the first try."""
        deadline = time.monotonic() + self.give_up
        failures = 0
        while True:
            try:
                async with self.paced(channel, chat_id):
                    return await sender.send(chat_id, reply)
            except RetryLater as exc:
                if time.monotonic() + exc.retry_after > deadline:
                    raise DeliveryError(
                        f"flood control did not end: {exc.reason}", kind="flood_control"
                    ) from exc
                self.telemetry.retried(channel, "flood_control")
                log.info("%s asks to wait %.1fs: %s", channel, exc.retry_after, exc.reason)
                limiter = self.limiters.get(channel)
                if limiter is not None:
                    await limiter.penalise(exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except DeliveryError:
                raise
            except Exception as exc:
                # TemporaryFailure, or what a sender did not expect (an answer of a shape
                # the platform does not document): retried the same way, so that one
                # odd row cannot be sent again and again after the give-up time.
                reason = exc.reason if isinstance(exc, TemporaryFailure) else type(exc).__name__
                failures += 1
                delay = self.backoff(failures)
                if time.monotonic() + delay > deadline:
                    raise DeliveryError(reason, kind="temporary") from exc
                self.telemetry.retried(channel, "temporary")
                log.info("%s send failed (%s); retry in %.1fs", channel, reason, delay)
                await asyncio.sleep(delay)

    async def _record(
        self,
        reply: Reply,
        message_id: str | None,
        error: str | None,
        status: str = "",
        *,
        release: int | None = None,
        event: tuple[int, str] | None = None,
        outcome: str = "",
    ) -> bool:
        """Write a row's outcome; with `release` (the user id), also give that chat's lease
        up in the same transaction when nothing more is pending. Whether it was. With
        `event` (the user id and channel of a reminder), the outcome is also a statistics
        event in the same transaction."""
        if reply.transcript_id is None:
            return False
        async with self.db.session() as session:
            if event is not None:
                record_event(session, "reminder", outcome, user_id=event[0], channel=event[1])
            await session.execute(
                update(TranscriptEntry)
                .where(TranscriptEntry.id == reply.transcript_id)
                .values(
                    status=status or ("failed" if error else "sent"),
                    error=error[:500] if error else None,
                    platform_message_id=message_id,
                    sent_at=None if error else utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return await self._release(session, release) if release is not None else False

    # -- the ways in ----------------------------------------------------------------------
    async def deliver(self, channel: str, chat_id: str, replies: list[Reply]) -> bool:
        """Send these committed replies now, in this task, after whatever was pending
        before them in their chat. True when every one of them was sent."""
        return await self.flush(replies)

    async def flush(self, replies: list[Reply]) -> bool:
        ids = [reply.transcript_id for reply in replies if reply.transcript_id is not None]
        if not ids:
            return not replies
        user_ids = {reply.user_id for reply in replies if reply.user_id is not None}
        if not user_ids:
            async with self.db.session() as session:
                user_ids = set(
                    (
                        await session.scalars(
                            select(TranscriptEntry.user_id)
                            .where(TranscriptEntry.id.in_(ids))
                            .distinct()
                        )
                    ).all()
                )
        for user_id in user_ids:
            await self.wake_user(user_id)
        # Another worker may hold the chat (a running bot sends what a staff command
        # queued): wait for it to finish them.
        deadline = time.monotonic() + self.FLUSH_WAIT
        while True:
            async with self.db.session() as session:
                statuses = (
                    await session.scalars(
                        select(TranscriptEntry.status).where(TranscriptEntry.id.in_(ids))
                    )
                ).all()
            if "pending" not in statuses or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
            for user_id in user_ids:
                await self.wake_user(user_id)
        return len(statuses) == len(ids) and all(status == "sent" for status in statuses)

    async def notify(
        self,
        user_id: int,
        replies: list[Reply],
        *,
        kind: str = "notice",
        author: str | None = None,
        wait: bool = False,
    ) -> bool:
        """Queue messages to a parent that answer no message of theirs (a request status
        change, an operator's reply) and have them sent. With this process's worker
        running and `wait` false: True when queued for a reachable parent (the worker
        sends them at once). Otherwise (a staff command, or `wait`): sent now; True when
        they were delivered."""
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise LookupError(f"no user {user_id}")
            await queue_replies(session, user, replies, kind=kind, author=author)
            reachable, channel = user.reachable, user.channel
        if self.running and channel in self.senders and not wait:
            self.wake_user(user_id)
            return reachable
        if channel not in self.senders:
            self.wake()
            return False
        return await self.flush(replies)

    async def set_reachable(self, channel: str, chat_id: str, reachable: bool) -> None:
        """Mark the chat's user (un)reachable: blocked the bot, or came back."""
        async with self.db.session() as session:
            await session.execute(
                update(User)
                .where(User.channel == channel, User.chat_id == chat_id)
                .values(reachable=reachable)
            )

    async def _set_user_reachable(self, user_id: int, reachable: bool) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(User).where(User.id == user_id).values(reachable=reachable)
            )
