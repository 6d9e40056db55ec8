"""The registration walkthrough as a parent meets it: steps, problems, progress, checks."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.models import ConversationState, User
from tests.chat import ChatClient
from tests.guided import open_step

URL = "https://р26.навигатор.дети/"
HOTLINE = "8 (8652) 34-99-07"
TITLES = [
    "Откройте Навигатор",
    "Нажмите «Регистрация»",
    "Заполните поля",
    "Подтвердите электронную почту",
    "Войдите в личный кабинет",
    "Заполните карточку родителя",
    "Добавьте ребёнка",
    "Получите сертификат",
]


async def test_walkthrough_goes_one_step_per_message_to_the_certificate(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Регистрация в Навигаторе")
    for n, title in enumerate(TITLES, start=1):
        assert len(chat.replies) == 1
        assert f"Шаг {n} из 8. {title}" in chat.text
        for label in ("Готово, дальше", "Не получается", "Назад", "В меню"):
            assert label in chat.labels
        if n == 1:
            assert URL in chat.text and "https://p26.navigatordeti.ru/" in chat.text
        if n == 3:
            for field in ("муниципалитет", "отчество", "телефона", "электронной почты", "пароль"):
                assert field in chat.text
        if n == 7:
            assert "дату рождения" in chat.text and "СНИЛС" in chat.text
        if n == 8:
            assert "Получить сертификат" in chat.text and "один раз" in chat.text
        await chat.press("Готово, дальше")
    assert "регистрация пройдена" in chat.text
    assert "Подтверждение данных ребёнка" in chat.labels
    await chat.press("Подтверждение данных ребёнка")
    assert "СНИЛС ребёнка" in chat.text


async def test_back_returns_to_the_previous_step(chat: ChatClient):
    await open_step(chat, 3)
    await chat.press("Назад")
    assert "Шаг 2 из 8" in chat.text
    await chat.press("Назад")
    await chat.press("Назад")
    assert "Шаг 1 из 8" in chat.text


async def test_step_three_names_the_municipality_the_parent_chose(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await chat.send("Кисловодск")
    await chat.press("Регистрация в Навигаторе")
    await chat.press("Готово, дальше")
    await chat.press("Готово, дальше")
    assert "Вы выбирали у меня: город-курорт Кисловодск" in chat.text


PROBLEMS = [
    (4, "Не приходит письмо", ["«Спам»", "опечатки в адресе", "запросите письмо повторно"]),
    (5, "Забыл(а) пароль", ["странице входа", "письмо для восстановления", URL]),
    (2, "Телефон или почта уже заняты", ["уже есть", "Не создавайте вторую"]),
    (
        7,
        "Ребёнка уже добавил другой родитель",
        ["Не добавляйте ребёнка второй раз", "муниципальном опорном центре", "горячей линии"],
    ),
    (3, "Нет моего муниципалитета", ["по месту жительства", URL, "Ставропольском крае"]),
    (1, "Ребёнку 14+, хочет сам", ["с 14 лет", "сам", "паспорт ребёнка"]),
]


@pytest.mark.parametrize(("step", "label", "facts"), PROBLEMS, ids=[p[1] for p in PROBLEMS])
async def test_each_problem_answers_and_then_offers_a_person(chat: ChatClient, step, label, facts):
    await open_step(chat, step)
    await chat.press("Не получается")
    assert f"Что не получается на шаге {step}?" in chat.text
    await chat.press(label)
    for fact in facts:
        assert fact in chat.text
    await chat.press("Не помогло — нужен человек")
    assert HOTLINE in chat.text and "rmc126@mail.ru" in chat.text
    assert "Контакты горячей линии" in chat.labels
    await chat.press(f"Вернуться к шагу {step}")
    assert f"Шаг {step} из 8" in chat.text


async def test_every_step_lists_problems_and_another_problem_reaches_the_hotline(
    chat: ChatClient,
):
    await open_step(chat, 1)
    for n in range(1, 9):
        await chat.press("Не получается")
        assert len(chat.labels) >= 4, chat.labels  # at least one problem, other, back, menu
        await chat.press("Другая проблема")
        assert HOTLINE in chat.text
        await chat.press(f"Вернуться к шагу {n}")
        await chat.press("Готово, дальше")


async def test_a_parent_who_left_at_step_four_is_offered_step_four(chat: ChatClient, app):
    await open_step(chat, 4)
    await chat.press("В меню")
    # Next day, another client on the same database: the same parent comes back.
    again = ChatClient(app.engine, user_id=chat.user_id)
    await again.send("/start")
    assert "Вы остановились на шаге 4 из 8: «Подтвердите электронную почту»" in again.text
    await again.press("Продолжить с шага 4")
    assert "Шаг 4 из 8" in again.text
    await again.press("В меню")
    await again.press("Регистрация в Навигаторе")
    assert "Вы остановились на шаге 4" in again.text
    await again.press("Начать сначала")
    assert "Шаг 1 из 8" in again.text
    await again.send("/start")
    assert "Вы остановились" not in again.text


async def test_finished_walkthrough_is_not_offered_again(chat: ChatClient):
    await open_step(chat, 8)
    await chat.press("Готово, дальше")
    await chat.send("/start")
    assert "Вы остановились" not in chat.text
    await chat.press("Регистрация в Навигаторе")
    assert "Шаг 1 из 8" in chat.text


async def test_a_question_typed_mid_walkthrough_is_not_taken_as_a_step_answer(
    chat: ChatClient, app
):
    await open_step(chat, 3)
    await chat.send("а сколько стоит кружок?")
    assert "Шаг" not in chat.text
    async with app.db.session() as session:
        state = await session.scalar(select(ConversationState))
        assert state.step is None
        assert state.data["reg"]["step"] == 3


async def test_snils_check_finds_typos_and_keeps_no_number(chat: ChatClient, app):
    await open_step(chat, 7)
    await chat.press("Проверить номер СНИЛС")
    assert "11 цифр" in chat.text
    await chat.send("112-233-445 94")
    assert "есть ошибка" in chat.text
    await chat.send("12345")
    assert "11 цифр, а у вас 5" in chat.text
    await chat.send("112 233 445 95")
    assert "112-233-445 95 написан правильно" in chat.text
    async with app.db.session() as session:
        state = await session.scalar(select(ConversationState))
        assert "11223344595" not in str(state.data) and state.step is None
    await chat.press("Вернуться к шагу 7")
    assert "Шаг 7 из 8" in chat.text


async def test_snils_check_gives_way_to_words(chat: ChatClient):
    await open_step(chat, 7)
    await chat.press("Проверить номер СНИЛС")
    await chat.send("не помню где он")
    assert "не похоже на номер СНИЛС" in chat.text and "Шаг 7 из 8" in chat.text


async def test_municipality_search_names_the_district_of_a_town(chat: ChatClient, app):
    await open_step(chat, 3)
    await chat.press("Не получается")
    await chat.press("Нет моего муниципалитета")
    await chat.press("Найти мой муниципалитет")
    await chat.send("михайловск")
    assert "Шпаковский муниципальный округ" in chat.text
    async with app.db.session() as session:
        assert (await session.scalar(select(User))).municipality_id == "shpakovsky"
    await chat.press("Вернуться к шагу 3")
    await chat.press("Не получается")
    await chat.press("Нет моего муниципалитета")
    await chat.press("Найти мой муниципалитет")
    await chat.send("Урюпинск")
    assert "Не нашёл «Урюпинск»" in chat.text and HOTLINE in chat.text
