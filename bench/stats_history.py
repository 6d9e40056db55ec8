"""Statistics page speed with a year of history for 100,000 parents.

Generates PARENTS parents who arrived over the last year (40% by a source link), their
transcript rows, walkthrough / FAQ / reminder / confirmation / handoff events, children
and requests, then serves the console and times /stats for 30 and 365 days through HTTP
with a signed-in session: first counted live from the rows (no rollup yet), then after
the ticker's rollup has caught up (timed too). Prints the median of several runs, the
server process's CPU time per render and the SQL statements per render.

    .venv/bin/python -m bench.stats_history [--parents 100000] [--rows 1000000]
        [--database postgresql+asyncpg://postgres@127.0.0.1:5432/test]

PostgreSQL runs in a throw-away schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert, select, text

from bench.catalogue import pg_execute
from bot.app import build_app
from bot.config import Settings
from storage import search
from storage.models import (
    Child,
    EnrollmentRequest,
    Event,
    Program,
    TranscriptEntry,
    User,
)
from storage.stats import FUNNEL, rollup
from tests.staff import ADMIN_PASSWORD, Served, StaffClient, create_accounts

CHANNELS = ("telegram", "telegram", "telegram", "vk", "vk", "max")
SOURCES = [f"school{n}" for n in range(1, 41)] + ["vk_post_0901", "poster-mfc", "tg_channel"]
STATUSES = ("new", "accepted", "accepted", "enrolled", "enrolled", "rejected", "cancelled")
RUNS = 5
BATCH = 20000


async def insert_all(app, model, rows: list[dict]) -> None:
    async with app.db.session() as session:
        for chunk in range(0, len(rows), BATCH):
            await session.execute(insert(model), rows[chunk : chunk + BATCH])


async def fill(app, parents: int, rows: int, *, first_id: int = 1) -> dict[str, int]:
    """Generate the history (ids from `first_id`, so it can go next to real rows)."""
    rng = random.Random(13)
    now = datetime.now(UTC)
    municipalities = [m.id for m in app.region.municipalities]
    async with app.db.session() as session:
        programs = list(await session.scalars(select(Program.id)))
    users, events, children, requests, transcript = [], [], [], [], []
    per_parent = max(rows // parents, 2)
    for number in range(first_id, first_id + parents):
        first = now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        channel = rng.choice(CHANNELS)
        source = rng.choice(SOURCES) if rng.random() < 0.4 else None
        users.append(
            {
                "id": number,
                "channel": channel,
                "platform_user_id": str(20_000_000 + number),
                "chat_id": str(20_000_000 + number),
                "name": "",
                "first_seen": first,
                "last_seen": first,
                "reachable": True,
                "municipality_id": rng.choice(municipalities),
                "source": source,
            }
        )

        def ev(kind: str, detail: str | None, at: datetime, channel=channel, number=number) -> None:
            events.append(
                {
                    "kind": kind,
                    "detail": detail,
                    "channel": channel,
                    "user_id": number,
                    "created_at": at,
                }
            )

        if source:
            ev("source", source, first)
        moment = first
        # the conversation: visits spread over the weeks after arriving
        for index in range(per_parent):
            if index % 6 == 0:
                moment += timedelta(days=rng.randrange(0, 20), minutes=rng.randrange(0, 600))
            else:
                moment += timedelta(seconds=rng.randrange(20, 200))
            if moment > now:
                break
            incoming = index % 2 == 0
            transcript.append(
                {
                    "user_id": number,
                    "direction": "in" if incoming else "out",
                    "text": "Как получить сертификат?" if incoming else "Ответ бота.",
                    "created_at": moment,
                    "status": None if incoming else "sent",
                    "kind": None if incoming else "reply",
                }
            )
        if rng.random() < 0.35:  # the walkthrough
            at = first + timedelta(minutes=2)
            reached = rng.choice([1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 8, 9])
            for step in FUNNEL[: reached + 1]:
                ev("reg_step", step, at)
                at += timedelta(minutes=3)
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):  # questions
            at = first + timedelta(hours=rng.randrange(0, 2000))
            if at < now:
                outcome = rng.choices(
                    ["answered", "suggested", "unknown", "handoff"], [60, 20, 15, 5]
                )[0]
                ev("faq", outcome, at)
                if outcome == "handoff" or (outcome == "unknown" and rng.random() < 0.3):
                    ev("handoff", "faq_person" if outcome == "handoff" else "faq_unknown", at)
        if rng.random() < 0.25:  # reminders
            at = first + timedelta(days=3)
            for _ in range(rng.randrange(1, 4)):
                if at > now:
                    break
                ev("reminder", rng.choices(["sent", "failed", "unreachable"], [90, 6, 4])[0], at)
                at += timedelta(days=7)
            if at < now:
                ev("reminder", rng.choice(["confirmed", "opted_out", "confirmed"]), at)
        if rng.random() < 0.3:
            at = first + timedelta(days=rng.randrange(0, 30))
            if at < now:
                ev("data_confirmed", None, at)
        if programs and rng.random() < 0.2:
            children.append(
                {
                    "id": first_id + len(children),
                    "user_id": number,
                    "full_name": "Ребёнок",
                    "birth_date": datetime(2015, 5, 1).date(),
                    "created_at": first,
                }
            )
            requests.append(
                {
                    "user_id": number,
                    "child_id": first_id + len(children) - 1,
                    "program_id": rng.choice(programs),
                    "phone": "+70000000000",
                    "status": rng.choice(STATUSES),
                    "submit_key": f"k{number}",
                    "created_at": first + timedelta(minutes=30),
                    "updated_at": first + timedelta(minutes=30),
                }
            )
    if app.db.dialect == "sqlite":
        async with app.db.session() as session:
            for statement in search.SQLITE_DROP:
                await session.execute(text(statement))
    else:
        for statement in search.POSTGRESQL_DROP:
            async with app.db.session() as session:
                await session.execute(text(statement))
    await insert_all(app, User, users)
    await insert_all(app, TranscriptEntry, transcript)
    await insert_all(app, Event, events)
    await insert_all(app, Child, children)
    await insert_all(app, EnrollmentRequest, requests)
    async with app.db.session() as session:
        await session.execute(text("ANALYZE"))
    return {
        "parents": len(users),
        "transcript rows": len(transcript),
        "events": len(events),
        "requests": len(requests),
    }


class Statements:
    """Counts the SQL statements the app's engine runs."""

    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


async def timed(
    client: StaffClient, counter: Statements, **params: str
) -> tuple[float, float, int]:
    await client.get("/stats", **params)  # warm
    times, cpus, statements = [], [], []
    for _ in range(RUNS):
        before, cpu, started = counter.count, time.process_time(), time.perf_counter()
        status, _ = await client.get("/stats", **params)
        times.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        statements.append(counter.count - before)
        assert status == 200, status
    return statistics.median(times), statistics.median(cpus), statements[-1]


async def run(parents: int, rows: int, database: str | None, rollup_only: bool = False) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}" if database else ""
    with tempfile.TemporaryDirectory() as folder:
        db = {"url": database, "schema_name": schema} if database else {}
        settings = Settings(bot={"data_dir": Path(folder)}, database=db)
        if schema:
            await pg_execute(database, f'CREATE SCHEMA "{schema}"')
        app = build_app(settings)
        try:
            await app.start()
            await create_accounts(app)
            started = time.perf_counter()
            sizes = await fill(app, parents, rows)
            kind = "PostgreSQL" if database else "SQLite"
            print(
                f"{kind}: "
                + ", ".join(f"{n} {name}" for name, n in sizes.items())
                + f"; loaded in {time.perf_counter() - started:.0f} s"
            )
            served = Served(app)
            await served.start()
            client = StaffClient(served.base)
            await client.signin("admin", ADMIN_PASSWORD)
            counter = Statements(app.db.engine)
            zone = ZoneInfo(app.region.timezone)
            for label in ("counted live (no rollup yet)", "after the rollup (today live)"):
                print(f"  {label}:")
                for days in () if rollup_only and label.startswith("counted") else ("30", "365"):
                    median, cpu, statements = await timed(client, counter, days=days)
                    print(
                        f"    /stats {days:>3} days: {median:7.1f} ms wall (median of {RUNS}),"
                        f" {cpu:6.1f} ms CPU of the process, {statements} SQL statements"
                    )
                if label.startswith("counted"):
                    started, cpu, ticks = time.perf_counter(), time.process_time(), 0
                    while True:
                        async with app.db.session() as session:
                            done = await rollup(session, datetime.now(UTC), zone)
                        if not done:
                            break
                        ticks += 1
                    print(
                        f"  rollup of the year: {ticks} ticks of up to a month,"
                        f" {time.perf_counter() - started:.1f} s wall,"
                        f" {time.process_time() - cpu:.1f} s CPU of the process"
                    )
            await client.close()
            await served.stop()
        finally:
            await app.close()
            if schema:
                await pg_execute(database, f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        help="database URL (default: a fresh SQLite file); PostgreSQL runs in a throw-away schema",
    )
    parser.add_argument(
        "--rollup-only", action="store_true", help="time the page after the rollup only"
    )
    args = parser.parse_args()
    asyncio.run(run(args.parents, args.rows, args.database, args.rollup_only))


if __name__ == "__main__":
    main()
