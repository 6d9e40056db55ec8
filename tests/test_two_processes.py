"""Two `navbot run` processes on one PostgreSQL database with one Telegram token.

Telegram allows one poller per token: the second gets 409 Conflict, says so in one
line and stops polling, and both go on sending the shared outbox under one shared
pace (Redis). 300 parents writing at once all get their answers, none twice, and
the fake Telegram, which enforces 30 messages a second, never answers 429.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest

from tests.conftest import pg_schema
from tests.messengers import wait_until
from tests.processes import Bot

PARENTS = 300


@pytest.fixture
def pg_database():
    for schema in pg_schema():
        yield {"url": "postgresql+asyncpg://postgres@127.0.0.1:5432/test", "schema_name": schema}


async def test_two_processes_one_token_300_parents(tmp_path, pg_database, fake_telegram):
    pacing = {
        "NAVBOT_PACING__BACKEND": "redis",
        "NAVBOT_PACING__KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}",
    }
    first = Bot(tmp_path, pg_database, fake_telegram, env=pacing, name="first")
    second = Bot(tmp_path, pg_database, fake_telegram, env=pacing, name="second")
    first.start()
    second.start()
    try:
        # both are up: each of them polled at least once, and one was told 409
        await wait_until(lambda: fake_telegram.conflicts >= 1, limit=120)
        await asyncio.sleep(2)
        start = time.monotonic()
        for n in range(PARENTS):
            await fake_telegram.message(100_000 + n, "/start")

        def answered() -> int:
            return sum(
                1
                for n in range(PARENTS)
                if any("Здравствуйте" in m.text for m in fake_telegram.to(100_000 + n))
            )

        await wait_until(lambda: answered() == PARENTS, limit=240)
        await asyncio.sleep(2)  # late duplicates, if any, would come now
    finally:
        first.stop()
        second.stop()

    logs = first.log.read_text() + second.log.read_text()
    assert logs.count("another process is polling this bot token") >= 1
    assert not [r for r in fake_telegram.rejected if "Too Many Requests" in r]
    for n in range(PARENTS):
        texts = Counter(m.text for m in fake_telegram.to(100_000 + n))
        assert all(count == 1 for count in texts.values()), f"parent {n} got a message twice"
    # never more than 30 sends in any one-second window, counted by the fake
    times = sorted(m.at for m in fake_telegram.sent if m.at >= start)
    assert all(b - a >= 1.0 for a, b in zip(times, times[30:], strict=False))
