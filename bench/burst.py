"""A burst of parents at once through one process, against the fake Telegram, VK and MAX
APIs with the platforms' limits on (Telegram 30 messages/s overall and a per-chat burst,
VK 20 requests/s per token, MAX 30 requests/s per token, sends and polls alike, and 2
messages a second per chat).

Four bursts per messenger: "process", the deployed shape: `navbot run` in a process of
its own (as the fakes are, for it, a remote API: their CPU is not the bot's) and PARENTS
parents each send /help at the same moment; it also prints the bot process's CPU time per
reply. The other three run the bot inside this process, beside the fakes: "replies",
PARENTS parents each send /help at the same moment
and every one gets one reply (the whole path: polling, dialogue engine, database,
delivery); "notices", the bot notifies PARENTS parents at once, as reminders go out
(delivery and the transcript); "pacing", one message to each through the delivery path
without the database, which shows what the pacing allows when nothing else holds the
messages up (on a busy machine the first two are bound by the CPU, not the limits).
From the send times the fake recorded it prints, per burst:

* the sustained rate: the messages after the first second's burst, per second from the
  first reply to the last (a limiter that keeps exactly to N per second scores N);
* the most replies the fake saw in any one-second window (at most the limit);
* how long until every parent had the answer (from the moment the burst was pushed),
  and that as messages/s and as a share of the limit: the finishing rate, which the
  acceptance targets (≥ 95%) are stated in;
* the flood-control answers (429 / VK error 6) and duplicate replies (both should be 0).

    .venv/bin/python -m bench.burst [--parents 300] [--database URL]
        [--messenger telegram,vk,max] [--mode process,replies,notices,pacing]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.catalogue import pg_execute
from bot.app import App, build_app
from bot.channels.max import MaxChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Settings
from handlers.core import Reply
from storage.models import TranscriptEntry, User
from tests.fakes.common import max_in_window
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.processes import Bot

FIRST_PARENT = 200_000


def report(name: str, limit: int, pushed: float, stamps: list[float], floods: int, dups: int):
    stamps = sorted(stamps)
    first, last = stamps[0], stamps[-1]
    burst = sum(1 for stamp in stamps if stamp - first < 1.0)
    sustained = (len(stamps) - burst) / (last - first) if last > first else float("nan")
    total = last - pushed
    print(
        f"{name:<9} {len(stamps)} replies   sustained {sustained:5.1f}/s "
        f"({sustained / limit:6.1%} of {limit}/s)   busiest second {max_in_window(stamps)}   "
        f"all answered in {total:5.2f} s ({len(stamps) / total:5.1f}/s, "
        f"{len(stamps) / total / limit:6.1%})   "
        f"flood answers {floods}   duplicates {dups}"
    )


async def _wait_for(condition: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the replies")
        await asyncio.sleep(0.01)


async def _pending(app: App) -> int:
    async with app.db.session() as session:
        query = select(func.count()).select_from(TranscriptEntry)
        return await session.scalar(query.where(TranscriptEntry.status == "pending"))


@dataclass
class Platform:
    name: str
    limit: int
    fake: Any
    make_settings: Callable[[], dict[str, Any]]  # once the fake is serving
    channel: Callable[[App], Any]
    ready: Callable[[], bool]
    sent: Callable[[], list[tuple[int, str, float]]]  # chat, text, when
    floods: Callable[[], int]
    process: dict[str, Any]  # how tests.processes.Bot is told about the fake
    kind: str = ""  # the channel's name in the database
    requests: Callable[[], int] = lambda: 0  # every API call the fake got (MAX counts all)

    def prepare(self, users: range) -> None:
        """Parents who can be written to (MAX: they opened a dialog with the bot)."""
        if isinstance(self.fake, FakeMax):
            self.fake.dialogs.update(users)


def telegram() -> Platform:
    fake = FakeTelegram()  # the real limits: 30/s overall, a per-chat burst

    def settings() -> dict[str, Any]:
        return {"telegram": {"token": fake.token, "api_base": fake.base, "polling_timeout": 1}}

    return Platform(
        "Telegram",
        30,
        fake,
        settings,
        TelegramChannel,
        lambda: any(method == "getUpdates" for method, _ in fake.calls),
        lambda: [(m.chat_id, m.text, m.at) for m in fake.sent],
        lambda: sum("Too Many Requests" in r for r in fake.rejected),
        {"telegram": fake},
        "telegram",
    )


def vk() -> Platform:
    fake = FakeVk()  # the real limit: 20 requests/s per token

    def settings() -> dict[str, Any]:
        return {
            "vk": {
                "token": fake.token,
                "group_id": fake.group_id,
                "api_base": f"{fake.base}/method",
                "longpoll_wait": 1,
            }
        }

    return Platform(
        "VK",
        20,
        fake,
        settings,
        VkChannel,
        lambda: fake.lp_connects > 0,
        lambda: [(m.peer_id, m.text, m.at) for m in fake.sent],
        lambda: sum(r.startswith(("6:", "9:")) for r in fake.rejected),
        {"vk": fake},
        "vk",
    )


def max_() -> Platform:
    fake = FakeMax()  # the real limits: 30 requests/s per token, 2 messages/s per chat

    def settings() -> dict[str, Any]:
        return {"max": {"token": fake.token, "api_base": fake.base, "polling_timeout": 1}}

    return Platform(
        "MAX",
        30,
        fake,
        settings,
        MaxChannel,
        lambda: any(path == "/updates" for _, path, _ in fake.calls),
        lambda: [(m.user_id, m.text, m.at) for m in fake.sent],
        lambda: sum("429" in r for r in fake.rejected),
        {"max_fake": fake},
        "max",
        lambda: len(fake.calls),
    )


PLATFORMS = {"telegram": telegram, "vk": vk, "max": max_}


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def burst_process(platform: Platform, database: dict[str, str], parents: int) -> None:
    """`navbot run` as deployed, in its own process; the fake here. One parent first warms
    the bot up (start-up and the first queries are not the burst's), then PARENTS write
    /help at the same moment."""
    fake = platform.fake
    await fake.start()
    users = range(FIRST_PARENT, FIRST_PARENT + parents)
    warm = FIRST_PARENT - 1
    platform.prepare(range(warm, FIRST_PARENT + parents))
    with tempfile.TemporaryDirectory() as folder:
        bot = Bot(Path(folder), database, **platform.process)
        bot.start()
        try:
            await _wait_for(platform.ready, 60)
            await fake.message(warm, "/help")
            await _wait_for(lambda: any(chat == warm for chat, _, _ in platform.sent()), 60)
            await asyncio.sleep(1.5)  # the warm-up's answer out of every window
            assert bot.proc is not None
            cpu = _cpu_seconds(bot.proc.pid)
            requests = platform.requests()
            pushed = time.monotonic()
            for user in users:
                await fake.message(user, "/help")
            answered = lambda: {c for c, _, _ in platform.sent() if c != warm}  # noqa: E731
            await _wait_for(lambda: len(answered()) >= parents, 300)
            finished = time.monotonic()
            cpu = _cpu_seconds(bot.proc.pid) - cpu
            requests = platform.requests() - requests
            await asyncio.sleep(1.0)  # anything sent twice would arrive by now
        finally:
            bot.stop()
            await fake.stop()
    sent = [item for item in platform.sent() if item[0] != warm]
    dups = sum(n - 1 for n in Counter((chat, text) for chat, text, _ in sent).values())
    name = f"{platform.name} process"
    report(name, platform.limit, pushed, [at for _, _, at in sent], platform.floods(), dups)
    extra = ""
    if requests:
        rate = requests / (finished - pushed)
        extra = f"   all API requests {rate:5.1f}/s ({rate / platform.limit:6.1%} of the limit)"
    print(f"{'':<9} bot CPU {cpu * 1000 / len(sent):5.1f} ms per reply{extra}")


async def burst(platform: Platform, base: dict[str, Any], parents: int, mode: str) -> None:
    """Parents write at once ("replies"), the bot notifies them all at once ("notices"),
    or sends them one message each through the delivery path without the database
    ("pacing": what the limiter allows when nothing else holds the messages up)."""
    fake = platform.fake
    await fake.start()
    app = build_app(Settings(**base, **platform.make_settings()))
    await app.start()
    channel = platform.channel(app)
    await app.serve()
    task = asyncio.create_task(channel.run())
    users = range(FIRST_PARENT, FIRST_PARENT + parents)
    platform.prepare(users)
    try:
        await _wait_for(platform.ready, 20)
        pushed = time.monotonic()
        if mode == "notices":
            await _notify_all(app, platform, users)
        elif mode == "pacing":
            await _deliver_all(app, platform, users)
        else:
            for user in users:
                await fake.message(user, "/help")
        await _wait_for(lambda: len({chat for chat, _, _ in platform.sent()}) >= parents, 300)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every outcome recorded
            if not await _pending(app):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # anything sent twice would arrive by now
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if hasattr(channel, "close"):
            await channel.close()
        await app.close()
        await fake.stop()
    sent = platform.sent()
    dups = sum(n - 1 for n in Counter((chat, text) for chat, text, _ in sent).values())
    name = f"{platform.name} {mode}"
    report(name, platform.limit, pushed, [at for _, _, at in sent], platform.floods(), dups)


async def _notify_all(app: App, platform: Platform, users: range) -> None:
    channel = platform.kind
    async with app.db.session() as session:
        rows = [
            User(channel=channel, platform_user_id=str(u), chat_id=str(u), name="") for u in users
        ]
        session.add_all(rows)
        await session.flush()
        ids = [row.id for row in rows]
    platform.prepare(users)
    if isinstance(platform.fake, FakeTelegram):
        platform.fake.chats.update(users)  # they wrote to the bot before
    await asyncio.gather(*(app.delivery.notify(i, [Reply("Приём документов")]) for i in ids))


async def _deliver_all(app: App, platform: Platform, users: range) -> None:
    channel = platform.kind
    platform.prepare(users)
    if isinstance(platform.fake, FakeTelegram):
        platform.fake.chats.update(users)
    sender = app.delivery.senders[channel]

    async def send(chat_id: str) -> None:
        async with app.delivery.paced(channel, chat_id):
            await sender.send(chat_id, Reply("Приём документов"))

    await asyncio.gather(*(send(str(u)) for u in users))


async def main(parents: int, database: str, messengers: list[str], modes: list[str]) -> None:
    where = database.split("://")[0] if database else "SQLite"
    print(f"{parents} parents at once through one process, database: {where}, limits on")
    for name in messengers:
        for mode in modes:
            make = PLATFORMS[name]
            schema = f"bench_{uuid.uuid4().hex[:8]}" if database else ""
            if schema:
                await pg_execute(database, f'CREATE SCHEMA "{schema}"')
            try:
                with tempfile.TemporaryDirectory() as folder:
                    url = database or f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"
                    base = {
                        "bot": {"data_dir": folder},
                        "database": {"url": url, "schema_name": schema},
                    }
                    if mode == "process":
                        await burst_process(make(), base["database"], parents)
                    else:
                        await burst(make(), base, parents, mode)
            finally:
                if schema:
                    await pg_execute(database, f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=300)
    parser.add_argument(
        "--database",
        default="",
        help="database URL (default: a fresh SQLite file); PostgreSQL runs in a throw-away schema",
    )
    parser.add_argument("--messenger", default="telegram,vk,max")
    parser.add_argument("--mode", default="process,replies,notices,pacing")
    options = parser.parse_args()
    messengers = options.messenger.split(",")
    modes = options.mode.split(",")
    asyncio.run(main(options.parents, options.database, messengers, modes))
