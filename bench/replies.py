"""Replies per second end-to-end through the Telegram adapter, against the fake Bot API.

Runs the Navigator assistant (aiogram adapter -> dialogue engine with SQLite ->
delivery) and a bare aiogram echo bot on the same fake Bot API, with USERS parents
each sending ROUNDS messages (/help; one reply each), all users at once per round.
Platform rate limits are lifted on both sides: this measures our own overhead.
Prints updates/s for both, their ratio, and p50/p99 reply latency.

    .venv/bin/python -m bench.replies [--users 100] [--rounds 5] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

from bench.catalogue import pg_execute
from bot.app import build_app
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.delivery import Limits
from tests.fakes.telegram import FakeTelegram

UNLIMITED = 10**9


async def _measure(fake: FakeTelegram, users: int, rounds: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    first_user = 100_000
    started = time.monotonic()
    for round_no in range(rounds):
        pushed: dict[int, float] = {}
        seen = len(fake.sent)
        for user in range(first_user, first_user + users):
            pushed[user] = time.monotonic()
            await fake.message(user, "/help")
        answered: dict[int, float] = {}
        deadline = time.monotonic() + 120
        while len(answered) < users:
            for sent in fake.sent[seen:]:
                answered.setdefault(sent.chat_id, sent.at)
            if time.monotonic() > deadline:
                raise RuntimeError(f"round {round_no}: only {len(answered)}/{users} answered")
            await asyncio.sleep(0.005)
        latencies += [answered[user] - pushed[user] for user in pushed]
    elapsed = time.monotonic() - started
    return users * rounds / elapsed, latencies


async def _with_fake(
    start: Callable[[FakeTelegram], Awaitable[Callable[[], Awaitable[None]]]],
    users: int,
    rounds: int,
) -> tuple[float, list[float]]:
    fake = FakeTelegram(per_second=UNLIMITED, chat_burst=UNLIMITED)
    await fake.start()
    stop = await start(fake)
    try:
        return await _measure(fake, users, rounds)
    finally:
        await stop()
        await fake.stop()


async def _navigator(
    fake: FakeTelegram, folder: Path, database: str, schema: str
) -> Callable[[], Awaitable[None]]:
    settings = Settings(
        bot={"data_dir": folder},
        database={
            "url": database or f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}",
            "schema_name": schema,
        },
        telegram={"token": fake.token, "api_base": fake.base, "polling_timeout": 1},
    )
    app = build_app(settings)
    await app.start()
    channel = TelegramChannel(app, limits=Limits())
    task = asyncio.create_task(channel.run())

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await channel.close()
        await app.close()

    return stop


async def _echo(fake: FakeTelegram) -> Callable[[], Awaitable[None]]:
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base)))
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))

    async def stop() -> None:
        await dp.stop_polling()
        await asyncio.gather(task, return_exceptions=True)

    return stop


def _report(name: str, rate: float, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{name:<22} {rate:8.1f} updates/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


async def main(users: int, rounds: int, database: str) -> None:
    # PostgreSQL: a throw-away schema, dropped afterwards, so the database is left as found.
    schema = f"bench_{uuid.uuid4().hex[:8]}" if database else ""
    if schema:
        await pg_execute(database, f'CREATE SCHEMA "{schema}"')
    try:
        with tempfile.TemporaryDirectory() as folder:
            ours = await _with_fake(
                lambda fake: _navigator(fake, Path(folder), database, schema), users, rounds
            )
    finally:
        if schema:
            await pg_execute(database, f'DROP SCHEMA "{schema}" CASCADE')
    echo = await _with_fake(_echo, users, rounds)
    where = database.split("://")[0] if database else "SQLite"
    print(f"{users} users x {rounds} rounds, fake Bot API on 127.0.0.1, database: {where}")
    _report("aiogram echo bot", *echo)
    _report("Navigator assistant", *ours)
    print(f"ratio (assistant / echo): {ours[0] / echo[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--database",
        default="",
        help="database URL (default: a fresh SQLite file); PostgreSQL runs in a throw-away schema",
    )
    options = parser.parse_args()
    asyncio.run(main(options.users, options.rounds, options.database))
