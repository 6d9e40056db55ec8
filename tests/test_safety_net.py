"""A bug in a handler as a parent meets it: a short apology with the way back to the
menu, nothing of the failed message half-written, the error logged with a reference
id and no personal data, and the conversation going on as if the message had not
been sent. Through the engine, the real Telegram adapter and the terminal process.

The bug is a real handler wrapped so that it does its work (writes rows, moves the
step) and then raises, once; its exception message quotes what the parent typed, as
a real one (a ValueError from a parser) often does.
"""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select, update

from handlers.core import Context, Incoming
from storage.models import Child, ConversationState, EnrollmentRequest, TranscriptEntry, User
from tests.chat import ChatClient
from tests.cli import LiveProcess, write_config
from tests.enrollment import full_request, program
from tests.messengers import Running, TelegramParent

APOLOGY = "Извините, у меня что-то сломалось, и это сообщение я не обработал."
REF = re.compile(r"код ошибки: ([0-9a-f]{8})")
PHONE = "+7 912 345-67-89"
CHILD = "Петрова Анна Игоревна"


def fails_once(handler):
    """`handler` with a bug: the first time it runs it does all its work and then raises."""
    failed: list[str] = []

    async def buggy(incoming: Incoming, ctx: Context) -> None:
        await handler(incoming, ctx)
        if not failed:
            failed.append(incoming.text)
            raise ValueError(f"cannot go on with {incoming.text!r} for {ctx.data!r}")

    buggy.failed = failed  # type: ignore[attr-defined]
    return buggy


async def conversation(app, channel: str, platform_user_id: str) -> tuple[str | None, dict]:
    async with app.db.session() as session:
        user = await session.scalar(
            select(User).where(User.channel == channel, User.platform_user_id == platform_user_id)
        )
        row = await session.get(ConversationState, user.id)
        return row.step, row.data


async def count(app, model) -> int:
    async with app.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


def reference(text: str) -> str:
    found = REF.search(text)
    assert found, text
    return found[1]


def assert_logged_without_personal_data(caplog, ref: str, *typed: str) -> None:
    """The failure is logged once with its reference id; nothing the parent typed is in
    any log record (message, arguments or traceback)."""
    failures = [r for r in caplog.records if f"ref {ref}" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert failures[0].levelno == logging.ERROR
    assert "ValueError" in failures[0].getMessage()
    for record in caplog.records:
        logged = " ".join([record.getMessage(), record.exc_text or "", str(record.args)])
        for value in typed:
            assert value not in logged, (value, record.getMessage())


async def test_a_failing_submit_leaves_no_request_and_the_next_press_sends_it(
    chat: ChatClient, app, caplog
):
    caplog.set_level(logging.INFO)
    target = await program(app, "900000")
    await chat.send("/start")
    await full_request(chat, target.id, phone=PHONE, name=CHILD)
    send_button = chat.find("Отправить заявку")
    before = await conversation(app, "test", chat.user_id)
    app.router.buttons["req"] = buggy = fails_once(app.router.buttons["req"])

    await chat.press("Отправить заявку")

    assert buggy.failed, "the bug did not run"
    (apology,) = chat.replies
    assert apology.text.startswith(APOLOGY)
    assert chat.labels == ["В меню"] and chat.buttons[0].payload == "menu"
    ref = reference(apology.text)
    assert_logged_without_personal_data(caplog, ref, PHONE, "912 345", CHILD, "Петрова")
    # The request the handler had written is gone with the failed message; the parent
    # is where they were, on the confirmation screen.
    assert await count(app, EnrollmentRequest) == 0
    assert await conversation(app, "test", chat.user_id) == before
    async with app.db.session() as session:
        last_in = await session.scalar(
            select(TranscriptEntry)
            .where(TranscriptEntry.direction == "in")
            .order_by(TranscriptEntry.id.desc())
        )
        assert last_in.payload == send_button.payload  # the message itself is kept
        assert await session.scalar(
            select(func.count()).where(TranscriptEntry.status == "pending")
        ) == len(chat.history)  # the "test" channel never sends: every answer is there once

    # The same button on the confirmation message, pressed again, now works.
    await chat.send(send_button.label, payload=send_button.payload)
    assert "отправлена" in chat.text and "Статус: новая" in chat.text
    async with app.db.session() as session:
        (stored,) = (await session.scalars(select(EnrollmentRequest))).all()
        assert stored.phone == PHONE
    assert await conversation(app, "test", chat.user_id) != before


async def test_a_failing_step_leaves_no_child_and_the_same_answer_then_works(
    chat: ChatClient, app, caplog
):
    caplog.set_level(logging.INFO)
    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")
    await chat.send(CHILD)
    await chat.send("05.03.2014")
    assert "Номер сертификата" in chat.text
    before = await conversation(app, "test", chat.user_id)
    assert before[0] == "child:cert"
    app.router.steps["child:cert"] = fails_once(app.router.steps["child:cert"])

    await chat.send("2600 1234 5678")

    (apology,) = chat.replies
    assert apology.text.startswith(APOLOGY) and chat.labels == ["В меню"]
    assert_logged_without_personal_data(
        caplog, reference(apology.text), "260012345678", "2600 1234", CHILD, "Петрова"
    )
    assert await count(app, Child) == 0  # written by the handler, rolled back
    assert await conversation(app, "test", chat.user_id) == before

    await chat.send("2600 1234 5678")
    assert f"Сохранил: {CHILD}." in chat.text
    async with app.db.session() as session:
        (child,) = (await session.scalars(select(Child))).all()
        assert child.certificate_number == "260012345678"
    assert (await conversation(app, "test", chat.user_id))[0] is None


async def test_a_failure_in_telegram_is_answered_and_the_chat_goes_on(
    running: Running, fake_telegram, caplog
):
    caplog.set_level(logging.INFO)
    app = running.app
    parent = TelegramParent(running, fake_telegram, 7101)
    other = TelegramParent(running, fake_telegram, 7102)
    await parent.send("/start")
    await parent.press("Мои дети и данные")
    await parent.press("Добавить ребёнка")
    await parent.press("Согласен(на)")
    assert "Напишите фамилию, имя и отчество ребёнка" in parent.text
    before = await conversation(app, "telegram", "7101")
    app.router.steps["child:name"] = fails_once(app.router.steps["child:name"])

    await parent.send(CHILD)

    (apology,) = parent.last
    assert apology.text.startswith(APOLOGY)
    assert parent.labels == ["В меню"]
    assert_logged_without_personal_data(caplog, reference(apology.text), CHILD, "Петрова")
    assert await conversation(app, "telegram", "7101") == before
    # Everyone else is served as usual, and so is the parent's next message.
    await other.send("/start")
    assert "Здравствуйте" in other.text
    await parent.send(CHILD)
    assert f"Дата рождения ребёнка ({CHILD})" in parent.text
    answered = len(fake_telegram.answered)
    await parent.press("В меню")
    assert "Выберите, что вас интересует" in parent.text
    assert len(fake_telegram.answered) == answered + 1  # the button's spinner stopped
    assert await count(app, Child) == 0


async def test_a_failure_in_a_button_in_telegram_still_answers_the_press(
    running: Running, fake_telegram
):
    app = running.app
    parent = TelegramParent(running, fake_telegram, 7103)
    await parent.send("/start")
    app.router.buttons["contacts"] = fails_once(app.router.buttons["contacts"])
    answered = len(fake_telegram.answered)

    await parent.press("Контакты горячей линии")

    (apology,) = parent.last
    assert apology.text.startswith(APOLOGY) and parent.labels == ["В меню"]
    assert len(fake_telegram.answered) == answered + 1
    await parent.press("Контакты горячей линии")
    assert "8 (8652) 34-99-07" in parent.text


@pytest.fixture
def console_config(tmp_path, database):
    return write_config(tmp_path, database)


async def test_the_terminal_apologises_for_a_corrupt_conversation_and_keeps_running(
    tmp_path, database, console_config, settings
):
    """A conversation state the handlers cannot read (a step whose draft is not the
    shape the step expects, as data left by another version of the bot would be)."""
    from bot.app import build_app

    env = {"NAVBOT_CONFIG": str(console_config)}
    bot = LiveProcess("console", cwd=tmp_path, env=env)
    try:
        bot.send("/start")
        bot.expect("Мой муниципалитет")

        app = build_app(settings)
        try:
            async with app.db.session() as session:
                local = User.channel == "console", User.platform_user_id == "local"
                user_id = await session.scalar(select(User.id).where(*local))
                await session.execute(
                    update(ConversationState)
                    .where(ConversationState.user_id == user_id)
                    .values(step="child:name", data={"child_draft": "Петрова"})
                )

            bot.send(CHILD)
            shown = bot.expect("[1] В меню")
            assert APOLOGY in shown
            ref = reference(shown)
            assert await conversation(app, "console", "local") == (
                "child:name",
                {"child_draft": "Петрова"},
            )
            bot.send("1")
            assert "Выберите, что вас интересует" in bot.expect("Выберите, что вас интересует")
            bot.send("/help")
            bot.expect("/menu")
            assert bot.close() == 0
        finally:
            await app.close()
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    logged = [line for line in bot.output.splitlines() if f"ref {ref}" in line]
    assert len(logged) == 1 and "ERROR" in logged[0] and "TypeError" in logged[0], bot.output
    assert "Петрова" not in logged[0]
