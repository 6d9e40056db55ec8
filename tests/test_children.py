"""Consent before anything about a child is stored, and the child's profile, every field
validated, nothing lost on a wrong answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from handlers.children import clean_name, parse_date
from storage.models import Child, Consent, EnrollmentRequest
from tests.chat import ChatClient
from tests.enrollment import born_years_ago, program, start_request, today
from texts import available_regions, load_region
from texts.consent import load_consent


async def count(app, model) -> int:
    async with app.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_without_consent_nothing_is_stored_and_no_request_can_be_left(chat: ChatClient, app):
    target = await program(app, "900000")
    await chat.send("/start")
    await start_request(chat, target.id)
    assert "Согласие на обработку персональных данных" in chat.text
    assert "152-ФЗ" in chat.text
    await chat.press("Не согласен(на)")
    assert "без согласия я ничего не сохраняю" in chat.text

    await chat.press("Мои дети и данные")
    assert "Согласие на обработку персональных данных: не дано" in chat.text
    await chat.press("Добавить ребёнка")
    assert "Согласие на обработку персональных данных" in chat.text  # asked again, not skipped
    await chat.send("Иванова Мария")  # typed instead of answering: no name step is active
    assert await count(app, Child) == 0
    assert await count(app, Consent) == 0
    assert await count(app, EnrollmentRequest) == 0

    # Reading the catalogue still works.
    await chat.send("/menu")
    await chat.press("Найти кружок")
    await chat.press("Показать")
    assert "Нашёл 198 кружков" in chat.text


async def test_consent_is_stored_with_the_text_version_and_time(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")
    assert "согласие сохранено" in chat.text
    assert "Напишите фамилию, имя и отчество ребёнка" in chat.text
    async with app.db.session() as session:
        consent = await session.scalar(select(Consent))
    assert consent.text_version == load_consent("stavropol").version == "stavropol-2026-11-23"
    assert consent.region == "stavropol"
    given = consent.given_at.replace(tzinfo=consent.given_at.tzinfo or UTC)
    assert abs((datetime.now(UTC) - given).total_seconds()) < 60


async def test_child_profile_with_every_invalid_input_tried(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")

    await chat.send("   ")
    assert "Я не вижу имени" in chat.text
    await chat.send("Мария")
    assert "Нужны хотя бы фамилия и имя" in chat.text
    await chat.send("Иванова Мария 2")
    assert "только буквы, пробел и дефис" in chat.text
    await chat.send("x" * 60 + " " + "y" * 60)
    assert "не длиннее 100 символов" in chat.text
    await chat.send("иванова-петрова  мария сергеевна")
    assert "Дата рождения ребёнка (Иванова-Петрова Мария Сергеевна)?" in chat.text

    await chat.send("пятое марта")
    assert "Не понял дату" in chat.text and "Иванова-Петрова Мария Сергеевна" in chat.text
    await chat.send("31.02.2015")
    assert "Не понял дату" in chat.text
    tomorrow = today() + timedelta(days=1)
    await chat.send(tomorrow.strftime("%d.%m.%Y"))
    assert "Эта дата ещё не наступила" in chat.text
    await chat.send(born_years_ago(4).strftime("%d.%m.%Y"))
    assert "По этой дате ребёнку 4 года" in chat.text and "от 5 до 17 лет" in chat.text
    await chat.send(born_years_ago(18).strftime("%Y-%m-%d"))
    assert "По этой дате ребёнку 18 лет" in chat.text
    born = born_years_ago(9)
    await chat.send(f"{born.day}.{born.month}.{born.year}")  # 5.3.2015: no leading zeros
    assert "Номер сертификата" in chat.text

    await chat.send("12-AB")
    assert "только цифры, от 6 до 20" in chat.text
    await chat.send("1234 5678 90")
    assert "Сохранил: Иванова-Петрова Мария Сергеевна" in chat.text
    assert "У вас 1 ребёнок" in chat.text and "9 лет" in chat.text

    async with app.db.session() as session:
        child = await session.scalar(select(Child))
    assert (child.full_name, child.birth_date, child.certificate_number) == (
        "Иванова-Петрова Мария Сергеевна",
        born,
        "1234567890",
    )


async def test_several_children_and_age_5_and_17_accepted(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")
    for name, years in (("Петров Иван", 5), ("Петрова Анна", 17)):
        await chat.send(name)
        await chat.send(born_years_ago(years, days=0).strftime("%d.%m.%Y"))
        await chat.press("Пропустить")
        assert f"Сохранил: {name}" in chat.text
        if years == 5:
            await chat.press("Добавить ребёнка")  # consent is not asked twice
            assert "Напишите фамилию" in chat.text
    assert "У вас 2 ребёнка" in chat.text
    assert "Петров Иван" in chat.text and "(5 лет)" in chat.text
    assert "Петрова Анна" in chat.text and "(17 лет)" in chat.text
    assert await count(app, Child) == 2


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("05.03.2015", (2015, 3, 5)), ("5.3.2015", (2015, 3, 5)), ("2015-03-05", (2015, 3, 5)),
     ("05/03/2015", (2015, 3, 5)), ("5 3 2015", (2015, 3, 5)), ("05.03.15", (2015, 3, 5)),
     ("30.02.2015", None), ("2015", None), ("", None)],
)  # fmt: skip
def test_dates_are_understood_in_many_forms(typed, expected):
    parsed = parse_date(typed)
    assert (parsed.year, parsed.month, parsed.day) == expected if expected else parsed is None


def test_names_are_tidied_and_checked():
    assert clean_name("  петров   пётр ") == ("Петров Пётр", "")
    assert clean_name("ИВАНОВА-ПЕТРОВА мария") == ("Иванова-Петрова Мария", "")
    assert clean_name("Петров_Пётр")[0] is None


async def test_a_new_consent_text_version_is_asked_for_again(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")
    async with app.db.session() as session:
        consent = await session.scalar(select(Consent))
        consent.text_version = "stavropol-2020-01"  # given to an older text
    await chat.press("Отменить")
    assert "Согласие на обработку персональных данных: не дано" in chat.text
    await chat.press("Добавить ребёнка")
    assert "152-ФЗ" in chat.text
    await chat.press("Согласен(на)")
    async with app.db.session() as session:
        versions = sorted((await session.scalars(select(Consent.text_version))).all())
    assert versions == ["stavropol-2020-01", "stavropol-2026-11-23"]


async def test_stored_children_are_offered_as_ages_in_the_search(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мои дети и данные")
    await chat.press("Добавить ребёнка")
    await chat.press("Согласен(на)")
    await chat.send("Петров Иван")
    await chat.send(born_years_ago(11).strftime("%d.%m.%Y"))
    await chat.press("Пропустить")
    await chat.press("В меню")
    await chat.press("Найти кружок")
    await chat.press("Возраст")
    await chat.press("Иван, 11 лет")
    assert "Возраст ребёнка: 11 лет" in chat.text


@pytest.mark.parametrize("region_id", available_regions())
def test_every_region_has_a_versioned_consent_text(region_id):
    consent = load_consent(region_id)
    assert consent.version.startswith(region_id)
    assert "152-ФЗ" in consent.text and "/delete_my_data" in consent.text
    region = load_region(region_id)
    # The operator is the region's own centre, and no other region is named.
    assert f"Кто обрабатывает: {region.hotline_name}." in consent.text
    for other in available_regions():
        if other != region_id:
            assert load_region(other).name_prepositional[:6] not in consent.text
    for part in ("Какие данные:", "Зачем:", "Сколько хранят: пока вы их не удалите"):
        assert part in consent.text
