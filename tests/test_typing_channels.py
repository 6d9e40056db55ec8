"""The same typed words through the real Telegram and VK adapters (against the fakes):
consent and deletion answered in words, a button pressed by typing its label."""

from __future__ import annotations

import pytest

from tests.messengers import Running, TelegramParent, VkParent

NO_READY_ANSWER = "на этот вопрос у меня нет готового ответа"


def parent_in(channel: str, running: Running, fake_telegram, fake_vk, user_id: int):
    if channel == "telegram":
        return TelegramParent(running, fake_telegram, user_id)
    return VkParent(running, fake_vk, user_id)


@pytest.mark.parametrize("channel", ["telegram", "vk"])
async def test_consent_and_deletion_answered_in_words(
    channel, running: Running, fake_telegram, fake_vk
):
    parent = parent_in(channel, running, fake_telegram, fake_vk, 1201)
    await parent.send("/start")
    await parent.send("мои дети")  # the start of «Мои дети и данные»
    await parent.send("добавить")  # the start of «Добавить ребёнка»
    assert "Согласие на обработку персональных данных" in parent.text
    await parent.send("согласна")
    assert "Спасибо, согласие сохранено." in parent.text
    await parent.send("Иванова Мария")
    await parent.send("12 мая 2019")
    await parent.send("пропустить")
    assert "Сохранил: Иванова Мария" in parent.text

    await parent.send("/delete_my_data")
    await parent.send("не надо")
    assert "удалены" not in parent.text and NO_READY_ANSWER not in parent.text
    await parent.send("/delete_my_data")
    await parent.send("да")
    assert "Готово: ваши данные удалены (1 ребёнок, 0 заявок)" in parent.text


@pytest.mark.parametrize("channel", ["telegram", "vk"])
async def test_a_declined_consent_in_words(channel, running: Running, fake_telegram, fake_vk):
    parent = parent_in(channel, running, fake_telegram, fake_vk, 1202)
    await parent.send("/start")
    await parent.press("Мои дети и данные")
    await parent.press("Добавить ребёнка")
    await parent.send("Не согласна")
    assert "без согласия я ничего не сохраняю" in parent.text


@pytest.mark.parametrize(
    ("channel", "forms"),
    [("telegram", ("Показать", "показвть")), ("vk", ("ПОКАЗАТЬ", "показат"))],
)
async def test_a_button_pressed_by_typing_its_label(
    channel, forms, running: Running, fake_telegram, fake_vk
):
    parent = parent_in(channel, running, fake_telegram, fake_vk, 1203)
    await parent.send("/start")
    await parent.send("найти кружк")  # «Найти кружок» with a typo
    for typed in forms:  # the start of «Показать: 198 кружков», in another case, a typo
        assert "Показать: 198 кружков" in parent.labels
        await parent.send(typed)
        assert "Нашёл 198 кружков" in parent.text
        await parent.send("изменить поиск")
        assert "Поиск кружка или секции" in parent.text
    await parent.send("15")  # no button has this number
    assert "Не понял, какой вариант вы выбрали." in parent.text
    assert "Показать: 198 кружков" in parent.labels
