"""Staff console speed with a large history: the conversation list and transcript search.

Generates PARENTS parents with ROWS transcript rows between them (bulk inserts; on
PostgreSQL COPY, with the search index built after the load), serves the console on
127.0.0.1 and times, through HTTP with a signed-in session, the conversation list
(first and a later page, with filters) and searches by a frequent and a rare word in
another form than the one stored. Prints the median of several runs of each.

    .venv/bin/python -m bench.console [--parents 100000] [--rows 1000000] [--database URL]

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

from sqlalchemy import insert, text

from bench.catalogue import pg_execute
from bot.app import build_app
from bot.config import Settings
from storage import search
from storage.models import ConversationState, FaqUnanswered, TranscriptEntry, User
from tests.staff import ADMIN_PASSWORD, Served, StaffClient, create_accounts

PARENT_LINES = [
    "Как получить сертификат дополнительного образования?",
    "Здравствуйте, не могу активировать сертификат в личном кабинете",
    "Подскажите, где подтвердить данные ребёнка",
    "Хотим записаться в кружок робототехники",
    "Есть ли бесплатные секции по плаванию для детей 7 лет?",
    "Сколько стоит программа по рисованию?",
    "Ребёнку 12 лет, ищем шахматы рядом с домом",
    "Почему заявку отклонили?",
    "Как зарегистрироваться в Навигаторе?",
    "Номер сертификата не приходит на почту",
    "Спасибо большое!",
    "А если у нас нет СНИЛС?",
    "Можно ли записаться на две программы сразу?",
    "Когда начинаются занятия в сентябре?",
]
BOT_LINES = [
    "Сертификат дополнительного образования выдаётся один раз, до 18 лет.",
    "Чтобы активировать сертификат, подтвердите данные ребёнка в организации.",
    "Вот программы, которые подходят по возрасту:",
    "Заявка отправлена. Организация свяжется с вами по телефону.",
    "К сожалению, на этот вопрос у меня нет готового ответа.",
    "Выберите, что вас интересует:",
    "Запись в кружки идёт через Навигатор: найдите программу и нажмите «Записаться».",
]
RARE = "Записываемся вместе с бабушкой, она будет водить"
CHANNELS = ("telegram", "telegram", "vk", "max")
RUNS = 5


async def fill(app, parents: int, rows: int) -> float:
    started = time.perf_counter()
    rng = random.Random(7)
    municipalities = [m.id for m in app.region.municipalities]
    now = datetime.now(UTC)
    per_parent = max(rows // parents, 1)
    dialect = app.db.dialect
    users, states, unanswered = [], [], []
    for number in range(1, parents + 1):
        last = now - timedelta(minutes=rng.randrange(0, 90 * 24 * 60))
        users.append(
            {
                "id": number,
                "channel": rng.choice(CHANNELS),
                "platform_user_id": str(10_000_000 + number),
                "chat_id": str(10_000_000 + number),
                "name": f"Parent {number}",
                "first_seen": last - timedelta(days=3),
                "last_seen": last,
                "reachable": True,
                "municipality_id": rng.choice(municipalities),
            }
        )
        if rng.random() < 0.1:
            states.append({"user_id": number, "step": "req:phone", "data": {}, "updated_at": last})
        if rng.random() < 0.05:
            unanswered.append(
                {
                    "user_id": number,
                    "question": rng.choice(PARENT_LINES),
                    "outcome": "unknown",
                    "score": 0.1,
                    "created_at": last,
                }
            )
    async with app.db.session() as session:
        for chunk in range(0, len(users), 5000):
            await session.execute(insert(User), users[chunk : chunk + 5000])
        await session.execute(insert(ConversationState), states)
        await session.execute(insert(FaqUnanswered), unanswered)

    def transcript():
        row_id = 0
        for user in users:
            start = user["last_seen"] - timedelta(minutes=per_parent * 2)
            for index in range(per_parent):
                row_id += 1
                incoming = index % 2 == 0
                if incoming:
                    line = RARE if rng.random() < 0.0005 else rng.choice(PARENT_LINES)
                else:
                    line = rng.choice(BOT_LINES)
                yield (
                    row_id,
                    user["id"],
                    "in" if incoming else "out",
                    line,
                    start + timedelta(minutes=index * 2),
                    None if incoming else "sent",
                    None if incoming else "reply",
                )

    columns = ["id", "user_id", "direction", "text", "created_at", "status", "kind"]
    if dialect == "postgresql":
        for statement in search.POSTGRESQL_DROP:
            async with app.db.session() as session:
                await session.execute(text(statement))
        async with app.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(
                "transcript",
                records=list(transcript()),
                columns=columns,
                schema_name=app.settings.database.schema_name,
            )
            await conn.commit()
        async with app.db.session() as session:
            for statement in search.POSTGRESQL_DDL:
                await session.execute(text(statement))
            await session.execute(text("ANALYZE"))
    else:
        # the index is filled in one statement after the load (as PostgreSQL's is built)
        async with app.db.session() as session:
            for statement in search.SQLITE_DROP:
                await session.execute(text(statement))
        batch: list[dict] = []
        async with app.db.session() as session:
            for values in transcript():
                batch.append(dict(zip(columns, values, strict=True)))
                if len(batch) == 20000:
                    await session.execute(insert(TranscriptEntry), batch)
                    batch = []
            if batch:
                await session.execute(insert(TranscriptEntry), batch)
        async with app.db.session() as session:
            for statement in search.SQLITE_DDL:
                await session.execute(text(statement))
            await session.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def timed(client: StaffClient, path: str, **params: str) -> tuple[float, str]:
    times = []
    body = ""
    await client.get(path, **params)  # warm
    for _ in range(RUNS):
        started = time.perf_counter()
        status, body = await client.get(path, **params)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, (path, params, status)
    return statistics.median(times), body


async def run(parents: int, rows: int, database: str | None) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}" if database else ""
    with tempfile.TemporaryDirectory() as folder:
        db = {"url": database, "schema_name": schema} if database else {}
        settings = Settings(
            bot={"data_dir": Path(folder)},
            database=db,
            catalogue={"load_sample": False},
        )
        if schema:
            await pg_execute(database, f'CREATE SCHEMA "{schema}"')
        app = build_app(settings)
        try:
            await app.start()
            await create_accounts(app)
            loaded = await fill(app, parents, rows)
            served = Served(app)
            await served.start()
            client = StaffClient(served.base)
            await client.signin("admin", ADMIN_PASSWORD)
            kind = "PostgreSQL" if database else "SQLite"
            print(f"{kind}: {parents} parents, {rows} transcript rows, loaded in {loaded:.0f} s")
            cases = [
                ("conversation list, page 1", "/conversations", {}),
                ("conversation list, page 20", "/conversations", {"page": "20"}),
                (
                    "list: VK + one municipality",
                    "/conversations",
                    {"channel": "vk", "municipality": app.region.municipalities[1].id},
                ),
                ("list: unanswered questions", "/conversations", {"unanswered": "1"}),
                ("list: stuck in a step", "/conversations", {"stuck": "1"}),
                ("search «сертификатом» (frequent)", "/conversations", {"q": "сертификатом"}),
                ("search «бабушка» (rare)", "/conversations", {"q": "бабушка"}),
                (
                    "search «секцию плавание» + MAX",
                    "/conversations",
                    {"q": "секцию плавание", "channel": "max"},
                ),
                ("a conversation", f"/conversations/{parents // 2}", {}),
            ]
            for name, path, params in cases:
                median, body = await timed(client, path, **params)
                found = body.count('<tr>\n    <td class="nowrap"><a href="/conversations/')
                shown = f"{found} rows" if path == "/conversations" else ""
                print(f"  {name:36} {median:7.1f} ms  {shown}")
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
    args = parser.parse_args()
    asyncio.run(run(args.parents, args.rows, args.database))


if __name__ == "__main__":
    main()
