"""/delete_my_data: children, requests, consent, transcript, typed questions and name gone,
checked in every table of the database; an anonymised audit entry stays. Every table is
declared in the personal-data registry; the retention purge goes through it too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from storage.models import (
    AuditEntry,
    Base,
    FaqUnanswered,
    InboxEntry,
    TranscriptEntry,
    User,
    utcnow,
)
from storage.personal_data import NONE, REGISTRY, erase_older_than, holding
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
        "questions": 0,
        "handoffs": 0,
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


QUESTION = (
    "Здравствуйте, я Кузнецова Светлана Игоревна, телефон 8 913 555-44-33, "
    "СНИЛС 112-233-445 95, перезвоните насчёт ипотеки"
)


async def test_erasure_leaves_no_trace_of_questions_children_or_requests(chat: ChatClient, app):
    """A parent asks a question with their name and phone, adds a child, sends a request,
    then erases their data: no column of any table holds any of it afterwards."""
    await chat.send("/start", user_name="Светлана Кузнецова")
    await chat.send(QUESTION)
    assert "Кузнецова Светлана" in await database_text(app)
    async with app.db.session() as session:
        (stored,) = (await session.scalars(select(FaqUnanswered.question))).all()
    assert "913 555-44-33" in stored  # kept for staff until the parent erases it
    await leave_a_request(chat, app)
    async with app.db.session() as session:
        user = await session.scalar(select(User))
        # a message of this parent still waiting in the inbox, and one of another parent
        session.add_all(
            [
                InboxEntry(
                    channel="test",
                    update_id="old-1",
                    platform_user_id=user.platform_user_id,
                    incoming={"text": QUESTION},
                    created_at=utcnow() - timedelta(minutes=1),
                ),
                InboxEntry(
                    channel="test",
                    update_id="other-1",
                    platform_user_id="someone-else",
                    incoming={"text": "Другой родитель"},
                ),
            ]
        )

    await chat.send("/delete_my_data")
    await chat.press("Да, удалить всё")
    assert "ваши данные удалены (1 ребёнок, 1 заявка)" in chat.text

    after = await database_text(app)
    traces = ("Кузнецова", "Светлана", "555-44-33", "5554433", "112-233-445", "ипотек",
              PARENT, "Иванова", "Мария", PHONE_TAIL, CERTIFICATE, COMMENT)  # fmt: skip
    left = [value for value in traces if value in after]
    assert not left, f"personal data left in the database: {left}\n{after}"
    assert "Другой родитель" in after  # another parent's waiting message is theirs
    async with app.db.session() as session:
        trace = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "personal_data_deleted")
        )
    assert trace.detail["questions"] == 1


async def test_typed_delete_command_with_yes_still_asks_first(chat: ChatClient, app):
    await leave_a_request(chat, app)
    await chat.send("/delete_my_data yes")
    assert "Удалить все ваши данные?" in chat.text
    assert CHILD in await database_text(app)


def test_every_table_is_declared_in_the_personal_data_registry():
    declared = {item.table for item in REGISTRY}
    tables = set(Base.metadata.tables)
    missing = sorted(tables - declared)
    assert not missing, (
        f"tables missing from storage/personal_data.py REGISTRY: {missing}; declare what "
        "personal data each holds and how it is erased"
    )
    assert not declared - tables, f"registry names tables that do not exist: {declared - tables}"
    # A table that refers to a parent holds their data: erasing must reach it.
    for table in Base.metadata.sorted_tables:
        refers = any(fk.column.table.name == "users" for fk in table.foreign_keys) or (
            "platform_user_id" in table.c and table.name != "users"
        )
        if refers:
            assert holding(table.name).erase != NONE, f"{table.name} refers to a parent"


async def test_retention_purge_erases_rows_older_than_a_date(chat: ChatClient, app):
    await chat.send("/start")
    await chat.send(QUESTION)
    async with app.db.session() as session:
        old = utcnow() - timedelta(days=400)
        for row in (await session.scalars(select(TranscriptEntry))).all()[:2]:
            row.created_at = old
        question = await session.scalar(select(FaqUnanswered))
        question.created_at = old
    async with app.db.session() as session:
        total = await session.scalar(select(func.count()).select_from(TranscriptEntry))
        counts = await erase_older_than(session, utcnow() - timedelta(days=365))
    assert counts["transcript"] == 2 and counts["faq_unanswered"] == 1
    async with app.db.session() as session:
        kept = await session.scalar(select(func.count()).select_from(TranscriptEntry))
        questions = await session.scalar(select(func.count()).select_from(FaqUnanswered))
    assert (kept, questions) == (total - 2, 0)
