"""Region data a parent relies on: every municipality has its confirmation points or the
profile's stated fallback to the regional centre, every published fact names its source,
the contacts give the municipal line where one is known, addresses name a place once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from handlers.places import address_line, place_key
from storage.models import User
from tests.chat import ChatClient
from tests.cli import navbot
from tests.guided import profile_with, profile_with_points, region_app
from texts import REGIONS_DIR, TextsError, available_regions, load_region

SHIPPED = {"stavropol": 33, "tomsk": 20}

MUNICIPAL_HOTLINE = """
[municipalities.hotline]
name = "Муниципальный опорный центр (тестовый)"
phone = "8 (8793) 00-00-07"
email = "moc@example.org"
hours = "пн–пт 9:00–17:00"
source = "https://example.org/pyatigorsk/moc"
found = 2026-12-02
"""


def test_both_shipped_regions_are_checked():
    assert set(SHIPPED) <= set(available_regions())


@pytest.mark.parametrize("region_id", sorted(SHIPPED))
def test_every_municipality_has_points_or_the_stated_regional_fallback(region_id):
    region = load_region(region_id)
    assert len(region.municipalities) == SHIPPED[region_id]
    assert region.hotline_phone.strip(), "the fallback contact itself must exist"
    for municipality in region.municipalities:
        assert municipality.confirmation_points or municipality.regional_fallback, municipality.id
        assert municipality.hotline or municipality.regional_fallback, municipality.id
        if municipality.regional_fallback:
            assert isinstance(municipality.fallback_searched, dt.date), municipality.id
        facts = [*municipality.confirmation_points, *filter(None, [municipality.hotline])]
        for fact in facts:
            assert fact.source.startswith(("https://", "http://")), (municipality.id, fact)
            assert isinstance(fact.found, dt.date), (municipality.id, fact)


def test_no_stavropol_contact_is_in_the_tomsk_profile():
    stavropol, tomsk = load_region("stavropol"), load_region("tomsk")
    text = (REGIONS_DIR / "tomsk.toml").read_text("utf-8")
    for fact in (stavropol.hotline_phone, stavropol.hotline_email, "8652", "р26"):
        assert fact not in text, fact
    ids = {m.id for m in tomsk.municipalities}
    assert not {m.name for m in stavropol.municipalities} & {m.name for m in tomsk.municipalities}
    assert "stavropol" not in ids


def _broken(tmp_path, old: str, new: str) -> TextsError:
    directory = profile_with_points(tmp_path / "profiles")
    path = directory / "tomsk.toml"
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")
    with pytest.raises(TextsError) as error:
        load_region("tomsk", directory)
    return error.value


def test_a_point_without_its_source_stops_the_start(tmp_path):
    error = _broken(tmp_path, 'source = "https://example.org/tomsk/points"\n', "")
    assert "municipality 'tomsk', point #1: needs source" in str(error)


def test_a_point_whose_source_is_not_an_address_stops_the_start(tmp_path):
    error = _broken(
        tmp_path, 'source = "https://example.org/tomsk/points"', 'source = "сайт управления"'
    )
    assert "point #1: 'source' must be the address" in str(error)


def test_a_point_without_the_day_it_was_found_stops_the_start(tmp_path):
    error = _broken(tmp_path, "found = 2026-12-02\n", "")
    assert "point #1: needs found" in str(error)


def test_a_municipality_with_neither_points_nor_fallback_stops_the_start(tmp_path):
    old = 'aliases = ["Асино", "Асиновский"]\nfallback = "regional"\n'
    error = _broken(tmp_path, old, 'aliases = ["Асино", "Асиновский"]\n')
    assert "municipality 'asinovsky': has no confirmation points and a hotline" in str(error)
    assert 'fallback = "regional"' in str(error)


def test_a_municipal_hotline_without_a_source_stops_the_start(tmp_path):
    tables = MUNICIPAL_HOTLINE.replace('source = "https://example.org/pyatigorsk/moc"\n', "")
    directory = profile_with(tmp_path / "p", "stavropol", "pyatigorsk", tables)
    with pytest.raises(TextsError, match="municipality 'pyatigorsk', hotline: needs source"):
        load_region("stavropol", directory)


def test_the_old_bare_hotline_phone_key_is_refused_with_the_new_form_named(tmp_path):
    directory = profile_with(tmp_path / "p", "stavropol", "pyatigorsk", 'hotline_phone = "1"\n')
    with pytest.raises(TextsError, match=r"\[municipalities.hotline\] table"):
        load_region("stavropol", directory)


@pytest.mark.parametrize(
    ("municipality_id", "address", "shown"),
    [
        # The observed fault: the city twice.
        ("stavropol", "город Ставрополь, Ставрополь, ул. Садовая", "город Ставрополь, ул. Садовая"),
        ("stavropol", "Ставрополь, ул. Школьная, 77", "город Ставрополь, ул. Школьная, 77"),
        ("stavropol", "г. Ставрополь, ул. Ленина, 3", "город Ставрополь, ул. Ленина, 3"),
        ("stavropol", "ул. Садовая, 1", "город Ставрополь, ул. Садовая, 1"),
        ("pyatigorsk", "Пятигорск, пр-т Победы, 22", "город-курорт Пятигорск, пр-т Победы, 22"),
        # A district's centre named by its short name: the district is not put in front.
        ("shpakovsky", "г. Михайловск, ул. Ленина, 1", "г. Михайловск, ул. Ленина, 1"),
        (
            "aleksandrovsky",
            "с. Александровское, с. Александровское, ул. Ленина, 1",
            "с. Александровское, ул. Ленина, 1",
        ),
        ("aleksandrovsky", "ул. Ленина, 1", "Александровский муниципальный округ, ул. Ленина, 1"),
        # «Ставропольская» street is not the city of Ставрополь.
        ("stavropol", "ул. Ставропольская, 5", "город Ставрополь, ул. Ставропольская, 5"),
        ("stavropol", "", "город Ставрополь"),
    ],
)
def test_addresses_name_the_place_once(municipality_id, address, shown):
    municipality = load_region("stavropol").municipality(municipality_id)
    assert address_line(address, municipality) == shown


def test_place_keys_ignore_the_kind_of_place_but_not_the_name():
    assert place_key("г. Ставрополь") == place_key("город Ставрополь") == place_key("Ставрополь")
    assert place_key("ст-ца Ессентукская") == "ессентукская"
    assert place_key("Садовая") == "садовая"  # «с» at the start of a name is not «село»
    assert address_line("Москва, Москва, ул. Тверская, 1") == "Москва, ул. Тверская, 1"


async def test_the_catalogue_card_names_the_city_once(chat: ChatClient):
    await chat.send("/start")
    await chat.press("Найти кружок")
    await chat.press("Муниципалитет")
    await chat.send("Невинномысск")
    await chat.press("Показать")
    assert "город Невинномысск, ул." in chat.text
    assert "Невинномысск, Невинномысск" not in chat.text
    assert "город Невинномысск, город Невинномысск" not in chat.text


async def test_contacts_without_a_municipality_give_the_regional_centre_and_ask_for_one(
    chat: ChatClient, app
):
    await chat.send("/start")
    await chat.press("Контакты горячей линии")
    assert "Региональный модельный центр Ставропольского края\nТелефон: 8 (8652) 34-99-07" in (
        chat.text
    )
    assert "rmc126@mail.ru" in chat.text
    assert "Укажите ваш муниципалитет" in chat.text
    await chat.press("Указать муниципалитет")
    assert "страница 1 из 5" in chat.text
    await chat.press("Ещё")
    await chat.press("Георгиевский городской округ")
    # No municipal line is published: the fallback is said, not left silent.
    assert "Своей горячей линии муниципалитета «Георгиевский городской округ»" in chat.text
    assert "8 (8652) 34-99-07" in chat.text
    async with app.db.session() as session:
        assert (await session.scalar(select(User))).municipality_id == "georgievsky"


async def test_contacts_give_the_municipal_hotline_where_the_profile_has_one(settings, tmp_path):
    directory = profile_with(tmp_path / "p", "stavropol", "pyatigorsk", MUNICIPAL_HOTLINE)
    async with region_app(settings, "stavropol", directory) as app:
        chat = ChatClient(app.engine)
        await chat.send("/start")
        await chat.press("Мой муниципалитет")
        await chat.send("Пятигорск")
        await chat.press("Контакты горячей линии")
        text = chat.text
        assert "Ваш муниципалитет — город-курорт Пятигорск:" in text
        assert "Муниципальный опорный центр (тестовый): 8 (8793) 00-00-07" in text
        assert "moc@example.org" in text and "пн–пт 9:00–17:00" in text
        assert "8 (8652) 34-99-07" in text  # the regional centre stays first
        assert "Укажите ваш муниципалитет" not in text
        # The hotline question in free text is answered with the same municipal line
        # (the words alone, «телефон горячей линии», open the contacts screen itself).
        await chat.press("В меню")
        await chat.send("какой телефон у горячей линии?")
        assert "8 (8652) 34-99-07" in chat.text
        assert "Муниципальный опорный центр (тестовый): 8 (8793) 00-00-07" in chat.text
        await chat.press("Контакты горячей линии")
        assert "8 (8793) 00-00-07" in chat.text


async def test_the_hotline_question_asks_for_the_municipality_or_says_the_fallback(
    chat: ChatClient,
):
    await chat.send("/start")
    await chat.send("дайте номер телефона горячей линии")
    assert "Региональный модельный центр Ставропольского края: 8 (8652) 34-99-07" in chat.text
    assert "укажите муниципалитет" in chat.text
    assert "Контакты горячей линии" in chat.labels
    await chat.press("В меню")
    await chat.press("Мой муниципалитет")
    await chat.send("Ессентуки")
    await chat.send("дайте номер телефона горячей линии")
    assert "Своей горячей линии муниципалитета «город-курорт Ессентуки»" in chat.text
    assert "укажите муниципалитет" not in chat.text


async def test_tomsk_contacts_carry_no_stavropol_fact(settings):
    async with region_app(settings, "tomsk") as app:
        chat = ChatClient(app.engine)
        await chat.send("/start")
        await chat.press("Контакты горячей линии")
        await chat.press("Указать муниципалитет")
        await chat.press("город Томск")
        text = chat.text
        assert "Региональный модельный центр Томской области" in text
        assert "8 (3822) 90-86-10" in text
        assert "«город Томск» в открытых источниках нет" in text
        for fact in ("8652", "rmc126", "Ставрополь", "р26"):
            assert fact not in text, fact


def test_the_terminal_shows_a_real_address_where_listed_and_the_fallback_elsewhere(tmp_path):
    directory = profile_with_points(tmp_path / "profiles")
    config = tmp_path / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[bot]",
                f'data_dir = "{tmp_path / "data"}"',
                'region = "tomsk"',
                f'regions_dir = "{directory}"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    script = "/start\nПодтверждение данных ребёнка\nКуда идти\nТомск\nДругой муниципалитет\nАсино\n"
    result = navbot("console", stdin=script, cwd=tmp_path, env={"NAVBOT_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Центр «Пример» (тестовый)\nАдрес: город Томск, ул. Примерная, д. 1" in out
    assert "Часы работы: пн–пт 9:00–18:00" in out
    assert "На карте: https://yandex.ru/maps/?text=" in out
    after = out[out.index("Асиновский район") :]
    assert "в открытых источниках не опубликованы" in after
    assert "8 (3822) 90-86-10" in after
    assert after.count("муниципальный орган управления образованием") == 1
    assert "8652" not in out and "Управление сертификатом" not in out
