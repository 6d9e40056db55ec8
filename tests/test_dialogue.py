"""The dialogue core as a parent meets it: greeting, menu, buttons, steps, persistence."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.app import build_app
from storage.models import ConversationState, TranscriptEntry, User
from tests.chat import ChatClient


async def test_start_greets_and_shows_main_menu(chat: ChatClient):
    await chat.send("/start")
    assert "Здравствуйте" in chat.text
    assert "Ставропольском крае" in chat.text
    assert "Контакты горячей линии" in chat.labels
    assert "Мой муниципалитет" in chat.labels


async def test_help_lists_commands_and_hotline(chat: ChatClient):
    await chat.send("/help")
    assert "/menu" in chat.text and "/start" in chat.text
    assert "8 (8652) 34-99-07" in chat.text
    assert "https://р26.навигатор.дети/" in chat.text


async def test_contacts_show_the_regional_hotline(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Контакты горячей линии")
    assert "8 (8652) 34-99-07" in chat.text
    assert "rmc126@mail.ru" in chat.text


async def test_choose_municipality_by_pages_and_by_typed_name(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    assert "Страница 1 из 5" in chat.text
    await chat.press("Ещё")
    assert "Страница 2 из 5" in chat.text
    await chat.send("минводы")
    assert "Минераловодский городской округ" in chat.text
    async with app.db.session() as session:
        user = await session.scalar(select(User))
        assert user.municipality_id == "mineralovodsky"


async def test_typo_in_municipality_is_understood_and_nonsense_is_not(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await chat.send("Пятигорк")
    assert "Запомнил: город-курорт Пятигорск" in chat.text
    await chat.press("Мой муниципалитет")
    await chat.send("абракадабра")
    assert "Не нашёл муниципалитет «абракадабра»" in chat.text
    assert "Страница 1 из 5" in chat.text


async def test_typing_a_button_label_presses_it(chat: ChatClient):
    await chat.send("/start")
    await chat.send("контакты  горячей линии")
    assert "8 (8652) 34-99-07" in chat.text


async def test_unknown_text_and_command_lead_back_to_menu(chat: ChatClient):
    await chat.send("/nonsense")
    assert "не понял" in chat.text
    assert "Мой муниципалитет" in chat.labels
    await chat.send("", payload="obsolete:button")
    assert "Мой муниципалитет" in chat.labels


async def test_sticker_gets_a_friendly_text_only_answer(chat: ChatClient):
    await chat.send("", attachment="sticker")
    assert "только текстовые сообщения" in chat.text


async def test_redelivered_update_is_handled_once(app):
    from handlers.core import Incoming

    incoming = Incoming(channel="test", user_id="7", chat_id="7", text="/start", update_id="555")
    first = await app.engine.handle(incoming)
    second = await app.engine.handle(incoming)
    assert first and second == []
    async with app.db.session() as session:
        count = await session.scalar(select(func.count()).select_from(TranscriptEntry))
    assert count == 1 + len(first)


async def test_transcript_records_both_directions_with_buttons(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Контакты горячей линии")
    async with app.db.session() as session:
        rows = (await session.scalars(select(TranscriptEntry).order_by(TranscriptEntry.id))).all()
    assert [r.direction for r in rows] == ["in", "out", "out", "in", "out"]
    assert rows[3].payload == "contacts"
    assert ["Мой муниципалитет", "muni"] in [b for row in rows[2].buttons["rows"] for b in row]
    assert all(r.id == reply.transcript_id for r, reply in zip(rows[4:], chat.replies, strict=True))


async def test_step_survives_a_new_process_on_the_same_database(settings, chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await app.close()

    restarted = build_app(settings)
    await restarted.start()
    try:
        again = ChatClient(restarted.engine, user_id=chat.user_id)
        await again.send("Шпаковский")
        assert "Запомнил: Шпаковский муниципальный округ" in again.text
        async with restarted.db.session() as session:
            state = await session.scalar(select(ConversationState))
            assert state.step is None
    finally:
        await restarted.close()


async def test_two_users_do_not_share_state(app):
    first = ChatClient(app.engine, user_id="1")
    second = ChatClient(app.engine, user_id="2")
    await first.send("/start")
    await first.press("Мой муниципалитет")
    await second.send("Шпаковский")
    assert "Запомнил" not in second.text
    await first.send("Шпаковский")
    assert "Запомнил" in first.text


async def test_pressing_another_button_leaves_the_typed_input_step(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await chat.send("", payload="contacts")  # an older message's button
    await chat.send("Шпаковский")
    assert "Запомнил" not in chat.text


async def test_a_main_menu_label_typed_on_any_screen_opens_that_section(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Контакты горячей линии")
    await chat.send("мой муниципалитет")
    assert "Страница 1 из 5" in chat.text
    await chat.send("Мои заявки")
    assert "У вас пока нет заявок" in chat.text
