"""Telegram and VK as a parent meets them: the real aiogram and vk_api adapters
against the fake Bot API and VK API."""

from __future__ import annotations

from tests.messengers import Running, TelegramParent, VkParent

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


async def test_main_menu_dialogue_in_telegram(running: Running, fake_telegram):
    parent = TelegramParent(running, fake_telegram, 501)
    await _main_menu_dialogue(parent)
    assert not fake_telegram.rejected
    # every button press stopped the parent's spinner
    presses = [c for c in fake_telegram.calls if c[0] == "answerCallbackQuery"]
    assert len(presses) == 4 and len(fake_telegram.answered) == 4
    assert [c["command"] for c in fake_telegram.commands] == ["start", "menu", "help"]


async def test_main_menu_dialogue_in_vk(running: Running, fake_vk):
    parent = VkParent(running, fake_vk, 601)
    await _main_menu_dialogue(parent)
    assert not fake_vk.rejected
    assert len(fake_vk.answered) == 4
