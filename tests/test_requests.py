"""Enrollment requests: submitted once however often it is tapped, one open request per
child and program, «Мои заявки» with cancel, and staff status changes reaching the parent."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.channels.console import CHANNEL, ConsoleChannel
from handlers.core import Incoming
from handlers.requests import normalise_phone
from storage.models import AuditEntry, EnrollmentRequest, TranscriptEntry
from storage.requests import StatusChangeError
from tests.chat import ChatClient
from tests.enrollment import born_years_ago, full_request, program


async def requests(app) -> list[EnrollmentRequest]:
    async with app.db.session() as session:
        return list((await session.scalars(select(EnrollmentRequest))).all())


async def test_request_from_the_search_results(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.press("Слово для поиска")
    await chat.send("радиоэлектроник")
    await chat.press("Записаться на №1")
    await chat.press("Согласен(на)")
    assert "Сначала добавим ребёнка" in chat.text
    await chat.send("Сидоров Павел")
    await chat.send("01.09.2013")
    await chat.press("Пропустить")
    assert "Сохранил: Сидоров Павел" in chat.text
    assert "Телефон для связи" in chat.text
    await chat.send("8 (912) 345-67-89")
    await chat.send("Звоните после 18:00")
    assert "Телефон: +7 912 345-67-89" in chat.text
    assert "Комментарий: Звоните после 18:00" in chat.text
    await chat.press("Отправить заявку")
    assert "Заявка №1 отправлена" in chat.text and "Статус: новая" in chat.text
    (stored,) = await requests(app)
    assert (stored.phone, stored.comment, stored.status) == (
        "+7 912 345-67-89",
        "Звоните после 18:00",
        "new",
    )


async def test_malformed_phones_are_refused_and_the_request_kept(chat: ChatClient, app):
    target = await program(app, "900000")
    await chat.send("/start")
    await chat.send("Записаться", payload=f"req:new:{target.id}")
    await chat.press("Согласен(на)")
    await chat.send("Иванова Мария")
    await chat.send("05.03.2014")
    await chat.press("Пропустить")
    for wrong in (
        "12345",
        "+7 (912) 345-67",
        "+1 212 555 0100",
        "8 912 ABC 67 89",
        "89123456789012",
    ):
        await chat.send(wrong)
        assert "Не похоже на российский номер" in chat.text, wrong
    await chat.send("+7-912-345-67-89")
    assert "Комментарий для организации" in chat.text
    await chat.press("Без комментария")
    assert "Ребёнок: Иванова Мария" in chat.text and "Телефон: +7 912 345-67-89" in chat.text


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("+7 912 345-67-89", "+7 912 345-67-89"), ("89123456789", "+7 912 345-67-89"),
     ("8 (8652) 34-99-07", "+7 865 234-99-07"), ("+7 (495) 123-45-67", "+7 495 123-45-67"),
     ("912 345 67 89", "+7 912 345-67-89"), ("+7 701 123 4567", None), ("", None),
     ("123", None)],
)  # fmt: skip
def test_russian_phone_numbers(typed, expected):
    assert normalise_phone(typed) == expected


async def test_a_request_submitted_twice_makes_one(chat: ChatClient, app):
    target = await program(app, "900000")
    await chat.send("/start")
    await full_request(chat, target.id)
    send = chat.find("Отправить заявку")
    await chat.send(send.label, payload=send.payload)
    assert "Заявка №1 отправлена" in chat.text
    await chat.send(send.label, payload=send.payload)  # a double tap
    assert "Эта заявка уже отправлена: №1" in chat.text
    assert len(await requests(app)) == 1

    # The same child, the same program, a fresh confirmation screen: still one open request.
    await chat.send("Записаться", payload=f"req:new:{target.id}")
    await chat.press("Иванова Мария Сергеевна")
    assert "уже есть открытая заявка №1" in chat.text
    assert len(await requests(app)) == 1


async def test_a_redelivered_update_makes_one_request(chat: ChatClient, app):
    target = await program(app, "900000")
    await chat.send("/start")
    await full_request(chat, target.id)
    send = chat.find("Отправить заявку")
    update = Incoming("test", chat.user_id, chat.user_id, send.label, send.payload, "tap-1")
    first = await app.engine.handle(update)
    again = await app.engine.handle(update)
    assert "Заявка №1 отправлена" in first[0].text
    assert again == []
    assert len(await requests(app)) == 1


async def test_the_database_refuses_a_second_open_request(chat: ChatClient, app):
    target = await program(app, "900000")
    await chat.send("/start")
    await full_request(chat, target.id)
    await chat.press("Отправить заявку")
    (first,) = await requests(app)
    copy = {c: getattr(first, c) for c in ("user_id", "child_id", "program_id", "phone", "comment")}
    with pytest.raises(IntegrityError):
        async with app.db.session() as session:
            session.add(EnrollmentRequest(**copy, status="new", reason="", submit_key="other"))
    # Once the first is closed, a new request for the same program is allowed.
    await app.services.request_status.change(first.id, "rejected", "Группа набрана")
    async with app.db.session() as session:
        session.add(EnrollmentRequest(**copy, status="new", reason="", submit_key="other"))
    assert len(await requests(app)) == 2


async def test_program_age_range_is_checked_on_the_day_of_the_request(chat: ChatClient, app):
    target = await program(app, "900000")
    assert (target.age_from, target.age_to) == (10, 15)
    await chat.send("/start")
    await chat.send("Записаться", payload=f"req:new:{target.id}")
    await chat.press("Согласен(на)")
    await chat.send("Иванов Пётр")
    await chat.send(born_years_ago(6).strftime("%d.%m.%Y"))
    await chat.press("Пропустить")
    assert "Программа для детей 10–15 лет, а Иванову Петру сейчас 6 лет" in chat.text
    assert await requests(app) == []


async def test_my_requests_lists_statuses_and_cancels_an_open_one(chat: ChatClient, app):
    first, second = await program(app, "900000"), await program(app, "900033")
    await chat.send("/start")
    await full_request(chat, first.id)
    await chat.press("Отправить заявку")
    await full_request(chat, second.id)
    await chat.press("Отправить заявку")
    await app.services.request_status.change(1, "rejected", "Группа уже набрана")

    await chat.send("/menu")
    await chat.press("Мои заявки")
    assert "У вас 2 заявки:" in chat.text
    assert "№1 от" in chat.text and "отклонена" in chat.text
    assert "Причина: Группа уже набрана" in chat.text
    assert "№2 от" in chat.text and "новая" in chat.text
    assert "Отменить заявку №1" not in chat.labels
    await chat.press("Отменить заявку №2")
    assert "Отменить заявку №2?" in chat.text
    await chat.press("Да, отменить")
    assert "Заявка №2 отменена" in chat.text and "отменена вами" in chat.text
    statuses = {r.id: r.status for r in await requests(app)}
    assert statuses == {1: "rejected", 2: "cancelled"}
    with pytest.raises(StatusChangeError, match="cannot become accepted"):
        await app.services.request_status.change(2, "accepted")


async def test_status_change_by_staff_reaches_the_parent_in_the_terminal(app):
    out = io.StringIO()
    ConsoleChannel(app.engine, app.delivery, stdin=io.StringIO(""), stdout=out)
    target = await program(app, "900000")
    chat = ChatClient(app.engine, channel=CHANNEL, user_id="local")
    await chat.send("/start")
    await full_request(chat, target.id, name="Иванова Мария")
    await chat.press("Отправить заявку")
    assert "Заявка №1 отправлена" in chat.text
    assert out.getvalue() == ""  # the chat client reads replies itself; only notices print

    with pytest.raises(StatusChangeError, match="needs a reason"):
        await app.services.request_status.change(1, "rejected")
    change = await app.services.request_status.change(1, "accepted")
    assert change.notified and (change.before, change.after) == ("new", "accepted")
    printed = out.getvalue()
    assert "Заявка №1 принята организацией.\nПрограмма: Юный радиоэлектроник" in printed
    assert "Ребёнок: Иванова Мария" in printed
    assert "[1] Мои заявки" in printed
    await app.services.request_status.change(1, "enrolled")
    assert "Иванова Мария зачислена на программу" in out.getvalue()

    async with app.db.session() as session:
        notes = (
            await session.scalars(
                select(TranscriptEntry).where(TranscriptEntry.text.contains("Заявка №1 принята"))
            )
        ).all()
        audit = (await session.scalars(select(AuditEntry.action))).all()
        total = await session.scalar(select(func.count()).select_from(EnrollmentRequest))
    assert [n.status for n in notes] == ["sent"]
    assert audit.count("request_status") == 2 and "request_created" in audit
    assert total == 1
