"""The delivery path records what happened to every outgoing message."""

from __future__ import annotations

import io

from sqlalchemy import select

from bot.channels.console import CHANNEL, ConsoleChannel
from bot.delivery import DeliveryError
from handlers.core import Button, Reply
from storage.models import TranscriptEntry, User


class RefusingPlatform:
    """A messenger that says the user blocked the bot."""

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        raise DeliveryError("blocked by the user", unreachable=True)


async def _user_id(app, channel: str) -> int:
    async with app.db.session() as session:
        return (await session.scalar(select(User).where(User.channel == channel))).id


async def test_notification_reaches_the_terminal_user_and_is_recorded(app):
    out = io.StringIO()
    console = ConsoleChannel(app.engine, app.delivery, stdin=io.StringIO(""), stdout=out)
    await console.handle("/start")
    user_id = await _user_id(app, CHANNEL)

    notice = Reply("Статус заявки изменился", [[Button("Мои заявки", "menu")]])
    assert await app.delivery.notify(user_id, [notice])
    assert "Статус заявки изменился" in out.getvalue()
    assert "[1] Мои заявки" in out.getvalue()
    async with app.db.session() as session:
        row = await session.get(TranscriptEntry, notice.transcript_id)
    assert row.direction == "out" and row.status == "sent" and row.sent_at is not None


async def test_blocked_user_is_marked_unreachable_and_the_failure_kept(app, chat):
    app.delivery.register("test", RefusingPlatform())
    replies = await chat.send("/start")
    assert not await app.delivery.deliver("test", chat.user_id, replies)
    user_id = await _user_id(app, "test")
    later = Reply("Напоминание")
    assert not await app.delivery.notify(user_id, [later])
    async with app.db.session() as session:
        user = await session.get(User, user_id)
        first = await session.get(TranscriptEntry, replies[0].transcript_id)
        second = await session.get(TranscriptEntry, later.transcript_id)
    assert user.reachable is False
    assert (first.status, first.error) == ("failed", "blocked by the user")
    assert (second.status, second.error) == ("failed", "user unreachable")
