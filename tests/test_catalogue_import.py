"""Importing the program catalogue: the shipped sample, broken rows, the same file twice,
XLSX, and the sample loaded on an empty database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from bot.app import build_app
from bot.catalogue_io import SAMPLE_DIR, CatalogueFileError, import_programs, read_rows
from bot.config import Settings
from storage.models import DIRECTIONS, Program
from tests.cli import navbot, write_config

SAMPLE = SAMPLE_DIR / "stavropol.csv"
HEADER = (
    "navigator_id,title,organisation,municipality,address,direction,age_from,age_to,"
    "funding,price,schedule,places_left,url,sample"
)
GOOD = (
    "5001,Робототехника,ЦДТ «Тест»,Пятигорск,ул. Мира 1,technical,7,12,free,,пн 15:00,5,"
    "https://р26.навигатор.дети/program/5001,no"
)


def write_csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


async def count_programs(app) -> int:
    async with app.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Program))


@pytest.fixture
async def empty_app(settings: Settings):
    settings.catalogue.load_sample = False
    application = build_app(settings)
    await application.start()
    yield application
    await application.close()


async def test_sample_covers_every_municipality_and_direction(empty_app):
    report = await import_programs(empty_app.db, empty_app.region, empty_app.texts, SAMPLE)
    assert report.lines() == ["added 198, updated 0, unchanged 0, rejected 0"]
    async with empty_app.db.session() as session:
        programs = (await session.scalars(select(Program))).all()
    assert len(programs) >= 150
    assert {p.municipality_id for p in programs} == {m.id for m in empty_app.region.municipalities}
    assert {p.direction for p in programs} == set(DIRECTIONS)
    assert all(p.sample for p in programs)
    assert SAMPLE.read_text(encoding="utf-8").startswith("# Sample catalogue")


async def test_same_file_twice_changes_nothing_and_a_changed_row_is_updated(empty_app, tmp_path):
    path = write_csv(tmp_path / "c.csv", GOOD)
    first = await import_programs(empty_app.db, empty_app.region, empty_app.texts, path)
    second = await import_programs(empty_app.db, empty_app.region, empty_app.texts, path)
    assert first.summary() == "added 1, updated 0, unchanged 0, rejected 0"
    assert second.summary() == "added 0, updated 0, unchanged 1, rejected 0"

    write_csv(path, GOOD.replace(",5,https", ",0,https"))
    third = await import_programs(empty_app.db, empty_app.region, empty_app.texts, path)
    assert third.summary() == "added 0, updated 1, unchanged 0, rejected 0"
    async with empty_app.db.session() as session:
        program = await session.scalar(select(Program))
    assert (program.navigator_id, program.places_left, program.municipality_id) == (
        "5001",
        0,
        "pyatigorsk",
    )


async def test_broken_rows_are_rejected_with_line_and_reason_the_rest_imported(empty_app, tmp_path):
    url = "https://р26.навигатор.дети/program/"
    path = write_csv(
        tmp_path / "broken.csv",
        GOOD,
        f"5002,Танцы,ДДТ,Атлантида,,arts,7,12,free,,,,{url}5002,",
        f"5003,Танцы,ДДТ,Ставрополь,,dance,7,12,free,,,,{url}5003,",
        f"5004,Танцы,ДДТ,Ставрополь,,arts,12,7,free,,,,{url}5004,",
        f"5005,Танцы,ДДТ,Ставрополь,,arts,семь,12,free,,,,{url}5005,",
        f"5006,Танцы,ДДТ,Ставрополь,,arts,7,12,pf,,,,{url}5006,",
        f"5007,,ДДТ,Ставрополь,,arts,7,12,free,,,,{url}5007,",
        "5008,Танцы,ДДТ,Ставрополь,,arts,7,12,free,,,,ftp://x,",
        f"5001,Дубль,ДДТ,Ставрополь,,arts,7,12,free,,,,{url}5001,",
        f"5009,Танцы,ДДТ,Ставрополь,,Художественная,7,12,pf,1 500,,,{url}5009,",
    )
    report = await import_programs(empty_app.db, empty_app.region, empty_app.texts, path)
    assert report.lines() == [
        "added 2, updated 0, unchanged 0, rejected 8",
        "  line 3: rejected: unknown municipality 'Атлантида' in stavropol",
        "  line 4: rejected: unknown direction 'dance' (expected one of technical, science, "
        "sports, arts, tourism, social)",
        "  line 5: rejected: age_from 12 is greater than age_to 7",
        "  line 6: rejected: age_from must be a whole number, got 'семь'",
        "  line 7: rejected: price is empty",
        "  line 8: rejected: title is empty",
        "  line 9: rejected: url must start with https://, got 'ftp://x'",
        "  line 10: rejected: navigator_id 5001 repeats line 2",
    ]
    async with empty_app.db.session() as session:
        pf = await session.scalar(select(Program).where(Program.navigator_id == "5009"))
    assert (pf.direction, pf.funding, pf.price) == ("arts", "pf", 1500)


async def test_xlsx_with_a_title_line_above_the_header(empty_app, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["# Каталог программ"])
    sheet.append(HEADER.split(","))
    sheet.append([*GOOD.split(",")[:6], 7, 12, "pf", 1800.0, "сб", 3, GOOD.split(",")[12], ""])
    book.save(tmp_path / "c.xlsx")
    report = await import_programs(
        empty_app.db, empty_app.region, empty_app.texts, tmp_path / "c.xlsx"
    )
    assert report.summary() == "added 1, updated 0, unchanged 0, rejected 0"
    async with empty_app.db.session() as session:
        program = await session.scalar(select(Program))
    assert (program.age_from, program.price, program.places_left) == (7, 1800, 3)


def test_a_file_without_the_required_columns_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id;name\n1;x\n", encoding="utf-8")
    with pytest.raises(CatalogueFileError, match="missing column"):
        list(read_rows(path))


async def test_empty_catalogue_gets_the_sample_on_start_and_says_so(settings, caplog):
    caplog.set_level("INFO", logger="bot.catalogue_io")
    application = build_app(settings)
    try:
        await application.start()
        assert await count_programs(application) == 198
        assert "imported the sample catalogue" in caplog.text
        caplog.clear()
        await application.start()  # not empty any more: nothing imported again
        assert await count_programs(application) == 198
        assert "sample" not in caplog.text
    finally:
        await application.close()


async def test_sample_is_not_loaded_when_switched_off(empty_app):
    assert await count_programs(empty_app) == 0


def test_cli_import_reports_added_then_unchanged_and_broken_rows(tmp_path, database):
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config), "NAVBOT_CATALOGUE__LOAD_SAMPLE": "false"}
    first = navbot("import-programs", str(SAMPLE), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["added 198, updated 0, unchanged 0, rejected 0"]
    again = navbot("import-programs", str(SAMPLE), cwd=tmp_path, env=env)
    assert again.stdout.splitlines() == ["added 0, updated 0, unchanged 198, rejected 0"]

    broken = tmp_path / "broken.csv"
    with SAMPLE.open(encoding="utf-8") as source:
        rows = list(csv.reader(source))
    rows[3][6] = "-1"  # the third program (line 4): a negative age
    with broken.open("w", encoding="utf-8", newline="") as target:
        csv.writer(target).writerows(rows[1:])  # without the comment line: header is line 1
    result = navbot("import-programs", str(broken), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "added 0, updated 0, unchanged 197, rejected 1",
        "  line 3: rejected: age_from must be from 0 to 18, got -1",
    ]

    missing = navbot("import-programs", str(tmp_path / "nope.csv"), cwd=tmp_path, env=env)
    assert missing.returncode == 2
    assert "nope.csv: no such file" in missing.stderr
