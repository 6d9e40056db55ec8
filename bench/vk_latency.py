"""VK at a real network's latency: PARENTS VK parents write at once through one process,
against the fake VK answering every call after an added LATENCY (100 ms by default),
with VK's limit of 20 requests/s per token on.

The whole path runs (Bots Long Poll, dialogue engine, SQLite, delivery with the shared
pacing, messages.send on aiohttp). From the times the fake counted each messages.send
(its own clock, not the bench's), it prints:

* the sustained rate: k sends after the first one, k the largest multiple of 20 below
  their number, per second from the first send to the k-th (for a limiter that lets
  each second's budget go out at once, the start of the last full budget), and that as
  a share of 20/s (the target is at least 95%);
* the most calls the fake counted in any one-second window (at most 20) and the most
  it had in flight at once;
* error 6 answers (too many requests per second) and duplicate replies (both 0).

`--inbound` is the share of the latency spent before VK counts a call (0: all of it on
the way back; 0.5: a symmetric network). `--pacing` sends one message to each parent
through the delivery path's pacing and sender without the dialogue engine or the
database: what the pacing and the HTTP client allow when nothing else holds the
messages up (on a busy machine the full path is bound by the CPU as well).

    .venv/bin/python -m bench.vk_latency [--parents 400] [--latency 0.1] [--inbound 0.5]
        [--pacing]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bot.app import build_app
from bot.channels.vk import VkChannel
from bot.config import Settings
from handlers.core import Reply
from tests.fakes.common import max_in_window
from tests.fakes.vk import FakeVk

LIMIT = 20
FIRST_PARENT = 300_000


async def run(parents: int, latency: float, inbound: float, pacing: bool = False) -> None:
    fake = FakeVk(latency=latency, inbound=inbound)
    await fake.start()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            bot={"data_dir": folder},
            database={"url": f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"},
            vk={
                "token": fake.token,
                "group_id": fake.group_id,
                "api_base": f"{fake.base}/method",
                "longpoll_wait": 1,
            },
        )
        app = build_app(settings)
        await app.start()
        channel = VkChannel(app)
        await app.serve()
        task = asyncio.create_task(channel.run())
        cpu = time.process_time()
        try:
            for _ in range(2000):
                if fake.lp_connects:
                    break
                await asyncio.sleep(0.01)
            pushed = time.monotonic()
            users = range(FIRST_PARENT, FIRST_PARENT + parents)
            if pacing:
                await asyncio.gather(*(_send(app, channel, str(user)) for user in users))
            else:
                for user in users:
                    await fake.message(user, "/help")
            deadline = time.monotonic() + 600
            while len({sent.peer_id for sent in fake.sent}) < parents:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - pushed
            await asyncio.sleep(0.5)  # anything sent twice would arrive by now
            cpu = time.process_time() - cpu
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if hasattr(channel, "close"):  # a VkChannel without aiohttp calls has none
                await channel.close()
            await app.close()
            await fake.stop()
    answered = len({sent.peer_id for sent in fake.sent})
    stamps = sorted(counted for method, counted, _ in fake.spans if method == "messages.send")
    counted = [counted for _, counted, _ in fake.spans]
    # k sends after the first, k a whole number of budgets (20): the time to the start of
    # the last full budget, so a lone straggler in a last, nearly empty window (a slot
    # the long poll's connect took) does not count as a second of its own.
    k = (len(stamps) - 1) // LIMIT * LIMIT
    span = stamps[k] - stamps[0] if k else 0.0
    sustained = k / span if span > 0 else float("nan")
    floods = sum(r.startswith(("6:", "9:")) for r in fake.rejected)
    dups = sum(n - 1 for n in Counter((s.peer_id, s.text) for s in fake.sent).values())
    print(
        f"{'pacing only: ' if pacing else ''}{parents} VK parents at once, "
        f"fake VK at +{latency * 1000:.0f} ms "
        f"({inbound:.0%} of it before VK counts a call), limit {LIMIT}/s"
    )
    print(f"parents answered:        {answered}/{parents}")
    print(f"sustained messages/s:    {sustained:.2f} ({sustained / LIMIT:.1%} of {LIMIT}/s)")
    print(f"busiest second at VK:    {max_in_window(counted)} calls")
    print(f"most calls in flight:    {fake.most_in_flight}")
    print(f"all answered in:         {elapsed:.1f} s ({answered / elapsed:.2f}/s)")
    print(f"error 6/9 answers:       {floods}")
    print(f"duplicate replies:       {dups}")
    print(f"CPU of the process:      {cpu:.1f} s ({cpu / max(1, answered) * 1000:.1f} ms/parent)")


async def _send(app: Any, channel: VkChannel, chat_id: str) -> None:
    async with app.delivery.paced("vk", chat_id):
        await channel.sender.send(chat_id, Reply("Приём документов"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parents", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to each call")
    parser.add_argument(
        "--inbound", type=float, default=0.0, help="share of the latency before VK counts a call"
    )
    parser.add_argument(
        "--pacing", action="store_true", help="the pacing and sender alone, no engine"
    )
    args = parser.parse_args()
    asyncio.run(run(args.parents, args.latency, args.inbound, args.pacing))


if __name__ == "__main__":
    main()
