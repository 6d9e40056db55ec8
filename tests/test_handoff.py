"""Handoff to a person: a parent asks for one (or the FAQ sends them), the queue in the
console over HTTP, taking (two operators at once: one wins, the other is told), the
reply through the outbox, the ticker's return and silence rules, the expected answer
time outside working hours (fixed clock), restarts and erasure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import build_app
from bot.config import Settings
from bot.scheduler import handoff_rules
from storage import handoffs
from storage.models import Event, Handoff, TranscriptEntry, User, utcnow
from storage.staff import add_staff
from tests.chat import ChatClient
from tests.staff import OPERATOR_PASSWORD, Served, StaffClient, create_accounts

PHONE = "+7 928 614-27-53"


@pytest.fixture
async def console(app):
    await create_accounts(app)
    async with app.db.session() as session:
        await add_staff(session, "oper2", OPERATOR_PASSWORD, "operator")
    served = Served(app)
    await served.start()
    yield served
    await served.stop()


async def signed_in(console, login: str) -> StaffClient:
    client = StaffClient(console.base)
    status, _ = await client.signin(login, OPERATOR_PASSWORD)
    assert status == 303
    return client


@pytest.fixture
async def operator(console):
    client = await signed_in(console, "oper")
    yield client
    await client.close()


async def user_of(app, platform_id: str = "1001") -> User:
    async with app.db.session() as session:
        return await session.scalar(select(User).where(User.platform_user_id == platform_id))


async def open_of(app, user_id: int) -> Handoff | None:
    async with app.db.session() as session:
        return await handoffs.open_handoff_of(session, user_id)


async def out_rows(app, user_id: int) -> list[TranscriptEntry]:
    async with app.db.session() as session:
        return list(
            await session.scalars(
                select(TranscriptEntry)
                .where(TranscriptEntry.user_id == user_id, TranscriptEntry.direction == "out")
                .order_by(TranscriptEntry.id)
            )
        )


async def events(app) -> list[tuple[str, str | None]]:
    async with app.db.session() as session:
        rows = await session.scalars(select(Event).order_by(Event.id))
        return [(e.kind, e.detail) for e in rows if e.kind.startswith("handoff")]


async def test_a_parent_asks_an_operator_takes_answers_and_closes(app, console, operator):
    chat = ChatClient(app.engine)
    await chat.send("/start")
    await chat.press("Позвать специалиста")
    assert "передал разговор специалисту" in chat.text
    user = await user_of(app)
    assert user.with_person_since is not None
    await chat.send(f"Не могу войти в Навигатор, мой телефон {PHONE}")
    assert chat.replies == []  # for the person, not for the bot

    status, body = await operator.get("/queue")
    assert status == 200 and "Очередь к специалисту" in body
    assert "Попросил специалиста" in body and "Не могу войти в Навигатор" in body
    assert "614-27-53" not in body and "+7 ••• •••-••-53" in body  # masked
    handoff = await open_of(app, user.id)
    assert handoff is not None and handoff.state == "waiting"

    status, _ = await operator.post(f"/handoffs/{handoff.id}/take")
    assert status == 303 and operator.last.headers["Location"].startswith(
        f"/conversations/{user.id}"
    )
    status, page = await operator.get(f"/conversations/{user.id}")
    assert "Ответ родителю" in page and "Приветствие" in page  # the canned replies
    assert "614-27-53" not in page

    status, _ = await operator.post(
        f"/handoffs/{handoff.id}/reply",
        {
            "text": "Здравствуйте! Сбросьте пароль по ссылке ниже.",
            "link_url": "https://р26.навигатор.дети/",
            "link_label": "Открыть Навигатор",
            "menu": "1",
        },
    )
    assert status == 303
    sent = (await out_rows(app, user.id))[-1]
    assert sent.text == "Здравствуйте! Сбросьте пароль по ссылке ниже."
    assert (sent.kind, sent.author) == ("operator", "staff:oper")
    labels = [button[0] for row in sent.buttons["rows"] for button in row]
    assert labels[0] == "Открыть Навигатор" and "Позвать специалиста" in labels
    assert "Мои заявки" in labels  # the bot's main menu
    status, page = await operator.get(f"/conversations/{user.id}")
    assert "Сотрудник oper" in page

    # The parent's next message is not answered by the bot and reaches the operator live.
    after = sent.id
    assert await chat.send("Спасибо, а пароль куда придёт?") == []
    async with operator.http.get(
        f"{console.base}/conversations/{user.id}/live.json", params={"after": str(after)}
    ) as response:
        data = await response.json()
    assert [m["text"] for m in data["messages"]] == ["Спасибо, а пароль куда придёт?"]
    assert data["messages"][0]["author"] == "Родитель"
    async with app.db.session() as session:
        row = await session.get(Handoff, handoff.id)
        assert row.last_parent_message_at is not None and row.first_reply_at is not None

    # A menu button the operator sent works for the parent, the conversation stays.
    payload = next(b[1] for row in sent.buttons["rows"] for b in row if b[0] == "Мои заявки")
    await chat.send("Мои заявки", payload=payload)
    assert chat.replies
    assert (await open_of(app, user.id)) is not None

    status, _ = await operator.post(f"/handoffs/{handoff.id}/close")
    assert status == 303 and "notice=closed" in operator.last.headers["Location"]
    assert (await open_of(app, user.id)) is None
    assert (await user_of(app)).with_person_since is None
    assert "Специалист завершил разговор" in (await out_rows(app, user.id))[-1].text
    await chat.send("как получить сертификат")
    assert chat.replies  # the bot answers again
    assert await events(app) == [("handoff", "asked"), ("handoff_closed", "operator")]
    _, audit = await (await signed_in_admin(console)).get("/audit")
    assert "Взят разговор из очереди" in audit and "Разговор со специалистом завершён" in audit


async def signed_in_admin(console) -> StaffClient:
    from tests.staff import ADMIN_PASSWORD

    client = StaffClient(console.base)
    await client.signin("admin", ADMIN_PASSWORD)
    return client


async def test_two_operators_taking_at_once_one_wins_the_other_is_told(app, console):
    first, second = await signed_in(console, "oper"), await signed_in(console, "oper2")
    try:
        for n in range(5):
            chat = ChatClient(app.engine, user_id=f"20{n}")
            await chat.send("/operator")
            user = await user_of(app, f"20{n}")
            handoff = await open_of(app, user.id)
            await first.get("/queue")
            await second.get("/queue")
            path = f"/handoffs/{handoff.id}/take"
            results = await asyncio.gather(first.post(path), second.post(path))
            statuses = sorted(status for status, _ in results)
            assert statuses == [303, 409], statuses
            lost = next(body for status, body in results if status == 409)
            winner = (await open_of(app, user.id)).taken_by
            assert f"Этот разговор уже взял {winner}" in lost
            # the loser may not answer in it either
            loser = second if winner == "oper" else first
            status, _ = await loser.post(f"/handoffs/{handoff.id}/reply", {"text": "Я тоже тут"})
            assert status == 303 and "problem=other" in loser.last.headers["Location"]
            assert not [r for r in await out_rows(app, user.id) if r.text == "Я тоже тут"]
    finally:
        await first.close()
        await second.close()


async def test_taking_across_processes_one_wins(settings, app):
    """Two apps with their own connection pools (as two processes) take the same
    conversations at the same moment: always exactly one wins."""
    other = build_app(settings)
    await other.start()
    try:
        for n in range(10):
            chat = ChatClient(app.engine, user_id=f"30{n}")
            await chat.send("/operator")
            handoff = await open_of(app, (await user_of(app, f"30{n}")).id)

            async def take(application, handoff_id, login):
                async with application.db.session() as session:
                    return (await handoffs.take(session, handoff_id, login)).outcome

            outcomes = await asyncio.gather(
                take(app, handoff.id, "oper"), take(other, handoff.id, "oper2")
            )
            assert sorted(outcomes) == sorted([handoffs.TAKEN, handoffs.TAKEN_BY_OTHER])
    finally:
        await other.close()


async def test_the_queue_lists_the_newest_waiting_first_and_survives_a_restart(settings, app):
    for n in range(3):
        chat = ChatClient(app.engine, user_id=f"40{n}")
        await chat.send("/start")
        await chat.press("Позвать специалиста")
    async with app.db.session() as session:
        waiting, taken = await handoffs.queue(session)
    assert [row.user.platform_user_id for row in waiting] == ["402", "401", "400"]
    assert taken == []
    await app.close()

    restarted = build_app(settings)
    await restarted.start()
    try:
        async with restarted.db.session() as session:
            waiting, _ = await handoffs.queue(session)
            assert [row.user.platform_user_id for row in waiting] == ["402", "401", "400"]
            taking = await handoffs.take(session, waiting[-1].handoff.id, "oper")
            assert taking.outcome == handoffs.TAKEN
        chat = ChatClient(restarted.engine, user_id="400")
        assert await chat.send("Я всё ещё жду") == []
    finally:
        await restarted.close()


async def test_unanswered_goes_back_to_the_queue_and_silence_closes(app):
    chat = ChatClient(app.engine)
    await chat.send("/operator")
    user = await user_of(app)
    handoff = await open_of(app, user.id)
    start = utcnow()
    async with app.db.session() as session:
        await handoffs.take(session, handoff.id, "oper", now=start)
    after = app.settings.handoff.return_after_minutes
    silence = app.settings.handoff.silence_close_minutes

    await handoff_rules(app, start + timedelta(minutes=after - 1))
    assert (await open_of(app, user.id)).state == "taken"
    await handoff_rules(app, start + timedelta(minutes=after + 1))
    back = await open_of(app, user.id)
    assert (back.state, back.taken_by, back.returned) == ("waiting", None, 1)

    # Taken again and answered: it stays taken while the parent is quiet...
    moment = start + timedelta(minutes=after + 2)
    async with app.db.session() as session:
        await handoffs.take(session, handoff.id, "oper2", now=moment)
        row = await session.get(Handoff, handoff.id)
        await handoffs.operator_replied(session, row, now=moment)
    await handoff_rules(app, moment + timedelta(minutes=after + 1))
    assert (await open_of(app, user.id)).state == "taken"
    # ...and is closed after the silence: the parent is told, the bot answers again.
    await handoff_rules(app, moment + timedelta(minutes=silence + 1))
    assert (await open_of(app, user.id)) is None
    assert (await user_of(app)).with_person_since is None
    assert "давно не было новых сообщений" in (await out_rows(app, user.id))[-1].text
    await chat.send("/menu")
    assert "на связи специалист" not in chat.text
    assert await events(app) == [("handoff", "asked"), ("handoff_closed", "silence")]


async def test_the_faq_hands_over_unknown_questions_on_request_and_complaints_at_once(app):
    chat = ChatClient(app.engine)
    await chat.send("как варить борщ")
    assert "нет готового ответа" in chat.text and "8 (8652) 34-99-07" in chat.text
    user = await user_of(app)
    assert await open_of(app, user.id) is None  # only offered
    await chat.press("Позвать специалиста")
    assert "передал ваш вопрос специалисту" in chat.text
    handoff = await open_of(app, user.id)
    assert (handoff.reason, handoff.question) == ("faq_unknown", "как варить борщ")

    other = ChatClient(app.engine, user_id="1002")
    await other.send("хочу пожаловаться на тренера, он кричит на детей")
    assert "живым человеком" in other.text and "передал его специалисту" in other.text
    handoff = await open_of(app, (await user_of(app, "1002")).id)
    assert handoff.reason == "faq_person" and "пожаловаться" in handoff.question
    assert await other.send("Это очень срочно") == []
    await other.send("/operator")
    assert "уже в очереди" in other.text


@pytest.mark.parametrize(
    ("region", "moment", "expected"),
    [
        # Friday 20:00 in Moscow: Monday morning
        (
            "stavropol",
            datetime(2026, 12, 4, 17, 0, tzinfo=UTC),
            "в понедельник, 7 декабря, с 9:00 по московскому времени",
        ),
        # Thursday 19:00 in Moscow: tomorrow
        (
            "stavropol",
            datetime(2026, 12, 3, 16, 0, tzinfo=UTC),
            "завтра, 4 декабря, с 9:00 по московскому времени",
        ),
        # 06:00 in Moscow: today
        (
            "stavropol",
            datetime(2026, 12, 3, 3, 0, tzinfo=UTC),
            "сегодня с 9:00 по московскому времени",
        ),
        # The New Year holidays: the first working day after them
        (
            "stavropol",
            datetime(2026, 12, 30, 17, 0, tzinfo=UTC),
            "в понедельник, 11 января, с 9:00 по московскому времени",
        ),
        # 15:30 in Moscow is 19:30 in Tomsk: the Tomsk centre has closed
        (
            "tomsk",
            datetime(2026, 12, 4, 12, 30, tzinfo=UTC),
            "в понедельник, 7 декабря, с 9:00 по томскому времени",
        ),
    ],
)
async def test_outside_working_hours_the_parent_is_told_when_in_the_regions_time(
    settings, region, moment, expected
):
    configured = Settings(
        bot={**settings.bot.model_dump(), "region": region},
        database=settings.database.model_dump(),
    )
    application = build_app(configured)
    await application.start()
    application.services.clock = lambda: moment
    try:
        chat = ChatClient(application.engine)
        await chat.send("/operator")
        assert f"Сейчас нерабочее время. Специалист ответит {expected}." in chat.text
    finally:
        await application.close()


async def test_in_working_hours_the_parent_is_told_it_is_soon(app):
    app.services.clock = lambda: datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # 13:00 Moscow
    chat = ChatClient(app.engine)
    await chat.send("/operator")
    assert "в течение нескольких минут" in chat.text and "нерабочее" not in chat.text


async def test_erasing_the_parents_data_ends_the_handoff(app):
    chat = ChatClient(app.engine)
    await chat.send("/start")
    await chat.press("Позвать специалиста")
    await chat.send("Моя дочь Иванова Мария, данные в реестре неверные")
    user = await user_of(app)
    await chat.send("/delete_my_data")
    await chat.press("Да, удалить всё")
    assert await open_of(app, user.id) is None
    async with app.db.session() as session:
        assert not list(await session.scalars(select(Handoff)))
    assert (await user_of(app)).with_person_since is None
    await chat.send("как получить сертификат")
    assert chat.replies  # the bot answers again
