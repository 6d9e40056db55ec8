"""What the real Bot API and VK API do that a parent's conversation depends on: blocking
and unblocking the bot, update types the bot did not ask for, group chats, VK apps
without callback or inline buttons, and VK refusing keyboards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.app import build_app
from bot.channels.serve import ChannelError, _telegram
from handlers.core import Reply
from storage.models import User
from tests.messengers import TelegramParent, VkParent, messenger_settings, settled, wait_until

NOT_TEXT = "понимаю только текстовые сообщения"


async def _user(app, channel: str, platform_id: int) -> User:
    async with app.db.session() as session:
        return await session.scalar(
            select(User).where(User.channel == channel, User.platform_user_id == str(platform_id))
        )


async def test_telegram_block_unblock_other_updates_and_groups(running, fake_telegram):
    app = running.app
    parent = TelegramParent(running, fake_telegram, 2101)
    await parent.send("/start")
    assert fake_telegram.allowed_updates == {"message", "callback_query", "my_chat_member"}
    user = await _user(app, "telegram", 2101)

    # the parent blocks the bot: nothing more is even tried
    await fake_telegram.membership(2101, "kicked")
    await wait_until(lambda: 2101 in fake_telegram.blocked)
    for _ in range(200):
        if not (await _user(app, "telegram", 2101)).reachable:
            break
        await asyncio.sleep(0.02)
    assert (await _user(app, "telegram", 2101)).reachable is False
    calls = len(fake_telegram.calls)
    assert not await app.delivery.notify(user.id, [Reply("Статус заявки изменился")], wait=True)
    assert not [c for c in fake_telegram.calls[calls:] if c[0] == "sendMessage"]
    # ... and unblocks it: reminders reach them again
    update = await fake_telegram.membership(2101, "member")
    await wait_until(
        lambda: all(u["update_id"] != update["update_id"] for u in fake_telegram.updates)
    )
    for _ in range(200):
        if (await _user(app, "telegram", 2101)).reachable:
            break
        await asyncio.sleep(0.02)
    assert await app.delivery.notify(user.id, [Reply("Напоминание")], wait=True)
    assert fake_telegram.to(2101)[-1].text == "Напоминание"

    # an edit was not asked for: never delivered; fed by a webhook anyway, it is ignored
    before = len(fake_telegram.to(2101))
    edited = await fake_telegram.edit(parent_message(2101), "/help")
    await running.telegram.feed(edited)
    # group chats are not served; media, places and contacts get the text-only answer
    await fake_telegram.group_message(2101, -4001, "/start")
    for content in (
        {"location": {"latitude": 44.04, "longitude": 43.06}},
        {"contact": {"phone_number": "+70000000000", "first_name": "Мама"}},
        {"video_note": {"file_id": "DQAC", "file_unique_id": "AgAD", "length": 240, "duration": 2}},
        {"photo": [{"file_id": "AgAC", "file_unique_id": "AQAD", "width": 90, "height": 90}]},
    ):
        update = await fake_telegram.content(2101, **content)
        await settled(app, "telegram", update["update_id"], 2101)
    answers = fake_telegram.to(2101)[before:]
    assert len(answers) == 4 and all(NOT_TEXT in m.text for m in answers)
    assert not fake_telegram.to(-4001)
    assert not fake_telegram.rejected


def parent_message(user_id: int) -> dict:
    return {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": user_id, "type": "private"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Мама"},
        "text": "/start",
    }


async def test_webhook_secret_must_be_what_telegram_accepts(settings, fake_telegram, fake_vk):
    configured = messenger_settings(
        settings,
        fake_telegram,
        fake_vk,
        mode="webhook",
        webhook_url="https://bot.example.org/tg/hook",
        webhook_secret="секрет с пробелами",
    )
    app = build_app(configured)
    with pytest.raises(ChannelError, match="1-256 characters"):
        await _telegram(app, [])


NO_CALLBACK = {
    "button_actions": ["text", "location", "open_link"],
    "keyboard": True,
    "inline_keyboard": True,
}
NO_INLINE = {"button_actions": ["text"], "keyboard": True, "inline_keyboard": False}
NO_KEYBOARD = {"button_actions": [], "keyboard": False, "inline_keyboard": False}


async def test_vk_apps_without_callback_or_inline_buttons_can_still_answer(running, fake_vk):
    # inline text buttons: pressing one sends its label and payload as a message
    parent = VkParent(running, fake_vk, 2201, NO_CALLBACK)
    await parent.send("/start")
    assert {kind for m in parent.last for row in m.buttons for kind, _, _ in row} == {"text"}
    assert parent.last[-1].inline
    await parent.press("Мой муниципалитет")
    await parent.press("Ещё")
    assert "Страница 2 из 5" in parent.text

    # no inline keyboards: a one-time keyboard under the input field, all 11 at once
    parent = VkParent(running, fake_vk, 2202, NO_INLINE)
    await parent.send("/start")
    await parent.press("Мой муниципалитет")
    await parent.press("Ещё")
    assert "Страница 2 из 5" in parent.text
    assert len(parent.last) == 1 and not parent.last[0].inline and len(parent.labels) == 11

    # no keyboard at all: the options are written out and typing one works
    parent = VkParent(running, fake_vk, 2203, NO_KEYBOARD)
    await parent.send("/start")
    assert not parent.labels
    assert "Напишите один из вариантов:" in parent.text and "• Мой муниципалитет" in parent.text
    await parent.send("Мой муниципалитет")
    assert "Страница 1 из 5" in parent.text
    assert not fake_vk.rejected


async def test_vk_keyboards_refused_and_permission_errors(running, fake_vk):
    app = running.app
    parent = VkParent(running, fake_vk, 2301)
    await parent.send("/start")
    # bot features switched off in the community: VK refuses keyboards (912)
    fake_vk.bot_features = False
    await parent.send("/menu")
    assert any(r.startswith("912") for r in fake_vk.rejected)
    assert "• Мой муниципалитет" in parent.text and not parent.labels
    await parent.send("Мой муниципалитет")
    assert "Страница 1 из 5" in parent.text
    # error 7 is about the token or the community: the parent stays reachable
    user = await _user(app, "vk", 2301)
    fake_vk.errors_next = [7]
    assert not await app.delivery.notify(user.id, [Reply("Напоминание")], wait=True)
    assert (await _user(app, "vk", 2301)).reachable is True
