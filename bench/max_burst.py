"""A burst of MAX parents at once through one process, against the fake MAX Bot API
with MAX's own limits (30 requests a second per token, 2 messages a second per chat).

USERS parents each write /help at the same moment; the bot (MAX adapter -> dialogue
engine with SQLite -> delivery with MAX_LIMITS) answers every one. Prints how many were
answered, the 429 answers the fake gave, the time from the first message to the last
answer, messages/s and all API requests/s (sends, polls), and requests/s as a share
of the 30 allowed.

    .venv/bin/python -m bench.max_burst [--users 300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bot.app import build_app
from bot.channels.max import MAX_LIMITS, MaxChannel
from bot.config import Settings
from tests.fakes.max import FakeMax

LIMIT = 30


async def burst(users: int) -> None:
    fake = FakeMax()
    await fake.start()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            bot={"data_dir": folder},
            database={"url": f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"},
            max={"token": fake.token, "api_base": fake.base, "polling_timeout": 1},
        )
        app = build_app(settings)
        await app.start()
        channel = MaxChannel(app, MAX_LIMITS)
        await channel.check()
        await app.serve()
        task = asyncio.create_task(channel.run())
        try:
            first = 500_000
            for user in range(first, first + users):
                fake.dialogs.add(user)
            calls_before = len(fake.calls)
            started = time.monotonic()
            for user in range(first, first + users):
                await fake.message(user, "/help")
            deadline = time.monotonic() + 600
            while len({s.user_id for s in fake.sent}) < users:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - started
            answered = len({s.user_id for s in fake.sent})
            requests = len(fake.calls) - calls_before
            too_many = sum("429" in r for r in fake.rejected)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await channel.close()
            await app.close()
            await fake.stop()
    print(f"parents answered:   {answered}/{users}")
    print(f"429 answers:        {too_many}")
    print(f"first message to last answer: {elapsed:.1f} s")
    print(f"messages/s:         {len(fake.sent) / elapsed:.1f}")
    print(f"API requests/s:     {requests / elapsed:.1f} (sends and polls)")
    print(f"share of {LIMIT} rps:    {requests / elapsed / LIMIT:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(burst(args.users))


if __name__ == "__main__":
    main()
