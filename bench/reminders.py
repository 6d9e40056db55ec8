"""A large batch of due reminders through the real Telegram and VK adapters, against the
project's fake Bot API and VK API with their real limits enforced (Telegram 30 messages/s
overall and a per-chat bucket; VK 20 requests/s per community token).

    python bench/reminders.py [--count 10000] [--database URL] [--process]

COUNT parents, half in Telegram and half in VK, each with one reminder due now. The
ticker (bot.scheduler.queue_due_reminders, once a second as in `navbot run`) moves them
to the outbox; the delivery worker (bot.delivery) sends them through the channels'
senders. Prints, per platform: messages/s against the platform's limit, 429
(flood-control) answers, duplicates (a parent who got the reminder twice) and losses (a
parent who got nothing).

With --process the bot is `navbot run` in a process of its own, as deployed (ticker and
delivery worker inside it), and the fakes stay in this process: the bot pays only for its
own CPU, as against the real APIs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.catalogue import pg_execute
from bot.app import build_app
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Settings
from bot.scheduler import queue_due_reminders
from storage.models import Reminder, TranscriptEntry, User, utcnow
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.processes import Bot
from texts import REGIONS_DIR

LIMITS = {"telegram": 30.0, "vk": 20.0}


def any_hour_region(directory: Path) -> Path:
    """The Stavropol profile with a 24-hour window, so the benchmark runs at any hour."""
    profile = (REGIONS_DIR / "stavropol.toml").read_text(encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stavropol.toml").write_text(
        profile.replace('daytime = "10:00-20:00"', 'daytime = "00:00-24:00"'), encoding="utf-8"
    )
    return directory


async def make_parents(app, channel: str, count: int) -> list[int]:
    values = [
        {
            "channel": channel,
            "platform_user_id": str(n),
            "chat_id": str(n),
            "name": "",
            "reachable": True,
            "municipality_id": "stavropol",
        }
        for n in range(1, count + 1)
    ]
    async with app.db.session() as session:
        ids = list(await session.scalars(insert(User).returning(User.id), values))
        due = utcnow()
        await session.execute(
            insert(Reminder),
            [{"user_id": uid, "kind": "confirm_data", "seq": 1, "due_at": due} for uid in ids],
        )
    return ids


async def planned_left(app) -> int:
    async with app.db.session() as session:
        return await session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.state == "planned")
        )


async def ticker(app, done: asyncio.Event) -> None:
    """The ticker as `navbot run` runs it: one tick a second until nothing is planned."""
    while await planned_left(app):
        await queue_due_reminders(app, utcnow())
        await asyncio.sleep(app.settings.reminders.tick_seconds)
    done.set()


def count_sends(fake, method: str, times: list[float]) -> None:
    """Note when the fake accepted each message (wraps its API method)."""
    original = getattr(fake, method)

    async def timed(params):  # type: ignore[no-untyped-def]
        result = await original(params)
        times.append(time.monotonic())
        return result

    setattr(fake, method, timed)


async def all_delivered(app, count: int) -> None:
    """Wait until no reminder is planned and none waits in the outbox."""
    while True:
        async with app.db.session() as session:
            left = await session.scalar(
                select(func.count())
                .select_from(TranscriptEntry)
                .where(TranscriptEntry.kind == "reminder", TranscriptEntry.status == "pending")
            )
            queued = await session.scalar(
                select(func.count())
                .select_from(TranscriptEntry)
                .where(TranscriptEntry.kind == "reminder")
            )
        if queued >= count and not left:
            return
        await asyncio.sleep(0.5)


def report(
    name: str,
    sent: list,
    times: list[float],
    expected: int,
    rejected: list[str],
    flood: tuple[str, ...],
) -> None:
    per_chat = Counter(getattr(item, "chat_id", None) or item.peer_id for item in sent)
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    losses = expected - len(per_chat)
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span else 0.0
    limit = LIMITS[name]
    floods = sum(1 for reason in rejected if reason.startswith(flood))
    print(
        f"{name:<9} {len(sent):>6} messages in {span:6.1f} s: {rate:5.1f}/s of {limit:.0f}/s "
        f"({rate / limit:6.1%}); 429s {floods}, duplicates {duplicates}, losses {losses}"
    )


def report_both(telegram_fake, vk_fake, times: dict[str, list[float]], half: int, count: int):
    """The Telegram half and the VK half of COUNT reminders."""
    report(
        "telegram",
        telegram_fake.sent,
        times["telegram"],
        half,
        telegram_fake.rejected,
        ("Too Many",),
    )
    report("vk", vk_fake.sent, times["vk"], count - half, vk_fake.rejected, ("6:", "9:"))


async def run(count: int, database: dict[str, str], per_tick: int = 0) -> None:
    telegram_fake, vk_fake = FakeTelegram(), FakeVk()
    await telegram_fake.start()
    await vk_fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            bot={"data_dir": Path(tmp) / "data", "regions_dir": any_hour_region(Path(tmp) / "r")},
            database=database or {"url": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"},
            catalogue={"load_sample": False},
            reminders={"tick_seconds": 1, "per_tick": per_tick},
            telegram={"token": telegram_fake.token, "api_base": telegram_fake.base},
            vk={
                "token": vk_fake.token,
                "group_id": vk_fake.group_id,
                "api_base": f"{vk_fake.base}/method",
            },
        )
        app = build_app(settings)
        await app.start()
        telegram = TelegramChannel(app)
        VkChannel(app)
        try:
            half = count // 2
            await make_parents(app, "telegram", half)
            await make_parents(app, "vk", count - half)
            telegram_fake.chats.update(range(1, half + 1))
            print(f"{count} due reminders: {half} Telegram, {count - half} VK parents")
            times: dict[str, list[float]] = {"telegram": [], "vk": []}
            count_sends(telegram_fake, "api_sendMessage", times["telegram"])
            count_sends(vk_fake, "api_messages_send", times["vk"])
            started = time.monotonic()
            await app.delivery.start()  # the delivery worker, as `navbot run` starts it
            ticked = asyncio.Event()
            await asyncio.gather(ticker(app, ticked), all_delivered(app, count))
            print(f"all sent in {time.monotonic() - started:.1f} s")
            report_both(telegram_fake, vk_fake, times, half, count)
        finally:
            await telegram.close()
            await app.close()
    await telegram_fake.stop()
    await vk_fake.stop()


async def run_process(count: int, database: dict[str, str]) -> None:
    telegram_fake, vk_fake = FakeTelegram(), FakeVk()
    await telegram_fake.start()
    await vk_fake.start()
    half = count // 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        regions = any_hour_region(folder / "r")
        database = database or {"url": f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}"}
        # the schema and the due reminders first, as a deployed database holds them
        app = build_app(
            Settings(
                bot={"data_dir": folder / "data", "regions_dir": regions},
                database=database,
                catalogue={"load_sample": False},
            )
        )
        await app.start()
        try:
            await make_parents(app, "telegram", half)
            await make_parents(app, "vk", count - half)
        finally:
            await app.close()
        telegram_fake.chats.update(range(1, half + 1))
        times: dict[str, list[float]] = {"telegram": [], "vk": []}
        count_sends(telegram_fake, "api_sendMessage", times["telegram"])
        count_sends(vk_fake, "api_messages_send", times["vk"])
        env = {
            "NAVBOT_BOT__REGIONS_DIR": str(regions),
            "NAVBOT_REMINDERS__TICK_SECONDS": "1",
            "NAVBOT_CATALOGUE__LOAD_SAMPLE": "false",
        }
        bot = Bot(folder, database, telegram_fake, vk_fake, env=env)
        print(f"{count} due reminders: {half} Telegram, {count - half} VK parents; navbot run")
        started = time.monotonic()
        bot.start()
        try:
            deadline = started + 3600
            while time.monotonic() < deadline:
                telegram_done = len({m.chat_id for m in telegram_fake.sent}) >= half
                if telegram_done and len({m.peer_id for m in vk_fake.sent}) >= count - half:
                    break
                if bot.proc is not None and bot.proc.poll() is not None:
                    raise RuntimeError(f"navbot run ended; see {bot.log}")
                await asyncio.sleep(0.5)
            print(f"all sent {time.monotonic() - started:.1f} s after the start")
            await asyncio.sleep(2)  # anything sent twice would arrive by now
        finally:
            bot.stop()
    report_both(telegram_fake, vk_fake, times, half, count)
    await telegram_fake.stop()
    await vk_fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--per-tick",
        type=int,
        default=0,
        help="reminders moved per channel and tick (default 0: as `navbot run` does)",
    )
    parser.add_argument(
        "--database",
        default="",
        help="postgresql+asyncpg://... to run on PostgreSQL (a throw-away schema is used)",
    )
    parser.add_argument(
        "--process", action="store_true", help="the bot as `navbot run` in a process of its own"
    )
    args = parser.parse_args()
    database: dict[str, str] = {}
    schema = ""
    if args.database:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(pg_execute(args.database, f'CREATE SCHEMA "{schema}"'))
        database = {"url": args.database, "schema_name": schema}
    try:
        if args.process:
            asyncio.run(run_process(args.count, database))
        else:
            asyncio.run(run(args.count, database, args.per_tick))
    finally:
        if schema:
            asyncio.run(pg_execute(args.database, f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
