"""A parent who types instead of pressing, at the terminal: yes/no words, a button's words,
digits, control and topic words, emoji, a question in the middle of a step, and values
written as people write them."""

from __future__ import annotations

import pytest

from tests.enrollment import born_years_ago, today
from tests.typing_helpers import NO_READY_ANSWER, Terminal, sqlite_app

MENU = "Выберите, что вас интересует"


@pytest.fixture
async def terminal(tmp_path):
    async with sqlite_app(tmp_path) as app:
        parent = Terminal(app)
        await parent.type("/start")
        yield parent


async def to_consent(parent: Terminal) -> None:
    await parent.type("Мои дети и данные", "Добавить ребёнка")
    assert "Согласие на обработку персональных данных" in parent.text


async def to_birth_step(parent: Terminal) -> None:
    await to_consent(parent)
    await parent.type("Согласен(на)", "Иванова Мария")
    assert "Дата рождения ребёнка (Иванова Мария)?" in parent.text


async def to_step(parent: Terminal, n: int) -> None:
    await parent.type("Регистрация в Навигаторе", *["Готово, дальше"] * (n - 1))
    assert f"Шаг {n} из 8" in parent.text


# -- yes / no --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "word", ["согласна", "Согласен", "согласны", "да", "Да!", "ага", "угу", "конечно", "ок"]
)
async def test_a_yes_word_on_the_consent_screen_gives_consent(terminal: Terminal, word):
    await to_consent(terminal)
    await terminal.type(word)
    assert "Спасибо, согласие сохранено." in terminal.text
    assert "Напишите фамилию, имя и отчество ребёнка" in terminal.text
    assert await terminal.step() == "child:name"


@pytest.mark.parametrize("word", ["не согласна", "Не согласен", "нет", "неа", "не надо", "нет!"])
async def test_a_no_word_on_the_consent_screen_declines(terminal: Terminal, word):
    await to_consent(terminal)
    await terminal.type(word)
    assert "без согласия я ничего не сохраняю" in terminal.text
    await terminal.type("Мои дети и данные")
    assert "Согласие на обработку персональных данных: не дано" in terminal.text


@pytest.mark.parametrize("word", ["да", "Да, удалить всё", "да удалите", "конечно"])
async def test_a_yes_word_on_the_deletion_screen_deletes(terminal: Terminal, word):
    await to_birth_step(terminal)
    await terminal.type("12.05.2019", "Пропустить")
    assert "Сохранил: Иванова Мария" in terminal.text
    await terminal.type("/delete_my_data", word)
    assert "Готово: ваши данные удалены (1 ребёнок, 0 заявок)" in terminal.text
    await terminal.type("Мои дети и данные")
    assert "Вы пока не добавили ни одного ребёнка" in terminal.text


@pytest.mark.parametrize("word", ["нет", "не надо", "отмена", "стоп"])
async def test_a_no_or_stop_word_on_the_deletion_screen_keeps_everything(terminal, word):
    await to_birth_step(terminal)
    await terminal.type("12.05.2019", "Пропустить", "/delete_my_data", word)
    assert "удалены" not in terminal.text and MENU in terminal.text
    await terminal.type("Мои дети и данные")
    assert "Иванова Мария" in terminal.text


@pytest.mark.parametrize(
    ("word", "expected"),
    [("да", "Данные подтверждены"), ("нет", "Данные ещё не подтверждены")],
)
async def test_yes_and_no_answer_whether_the_data_are_confirmed(terminal, word, expected):
    await terminal.type("Сертификат", "Что подходит моему ребёнку", "Пятигорск", "10")
    assert "Данные ребёнка уже подтверждены" in terminal.text
    await terminal.type(word)
    assert expected in terminal.text
    assert "Нет СНИЛС" not in terminal.text and NO_READY_ANSWER not in terminal.text


# -- a button's words ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed", ["Показать", "показать", "ПОКАЗАТЬ: 198 КРУЖКОВ", "Показвть", "показать 198"]
)
async def test_the_start_of_a_label_a_typo_or_another_case_press_that_button(terminal, typed):
    await terminal.type("Найти кружок")
    assert "Показать: 198 кружков" in terminal.labels
    await terminal.type(typed)
    assert "Нашёл 198 кружков" in terminal.text


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("готово", "Шаг 4 из 8"),
        ("Готово, дальш", "Шаг 4 из 8"),
        ("не получаеться", "Что не получается на шаге 3?"),
        ("НЕ ПОЛУЧАЕТСЯ", "Что не получается на шаге 3?"),
        ("назад", "Шаг 2 из 8"),
    ],
)
async def test_registration_step_buttons_by_their_words(terminal: Terminal, typed, expected):
    await to_step(terminal, 3)
    await terminal.type(typed)
    assert expected in terminal.text


async def test_words_that_fit_two_buttons_press_neither(terminal: Terminal):
    # «Мои» starts both «Мои заявки» and «Мои дети и данные»
    await terminal.type("Мои")
    assert "У вас пока нет заявок" not in terminal.text
    assert "Вы пока не добавили ни одного ребёнка" not in terminal.text


# -- digits --------------------------------------------------------------------------------
@pytest.mark.parametrize(("digit", "count"), [("5", 4), ("0", 4), ("12", 4)])
async def test_a_digit_matching_no_button_gets_the_steps_re_prompt(terminal, digit, count):
    await to_step(terminal, 3)
    await terminal.type(digit)
    assert "Не понял, какой вариант вы выбрали." in terminal.text
    assert "Шаг 3 из 8" in terminal.text and f"от 1 до {count}" in terminal.text
    assert terminal.labels == ["Готово, дальше", "Не получается", "Назад", "В меню"]
    assert "от 5 до 18" not in terminal.text and NO_READY_ANSWER not in terminal.text
    await terminal.type("1")
    assert "Шаг 4 из 8" in terminal.text


async def test_a_yes_word_where_no_button_means_yes_gets_the_re_prompt(terminal: Terminal):
    await terminal.type("Найти кружок", "да")
    assert "Не понял, какой вариант вы выбрали." in terminal.text
    assert "Показать: 198 кружков" in terminal.labels


# -- control words ---------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["меню", "В меню", "главное меню", "Меню!"])
async def test_menu_words_open_the_menu_from_a_step(terminal: Terminal, word):
    await to_birth_step(terminal)
    await terminal.type(word)
    assert MENU in terminal.text
    assert await terminal.step() is None


@pytest.mark.parametrize("word", ["стоп", "отмена", "хватит", "Отменить"])
async def test_stop_words_leave_the_step(terminal: Terminal, word):
    await to_birth_step(terminal)
    await terminal.type(word)
    assert await terminal.step() is None
    assert "Не понял дату" not in terminal.text and NO_READY_ANSWER not in terminal.text


async def test_stop_where_the_screen_has_no_stop_button_returns_to_the_menu(terminal):
    await to_step(terminal, 2)
    await terminal.type("хватит")
    assert "Хорошо, остановились." in terminal.text and MENU in terminal.text


async def test_start_again_restarts_the_walkthrough(terminal: Terminal):
    await to_step(terminal, 4)
    await terminal.type("начать заново")
    assert "Хорошо, начнём заново." in terminal.text and MENU in terminal.text
    await terminal.type("Регистрация в Навигаторе")
    assert "Шаг 1 из 8" in terminal.text


@pytest.mark.parametrize("word", ["помощь", "?", "Помогите"])
async def test_help_words_show_the_help(terminal: Terminal, word):
    await terminal.type(word)
    assert "/menu — главное меню" in terminal.text


@pytest.mark.parametrize(
    ("message", "expected"),
    [("👍", "Рад помочь"), ("👍🏻👍🏻", "Рад помочь"), ("😭😭😭", "что-то не получается"),
     ("🙏", "Рад помочь"), ("))", "Рад помочь"), ("😡", "что-то не получается"),
     ("спасибо", "Рад помочь"), ("Понятно, спасибо", "Рад помочь")],
)  # fmt: skip
async def test_emoji_only_messages_get_a_human_answer(terminal: Terminal, message, expected):
    await terminal.type(message)
    assert expected in terminal.text and NO_READY_ANSWER not in terminal.text


async def test_a_sad_emoji_mid_step_offers_help_and_the_step(terminal: Terminal):
    await to_step(terminal, 5)
    await terminal.type("😭")
    assert "8 (8652) 34-99-07" in terminal.text
    assert "Продолжим: шаг 5 из 8" in terminal.text
    assert "Готово, дальше" in terminal.labels


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("регистрация", "Шаг 1 из 8"),
        ("Регистрацыя", "Шаг 1 из 8"),
        ("сертификат", "Сертификат дополнительного образования — что вас интересует?"),
        ("кружок", "Поиск кружка или секции"),
        ("заявки", "У вас пока нет заявок"),
        ("подтверждение", "СНИЛС ребёнка"),
    ],
)
async def test_a_topic_word_alone_opens_its_section(terminal: Terminal, word, expected):
    await terminal.type(word)
    assert expected in terminal.text


# -- a question mid-step -----------------------------------------------------------------------
async def test_a_question_at_a_registration_step_is_answered_and_the_step_continues(terminal):
    await to_step(terminal, 3)
    await terminal.type("а сертификат нужен для бесплатного кружка?")
    assert "деньги с него не списываются" in terminal.text  # the FAQ's answer
    assert "Продолжим: шаг 3 из 8" in terminal.text
    assert terminal.labels == ["Готово, дальше", "Не получается", "Назад", "В меню"]
    await terminal.type("1")
    assert "Шаг 4 из 8" in terminal.text


async def test_a_question_at_a_typed_step_keeps_that_step(terminal: Terminal):
    await to_birth_step(terminal)
    await terminal.type("а зачем вам дата рождения?")
    assert "Не понял дату" not in terminal.text
    assert "Продолжим: дата рождения ребёнка (Иванова Мария)?" in terminal.text
    assert await terminal.step() == "child:birth"
    await terminal.type("12 мая 2019")
    assert "Номер сертификата дополнительного образования" in terminal.text


async def phone_step(parent: Terminal) -> None:
    await parent.type("Найти кружок", "Слово для поиска", "радиоэлектроник", "Записаться на №1")
    await parent.type("Согласен(на)", "Иванова Мария")
    await parent.type(born_years_ago(12).strftime("%d.%m.%Y"), "Пропустить")
    assert "Телефон для связи с организацией" in parent.text


async def test_a_question_at_the_name_step_is_answered_not_taken_for_a_name(terminal):
    await to_consent(terminal)
    await terminal.type("Согласен(на)", "а отчество обязательно писать?")
    assert "В ФИО могут быть только буквы" not in terminal.text
    assert "Продолжим: напишите фамилию, имя и отчество ребёнка" in terminal.text
    assert await terminal.step() == "child:name"
    await terminal.type("Иванова Мария")
    assert "Дата рождения ребёнка (Иванова Мария)?" in terminal.text


async def comment_step(parent: Terminal) -> None:
    await phone_step(parent)
    await parent.type("8 912 345-67-89")
    assert "Комментарий для организации" in parent.text


async def test_a_question_at_the_comment_step_is_asked_about_and_answered(terminal):
    await comment_step(terminal)
    await terminal.type("а сколько это стоит?")
    assert "Это вопрос? Я отвечу — или сохранить как комментарий?" in terminal.text
    await terminal.type("Ответить на вопрос")
    assert "Продолжим: комментарий для организации" in terminal.text
    assert await terminal.step() == "req:comment"
    await terminal.type("Звоните после 18")
    assert "Комментарий: Звоните после 18" in terminal.text


async def test_a_question_kept_as_the_comment_goes_with_the_request(terminal: Terminal):
    await comment_step(terminal)
    await terminal.type("Можно ли приходить с младшим братом?", "Сохранить как комментарий")
    assert "Проверьте заявку" in terminal.text
    assert "Комментарий: Можно ли приходить с младшим братом?" in terminal.text


async def test_a_plain_comment_is_saved_without_asking(terminal: Terminal):
    await comment_step(terminal)
    await terminal.type("Удобно звонить вечером")
    assert "Комментарий: Удобно звонить вечером" in terminal.text


# -- values as people write them -------------------------------------------------------------
@pytest.mark.parametrize(
    "typed", ["12 мая 2019", "12.5.19", "2019-05-12", "12 мая 2019 г.", "12-го мая 2019 года"]
)
async def test_a_birth_date_in_words_or_numbers(terminal: Terminal, typed):
    await to_birth_step(terminal)
    await terminal.type(typed)
    assert "Номер сертификата дополнительного образования" in terminal.text
    await terminal.type("Пропустить")
    assert "Иванова Мария, 12.05.2019" in terminal.text


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ((today().replace(year=today().year + 1)).strftime("%d.%m.%Y"), "ещё не наступила"),
        (born_years_ago(19).strftime("%d.%m.%Y"), "ребёнку 19 лет, а через Навигатор"),
    ],
)
async def test_an_impossible_birth_date_is_explained_in_one_line(terminal, typed, expected):
    await to_birth_step(terminal)
    await terminal.type(typed)
    explanation = terminal.text.split("\n  [")[0].strip()
    assert expected in explanation and "\n" not in explanation


@pytest.mark.parametrize(
    ("typed", "age"), [("семь", 7), ("7 лет", 7), ("семилетний", 7), ("ему десять", 10)]
)
async def test_an_age_in_words(terminal: Terminal, typed, age):
    await terminal.type("Найти кружок", "Возраст", typed)
    assert f"Возраст ребёнка: {age} лет" in terminal.text


async def test_an_age_over_the_range_is_explained(terminal: Terminal):
    await terminal.type("Найти кружок", "Возраст", "девятнадцать")
    assert "для детей от 5 до 17 лет, а вы написали: 19 лет" in terminal.text


@pytest.mark.parametrize(
    "typed",
    ["8 912 345-67-89", "+7(912)3456789", "тел. 89123456789", "79123456789", "912 345 67 89",
     "8.912.345.67.89", "мой номер: +7 912 345 67 89"],
)  # fmt: skip
async def test_a_phone_in_any_common_form(terminal: Terminal, typed):
    await phone_step(terminal)
    await terminal.type(typed)
    assert "Комментарий для организации" in terminal.text
    await terminal.type("Без комментария")
    assert "Телефон: +7 912 345-67-89" in terminal.text
