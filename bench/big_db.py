"""A campaign-sized database: PARENTS parents (each with a conversation state and a
child), REQUESTS enrollment requests and TRANSCRIPT transcript rows, spread over the
last 300 days (inside the retention period), on the project's own schema (migrated to
head first).

The defaults are the sizes memory is measured at: 100,000 parents, 200,000 requests,
1,000,000 transcript rows. Rows go in with executemany in large batches, a few
transactions in all; on SQLite the transcript's search index is filled in one statement
after the rows. Prints how long each table took.

    .venv/bin/python -m bench.big_db PATH.sqlite3
    .venv/bin/python -m bench.big_db --database postgresql+asyncpg://127.0.0.1/test \
        --schema big [--parents 100000 --requests 200000 --transcript 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select, text

from storage.db import Database
from storage.models import (
    Child,
    ConversationState,
    EnrollmentRequest,
    Program,
    TranscriptEntry,
    User,
)
from storage.search import lemmas

BATCH = 20_000
PROGRAMS = 500
FIRST_PARENT = 10_000_000  # platform user ids of the generated parents
NOW = datetime.now(UTC)
PHRASES = [
    "как получить сертификат",
    "не приходит письмо на почту",
    "Здравствуйте! Выберите, что вас интересует.",
    "Шаг 2 из 8: подтвердите данные ребёнка",
    "где посмотреть заявку",
    "Ваша заявка принята, оператор свяжется с вами.",
]


async def fill(
    db: Database, table: Table, count: int, row: Callable[[int], dict[str, Any]]
) -> None:
    started = time.monotonic()

    def batches() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, count, BATCH):
            yield [row(n) for n in range(start, min(count, start + BATCH))]

    async with db.engine.begin() as conn:
        for rows in batches():
            await conn.execute(insert(table), rows)
    print(f"{table.name:<20} {count:>9,} rows in {time.monotonic() - started:6.1f} s")


async def _without_fts_trigger(db: Database, load: Callable[[], Any]) -> None:
    """SQLite: load the transcript with the search index's trigger off, then index every
    row in one statement (the phrases' lemmas computed once, not per row)."""
    async with db.engine.begin() as conn:
        trigger = await conn.scalar(
            text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
            {"name": "transcript_fts_insert"},
        )
        await conn.execute(text("DROP TRIGGER IF EXISTS transcript_fts_insert"))
    try:
        await load()
    finally:
        started = time.monotonic()
        cases = " ".join(
            f"WHEN '{phrase}' THEN '{lemmas(phrase)}'" for phrase in PHRASES if "'" not in phrase
        )
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO transcript_fts(rowid, lemmas, owner) "
                    f"SELECT id, CASE text {cases} ELSE navbot_lemmas(text) END, "
                    "'u' || user_id FROM transcript "
                    "WHERE id NOT IN (SELECT rowid FROM transcript_fts)"
                )
            )
            if trigger:
                await conn.execute(text(trigger))
        print(f"{'transcript_fts':<20} {'':>9}      in {time.monotonic() - started:6.1f} s")


async def build(url: str, schema: str, parents: int, requests: int, transcript: int) -> None:
    db = Database(url, schema=schema)
    if db.dialect == "postgresql" and schema:
        async with db.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    await db.migrate()
    async with db.session() as session:
        if await session.scalar(select(func.count()).select_from(User)):
            raise SystemExit("the database already has parents; give an empty one")
        user_base = int(await session.scalar(select(func.coalesce(func.max(User.id), 0))))
        programs = list((await session.scalars(select(Program.id))).all())
    rng = random.Random(14)
    started = time.monotonic()

    def moment(n: int) -> datetime:
        return NOW - timedelta(seconds=(n * 7919) % (300 * 86400))

    def user(n: int) -> dict[str, Any]:
        channel = ("telegram", "vk", "max")[n % 3]
        return {
            "id": user_base + n + 1,
            "channel": channel,
            "platform_user_id": str(FIRST_PARENT + n),
            "chat_id": str(FIRST_PARENT + n),
            "name": f"Родитель {n}",
            "first_seen": moment(n),
            "last_seen": moment(n),
            "reachable": True,
            "municipality_id": None,
        }

    await fill(db, User.__table__, parents, user)
    await fill(
        db,
        ConversationState.__table__,
        parents,
        lambda n: {
            "user_id": user_base + n + 1,
            "step": None,
            "data": {},
            "updated_at": moment(n),
        },
    )
    await fill(
        db,
        Child.__table__,
        parents,
        lambda n: {
            "id": n + 1,
            "user_id": user_base + n + 1,
            "full_name": f"Ребёнок {n}",
            "birth_date": date(2012 + n % 8, 1 + n % 12, 1 + n % 28),
            "created_at": moment(n),
        },
    )
    if not programs:
        await fill(
            db,
            Program.__table__,
            PROGRAMS,
            lambda n: {
                "id": n + 1,
                "navigator_id": f"big-{n}",
                "title": f"Кружок {n}",
                "organisation": f"Дом творчества {n % 40}",
                "municipality_id": "stavropol",
                "direction": "art",
                "age_from": 5,
                "age_to": 17,
                "funding": "pfdo",
                "url": f"https://example.org/program/{n}",
                "sample": True,
                "search_text": f"кружок {n}",
                "updated_at": NOW,
            },
        )
        programs = list(range(1, PROGRAMS + 1))
    statuses = ("new", "accepted", "rejected", "done")

    def request(n: int) -> dict[str, Any]:
        child = n % parents
        return {
            "user_id": user_base + child + 1,
            "child_id": child + 1,
            # the same child's requests are for different programs
            "program_id": programs[(n // parents + child) % len(programs)],
            "phone": f"+7900{n % 10_000_000:07d}",
            "comment": "",
            "status": statuses[n % len(statuses)],
            "reason": "",
            "submit_key": f"big-{n}",
            "created_at": moment(n),
            "updated_at": moment(n),
        }

    await fill(db, EnrollmentRequest.__table__, requests, request)

    def entry(n: int) -> dict[str, Any]:
        out = n % 2 == 1
        return {
            "user_id": user_base + (n // 10) % parents + 1,
            "direction": "out" if out else "in",
            "text": PHRASES[rng.randrange(len(PHRASES))],
            "created_at": moment(n),
            "status": "sent" if out else None,
            "kind": "reply" if out else None,
        }

    if db.dialect == "sqlite":
        await _without_fts_trigger(
            db, lambda: fill(db, TranscriptEntry.__table__, transcript, entry)
        )
    else:
        await fill(db, TranscriptEntry.__table__, transcript, entry)
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            # rows went in with explicit ids: move the id sequences past them
            for table in ("users", "children", "programs"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
            await conn.execute(text("ANALYZE"))
    await db.close()
    print(f"done in {time.monotonic() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", help="SQLite file to create (default: big.sqlite3)")
    parser.add_argument("--database", default="", help="a database URL instead (PostgreSQL)")
    parser.add_argument("--schema", default="", help="PostgreSQL schema (created if missing)")
    parser.add_argument("--parents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--transcript", type=int, default=1_000_000)
    args = parser.parse_args()
    url = args.database or f"sqlite+aiosqlite:///{args.path or 'big.sqlite3'}"
    asyncio.run(build(url, args.schema, args.parents, args.requests, args.transcript))


if __name__ == "__main__":
    main()
