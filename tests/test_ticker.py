"""The ticker across processes on PostgreSQL: one leader by an advisory lock, taken over
when the leader goes; and two tickers at once never queue one reminder twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import build_app
from bot.config import Settings
from bot.scheduler import Ticker, queue_due_reminders
from tests.conftest import pg_schema
from tests.reminders import FixedClock, make_parents, outgoing, per_user, plan_due

NOON = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # 12:00 in Stavropol


@pytest.fixture
def pg_settings(tmp_path):
    for schema in pg_schema():
        yield Settings(
            bot={"data_dir": tmp_path / "data"},
            database={
                "url": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                "schema_name": schema,
            },
        )


@pytest.fixture
async def two_processes(pg_settings):
    """Two apps on one database, as two `navbot run` processes would be."""
    first, second = build_app(pg_settings), build_app(pg_settings)
    await first.start()
    await second.start()
    yield first, second
    await first.close()
    await second.close()


async def test_two_tickers_at_once_queue_every_reminder_once(two_processes):
    first, second = two_processes
    users = await make_parents(first, 300)
    await plan_due(first, users, NOON - timedelta(hours=1))
    results = await asyncio.gather(
        *(
            queue_due_reminders(app, NOON, batch=10, per_channel=1000)
            for app in (first, second, first, second)
        )
    )
    assert sum(r.sent for r in results) == 300
    assert all(r.sent for r in results[:2])  # both really worked, side by side
    counts = await per_user(first, "reminder")
    assert set(counts) == set(users)
    assert set(counts.values()) == {1}


LEADER = """
import asyncio, sys
from bot.app import build_app
from bot.config import Settings
from bot.scheduler import Leadership

async def main():
    settings = Settings.model_validate_json(sys.argv[1])
    app = build_app(settings)
    leadership = Leadership(app.db, settings.database.schema_name)
    print("leader" if await leadership.check() else "follower", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_one_leader_and_a_takeover_when_it_is_killed(two_processes, pg_settings):
    first, _ = two_processes
    clock = FixedClock(NOON)
    ticker = Ticker(first, clock=clock)
    (uid,) = await make_parents(first, 1)
    await plan_due(first, [uid], NOON - timedelta(minutes=5))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LEADER, pg_settings.model_dump_json(), stdout=subprocess.PIPE
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.strip() == b"leader"
        assert await ticker.tick() is None  # the other process leads: this one waits
        assert await outgoing(first, "reminder") == []
        process.kill()  # SIGKILL: no clean-up, the server notices the closed connection
        await process.wait()
        for _ in range(50):
            result = await ticker.tick()
            if result is not None:
                break
            await asyncio.sleep(0.1)
        assert result is not None and result.sent == 1
        assert len(await outgoing(first, "reminder")) == 1
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await ticker.stop()
