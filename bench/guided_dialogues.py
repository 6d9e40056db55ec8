"""Messages per second and reply latency of the guided dialogues, through the dialogue
engine on a real database (SQLite file by default, PostgreSQL with --database-url).

Each simulated parent opens the registration walkthrough, goes through all eight
steps with one «Не получается» detour, then runs the certificate check and marks the
data confirmed: 18 messages. Parents run concurrently.

    python bench/guided_dialogues.py --parents 200 --concurrency 20
    python bench/guided_dialogues.py --parents 200 --concurrency 20 --baseline
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_app
from bot.config import Settings
from handlers.core import Incoming

SCRIPT = [
    ("/start", None),
    ("", "reg"),
    ("", "reg:next:1"),
    ("", "reg:next:2"),
    ("", "reg:next:3"),
    ("", "reg:help:4"),
    ("", "reg:p:no_email:4"),
    ("", "reg:go:4"),
    ("", "reg:next:4"),
    ("", "reg:next:5"),
    ("", "reg:next:6"),
    ("", "reg:next:7"),
    ("", "reg:next:8"),
    ("", "cert:check"),
    ("Пятигорск", None),
    ("7", None),
    ("", "cert:confirmed:no"),
    ("", "confirm:done"),
]
# The same number of messages that only open the main menu: the engine's own cost.
BASELINE = [("/menu", None)] * len(SCRIPT)


async def parent(app, user: int, script, latencies: list[float]) -> None:
    for index, (text, payload) in enumerate(script):
        incoming = Incoming(
            channel="bench",
            user_id=str(user),
            chat_id=str(user),
            text=text,
            payload=payload,
            update_id=f"{user}-{index}",
        )
        started = time.perf_counter()
        replies = await app.engine.handle(incoming)
        latencies.append(time.perf_counter() - started)
        assert replies, (user, index)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--schema", default="")
    parser.add_argument(
        "--baseline", action="store_true", help="send /menu only, for the engine's own cost"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        database = {"url": args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"}
        if args.schema:
            database["schema_name"] = args.schema
        app = build_app(Settings(bot={"data_dir": Path(tmp)}, database=database))
        await app.start()
        latencies: list[float] = []
        gate = asyncio.Semaphore(args.concurrency)

        async def one(user: int) -> None:
            async with gate:
                await parent(app, user, BASELINE if args.baseline else SCRIPT, latencies)

        started = time.perf_counter()
        await asyncio.gather(*(one(user) for user in range(args.parents)))
        elapsed = time.perf_counter() - started
        await app.close()

    ms = sorted(x * 1000 for x in latencies)
    print(f"script:            {'baseline /menu' if args.baseline else 'guided dialogues'}")
    print(f"database:          {app.db.dialect}")
    print(f"parents:           {args.parents} (concurrency {args.concurrency})")
    print(f"messages:          {len(ms)} in {elapsed:.2f} s = {len(ms) / elapsed:.0f} msg/s")
    print(f"latency p50 / p99: {statistics.median(ms):.1f} / {ms[int(len(ms) * 0.99)]:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
