"""The ticker: periodic work inside `navbot run`, run by exactly one process.

APScheduler (AsyncIOScheduler) only keeps time: one interval job with misfires
coalesced, one instance at a time and a generous grace time. What is due lives in our
own tables (reminders, campaign deliveries), never as one APScheduler job per parent.

Each tick also applies the handoff rules (storage/handoffs.py): a conversation an
operator took and left unanswered goes back to the queue, a silent one is closed.

Each tick moves due reminders to the outbox: for each one, in one transaction, the
reminder message becomes a pending outgoing row (`storage.outbox.queue_replies`) and
the reminder is marked sent; the delivery worker of the parent's channel sends it.
Nothing is moved outside the region's daytime window, and after downtime a parent
gets one reminder, not one per missed tick or day.

With PostgreSQL, the process that holds a session-level advisory lock on a dedicated
connection is the leader and the only one that ticks; when it dies the server drops
the lock and another process takes over at its next try (every tick, at most a
minute). Due rows are claimed FOR UPDATE SKIP LOCKED and marked with a conditional
update, so even two tickers never queue one reminder twice.

The leader also runs the retention purge (storage/retention.py) at its first tick and
then once a day: transcript rows older than `[retention] days` go, their days' anonymous
counts stay in stats_daily.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.core import Context, Incoming, Reply, State
from handlers.reminders import compose, policy
from storage import handoffs, retention, stats
from storage import reminders as rows
from storage.db import Database
from storage.models import ConversationState, Reminder, User, utcnow
from storage.outbox import queue_many, queue_replies

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Advisory lock ids: this constant mixed with the schema name, so deployments sharing
# one PostgreSQL database in different schemas each have their own leader.
_LEADER_LOCK = 726_011
# Messages a channel can take per second when its limits are not registered.
DEFAULT_RATE = 20.0
# Seconds between two retention purges of the leader.
RETENTION_EVERY = 24 * 3600.0


@dataclass
class TickResult:
    sent: int = 0
    superseded: int = 0
    confirmed: int = 0
    failed: int = 0
    channels: set[str] = field(default_factory=set)


class Leadership:
    """Who runs the ticker. SQLite serves one process: always the leader. PostgreSQL: the
    holder of a session-level advisory lock on a connection kept for the process's life."""

    def __init__(self, db: Database, schema: str = "") -> None:
        self.db = db
        self.lock_id = _LEADER_LOCK * 1_000_003 + zlib.crc32(schema.encode())
        self._conn: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self.db.dialect != "postgresql" or self._conn is not None

    async def check(self) -> bool:
        """True when this process leads: keeps the lock if its connection is alive, else
        tries to take it."""
        if self.db.dialect != "postgresql":
            return True
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()
                return True
            except Exception:
                log.warning("lost the ticker's database connection; leadership dropped")
                await self._drop()
        conn = await self.db.engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": self.lock_id})
            await conn.commit()
        except Exception:
            await conn.close()
            raise
        if got:
            self._conn = conn
            log.info("this process runs the ticker")
            return True
        await conn.close()
        return False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
            except Exception:
                log.debug("closing a dead connection failed", exc_info=True)

    async def release(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": self.lock_id})
            await self._conn.commit()
            await self._conn.close()
        except Exception:
            log.debug("releasing the ticker lock failed", exc_info=True)
        self._conn = None


def channel_rate(app: Any, channel: str) -> float:
    """Messages per second the channel's platform takes (from the delivery's limits)."""
    limiter = getattr(app.delivery, "limiters", {}).get(channel)
    per_second = getattr(getattr(limiter, "limits", None), "per_second", 0) if limiter else 0
    return float(per_second) or DEFAULT_RATE


def wake_delivery(app: Any, replies: list[Reply]) -> None:
    """After the commit: this process's delivery worker sends these at once (workers of
    other processes hear of them through PostgreSQL NOTIFY or their sweep)."""
    if replies and getattr(app.delivery, "running", False):
        app.delivery.submit(replies)


def reminder_context(app: Any, session: Any, user: User) -> Context:
    """A dialogue context for composing a message to `user` outside any incoming message."""
    incoming = Incoming(channel=user.channel, user_id=user.platform_user_id, chat_id=user.chat_id)
    return Context(incoming, user, State(), app.texts, session, app.services, app.engine.menu)


async def queue_due_reminders(
    app: Any,
    now: datetime,
    *,
    per_channel: int | None = None,
    batch: int | None = None,
    period: float = 0.0,
) -> TickResult:
    """Move the reminders due by `now` to the outbox (daytime only); at most `per_channel`
    per channel in this call (default: up to two ticks' worth of the platform's rate
    waiting in the outbox; a tick is `period` seconds when the ticks come further apart
    than `tick_seconds`)."""
    result = TickResult()
    rule = policy(app.region)
    if not rule.is_daytime(now):
        return result
    tick_seconds = max(float(app.settings.reminders.tick_seconds), period)
    batch = batch or app.settings.reminders.batch
    per_channel = per_channel or app.settings.reminders.per_tick or None
    async with app.db.session() as session:
        channels = await rows.due_channels(session, now)
    for channel in channels:
        if per_channel:
            cap = per_channel
        else:
            # Keep about two ticks' worth of the platform's rate waiting in the outbox:
            # enough that the delivery worker never runs dry between ticks (a tick that
            # overran its interval makes the next one come later), and no more: what
            # waits could not be stopped by «Я подтвердил(а)» as cheaply as a planned row.
            # A parent's answer does not queue behind it (bot/pacing.py, BACKGROUND).
            async with app.db.session() as session:
                waiting = await rows.waiting_in_outbox(session, channel)
            cap = int(2 * channel_rate(app, channel) * tick_seconds) - waiting
            if cap <= 0:
                continue
        moved = 0
        while moved < cap:
            wanted = min(batch, cap - moved)
            async with app.db.session() as session:
                claimed = await rows.claim_due(session, now, channel, wanted)
                queued = await _queue_batch(app, session, claimed, now, result)
            wake_delivery(app, queued)
            moved += len(claimed)
            if len(claimed) < wanted:
                break
    return result


async def _queue_batch(
    app: Any, session: Any, claimed: list[tuple[Reminder, User]], now: datetime, result: TickResult
) -> list[Reply]:
    """Queue one message per parent for the claimed reminders, in the caller's transaction.

    Claimed oldest first: a parent's first one carries the message; the parent's others due
    by now (missed during downtime) are retired with it, so one reminder goes out, not one
    per missed day. A parent who has confirmed meanwhile gets nothing."""
    carriers: dict[int, tuple[Reminder, User]] = {}
    confirmed: list[int] = []
    for reminder, user in claimed:
        if user.data_confirmed_at is not None:
            confirmed.append(reminder.id)
        elif user.id not in carriers:
            carriers[user.id] = (reminder, user)
    result.confirmed += len(await rows.mark_all(session, confirmed, "confirmed"))
    if not carriers:
        return []
    carrier_ids = [reminder.id for reminder, _ in carriers.values()]
    result.superseded += await rows.supersede(session, list(carriers), carrier_ids, now)
    # Conditional on "planned": what another ticker has just taken is not queued again.
    taken = set(await rows.mark_all(session, carrier_ids, "sent", sent_at=now))
    composed: list[tuple[Reminder, User, Reply]] = []
    for reminder, user in carriers.values():
        if reminder.id not in taken:
            continue
        try:
            composed.append((reminder, user, compose(reminder_context(app, session, user))))
        except Exception as exc:
            log.exception("reminder %s could not be composed", reminder.id)
            await rows.fail(session, reminder.id, str(exc)[:500], user)
            result.failed += 1
    # One insert for the batch's messages, not one per parent.
    entries = await queue_many(
        session, [(user, [reply]) for _, user, reply in composed], kind="reminder"
    )
    links, buttons, queued = [], [], []
    for (reminder, user, reply), entry in zip(composed, entries, strict=True):
        queued.append(reply)
        links.append({"rid": reminder.id, "tid": entry.id})
        # Typing a button's words presses it: the reminder's buttons are the ones shown last.
        buttons.append({"uid": user.id, "lb": [[b.label, b.payload] for b in reply.all_buttons()]})
        result.sent += 1
        result.channels.add(user.channel)
    if links:
        table = Reminder.__table__
        await session.execute(
            table.update()
            .where(table.c.id == bindparam("rid"))
            .values(transcript_id=bindparam("tid")),
            links,
        )
        states = ConversationState.__table__
        await session.execute(
            states.update()
            .where(states.c.user_id == bindparam("uid"))
            .values(last_buttons=bindparam("lb", type_=states.c.last_buttons.type)),
            buttons,
        )
    return queued


@dataclass
class HandoffResult:
    returned: int = 0
    closed: int = 0


async def handoff_rules(app: Any, now: datetime) -> HandoffResult:
    """Taken conversations left unanswered go back to the queue; silent ones are closed
    (the parent is told, and the bot answers again)."""
    from handlers.handoff import closed_reply

    cfg = app.settings.handoff
    result = HandoffResult()
    async with app.db.session() as session:
        back = await handoffs.return_unanswered(
            session, now, timedelta(minutes=cfg.return_after_minutes)
        )
        result.returned = len(back)
    replies: list[Reply] = []
    async with app.db.session() as session:
        quiet = await handoffs.silent(session, now, timedelta(minutes=cfg.silence_close_minutes))
        for handoff_id in quiet:
            closed = await handoffs.close(session, handoff_id, handoffs.BY_SILENCE, now=now)
            if closed is None:
                continue
            reply = closed_reply(app.texts, handoffs.BY_SILENCE)
            await queue_replies(session, closed[1], [reply], kind="notice")
            replies.append(reply)
        result.closed = len(replies)
        await handoffs.clear_orphans(session)
    wake_delivery(app, replies)
    return result


class Ticker:
    """The APScheduler ticker of one process; ticks only while this process leads."""

    def __init__(self, app: Any, *, clock: Clock | None = None) -> None:
        self.app = app
        self.clock = clock or getattr(app.services, "clock", None) or utcnow
        self.settings = app.settings.reminders
        self.leadership = Leadership(app.db, app.settings.database.schema_name)
        self.scheduler: AsyncIOScheduler | None = None
        self._running: asyncio.Task[TickResult | None] | None = None
        # When the last tick ended (for /healthz), and the last retention purge (monotonic).
        self.last_tick: datetime | None = None
        self.purged_at: float | None = None
        self._started: float | None = None  # when the last tick started (monotonic)

    async def tick(self) -> TickResult | None:
        """One tick: None when another process leads."""
        try:
            if not await self.leadership.check():
                self.purged_at = None  # a new leader purges at its first tick
                return None
            now = self.clock()
            # A tick that took longer than the interval makes APScheduler skip a run, so
            # the outbox must last until the next one: ticks are this far apart now.
            started = time.monotonic()
            period = started - self._started if self._started is not None else 0.0
            self._started = started
            # (a first tick after a pause, as a new leader, is not a measure)
            period = min(period, 3.0 * self.settings.tick_seconds)
            result = await queue_due_reminders(self.app, now, period=period)
        except Exception:
            log.exception("ticker: this tick failed; the next one tries again")
            return None
        await self.rollup(now)
        await self.retention()
        self.last_tick = utcnow()
        try:
            moved = await handoff_rules(self.app, now)
        except Exception:
            log.exception("ticker: the handoff rules failed; the next tick tries again")
        else:
            if moved.returned or moved.closed:
                log.info(
                    "handoffs: %d returned to the queue, %d closed after silence",
                    moved.returned,
                    moved.closed,
                )
        if result.sent or result.superseded or result.failed:
            log.info(
                "reminders: %d queued, %d superseded, %d failed",
                result.sent,
                result.superseded,
                result.failed,
            )
        return result

    async def rollup(self, now: datetime) -> list[Any]:
        """Roll the finished days' statistics up into stats_daily (a month at most per
        tick); the days rolled up."""
        try:
            async with self.app.db.session() as session:
                return await stats.rollup(session, now, ZoneInfo(self.app.region.timezone))
        except Exception:
            log.exception("statistics: the rollup failed; the next tick tries again")
            return []

    async def retention(self, *, force: bool = False) -> dict[str, int] | None:
        """The daily retention purge (at the first tick, then once every 24 hours); the
        rows deleted per table, or None when it was not due or is switched off."""
        days = self.app.settings.retention.days
        due = self.purged_at is None or time.monotonic() - self.purged_at >= RETENTION_EVERY
        if not days or not (due or force):
            return None
        self.purged_at = time.monotonic()
        try:
            async with self.app.db.session() as session:
                before, counts = await retention.purge(
                    session, self.clock(), days, ZoneInfo(self.app.region.timezone)
                )
        except Exception:
            log.exception("retention: the purge failed; it is tried again in a day")
            return None
        if any(counts.values()):
            log.info(
                "retention: rows before %s purged: %s",
                before.date().isoformat(),
                ", ".join(f"{table} {n}" for table, n in counts.items() if n),
            )
        return counts

    async def _fire(self) -> None:
        """The APScheduler job: start a tick unless one is still running. The tick is a task
        of ours, so stopping the process cancels and awaits it cleanly."""
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self.tick(), name="ticker")

    def start(self) -> None:
        # The job only starts a task of ours and the tick logs its own failures, so all
        # APScheduler's executor could report is its wrapper cancelled at shutdown.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.CRITICAL)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_job(
            self._fire,
            "interval",
            seconds=self.settings.tick_seconds,
            id="reminders",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
        await self.leadership.release()
