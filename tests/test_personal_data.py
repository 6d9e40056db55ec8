"""/delete_my_data: children, requests, consent, transcript and name gone, checked in every
table of the database; an anonymised audit entry stays."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import AuditEntry, Base, TranscriptEntry, User
from tests.chat import ChatClient
from tests.enrollment import born_years_ago, program

PARENT = "Анна Петровна Иванова"
CHILD = "Иванова Мария Сергеевна"
PHONE_TAIL = "345-67-89"
CERTIFICATE = "2600112233"
COMMENT = "Звоните после 18:00, спросить маму"


async def leave_a_request(chat: ChatClient, app) -> None:
    target = await program(app, "900000")
    await chat.send("/start", user_name=PARENT)
    await chat.send("Записаться", payload=f"req:new:{target.id}")
    await chat.press("Согласен(на)")
    await chat.send(CHILD)
    await chat.send(born_years_ago(12).strftime("%d.%m.%Y"))
    await chat.send(CERTIFICATE)
    await chat.send("+7 (912) 345-67-89")
    await chat.send(COMMENT)
    await chat.press("Отправить заявку")
    assert "Заявка №1 отправлена" in chat.text


async def database_text(app) -> str:
    """Every value of every row of every table, as text."""
    chunks = []
    async with app.db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                chunks.append(f"{table.name}: {[str(value) for value in row]}")
    return "\n".join(chunks)


async def test_deleting_my_data_leaves_no_personal_field_behind(chat: ChatClient, app):
    await leave_a_request(chat, app)
    before = await database_text(app)
    birth = born_years_ago(12)
    personal = (PARENT, "Иванова", "Мария", PHONE_TAIL, CERTIFICATE, COMMENT,
                birth.isoformat(), birth.strftime("%d.%m.%Y"))  # fmt: skip
    assert all(value in before for value in personal)

    await chat.send("/delete_my_data")
    assert "Удалить все ваши данные?" in chat.text
    async with app.db.session() as session:
        messages = await session.scalar(select(func.count()).select_from(TranscriptEntry))
    await chat.press("Да, удалить всё")
    assert "Готово: ваши данные удалены (1 ребёнок, 1 заявка)" in chat.text
    assert "согласие отозвано" in chat.text

    after = await database_text(app)
    left = [value for value in personal if value in after]
    assert not left, f"personal data left in the database: {left}\n{after}"
    for table in ("children:", "enrollment_requests:", "consents:"):
        assert table not in after
    async with app.db.session() as session:
        user = await session.scalar(select(User))
        (trace,) = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "personal_data_deleted")
            )
        ).all()
    assert user.name == ""
    assert trace.detail == {
        "requests": 1,
        "children": 1,
        "consents": 1,
        "messages": messages + 1,  # with the press of «Да, удалить всё»
    }
    assert trace.request_id is None

    # The parent can go on: a new request asks for consent again.
    await chat.press("Мои дети и данные")
    assert "Вы пока не добавили ни одного ребёнка" in chat.text
    assert "Согласие на обработку персональных данных: не дано" in chat.text


async def test_deletion_asks_first_and_cancel_keeps_everything(chat: ChatClient, app):
    await leave_a_request(chat, app)
    await chat.press("В меню")
    await chat.press("Мои дети и данные")
    await chat.press("Удалить мои данные")
    assert "Это нельзя отменить" in chat.text
    await chat.press("Отменить")
    assert CHILD in await database_text(app)
