"""`navbot run` killed (SIGKILL) in the middle of moving a batch of 1,000 due reminders to
the outbox: after a restart every reminder is queued exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select

from bot.app import build_app
from bot.config import load_settings
from storage.models import Reminder, TranscriptEntry, utcnow
from tests.reminders import make_parents, per_user, plan_due
from texts import REGIONS_DIR

COUNT = 1000


def config(tmp_path, database) -> str:
    regions = tmp_path / "regions"
    regions.mkdir()
    profile = (REGIONS_DIR / "stavropol.toml").read_text(encoding="utf-8")
    (regions / "stavropol.toml").write_text(
        profile.replace('daytime = "10:00-20:00"', 'daytime = "00:00-24:00"'), encoding="utf-8"
    )
    lines = [
        "[bot]",
        f'data_dir = "{tmp_path / "data"}"',
        f'regions_dir = "{regions}"',
        "[catalogue]",
        "load_sample = false",
        "[reminders]",
        "tick_seconds = 1",
        "batch = 25",
        f"per_tick = {COUNT}",
        "[database]",
        *(f'{key} = "{value}"' for key, value in database.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def start_bot(path: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVBOT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "-c", path, "run"],
        stdin=subprocess.PIPE,  # kept open: the terminal channel waits instead of ending
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


async def queued(app) -> int:
    async with app.db.session() as session:
        return await session.scalar(
            select(func.count()).where(
                TranscriptEntry.direction == "out", TranscriptEntry.kind == "reminder"
            )
        )


async def wait_for(app, at_least: int, limit: float = 120) -> int:
    deadline = time.monotonic() + limit
    while (count := await queued(app)) < at_least:
        assert time.monotonic() < deadline, f"only {count} reminders queued"
        await asyncio.sleep(0.05)
    return count


async def test_killed_mid_batch_and_restarted_queues_each_reminder_once(tmp_path, database):
    path = config(tmp_path, database)
    app = build_app(load_settings(path))
    await app.start()
    try:
        users = await make_parents(app, COUNT)
        await plan_due(app, users, utcnow() - timedelta(minutes=1))
        bot = start_bot(path)
        try:
            before_kill = await wait_for(app, 100)
            bot.send_signal(signal.SIGKILL)
            bot.wait(30)
        finally:
            if bot.poll() is None:
                bot.kill()
        at_kill = await queued(app)
        assert before_kill <= at_kill < COUNT, "the kill came after the whole batch"
        # Each transaction moves whole reminders: as many queued as marked sent.
        async with app.db.session() as session:
            sent = await session.scalar(select(func.count()).where(Reminder.state == "sent"))
        assert sent == at_kill
        bot = start_bot(path)
        try:
            await wait_for(app, COUNT)
            await asyncio.sleep(2)  # two more ticks: nothing more may come
        finally:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(30)
            except subprocess.TimeoutExpired:
                bot.kill()
        counts = await per_user(app, "reminder")
        assert set(counts) == set(users)
        assert set(counts.values()) == {1}
        async with app.db.session() as session:
            states = set(await session.scalars(select(Reminder.state).distinct()))
        assert states == {"sent"}
    finally:
        await app.close()
