"""Resident memory of `navbot run` against the fake Telegram and VK, on an empty database
and on a campaign-sized one (bench/big_db.py: 100,000 parents, 200,000 requests,
1,000,000 transcript rows).

For each database it starts `navbot run` as a process of its own, waits until both
channels poll and the process has settled, and prints its resident size (VmRSS from
/proc) after start; then TRAFFIC parents write three messages each and it prints the
resident size again, with the peak (VmHWM). The size should not grow with the database.

    .venv/bin/python -m bench.big_db /tmp/big.sqlite3     # once, about 2 minutes
    .venv/bin/python -m bench.memory --big /tmp/big.sqlite3 [--traffic 200]
    .venv/bin/python -m bench.memory --big-url postgresql+asyncpg://127.0.0.1/test \
        --big-schema big
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.processes import Bot

SETTLE = 5.0  # seconds after both channels poll before the first reading
FIRST_PARENT = 900_000
MESSAGES = ("/start", "/help", "как получить сертификат")


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def measure(name: str, database: dict[str, str], traffic: int) -> None:
    telegram, vk = FakeTelegram(), FakeVk()
    await telegram.start()
    await vk.start()
    with tempfile.TemporaryDirectory() as folder:
        bot = Bot(Path(folder), database, telegram, vk)
        started = time.monotonic()
        bot.start()
        assert bot.proc is not None
        try:
            while not (vk.lp_connects and any(m == "getUpdates" for m, _ in telegram.calls)):
                if bot.proc.poll() is not None or time.monotonic() - started > 300:
                    raise SystemExit(f"navbot run did not start:\n{bot.log.read_text()[-3000:]}")
                await asyncio.sleep(0.1)
            ready = time.monotonic() - started
            await asyncio.sleep(SETTLE)
            rss, _ = memory(bot.proc.pid)
            users = range(FIRST_PARENT, FIRST_PARENT + traffic)
            for text in MESSAGES:
                for user in users:
                    if user % 2:
                        await telegram.message(user, text)
                    else:
                        await vk.message(user, text)
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    answered = {m.chat_id for m in telegram.sent} | {s.peer_id for s in vk.sent}
                    if len(answered & set(users)) >= traffic:
                        break
                    await asyncio.sleep(0.2)
            await asyncio.sleep(3)
            after, peak = memory(bot.proc.pid)
        finally:
            bot.stop()
            await telegram.stop()
            await vk.stop()
    print(
        f"{name:<28} ready in {ready:5.1f} s   RSS after start {rss:6.1f} MiB   "
        f"after {traffic} parents x {len(MESSAGES)} messages {after:6.1f} MiB   "
        f"peak {peak:6.1f} MiB"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        empty = {"url": f"sqlite+aiosqlite:///{Path(folder) / 'empty.sqlite3'}"}
        await measure("empty SQLite", empty, args.traffic)
    if args.big:
        await measure("big SQLite", {"url": f"sqlite+aiosqlite:///{args.big}"}, args.traffic)
    if args.big_url:
        database = {"url": args.big_url, "schema_name": args.big_schema}
        await measure("big PostgreSQL", database, args.traffic)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", default="", help="a SQLite file made by bench/big_db.py")
    parser.add_argument("--big-url", default="", help="a database URL made by bench/big_db.py")
    parser.add_argument("--big-schema", default="", help="its PostgreSQL schema")
    parser.add_argument("--traffic", type=int, default=200, help="parents writing after start")
    asyncio.run(main(parser.parse_args()))
