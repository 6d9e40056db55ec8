"""The inbox: updates are stored before the platform is told they arrived.

A channel turns a batch of platform updates into `Incoming` messages and hands them
to `accept()`, which stores them (one transaction, with the channel's long-poll
cursor when it has one) before the channel confirms the batch to the platform
(Telegram's next getUpdates offset, VK's ts, MAX's marker, a webhook's HTTP answer).
Each stored update is then handled by the dialogue engine, in order per parent; the
engine deletes the row in the transaction that handles it. Rows left by a crash are
handled after the restart (or, on PostgreSQL, by another process once their lease
ran out or their process is gone). A re-delivered update is stored once and handled once.

On PostgreSQL several processes store updates into one inbox: a parent's updates are
handled by whichever process takes the parent's turn (an advisory lock), oldest first
(`DialogueEngine.handle_next`), so two web workers that received consecutive updates
of one parent never handle them at once or out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.delivery import Delivery, owner_is_dead
from bot.logs import current_update
from handlers.core import Incoming
from handlers.engine import DialogueEngine
from storage.db import Database
from storage.models import ChannelCursor, InboxEntry, utcnow

log = logging.getLogger(__name__)
# Arrival times kept for the reply latency, at most.
MAX_RECEIVED = 10_000


class Inbox:
    LEASE = timedelta(seconds=120)
    SWEEP_SECONDS = 10.0
    SWEEP_BATCH = 500
    # Parents handled at once by one process: the rest wait their turn, so the database
    # pool keeps connections for storing what the platforms send and for the outbox (on
    # SQLite, one connection: a hundred handlers queued for it would hold every reply of
    # the batch back until the last of them was handled).
    MAX_HANDLING = 8
    # Seconds before looking again at a parent whose turn another process holds.
    BUSY_WAIT = 0.02
    BUSY_WAIT_MAX = 0.5
    RETRY_MAX = 30.0  # the longest pause before a message the database failed is retried

    def __init__(self, db: Database, engine: DialogueEngine, delivery: Delivery) -> None:
        self.db = db
        self.engine = engine
        self.delivery = delivery
        self.worker_id = delivery.worker_id
        self._queues: dict[tuple[str, str], deque[tuple[int, Incoming]]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._scheduled: set[int] = set()
        self.telemetry = delivery.telemetry
        # When each update stored by this process arrived (epoch seconds), for the
        # reply latency; updates taken over from a stopped process use their own time.
        self._received: dict[int, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._handling: asyncio.Semaphore | None = None
        self.running = False

    # -- in -------------------------------------------------------------------------------
    async def accept(self, messages: list[Incoming], cursor: tuple[str, str] | None = None) -> int:
        """Store `messages` (and the channel's new long-poll cursor) in one transaction,
        then handle them in the background; the number newly stored. Returns only after
        the commit, so the caller may confirm the batch to the platform."""
        arrived = time.time()
        rows = [
            {
                "channel": message.channel,
                "update_id": str(message.update_id),
                "platform_user_id": message.user_id[:64],
                "incoming": message.cleaned().to_json(),
                "owner": self.worker_id,
                "lease_until": utcnow() + self.LEASE,
                "attempts": 0,
                "created_at": utcnow(),
            }
            for message in messages
            if message.update_id is not None
        ]
        stored: list[tuple[int, Incoming]] = []
        async with self.db.session() as session:
            if rows:
                insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
                statement = (
                    insert(InboxEntry)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["channel", "update_id"])
                    .returning(InboxEntry.id, InboxEntry.update_id)
                )
                ids = {update_id: row_id for row_id, update_id in await session.execute(statement)}
                by_update = {str(m.update_id): m for m in messages if m.update_id is not None}
                stored = sorted((row_id, by_update[uid]) for uid, row_id in ids.items())
            if cursor is not None:
                await self._save_cursor(session, *cursor)
        for row_id, message in stored:
            self.telemetry.received(message.channel, 1)
            if len(self._received) >= MAX_RECEIVED:  # rows another process took over
                self._received.pop(next(iter(self._received)))
            self._received[row_id] = arrived
            self._schedule(row_id, message)
        if self.shared:
            # An update stored before (by a process that was killed before handling it,
            # and sent again by the platform) is this parent's turn as well.
            fresh = {id(message) for _, message in stored}
            for message in messages:
                if message.update_id is not None and id(message) not in fresh:
                    self._schedule(0, message)
        return len(stored)

    @property
    def shared(self) -> bool:
        """PostgreSQL: other processes may store and handle this database's updates."""
        return self.db.dialect == "postgresql"

    async def _save_cursor(self, session: Any, channel: str, value: str) -> None:
        row = await session.get(ChannelCursor, channel)
        if row is None:
            session.add(ChannelCursor(channel=channel, cursor=value, updated_at=utcnow()))
        else:
            row.cursor, row.updated_at = value, utcnow()

    async def cursor(self, channel: str) -> str | None:
        """The long-poll cursor stored with the last accepted batch of `channel`."""
        async with self.db.session() as session:
            row = await session.get(ChannelCursor, channel)
            return row.cursor if row is not None else None

    # -- handling -------------------------------------------------------------------------
    def _schedule(self, row_id: int, message: Incoming) -> None:
        key = (message.channel, message.user_id)
        if self.shared:
            # A signal only: the parent's worker handles every stored row of theirs.
            self._queues.setdefault(key, deque()).append((row_id, message))
            if key not in self._workers:
                self._workers[key] = asyncio.create_task(self._work_shared(key), name="inbox")
            return
        if row_id in self._scheduled:
            return
        self._scheduled.add(row_id)
        self._queues.setdefault(key, deque()).append((row_id, message))
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key), name="inbox")

    async def _work_shared(self, key: tuple[str, str]) -> None:
        """PostgreSQL: take the parent's turn and handle their stored updates, oldest
        first, whichever process stored them, until none is left. While another process
        holds the turn it handles them; this one looks again shortly, until the rows are
        gone (a holder that dies lets go of the lock with its connection)."""
        queue = self._queues[key]
        wait = self.BUSY_WAIT
        if self._handling is None:
            self._handling = asyncio.Semaphore(self.MAX_HANDLING)
        failures = 0
        try:
            while True:
                queue.clear()
                try:
                    async with self._handling:
                        turn = await self.engine.handle_next(*key)
                except Exception as exc:
                    # The database failing (away, or no connection free in time): the rows
                    # stay, and this parent's turn is tried again after a pause.
                    failures += 1
                    log.warning("inbox: a stored update not handled yet: %s", type(exc).__name__)
                    await asyncio.sleep(min(self.RETRY_MAX, 0.5 * 2**failures))
                    continue
                failures = 0
                if turn.busy:
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, self.BUSY_WAIT_MAX)
                    continue
                wait = self.BUSY_WAIT
                if turn.row_id is None:
                    if queue:  # stored while this worker looked: look again
                        continue
                    return
                assert turn.incoming is not None
                current_update.set(f"{key[0]}:{turn.incoming.update_id}")
                log.debug("handled: %d replies", len(turn.replies))
                current_update.set(None)
                arrived = self._received.pop(turn.row_id, None) or turn.incoming.time.timestamp()
                if turn.replies:
                    self.telemetry.awaiting_reply(turn.replies[0].transcript_id, key[0], arrived)
                    self.delivery.submit(turn.replies)
        finally:
            current_update.set(None)
            del self._workers[key]
            if not queue:
                self._queues.pop(key, None)

    async def _work(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        if self._handling is None:
            self._handling = asyncio.Semaphore(self.MAX_HANDLING)
        failures = 0
        try:
            while queue:
                row_id, message = queue.popleft()
                current_update.set(f"{message.channel}:{message.update_id}")
                try:
                    async with self._handling:
                        replies = await self.engine.handle(message, inbox_id=row_id)
                except Exception as exc:
                    # The engine answers handler errors itself: this is the database
                    # failing (away, or no connection free in time). The row stays; this
                    # parent's later messages wait behind it, tried again after a pause.
                    failures += 1
                    log.warning("inbox: update %s not handled yet: %s", row_id, type(exc).__name__)
                    queue.appendleft((row_id, message))
                    await asyncio.sleep(min(self.RETRY_MAX, 0.5 * 2**failures))
                    continue
                failures = 0
                self._scheduled.discard(row_id)
                log.debug("handled: %d replies", len(replies))
                arrived = self._received.pop(row_id, None) or message.time.timestamp()
                if replies:
                    self.telemetry.awaiting_reply(replies[0].transcript_id, key[0], arrived)
                    self.delivery.submit(replies)
        finally:
            current_update.set(None)
            del self._workers[key]
            if not queue:
                self._queues.pop(key, None)

    async def drain(self, limit: float = 30.0) -> None:
        """Wait until everything scheduled in this process was handled (tests, shutdown)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while self._workers:
                    await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    # -- recovery -------------------------------------------------------------------------
    async def start(self) -> None:
        """Handle what a previous run stored but did not handle, then keep sweeping."""
        if self.running:
            return
        self.running = True
        await self.sweep(take_dead=True)
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="inbox-sweep")

    async def stop(self) -> None:
        self.running = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _sweep_loop(self) -> None:
        while self.running:
            await asyncio.sleep(self.SWEEP_SECONDS)
            try:
                await self.sweep(take_dead=True)
            except Exception as exc:
                log.warning("inbox sweep failed: %s", type(exc).__name__)

    async def sweep(self, *, take_dead: bool = False) -> int:
        """Take over stored updates nobody is handling (their process stopped or their
        lease ran out) and handle them in order; the number taken."""
        now = utcnow()
        async with self.db.session() as session:
            condition = or_(InboxEntry.owner.is_(None), InboxEntry.lease_until < now)
            if take_dead:
                owners = (
                    await session.scalars(
                        select(InboxEntry.owner).where(InboxEntry.owner.is_not(None)).distinct()
                    )
                ).all()
                dead = [owner for owner in owners if owner and owner_is_dead(owner)]
                if dead:
                    condition = or_(condition, InboxEntry.owner.in_(dead))
            candidates = select(InboxEntry.id).where(condition).order_by(InboxEntry.id)
            if self.db.dialect == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = (await session.scalars(candidates.limit(self.SWEEP_BATCH))).all()
            if not ids:
                return 0
            await session.execute(
                update(InboxEntry)
                .where(InboxEntry.id.in_(ids))
                .values(
                    owner=self.worker_id,
                    lease_until=now + self.LEASE,
                    attempts=InboxEntry.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = (
                await session.execute(
                    select(InboxEntry.id, InboxEntry.incoming)
                    .where(InboxEntry.id.in_(ids))
                    .order_by(InboxEntry.id)
                )
            ).all()
        for row_id, data in rows:
            self._schedule(row_id, Incoming.from_json(data))
        log.info("inbox: handling %d stored update(s) left unhandled", len(rows))
        return len(rows)
