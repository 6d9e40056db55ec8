"""The certificate explained: topics, every status, and the three-question check."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.models import User
from tests.chat import ChatClient
from tests.guided import region_app

URL = "https://р26.навигатор.дети/"
HOTLINE = "8 (8652) 34-99-07"


async def open_certificate(chat: ChatClient, topic: str) -> None:
    await chat.send("/start")
    await chat.press("Сертификат: что это и как получить")
    await chat.press(topic)


async def test_what_it_is_and_who_gets_it(chat: ChatClient):
    await open_certificate(chat, "Что это и кому положен")
    for fact in ("от 5 до 18 лет", "один раз", "до 18 лет", "не бумажный документ", URL):
        assert fact in chat.text
    assert "с 14 лет" in chat.text


async def test_two_kinds_and_the_nominal(chat: ChatClient):
    await open_certificate(chat, "Учёт и номинал")
    for fact in (
        "Сертификат учёта",
        "Сертификат с номиналом",
        "Доступна оплата сертификатом",
        # the region profile's own note
        "во всех муниципалитетах с 2021 года",
        "с 1 сентября 2021 года в пилотных муниципалитетах",
    ):
        assert fact in chat.text
    # short messages, the details of the nominal one press away
    assert all(len(reply.text) < 600 for reply in chat.replies)
    assert "не переносится на следующий год" not in chat.text
    await chat.press("Подробнее о номинале")
    for fact in (
        "не переносится на следующий год",
        "пополняется каждый год",
        "на календарный год",
        "оплатить самим",
    ):
        assert fact in chat.text


async def test_how_to_get_and_activate(chat: ChatClient):
    await open_certificate(chat, "Как получить и активировать")
    for fact in (URL, "Получить сертификат", "«Управление сертификатом» → «Инструкции»"):
        assert fact in chat.text
    assert "только один раз" in chat.text and "активировать" in chat.text
    await chat.press("Как зарегистрироваться")
    assert "Шаг 1 из 8" in chat.text


STATUSES = [
    ("Сертификата ещё нет", ["Получить сертификат", "от 5 до 18 лет"], "Как зарегистрироваться"),
    (
        "Данные не подтверждены",
        ["свидетельство о рождении", "паспорт", "СНИЛС ребёнка", "паспорт родителя", "Инструкции"],
        "Какие документы и куда идти",
    ),
    (
        "Подтверждены, не активирован",
        ["Активировать сертификат", "в учреждении", "Доступна оплата сертификатом"],
        "Какие документы и куда идти",
    ),
    ("Сертификат учёта", ["бесплатных кружках", "заявление на начисление номинала"], None),
    ("Сертификат с номиналом", ["блокируется", "«Договоры»", "пополняется каждый год"], None),
    ("Номинал израсходован", ["бесплатные кружки", "оплатить самим", "следующего года"], None),
]


@pytest.mark.parametrize(("label", "facts", "next_button"), STATUSES, ids=[s[0] for s in STATUSES])
async def test_each_status_says_what_it_means_and_what_to_do(
    chat: ChatClient, label, facts, next_button
):
    await open_certificate(chat, "Что значат статусы")
    assert "отличаются" in chat.text  # labels are described, not quoted as verified
    await chat.press(label)
    for fact in facts:
        assert fact in chat.text, fact
    if next_button:
        assert any(next_button in b for b in chat.labels), chat.labels
    assert "К статусам" in chat.labels
    if label == "Номинал израсходован":
        assert HOTLINE in chat.text and "Контакты горячей линии" in chat.labels


async def test_uchet_status_says_whether_the_parents_municipality_has_a_nominal(
    chat: ChatClient,
):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await chat.send("Шпаковский")
    await chat.press("Сертификат: что это и как получить")
    await chat.press("Что значат статусы")
    await chat.press("Сертификат учёта")
    assert "«Шпаковский муниципальный округ» выдают сертификаты с номиналом" in chat.text


async def test_check_with_a_typed_municipality_age_and_data_not_confirmed(chat: ChatClient, app):
    await open_certificate(chat, "Что подходит моему ребёнку")
    assert "В каком муниципалитете" in chat.text
    await chat.send("Пятигорк")
    assert "Сколько лет ребёнку" in chat.text
    await chat.send("пара лет")
    assert "Не понял возраст" in chat.text
    await chat.send("семь")
    await chat.press("Нет ещё")
    text = chat.text
    assert "город-курорт Пятигорск: здесь выдают сертификаты с номиналом (с 2021 года)" in text
    assert "Возраст (7 лет): подходит" in text and "от 5 до 18 лет" in text
    assert "СНИЛС ребёнка и паспорт родителя" in text
    async with app.db.session() as session:
        user = await session.scalar(select(User))
        assert user.municipality_id == "pyatigorsk" and user.data_confirmed_at is None


async def test_check_uses_the_chosen_municipality_and_records_confirmation(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Мой муниципалитет")
    await chat.send("Кисловодск")
    await chat.press("Сертификат: что это и как получить")
    await chat.press("Что подходит моему ребёнку")
    assert "Ваш муниципалитет — город-курорт Кисловодск. Верно?" in chat.text
    await chat.press("Да, верно")
    await chat.press("14–17 лет")
    await chat.press("Да, подтверждены")
    assert "(с 2023 года)" in chat.text
    assert "С 14 лет ребёнок может зарегистрироваться" in chat.text
    assert "активируйте" in chat.text and "напоминать о документах не буду" in chat.text
    async with app.db.session() as session:
        assert (await session.scalar(select(User))).data_confirmed_at is not None
    # Asked again, the confirmation question is skipped: the bot already knows.
    await chat.press("Другие вопросы о сертификате")
    await chat.press("Что подходит моему ребёнку")
    await chat.press("Да, верно")
    await chat.send("10")
    assert "Данные подтверждены" in chat.text and "3." not in chat.text


async def test_check_for_a_child_under_five_and_over_eighteen(chat: ChatClient):
    await open_certificate(chat, "Что подходит моему ребёнку")
    await chat.press("Не знаю")
    await chat.press("Младше 5")
    assert "минимальный возраст устанавливает муниципалитет" in chat.text
    assert "муниципальном опорном центре" in chat.text
    # The municipality is unknown, but in Stavropol krai every one issues nominals since 2023.
    assert "во всех муниципалитетах с 2023 года" in chat.text
    await chat.press("Другие вопросы о сертификате")
    await chat.press("Что подходит моему ребёнку")
    await chat.press("Не знаю")
    await chat.send("18")
    assert "только до 18 лет" in chat.text


async def test_check_offers_close_names_for_a_misspelt_municipality(chat: ChatClient):
    await open_certificate(chat, "Что подходит моему ребёнку")
    await chat.send("Лондон")
    assert "Не нашёл «Лондон»" in chat.text
    await chat.send("Невинномыск район")
    assert "Может быть, один из этих?" in chat.text
    await chat.press("город Невинномысск")
    assert "Сколько лет ребёнку" in chat.text


async def test_tomsk_check_sends_to_the_centre_when_the_nominal_is_unknown(settings):
    async with region_app(settings, "tomsk") as app:
        chat = ChatClient(app.engine)
        await open_certificate(chat, "Что подходит моему ребёнку")
        await chat.send("Северск")
        await chat.send("9")
        await chat.press("Не знаю")
        assert "ЗАТО Северск: выдают ли здесь сертификаты с номиналом, я не знаю" in chat.text
        assert "8 (3822) 90-86-10" in chat.text
        assert "Оформлен ли сертификат, подскажут в муниципальном опорном центре" in chat.text
        assert "лично, с документом ребёнка" in chat.text
        await chat.press("Другие вопросы о сертификате")
        await chat.press("Учёт и номинал")
        assert "пилотный регион с 2018 года" in chat.text
        assert "Ставрополь" not in chat.text


async def test_tomsk_parent_learns_the_certificate_is_issued_in_person_not_in_the_account(
    settings,
):
    async with region_app(settings, "tomsk") as app:
        chat = ChatClient(app.engine)
        await open_certificate(chat, "Как получить сертификат")
        for fact in (
            "Как получить сертификат в Томской области",
            "определяет муниципальный орган управления образованием",
            "свидетельством о рождении или паспортом, если ребёнку 14 или больше",
            "заявление и согласие на обработку персональных данных",
            "https://р70.навигатор.дети/",
        ):
            assert fact in chat.text, fact
        assert "Управление сертификатом" not in chat.text
        assert "Какие документы и куда идти" in chat.labels
        await chat.press("Другие вопросы о сертификате")
        await chat.press("Что значат статусы")
        await chat.press("Сертификата ещё нет")
        assert "Получить сертификат" not in chat.text
        assert "один раз лично прийти в организацию" in chat.text
        await chat.press("В меню")
        await chat.press("Регистрация в Навигаторе")
        for _ in range(7):
            await chat.press("Готово, дальше")
        assert "Шаг 8 из 8" in chat.text and "присвоят номер сертификата" in chat.text
        await chat.press("Готово, дальше")
        assert "оформите ребёнку сертификат" in chat.text
        assert "активировать" not in chat.text
