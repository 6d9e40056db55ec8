"""Requests respect the program: a full one is not offered, a child of another age is told
before the request, the confirmation shows what is being asked for and what the
certificate pays; and the titles and addresses read as written by a person."""

from __future__ import annotations

import re

import pytest

from tests.chat import ChatClient
from tests.enrollment import born_years_ago, program
from tests.typing_helpers import Terminal, sqlite_app


@pytest.fixture
async def app(tmp_path):
    async with sqlite_app(tmp_path) as application:
        yield application


@pytest.fixture
async def terminal(app):
    parent = Terminal(app)
    await parent.type("/start")
    return parent


async def search(parent: Terminal, keyword: str) -> None:
    await parent.type("Найти кружок", "Слово для поиска", keyword)


async def child_for(parent: Terminal, years: int) -> None:
    """Consent and a child of `years` (the bot asks for consent first)."""
    await parent.type("Согласен(на)", "Иванова Мария")
    await parent.type(born_years_ago(years).strftime("%d.%m.%Y"), "Пропустить")


async def test_a_full_program_is_not_offered_and_the_nearest_with_places_is(terminal):
    await search(terminal, "Лего-конструирование")
    full = next(
        part for part in terminal.text.split("\n\n") if "Ессентуки, ул. Садовая, 38" in part
    )
    assert "Свободных мест сейчас нет" in full
    number = re.match(r"(\d+)\. ", full).group(1)
    assert f"Записаться на №{number}" not in terminal.labels
    assert "Мест нет — что есть рядом" in terminal.labels
    await terminal.type("Мест нет — что есть рядом")
    assert "Ближайшая программа со свободными местами" in terminal.text
    assert "город-курорт Ессентуки" in terminal.text and "Осталось" in terminal.text
    assert "Записаться на №1" in terminal.labels
    await terminal.type("Записаться на №1")
    assert "Согласие на обработку персональных данных" in terminal.text


async def test_a_request_to_a_full_program_stops_before_anything_is_asked(app):
    full = await program(app, "900004")  # «Лего-конструирование» in Ессентуки, no places
    chat = ChatClient(app.engine)
    await chat.send("/start")
    await chat.send("Записаться", payload=f"req:new:{full.id}")  # a button shown earlier
    assert "свободных мест сейчас нет — заявку на неё не отправить" in chat.text
    assert "Согласие на обработку" not in chat.text
    assert "Записаться на №1" in chat.labels  # the nearest program with places


async def test_a_child_outside_the_programs_ages_is_told_before_the_request(terminal):
    await search(terminal, "радиоэлектроник")  # 10–15 лет
    await terminal.type("Записаться на №1")
    await child_for(terminal, 7)
    assert "Программа для детей 10–15 лет" in terminal.text
    assert "Телефон для связи" not in terminal.text
    assert "Для ребёнка 7 лет в том же муниципалитете есть программа" in terminal.text
    assert "Записаться на №1" in terminal.labels


@pytest.mark.parametrize(
    ("navigator_id", "keyword", "years", "pays", "schedule"),
    [
        ("900000", "радиоэлектроник", 12, "Оплата: бесплатно, по сертификату учёта", "сб, 15:00"),
        ("900001", "компьютерной", 9, "Оплата: из номинала сертификата — 1 200 ₽", "вт и сб"),
    ],
)
async def test_the_confirmation_shows_child_age_program_schedule_and_what_is_paid(
    app, navigator_id, keyword, years, pays, schedule
):
    target = await program(app, navigator_id)
    chat = ChatClient(app.engine)
    await chat.send("/start")
    await chat.send("Записаться", payload=f"req:new:{target.id}")
    await chat.press("Согласен(на)")
    await chat.send("Иванова Мария")
    await chat.send(born_years_ago(years).strftime("%d.%m.%Y"))
    await chat.press("Пропустить")
    await chat.send("89123456789")
    await chat.press("Без комментария")
    text = chat.text
    assert f"Программа: {target.title}" in text
    assert f"Ребёнок: Иванова Мария, {years} лет" in text
    assert f"Расписание: {schedule}" in text
    assert pays in text


async def test_titles_with_their_own_quotes_are_not_quoted_again(app):
    target = await program(app, "900165")  # «Подготовка к школе «Почемучка»»
    chat = ChatClient(app.engine)
    await chat.send("/start")
    await chat.send("Записаться", payload=f"req:new:{target.id}")
    await chat.press("Согласен(на)")
    assert "Запись на программу: Подготовка к школе «Почемучка». Сначала" in chat.text
    await chat.send("Иванова Мария")
    await chat.send(born_years_ago(6).strftime("%d.%m.%Y"))
    await chat.press("Пропустить")
    await chat.send("89123456789")
    await chat.press("Без комментария")
    await chat.press("Отправить заявку")
    assert "Заявка №1 отправлена.\nПрограмма: Подготовка к школе «Почемучка»" in chat.text
    for reply in chat.history:
        assert "««" not in reply.text and "»»" not in reply.text, reply.text


async def test_addresses_name_the_city_once(terminal: Terminal):
    await search(terminal, "радиоэлектроник")
    assert "город Ставрополь, ул. Школьная, 77" in terminal.text
    assert "Ставрополь, Ставрополь" not in terminal.text
    await search(terminal, "Почемучка")
    # a district's own town stays, and names the district without its name in front
    assert "\nКурсавка, ул. Советская, 62" in terminal.text
    assert "Андроповский муниципальный округ, Курсавка" not in terminal.text
