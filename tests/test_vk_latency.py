"""VK at a real network's latency: with the fake VK answering every call 100 ms late,
replies to many parents go out concurrently, never more than VK's 20 a second, each
exactly once with the random_id of its transcript row.

Not a timed test: it checks what the fake saw (calls in flight at once, calls counted
in any one-second window on the fake's clock), not how fast it went."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.vk import random_id
from storage.models import TranscriptEntry, User
from tests.fakes.common import max_in_window
from tests.fakes.vk import FakeVk
from tests.messengers import wait_until

PARENTS = 45
FIRST = 710_000


@pytest.fixture
def database(tmp_path: Path) -> dict[str, str]:
    return {"url": f"sqlite+aiosqlite:///{tmp_path / 'navbot.sqlite3'}"}


@pytest.fixture
async def fake_vk():
    fake = FakeVk(latency=0.1)
    await fake.start()
    yield fake
    await fake.stop()


async def test_replies_to_many_vk_parents_overlap_at_latency_and_keep_the_limit(running, fake_vk):
    users = range(FIRST, FIRST + PARENTS)
    fake_vk.errors_next = [6]  # one "too many requests" on the way: waited out by all
    await asyncio.gather(*(fake_vk.message(user, "/help") for user in users))
    await wait_until(lambda: {s.peer_id for s in fake_vk.sent} >= set(users), limit=120)
    await asyncio.sleep(0.5)  # a reply sent twice would arrive by now

    sends = [counted for method, counted, _ in fake_vk.spans if method == "messages.send"]
    assert fake_vk.most_in_flight >= 2  # calls overlap: not one at a time
    assert max_in_window([counted for _, counted, _ in fake_vk.spans]) <= 20
    assert len(sends) >= PARENTS + 1
    assert [r for r in fake_vk.rejected if r.startswith("6:")] == [
        "6: Too many requests per second"
    ]  # only the injected one: the pacing never went over
    # each parent got its /help answer once; each send carries its row's random_id
    assert Counter(s.peer_id for s in fake_vk.sent if s.peer_id in users) == dict.fromkeys(users, 1)
    async with running.app.db.session() as session:
        rows = (
            await session.execute(
                select(User.chat_id, TranscriptEntry.id, TranscriptEntry.status)
                .join(User, User.id == TranscriptEntry.user_id)
                .where(TranscriptEntry.direction == "out", User.channel == "vk")
            )
        ).all()
    by_chat = {int(chat): (row_id, status) for chat, row_id, status in rows}
    for sent in fake_vk.sent:
        row_id, status = by_chat[sent.peer_id]
        assert status == "sent"
        assert sent.random_id == random_id(row_id, 0)


async def test_a_parent_who_blocked_the_community_is_marked_unreachable(running, fake_vk):
    fake_vk.blocked.add(FIRST)
    await fake_vk.message(FIRST, "/help")

    async def unreachable() -> bool:
        async with running.app.db.session() as session:
            reachable = await session.scalar(
                select(User.reachable).where(User.channel == "vk", User.chat_id == str(FIRST))
            )
        return reachable is False

    for _ in range(200):
        if await unreachable():
            break
        await asyncio.sleep(0.05)
    assert await unreachable()
    assert fake_vk.to(FIRST) == []
    assert any(r.startswith("901:") for r in fake_vk.rejected)
