"""`navbot run` killed (SIGKILL) in the middle of sending a batch of 1,000 due reminders to
parents in Telegram (the project's fake Bot API): after a restart every parent has the
reminder, and only a message Telegram accepted in the instant before the kill, while its
outbox row was not yet marked sent, may come twice. Telegram's sendMessage has no
idempotency key, so that window cannot be closed from our side (VK's random_id does it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from bot.app import build_app
from bot.config import load_settings
from storage.models import Reminder, TranscriptEntry, User, utcnow
from tests.reminders import make_parents, plan_due
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
        "[database]",
        *(f'{key} = "{value}"' for key, value in database.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def start_bot(path: str, fake) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVBOT_")}
    env.update(
        NAVBOT_TELEGRAM__TOKEN=fake.token,
        NAVBOT_TELEGRAM__API_BASE=fake.base,
        NAVBOT_TELEGRAM__POLLING_TIMEOUT="1",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "-c", path, "run"],
        stdin=subprocess.PIPE,  # kept open: the terminal channel waits instead of ending
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


async def pending(app) -> set[str]:
    """Chats whose reminder is still waiting in the outbox."""
    async with app.db.session() as session:
        rows = await session.scalars(
            select(User.chat_id)
            .join(TranscriptEntry, TranscriptEntry.user_id == User.id)
            .where(TranscriptEntry.kind == "reminder", TranscriptEntry.status == "pending")
        )
        return set(rows)


async def wait_for(condition, limit: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_killed_mid_batch_and_restarted_delivers_each_reminder_once(
    tmp_path, database, fake_telegram
):
    path = config(tmp_path, database)
    app = build_app(load_settings(path))
    await app.start()
    try:
        users = await make_parents(app, COUNT)
        fake_telegram.chats.update(range(1, COUNT + 1))
        await plan_due(app, users, utcnow() - timedelta(minutes=1))
        bot = start_bot(path, fake_telegram)
        try:
            await wait_for(lambda: len(fake_telegram.sent) >= 300)
            bot.send_signal(signal.SIGKILL)
            bot.wait(30)
        finally:
            if bot.poll() is None:
                bot.kill()
        # Requests the fake received before the kill are still being answered by it:
        # let them finish before counting what Telegram accepted.
        await asyncio.sleep(1)
        got = Counter(str(m.chat_id) for m in fake_telegram.sent)
        assert len(got) < COUNT, "the kill came after the whole batch"
        # Accepted by Telegram a moment before the kill, not yet marked sent: the only
        # messages an at-least-once outbox may send again (Telegram has no idempotency key).
        in_flight = set(got) & await pending(app)
        bot = start_bot(path, fake_telegram)
        try:
            await wait_for(lambda: len({m.chat_id for m in fake_telegram.sent}) >= COUNT)
            await asyncio.sleep(2)  # two more ticks and sweeps: nothing more may come
        finally:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(30)
            except subprocess.TimeoutExpired:
                bot.kill()
        per_chat = Counter(str(m.chat_id) for m in fake_telegram.sent)
        assert set(per_chat) == {str(n) for n in range(1, COUNT + 1)}  # nobody missed out
        twice = {chat for chat, n in per_chat.items() if n > 1}
        assert max(per_chat.values()) <= 2
        assert twice <= in_flight, "a reminder sent twice that was not in flight at the kill"
        # Nothing refused for good: a 429 right after the restart (the fake still counts
        # the killed process's last second) is waited out and the message sent.
        assert all(reason.startswith("Too Many Requests") for reason in fake_telegram.rejected)
        async with app.db.session() as session:
            states = set(await session.scalars(select(Reminder.state).distinct()))
            statuses = set(
                await session.scalars(
                    select(TranscriptEntry.status).where(TranscriptEntry.kind == "reminder")
                )
            )
        assert states == {"sent"} and statuses == {"sent"}
        assert sum(per_chat.values()) == COUNT + len(twice)
    finally:
        await app.close()
