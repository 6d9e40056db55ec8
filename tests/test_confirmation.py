"""Confirming the child's data: documents, points from the region profile, «I confirmed»,
and a region switch (packaged Tomsk, a profile kept outside the package) with no code change."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from bot.app import build_app
from bot.config import Settings
from handlers.confirmation import check_region
from storage.models import User
from tests.chat import ChatClient
from tests.guided import profile_with_points, region_app
from texts import TextsError, available_regions, load_region


async def open_confirmation(chat: ChatClient) -> None:
    await chat.send("/start")
    await chat.press("Подтверждение данных ребёнка")


async def test_why_and_which_documents(chat: ChatClient):
    await open_confirmation(chat)
    for fact in (
        "один раз, лично",
        "активировать",
        "свидетельство о рождении",
        "паспорт, если ребёнку 14 или больше",
        "СНИЛС ребёнка",
        "паспорт родителя",
        "подписать согласие на обработку персональных данных",
        "«Доступна оплата сертификатом»",
    ):
        assert fact in chat.text, fact


async def test_where_without_known_points_gives_the_regional_fallback_and_the_personal_account(
    chat: ChatClient, app
):
    await open_confirmation(chat)
    await chat.press("Куда идти")
    assert "В каком муниципалитете" in chat.text
    await chat.send("невинномыск")
    assert "«город Невинномысск», в открытых источниках не опубликованы" in chat.text
    assert "подскажет региональный центр:\nРегиональный модельный центр Ставропольского края" in (
        chat.text
    )
    assert "«Управление сертификатом» → «Инструкции»" in chat.text
    assert "https://р26.навигатор.дети/" in chat.text
    assert "8 (8652) 34-99-07" in chat.text and "rmc126@mail.ru" in chat.text
    assert "Контакты горячей линии" in chat.labels
    async with app.db.session() as session:
        assert (await session.scalar(select(User))).municipality_id == "nevinnomyssk"
    await chat.press("Другой муниципалитет")
    await chat.send("Михайловск")
    assert "«Шпаковский муниципальный округ», в открытых источниках не опубликованы" in chat.text


async def test_i_confirmed_is_stored_and_can_be_undone(chat: ChatClient, app):
    async def confirmed_at():
        async with app.db.session() as session:
            return (await session.scalar(select(User))).data_confirmed_at

    await open_confirmation(chat)
    await chat.press("Я подтвердил(а) данные")
    assert "Напоминать о документах больше не буду" in chat.text
    assert "активируйте сертификат" in chat.text
    first = await confirmed_at()
    assert first is not None
    await open_confirmation(chat)
    assert "Вы отметили, что данные ребёнка подтверждены" in chat.text
    assert first.strftime("%d.%m.%Y") in chat.text
    await chat.press("Отменить: нажал(а) по ошибке")
    assert "Отметку убрал" in chat.text
    assert await confirmed_at() is None
    await chat.press("Я подтвердил(а) данные")
    assert await confirmed_at() is not None


async def test_points_from_a_profile_outside_the_package(settings, tmp_path):
    directory = profile_with_points(tmp_path / "profiles")
    async with region_app(settings, "tomsk", directory) as app:
        chat = ChatClient(app.engine)
        await open_confirmation(chat)
        await chat.press("Куда идти")
        await chat.send("Томск")
        text = chat.text
        assert "Где подтвердить данные — город Томск, 2 пункта:" in text
        assert "не опубликованы" not in text and "региональный центр" not in text
        assert "Центр «Пример» (тестовый)\nАдрес: город Томск, ул. Примерная, д. 1" in text
        assert "Часы работы: пн–пт 9:00–18:00" in text
        assert "Телефон: 8 (3822) 00-00-01" in text
        query = quote("Томская область, город Томск, ул. Примерная, д. 1", safe="")
        assert f"На карте: https://yandex.ru/maps/?text={query}" in text
        assert "Школа «Образец» (тестовая)\nАдрес: город Томск, пр. Условный, д. 2" in text
        assert "муниципальный орган управления образованием" in text  # the region's note
        # A municipality with no points in the same profile.
        await chat.press("Другой муниципалитет")
        await chat.send("Асино")
        assert "«Асиновский район», в открытых источниках не опубликованы" in chat.text
        assert "8 (3822) 90-86-10" in chat.text  # the regional centre, the stated fallback
        assert "8 (3822) 90-20-67" in chat.text  # ТОИПКРО technical support
        assert "Центр «Пример»" not in chat.text


async def test_switching_to_the_packaged_tomsk_profile_changes_urls_phones_and_places(settings):
    async with region_app(settings, "tomsk") as app:
        chat = ChatClient(app.engine)
        await chat.send("/help")
        assert "https://р70.навигатор.дети/" in chat.text and "8 (3822) 90-86-10" in chat.text
        await chat.press("В меню")
        await chat.press("Регистрация в Навигаторе")
        assert "https://р70.навигатор.дети/" in chat.text
        assert "р26" not in chat.text and "navigatordeti" not in chat.text
        await chat.press("Не получается")
        await chat.press("Другая проблема")
        assert "Региональный модельный центр Томской области: 8 (3822) 90-86-10" in chat.text
        assert "Техническая поддержка ТОИПКРО: 8 (3822) 90-20-67" in chat.text
        assert "8652" not in chat.text
        await chat.press("В меню")
        await chat.press("Подтверждение данных ребёнка")
        await chat.press("Куда идти")
        await chat.send("Ставрополь")
        assert "Не нашёл «Ставрополь»" in chat.text
        await chat.send("Колпашево")
        assert "«Колпашевский район», в открытых источниках не опубликованы" in chat.text
        # The explanation of who names the organisations is given once, not twice.
        assert chat.text.count("муниципальный орган управления образованием") == 1
        assert "8 (3822) 90-86-10" in chat.text
        for fact in ("Управление сертификатом", "8652", "rmc126", "Ставрополь", "р26"):
            assert fact not in chat.text, fact


@pytest.mark.parametrize("region_id", available_regions())
def test_packaged_profiles_have_well_formed_points(region_id):
    check_region(load_region(region_id))


def test_a_malformed_point_stops_the_start_with_the_place_named(tmp_path):
    settings = Settings(bot={"data_dir": tmp_path / "data"})
    directory = profile_with_points(tmp_path / "profiles")
    path = directory / "tomsk.toml"
    path.write_text(
        path.read_text("utf-8").replace('address = "г. Томск, пр. Условный, д. 2"\n', "", 1),
        "utf-8",
    )
    bot = settings.bot.model_copy(update={"region": "tomsk", "regions_dir": directory})
    with pytest.raises(TextsError) as error:
        build_app(settings.model_copy(update={"bot": bot}))
    assert "municipality 'tomsk', point #2: needs address" in str(error.value)
