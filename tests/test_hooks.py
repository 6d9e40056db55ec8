"""The checks before routing, through the engine: the per-parent flood limit, and a
conversation a member of staff has taken ("this conversation is with a person")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.app import App, build_app
from bot.config import Settings
from handlers.core import utcnow
from storage.models import TranscriptEntry, User
from tests.chat import ChatClient

LIMIT = 3


@pytest.fixture
async def limited(settings: Settings):
    """The app with a flood limit of LIMIT messages in 10 seconds."""
    bot = {**settings.bot.model_dump(), "flood_messages": LIMIT, "flood_seconds": 10.0}
    application = build_app(Settings(bot=bot, database=settings.database.model_dump()))
    await application.start()
    yield application
    await application.close()


async def transcript(app: App, user_id: str = "1001") -> list[TranscriptEntry]:
    async with app.db.session() as session:
        user = await session.scalar(select(User).where(User.platform_user_id == user_id))
        rows = await session.scalars(
            select(TranscriptEntry)
            .where(TranscriptEntry.user_id == user.id)
            .order_by(TranscriptEntry.id)
        )
        return list(rows)


async def all_sent(app: App) -> None:
    """What the delivery worker does once the answers reached the parent."""
    async with app.db.session() as session:
        await session.execute(
            update(TranscriptEntry)
            .where(TranscriptEntry.status == "pending")
            .values(status="sent", sent_at=utcnow())
        )


async def test_a_flood_gets_one_notice_and_stays_silent_until_the_parent_slows_down(limited):
    chat = ChatClient(limited.engine)
    start = utcnow()
    answers = []
    for i in range(LIMIT + 2):
        answers.append(await chat.send("/help", time=start + timedelta(seconds=i * 0.1)))
    assert all("/menu" in reply[0].text for reply in answers[:LIMIT])
    assert [r.text for r in answers[LIMIT]] == [limited.texts("flood.notice")]
    assert answers[LIMIT + 1] == []
    # The answers reached the parent, who keeps flooding: no second notice, no answers.
    await all_sent(limited)
    for i in range(10):
        assert await chat.send("/help", time=start + timedelta(seconds=1 + i * 0.1)) == []
    rows = await transcript(limited)
    assert len([r for r in rows if r.direction == "in"]) == LIMIT + 12  # all recorded
    assert [r.text for r in rows].count(limited.texts("flood.notice")) == 1
    # A message once the parent has slowed down is answered again.
    later = start + timedelta(seconds=30)
    assert "/menu" in (await chat.send("/help", time=later))[0].text


async def test_messages_stored_while_the_bot_was_down_are_not_a_flood(limited):
    """Handled one right after the other after a restart, with their answers unsent, but
    sent by the parent a minute apart."""
    chat = ChatClient(limited.engine)
    start = utcnow() - timedelta(minutes=30)
    for i in range(LIMIT * 3):
        replies = await chat.send("/help", time=start + timedelta(minutes=i))
        assert replies and "/menu" in replies[0].text, i


async def test_a_parent_who_reads_each_answer_is_never_a_flood(limited):
    chat = ChatClient(limited.engine)
    start = utcnow()
    for i in range(LIMIT * 4):
        replies = await chat.send("/help", time=start + timedelta(seconds=i * 0.2))
        assert replies and "/menu" in replies[0].text, i
        await all_sent(limited)


async def with_person(app: App, since) -> None:
    async with app.db.session() as session:
        await session.execute(
            update(User).where(User.platform_user_id == "1001").values(with_person_since=since)
        )


async def test_a_conversation_with_a_person_is_recorded_and_not_answered(limited):
    """What the parent types goes to the person, unanswered by the bot, however fast;
    the menu and the commands still work, and /menu does not take the conversation
    back from the person."""
    chat = ChatClient(limited.engine)
    await chat.send("/start")
    assert "Здравствуйте" in chat.text
    await with_person(limited, utcnow())
    before = len(await transcript(limited))

    typed = ["Здравствуйте, у меня вопрос про сертификат", "Мои заявки", "да"]
    start = utcnow()
    for i, text in enumerate(typed * 3):  # fast enough to be a flood: still no word
        assert await chat.send(text, time=start + timedelta(seconds=i * 0.1)) == []
    rows = (await transcript(limited))[before:]
    assert [r.direction for r in rows] == ["in"] * 9
    assert [r.text for r in rows] == typed * 3
    # typed words are words to the person, not a button's label
    assert [r.payload for r in rows] == [None] * 9

    later = start + timedelta(seconds=30)  # past the flood window
    await chat.send("/menu", time=later)
    assert "на связи специалист" in chat.text and "Выберите, что вас интересует" in chat.text
    button = chat.find("Контакты горячей линии")
    await chat.send(button.label, payload=button.payload, time=later + timedelta(seconds=5))
    assert "8 (8652) 34-99-07" in chat.text
    assert await chat.send("А когда ответят?", time=later + timedelta(seconds=10)) == []

    await with_person(limited, None)
    await chat.send("/menu", time=later + timedelta(seconds=40))
    assert "на связи специалист" not in chat.text
    assert "Выберите, что вас интересует" in chat.text
