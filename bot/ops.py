"""GET /healthz and GET /metrics: how this process and its database are doing.

Both are served by the built-in web server of `navbot run` and `navbot web`, and, with
`[ops] port`, by a small server of their own (a process without the web server). Neither
shows personal data: counts, ages, channel names and states only.

/healthz is JSON, 200 when healthy and 503 when not. Unhealthy means something this
process is responsible for is wrong: the database does not answer, a messenger it polls
has not answered for longer than its polling timeout allows, its ticker (when it leads)
has stopped ticking, or a message of its messengers has been waiting longer than
`[ops] outbox_stale_seconds`. Another process's trouble (no scheduler leader at all) is
reported but does not make this process unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from bot.telemetry import Telemetry
from storage.models import Handoff, InboxEntry, Reminder, TranscriptEntry, User, utcnow

log = logging.getLogger(__name__)

DB_TIMEOUT = 5.0
# A leader's ticker is stuck when its last tick is older than this many ticks (+ slack).
TICKS_MISSED = 3
TICK_SLACK = 60.0


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def backlog(app: Any) -> dict[str, Any]:
    """The queues, from the database: one short read transaction."""
    now = utcnow()
    async with app.db.session() as session:
        outbox = (
            await session.execute(
                select(User.channel, func.count(), func.min(TranscriptEntry.created_at))
                .join(User, User.id == TranscriptEntry.user_id)
                .where(TranscriptEntry.status == "pending")
                .group_by(User.channel)
            )
        ).all()
        inbox = await session.scalar(select(func.count()).select_from(InboxEntry))
        reminders = await session.scalar(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.state == "planned", Reminder.due_at <= now)
        )
        handoffs = await session.scalar(
            select(func.count()).select_from(Handoff).where(Handoff.state == "waiting")
        )
    return {
        "outbox": {
            channel: {
                "pending": int(count),
                "oldest_seconds": round(max(0.0, (now - _utc(oldest)).total_seconds()), 1),
            }
            for channel, count, oldest in outbox
        },
        "inbox": int(inbox or 0),
        "reminders_due": int(reminders or 0),
        "handoffs_waiting": int(handoffs or 0),
    }


async def _database(app: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DB_TIMEOUT):
            async with app.db.session() as session:
                await session.execute(text("SELECT 1"))
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {
        "ok": True,
        "dialect": app.db.dialect,
        "ms": round(1000 * (time.perf_counter() - started), 1),
    }


def _channels(telemetry: Telemetry) -> dict[str, Any]:
    now = time.time()
    shown: dict[str, Any] = {}
    for channel, beat in sorted(telemetry.channels.items()):
        age = None if beat.last_ok is None else round(now - beat.last_ok, 1)
        silent = now - (beat.last_ok or beat.since)
        ok = beat.expect_within is None or silent <= beat.expect_within
        shown[channel] = {
            "mode": beat.mode,
            "ok": ok,
            "last_ok": None
            if beat.last_ok is None
            else datetime.fromtimestamp(beat.last_ok, UTC).isoformat(timespec="seconds"),
            "last_ok_seconds_ago": age,
        }
    return shown


async def _scheduler(app: Any) -> dict[str, Any]:
    ticker = getattr(app, "ticker", None)
    here = ticker is not None and ticker.leadership.held and ticker.last_tick is not None
    info: dict[str, Any] = {"ticker_here": ticker is not None, "leader": "unknown", "ok": True}
    if ticker is not None and ticker.last_tick is not None:
        age = (utcnow() - ticker.last_tick).total_seconds()
        info["last_tick_seconds_ago"] = round(age, 1)
        limit = TICKS_MISSED * app.settings.reminders.tick_seconds + TICK_SLACK
        if here and age > limit:
            info["ok"] = False
    if here:
        info["leader"] = "this process"
    elif app.db.dialect == "postgresql":
        lock_id = ticker.leadership.lock_id if ticker is not None else _lock_id(app)
        try:
            async with app.db.session() as session:
                held = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
                    ),
                    {"hi": lock_id >> 32, "lo": lock_id & 0xFFFFFFFF},
                )
            info["leader"] = "another process" if held else "none"
        except Exception as exc:
            log.debug("the scheduler's leader lock could not be read: %s", type(exc).__name__)
    elif ticker is None:
        info["leader"] = "none"  # SQLite: one process, and this one runs no ticker
    return info


def _lock_id(app: Any) -> int:
    from bot.scheduler import Leadership

    return Leadership(app.db, app.settings.database.schema_name).lock_id


async def health(app: Any) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body of /healthz)."""
    telemetry: Telemetry = app.delivery.telemetry
    database = await _database(app)
    body: dict[str, Any] = {"database": database, "channels": _channels(telemetry)}
    problems = [] if database["ok"] else ["database"]
    problems += [name for name, state in body["channels"].items() if not state["ok"]]
    if database["ok"]:
        try:
            queues = await backlog(app)
        except Exception as exc:
            queues = {"error": type(exc).__name__}
            problems.append("database")
        body["outbox"] = queues.get("outbox", {})
        body["queues"] = {key: value for key, value in queues.items() if key != "outbox"}
        served = set(app.delivery.senders) if app.delivery.sends else set()
        stale = app.settings.ops.outbox_stale_seconds
        if any(
            state["oldest_seconds"] > stale
            for channel, state in body["outbox"].items()
            if channel in served
        ):
            problems.append("outbox")
        body["scheduler"] = await _scheduler(app)
        if not body["scheduler"]["ok"]:
            problems.append("scheduler")
    body = {"status": "fail" if problems else "ok", "problems": problems, **body}
    return not problems, body


async def metrics_text(app: Any) -> bytes:
    telemetry: Telemetry = app.delivery.telemetry
    try:
        queues = await backlog(app)
    except Exception as exc:
        log.warning("metrics: the queues could not be read: %s", type(exc).__name__)
    else:
        telemetry.outbox_backlog.clear()
        telemetry.outbox_oldest.clear()
        for channel in set(app.delivery.senders) | set(queues["outbox"]):
            state = queues["outbox"].get(channel, {"pending": 0, "oldest_seconds": 0.0})
            telemetry.outbox_backlog.labels(channel).set(state["pending"])
            telemetry.outbox_oldest.labels(channel).set(state["oldest_seconds"])
        telemetry.inbox_backlog.set(queues["inbox"])
        telemetry.reminder_backlog.set(queues["reminders_due"])
        telemetry.handoff_queue.set(queues["handoffs_waiting"])
    now = time.time()
    for channel, beat in telemetry.channels.items():
        telemetry.channel_age.labels(channel).set(round(now - (beat.last_ok or beat.since), 1))
    return generate_latest(telemetry.registry)


def add_ops_routes(web_app: web.Application, app: Any) -> None:
    from bot.web.security import access

    @access("public")  # counts and states only, no personal data (see the module doc)
    async def healthz(request: web.Request) -> web.Response:
        healthy, body = await health(app)
        return web.json_response(
            body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"}
        )

    @access("public")
    async def metrics(request: web.Request) -> web.Response:
        body = await metrics_text(app)
        response = web.Response(body=body, headers={"Cache-Control": "no-store"})
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics)


async def serve_ops(app: Any, host: str, port: int) -> web.AppRunner:
    """/healthz and /metrics alone on host:port; the caller cleans the runner up."""
    ops_app = web.Application()
    add_ops_routes(ops_app, app)
    runner = web.AppRunner(ops_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
