"""Telegram and VK as a parent meets them: the real aiogram and vk_api adapters
against the fake Bot API and VK API."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from handlers.core import Button, Reply
from storage.models import TranscriptEntry, User
from tests.messengers import Running, TelegramParent, VkParent, settled, wait_until

HOTLINE = "8 (8652) 34-99-07"


async def _main_menu_dialogue(parent) -> None:
    await parent.send("/start")
    assert "Здравствуйте" in parent.text
    assert "Контакты горячей линии" in parent.labels
    await parent.press("Контакты горячей линии")
    assert HOTLINE in parent.text
    await parent.press("В меню")
    assert "Выберите, что вас интересует" in parent.text
    await parent.press("Мой муниципалитет")
    assert "Страница 1 из 5" in parent.text
    await parent.press("Ещё")
    assert "Страница 2 из 5" in parent.text
    await parent.send("минводы")
    assert "Запомнил: Минераловодский городской округ" in parent.text
    await parent.send("/help")
    assert "/menu" in parent.text and HOTLINE in parent.text
    await _every_section_of_the_menu(parent)


async def _every_section_of_the_menu(parent) -> None:
    """Each main-menu item opens its dialogue in this messenger, buttons and all."""
    sections = [
        ("Регистрация в Навигаторе", "Шаг 1 из 8"),
        ("Сертификат: что это и как получить", "Сертификат дополнительного образования"),
        ("Подтверждение данных ребёнка", "СНИЛС ребёнка"),
        ("Найти кружок", "Поиск кружка или секции"),
        ("Задать вопрос", "Напишите вопрос своими словами"),
        ("Мои заявки", "У вас пока нет заявок"),
        ("Мои дети и данные", "Вы пока не добавили ни одного ребёнка"),
    ]
    for label, expected in sections:
        await parent.send("/menu")
        await parent.press(label)
        assert expected in parent.text, label
    await parent.send("/menu")
    await parent.press("Регистрация в Навигаторе")
    await parent.press("Готово, дальше")
    assert "Шаг 2 из 8" in parent.text
    await parent.press("Не получается")
    assert "Что не получается на шаге 2?" in parent.text
    await parent.send("не приходит письмо на почту")
    assert "«Спам»" in parent.text


async def test_main_menu_dialogue_in_telegram(running: Running, fake_telegram):
    parent = TelegramParent(running, fake_telegram, 501)
    await _main_menu_dialogue(parent)
    assert not fake_telegram.rejected
    # every button press stopped the parent's spinner
    presses = [c for c in fake_telegram.calls if c[0] == "answerCallbackQuery"]
    assert len(presses) == 14 and len(fake_telegram.answered) == 14
    assert [c["command"] for c in fake_telegram.commands] == [
        "start",
        "menu",
        "help",
        "delete_my_data",
        "operator",
        "reminders",
    ]


async def test_main_menu_dialogue_in_vk(running: Running, fake_vk):
    parent = VkParent(running, fake_vk, 601)
    await _main_menu_dialogue(parent)
    assert not fake_vk.rejected
    assert len(fake_vk.answered) == 14


async def _user(app, channel: str, platform_id: int) -> User:
    async with app.db.session() as session:
        return await session.scalar(
            select(User).where(User.channel == channel, User.platform_user_id == str(platform_id))
        )


async def test_telegram_and_vk_conversations_at_once_stay_separate(
    running: Running, fake_telegram, fake_vk
):
    # the same numeric id in both messengers is two different parents
    in_telegram = TelegramParent(running, fake_telegram, 700)
    in_vk = VkParent(running, fake_vk, 700)

    async def choose(parent, typed: str) -> None:
        await parent.send("/start")
        await parent.press("Мой муниципалитет")
        await parent.send(typed)

    await asyncio.gather(choose(in_telegram, "Пятигорск"), choose(in_vk, "минводы"))
    assert "Запомнил: город-курорт Пятигорск" in in_telegram.text
    assert "Запомнил: Минераловодский городской округ" in in_vk.text
    await asyncio.gather(in_telegram.press("Мой муниципалитет"), in_vk.press("Мой муниципалитет"))
    assert "Сейчас выбран: город-курорт Пятигорск" in in_telegram.text
    assert "Сейчас выбран: Минераловодский городской округ" in in_vk.text


async def test_restart_mid_dialogue_resumes_in_both(running: Running, fake_telegram, fake_vk):
    in_telegram = TelegramParent(running, fake_telegram, 801)
    in_vk = VkParent(running, fake_vk, 802)
    for parent in (in_telegram, in_vk):
        await parent.send("/start")
        await parent.press("Мой муниципалитет")
        await parent.press("Ещё")
    await running.stop()
    await running.start()
    for parent in (in_telegram, in_vk):
        # still on the municipality step: a typed name is understood as the answer
        await parent.send("Невинномысск")
        assert "Запомнил: город Невинномысск" in parent.text
        # and buttons shown before the restart still work
        await parent.press("Назад")
        assert "Страница 1 из 5" in parent.text


async def test_redelivered_update_gets_no_second_reply(running: Running, fake_telegram, fake_vk):
    in_telegram = TelegramParent(running, fake_telegram, 901)
    in_vk = VkParent(running, fake_vk, 902)
    update = await fake_telegram.message(901, "/start")
    await settled(running.app, "telegram", update["update_id"], 901)
    await in_vk.send("/start")
    event = next(e for _, e in reversed(fake_vk.events) if e["type"] == "message_new")
    greetings = (len(fake_telegram.to(901)), len(fake_vk.to(902)))

    # a crash after handling, before Telegram saw the offset confirmed: the update comes again
    await running.stop()
    await fake_telegram.redeliver(update)
    await running.start()
    await fake_vk.redeliver(event)
    # the next message is handled after the duplicate (one user's messages are in order)
    await in_telegram.send("/help")
    await in_vk.send("/help")
    assert (len(fake_telegram.to(901)), len(fake_vk.to(902))) == (
        greetings[0] + 1,
        greetings[1] + 1,
    )
    assert "/menu" in in_telegram.text and "/menu" in in_vk.text
    async with running.app.db.session() as session:
        incoming = await session.scalar(
            select(func.count())
            .select_from(TranscriptEntry)
            .where(TranscriptEntry.direction == "in")
        )
    assert incoming == 4


async def _reach(parent) -> int:
    """Start the conversation; the user's id in the database."""
    await parent.send("/start")
    return (await _user(parent.running.app, parent.channel, parent.user_id)).id


async def test_flood_control_delays_but_loses_nothing(running: Running, fake_telegram, fake_vk):
    app = running.app
    telegram_users = [
        await _reach(TelegramParent(running, fake_telegram, 2000 + n)) for n in range(8)
    ]
    vk_users = [await _reach(VkParent(running, fake_vk, 3000 + n)) for n in range(8)]
    before_tg, before_vk = len(fake_telegram.sent), len(fake_vk.sent)
    fake_telegram.server_errors_next = 2  # 502s first: retried with backoff
    fake_telegram.flood_next = 6  # then a storm of 429 retry_after=1
    fake_vk.errors_next = [6, 9, 6, 6]

    async def remind(user_id: int, n: int) -> bool:
        replies = [Reply(f"Напоминание {n}-1"), Reply(f"Напоминание {n}-2")]
        await app.delivery.notify(user_id, replies)
        return await app.delivery.flush(replies)  # waits until they were sent

    results = await asyncio.gather(
        *(remind(user, n) for n, user in enumerate(telegram_users + vk_users))
    )
    assert all(results)
    for fake, users, base in ((fake_telegram, telegram_users, 2000), (fake_vk, vk_users, 3000)):
        for n in range(len(users)):
            n_all = n if fake is fake_telegram else n + len(telegram_users)
            texts = [m.text for m in fake.to(base + n) if m.text.startswith("Напоминание")]
            assert texts == [f"Напоминание {n_all}-1", f"Напоминание {n_all}-2"]
    assert len(fake_telegram.sent) - before_tg == 16 and len(fake_vk.sent) - before_vk == 16
    assert sum("Too Many Requests" in r for r in fake_telegram.rejected) == 6
    assert sum("Bad Gateway" in r for r in fake_telegram.rejected) == 2


async def test_many_messages_are_paced_under_the_platform_limits(
    running: Running, fake_telegram, fake_vk
):
    app = running.app
    async with app.db.session() as session:
        users = [
            User(channel=channel, platform_user_id=str(n), chat_id=str(n), name="")
            for channel, count in (("telegram", 40), ("vk", 25))
            for n in range(10_000, 10_000 + count)
        ]
        session.add_all(users)
        await session.flush()
        ids = [user.id for user in users]
    fake_telegram.chats.update(range(10_000, 10_040))  # they wrote to the bot before

    async def announce(user_id: int) -> bool:
        replies = [Reply("Приём документов")]
        await app.delivery.notify(user_id, replies)
        return await app.delivery.flush(replies)

    results = await asyncio.gather(*(announce(i) for i in ids))
    assert all(results)
    assert not fake_telegram.rejected and not fake_vk.rejected
    assert len(fake_telegram.sent) == 40 and len(fake_vk.sent) == 25


async def test_a_user_who_blocked_the_bot_stops_receiving(running: Running, fake_telegram, fake_vk):
    app = running.app
    for parent, fake in (
        (TelegramParent(running, fake_telegram, 1101), fake_telegram),
        (VkParent(running, fake_vk, 1102), fake_vk),
    ):
        user_id = await _reach(parent)
        fake.blocked.add(parent.user_id)
        first = Reply("Статус заявки изменился")
        await app.delivery.notify(user_id, [first])
        assert not await app.delivery.flush([first])  # the platform refused it

        def sends(fake=fake) -> int:
            return sum(method in ("sendMessage", "messages.send") for method, _ in fake.calls)

        attempts = sends()
        second = Reply("Напоминание")
        assert not await app.delivery.notify(user_id, [second])  # known unreachable
        assert not await app.delivery.flush([second])
        assert sends() == attempts  # not even tried
        async with app.db.session() as session:
            user = await session.get(User, user_id)
            rows = [await session.get(TranscriptEntry, r.transcript_id) for r in (first, second)]
        assert user.reachable is False
        assert rows[0].status == "failed" and ("blocked" in rows[0].error or "901" in rows[0].error)
        assert (rows[1].status, rows[1].error) == ("failed", "user unreachable")


async def test_long_button_payload_fits_callback_data_and_works_after_restart(
    running: Running, fake_telegram, fake_vk
):
    # 73 bytes: more than Telegram's 64 bytes of callback data; an FAQ entry long gone.
    payload = "faq:show:" + "retired_entry_" * 4 + "x" * 8
    parents = (TelegramParent(running, fake_telegram, 1201), VkParent(running, fake_vk, 1202))
    for parent in parents:
        user_id = await _reach(parent)
        offer = Reply("Был такой ответ", [[Button("Старый ответ", payload)]])
        await running.app.delivery.notify(user_id, [offer])
        assert await running.app.delivery.flush([offer])
    data = parents[0].data_for("Старый ответ")
    assert len(data.encode()) <= 64 and data != payload
    assert len(parents[1].payload_for("Старый ответ").encode()) <= 255
    await running.stop()
    await running.start()
    for parent in parents:
        await parent.press("Старый ответ")
        # the key was expanded to the payload (not taken for a forged button)
        assert "Этот ответ уже недоступен" in parent.text


async def test_stickers_and_voice_get_a_friendly_text_only_answer(
    running: Running, fake_telegram, fake_vk
):
    telegram = TelegramParent(running, fake_telegram, 1301)
    for push in (fake_telegram.sticker, fake_telegram.voice):
        before = len(fake_telegram.to(1301))
        update = await push(1301)
        await settled(running.app, "telegram", update["update_id"], 1301)
        telegram.last = fake_telegram.to(1301)[before:]
        assert "понимаю только текстовые сообщения" in telegram.text
        assert "В меню" in telegram.labels
    event = await fake_vk.sticker(1302)
    await settled(running.app, "vk", event["event_id"], 1302)
    assert "понимаю только текстовые сообщения" in fake_vk.to(1302)[-1].text


async def test_user_text_is_escaped_and_long_replies_are_split_at_paragraphs(
    running: Running, fake_telegram, fake_vk
):
    parent = TelegramParent(running, fake_telegram, 1401)
    user_id = await _reach(parent)
    await parent.press("Мой муниципалитет")
    await parent.send("<b>Пятиг & co</i>")
    assert "Не нашёл муниципалитет «<b>Пятиг & co</i>»" in parent.text
    paragraphs = [f"Абзац {n}. " + "текст " * 330 for n in range(3)]
    long = Reply("\n\n".join(p.strip() for p in paragraphs), [[Button("В меню", "menu")]])
    before = len(fake_telegram.to(1401))
    await running.app.delivery.notify(user_id, [long])
    assert await running.app.delivery.flush([long])
    parts = fake_telegram.to(1401)[before:]
    assert len(parts) == 2
    assert [p.text.count("Абзац") for p in parts] == [2, 1]
    assert parts[1].text.startswith("Абзац 2.")
    assert not parts[0].buttons and parts[1].buttons
    assert not fake_telegram.rejected


async def test_deep_link_source_is_recorded(running: Running, fake_telegram):
    parent = TelegramParent(running, fake_telegram, 1501)
    await parent.send("/start school_12")
    assert "Здравствуйте" in parent.text
    await parent.send("/start poster-3")
    user = await _user(running.app, "telegram", 1501)
    assert (user.source, user.start_param) == ("school_12", "poster-3")


async def test_vk_keyboards_that_do_not_fit_are_laid_out_to_fit(running: Running, fake_vk):
    parent = VkParent(running, fake_vk, 1601)
    await parent.send("/start")
    await parent.press("Мой муниципалитет")
    await parent.press("Ещё")
    assert not fake_vk.rejected
    assert {"Назад", "Ещё", "В меню"} <= set(parent.labels)
    assert len(parent.labels) == 11
    assert len(parent.last) == 2  # the buttons that do not fit go in a second message
    assert parent.last[1].text == "Ещё варианты:"
    await parent.press("Назад")
    assert "Страница 1 из 5" in parent.text


async def test_vk_long_poll_reconnects_and_resends_with_the_same_random_id(
    running: Running, fake_vk
):
    parent = VkParent(running, fake_vk, 1701)
    await parent.send("/start")
    connects = fake_vk.lp_connects
    fake_vk.lp_failures = [2, 1, 3]
    fake_vk.lp_http_errors = 1
    # reconnected after the HTTP error, new key after failed 2, new key and ts after failed 3
    await wait_until(lambda: fake_vk.lp_connects >= connects + 3)
    await asyncio.sleep(0.2)
    fake_vk.errors_next = [10]  # an internal server error on the next send: retried
    await parent.send("/help")
    assert "/menu" in parent.text and len(parent.last) == 1
    sends = [c[1] for c in fake_vk.calls if c[0] == "messages.send"][-2:]
    assert sends[0]["random_id"] == sends[1]["random_id"] != "0"


async def test_vk_start_button_with_a_ref_link_records_the_source(running: Running, fake_vk):
    parent = VkParent(running, fake_vk, 1551)
    before = len(fake_vk.to(1551))
    event = await fake_vk.message(1551, "Начать", payload='{"command":"start"}', ref="school_7")
    await settled(running.app, "vk", event["event_id"], 1551)
    assert "Здравствуйте" in fake_vk.to(1551)[before].text
    user = await _user(running.app, "vk", 1551)
    assert user.source == "school_7"
    assert parent.user_id == 1551
