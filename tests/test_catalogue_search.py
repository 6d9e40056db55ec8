"""A parent searching the catalogue with buttons and words (the shipped sample is loaded)."""

from __future__ import annotations

from sqlalchemy import select

from storage.catalogue import Filters, keyword_matches, search
from storage.models import Program
from tests.chat import ChatClient
from tests.guided import region_app


async def test_search_by_municipality_age_and_direction(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Найти кружок")
    assert "Муниципалитет: Все муниципалитеты" in chat.text
    assert "Показать: 198 кружков" in chat.labels

    await chat.press("Муниципалитет")
    await chat.send("пятигорск")  # typed, lower case
    assert "Муниципалитет: город-курорт Пятигорск" in chat.text

    await chat.press("Возраст")
    await chat.send("четыре")
    assert "для детей от 5 до 17 лет, а вы написали: 4 года" in chat.text
    await chat.send("18")
    assert "от 5 до 17" in chat.text
    await chat.send("не знаю")
    assert "Не понял возраст" in chat.text
    await chat.send("10 лет")
    assert "Возраст ребёнка: 10 лет" in chat.text

    await chat.press("Направленность")
    await chat.press("Физкультурно-спортивная")
    assert "Направленность: Физкультурно-спортивная" in chat.text

    async with app.db.session() as session:
        expected = (
            await session.scalars(
                select(Program.title).where(
                    Program.municipality_id == "pyatigorsk",
                    Program.direction == "sports",
                    Program.age_from <= 10,
                    Program.age_to >= 10,
                )
            )
        ).all()
    assert expected, "the sample should hold such a program"
    await chat.press("Показать")
    for title in expected:
        assert title in chat.text
    assert "город-курорт Пятигорск" in chat.text
    assert "Подробнее в Навигаторе: https://р26.навигатор.дети/program/" in chat.text
    assert "Демонстрационная запись" in chat.text


async def test_funding_filter_shows_only_programs_paid_from_the_nominal(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.press("Оплата")
    await chat.press("ПФ (из номинала сертификата)")
    assert "Оплата: ПФ (из номинала сертификата)" in chat.text
    await chat.press("Показать")
    cards = [reply.text for reply in chat.replies if reply.text[:1].isdigit()]
    assert len(cards) == 5
    assert all("из номинала сертификата (ПФ), стоимость" in card for card in cards)
    assert all("₽" in card for card in cards)


async def test_results_are_paged_with_more(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.press("Направленность")
    await chat.press("Художественная")
    await chat.press("Показать")
    assert "Нашёл 33 кружка. Показываю 1–5:" in chat.text
    assert "Страница 1 из 7." in chat.text
    first_page = chat.text
    await chat.press("Ещё")
    assert "Показываю 6–10:" in chat.text and "Страница 2 из 7." in chat.text
    assert chat.text != first_page
    assert "Записаться на №6" in chat.labels


async def test_keyword_with_a_typo_and_a_word_form_finds_the_program(chat: ChatClient, app):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.press("Слово для поиска")
    await chat.send("робототехнику")
    assert "Робототехника для начинающих" in chat.text
    await chat.press("Изменить поиск")
    await chat.press("Слово для поиска")
    await chat.send("шохматы")
    assert "Шахматы" in chat.text
    assert "Робототехника" not in chat.text


async def test_nothing_found_suggests_removing_conditions(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.press("Слово для поиска")
    await chat.send("квантовая хромодинамика")
    assert "ничего не нашлось" in chat.text
    assert "Изменить поиск" in chat.labels


async def test_free_text_on_a_button_screen_is_not_swallowed(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.send("как получить сертификат?")
    # No search step waits for text here: the question reaches the FAQ.
    assert "Зарегистрируйтесь в Навигаторе" in chat.text
    assert "ничего не нашлось" not in chat.text


def test_keyword_matching_rules():
    text = "робототехника для начинающих цдт радуга"
    assert keyword_matches("робототехнику", text)
    assert keyword_matches("роботатехника", text)  # a typo
    assert not keyword_matches("футбол", text)
    assert keyword_matches("", text)


async def test_search_query_filters_by_age_range(app):
    async with app.db.session() as session:
        ids = await search(session, Filters(age=5, direction="technical"))
        programs = (await session.scalars(select(Program).where(Program.id.in_(ids)))).all()
    assert programs and all(p.age_from <= 5 <= p.age_to for p in programs)


async def test_a_region_without_programs_sends_the_parent_to_its_navigator(settings):
    async with region_app(settings, "tomsk") as app:
        chat = ChatClient(app.engine)
        await chat.send("/start")
        await chat.press("Найти кружок")
        await chat.press("Показать: 0 кружков")
        assert "В моём каталоге пока нет кружков в Томской области" in chat.text
        assert "https://р70.навигатор.дети/" in chat.text
        assert "убрать часть условий" not in chat.text
        assert chat.labels == ["В меню"]
