"""Export of requests (CSV / XLSX, by organisation, municipality, dates) and the whole
parent's path through the terminal channel run as a real process, with staff commands."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from openpyxl import load_workbook

from bot.catalogue_io import request_rows
from tests.chat import ChatClient
from tests.cli import navbot, write_config
from tests.enrollment import born_years_ago, full_request, program, today

HEADER = [
    "Номер заявки", "Дата подачи", "Статус", "Причина отказа", "ID программы в Навигаторе",
    "Программа", "Организация", "Муниципалитет", "ФИО ребёнка", "Дата рождения",
    "Номер сертификата", "Телефон", "Комментарий",
]  # fmt: skip


async def two_requests(app) -> tuple:
    stavropol, pyatigorsk = await program(app, "900000"), await program(app, "900001")
    assert (stavropol.municipality_id, pyatigorsk.municipality_id) == ("stavropol", "pyatigorsk")
    chat = ChatClient(app.engine)
    await chat.send("/start")
    await full_request(chat, stavropol.id, name="Орлов Глеб", years=12)
    await chat.press("Отправить заявку")
    await full_request(chat, pyatigorsk.id, name="Орлов Глеб", phone="89001112233")
    await chat.press("Отправить заявку")
    return stavropol, pyatigorsk


async def test_export_filters_by_municipality_organisation_and_dates(app):
    stavropol, pyatigorsk = await two_requests(app)
    rows = await request_rows(app.db, app.region, app.texts, municipality="Пятигорск")
    assert rows[0] == HEADER
    assert len(rows) == 2
    number, created, status, reason, nav_id, title, org, muni, child, birth, cert, phone, _ = rows[
        1
    ]
    assert (number, status, reason, nav_id, title, org, muni) == (
        "2", "новая", "", "900001", pyatigorsk.title, pyatigorsk.organisation,
        "город-курорт Пятигорск",
    )  # fmt: skip
    assert (child, birth, cert, phone) == (
        "Орлов Глеб",
        born_years_ago(12).strftime("%d.%m.%Y"),
        "",
        "+7 900 111-22-33",
    )
    assert created.startswith(today().isoformat())

    by_org = await request_rows(app.db, app.region, app.texts, organisation=stavropol.organisation)
    assert "900000" in [row[4] for row in by_org]
    assert all(row[6] == stavropol.organisation for row in by_org[1:])

    now = today()
    same_day = await request_rows(app.db, app.region, app.texts, date_from=now, date_to=now)
    later = await request_rows(app.db, app.region, app.texts, date_from=now + timedelta(days=1))
    earlier = await request_rows(app.db, app.region, app.texts, date_to=now - timedelta(days=1))
    assert [row[0] for row in same_day[1:]] == ["1", "2"]
    assert later == earlier == [HEADER]


async def test_cli_export_writes_csv_and_xlsx(app, settings, tmp_path, database):
    await two_requests(app)
    await app.close()
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config)}
    result = navbot("export-requests", "--municipality", "stavropol", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == HEADER and [row[4] for row in rows[1:]] == ["900000"]
    assert "1 request(s) exported" in result.stderr

    target = tmp_path / "requests.xlsx"
    day = today().isoformat()
    result = navbot("export-requests", "--from", day, "--to", day, "-o", str(target),
                    cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    sheet = load_workbook(target).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == HEADER and [row[0] for row in values[1:]] == ["1", "2"]

    bad = navbot("export-requests", "--from", "23.11.2026", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "expected a date as YYYY-MM-DD" in bad.stderr


def test_parent_in_the_terminal_searches_consents_requests_and_sees_the_staff_decision(
    tmp_path, database
):
    config = write_config(tmp_path, database)
    env = {"NAVBOT_CONFIG": str(config)}
    born = born_years_ago(12).strftime("%d.%m.%Y")
    script = "\n".join(
        [
            "/start",
            "Найти кружок",
            "Муниципалитет",
            "Ставрополь",
            "Слово для поиска",
            "радиоэлектроник",
            "Записаться на №1",
            "Согласен(на)",
            "",  # an empty line is not a message
            "Иванова",
            "Иванова Мария",
            (today() + timedelta(days=3)).strftime("%d.%m.%Y"),
            born_years_ago(4).strftime("%d.%m.%Y"),
            born_years_ago(18).strftime("%d.%m.%Y"),
            born,
            "Пропустить",
            "12-34",
            "8 912 345-67-89",
            "Без комментария",
            "Отправить заявку",
            "Мои заявки",
        ]
    )
    parent = navbot("console", stdin=script + "\n", cwd=tmp_path, env=env)
    assert parent.returncode == 0, parent.stderr
    out = parent.stdout
    assert "Муниципалитет: город Ставрополь" in out
    assert "1. Юный радиоэлектроник" in out
    assert "Подробнее в Навигаторе: https://р26.навигатор.дети/program/900000" in out
    assert "152-ФЗ" in out and "Спасибо, согласие сохранено." in out
    assert "Нужны хотя бы фамилия и имя" in out
    assert "Эта дата ещё не наступила" in out
    assert "По этой дате ребёнку 4 года" in out and "По этой дате ребёнку 18 лет" in out
    assert "Не похоже на российский номер" in out
    assert "Заявка №1 отправлена" in out
    assert "У вас 1 заявка:" in out and "Иванова Мария · новая" in out

    staff = navbot("request-status", "1", "rejected", cwd=tmp_path, env=env)
    assert staff.returncode == 2 and "a rejection needs a reason" in staff.stderr
    staff = navbot("request-status", "1", "accepted", cwd=tmp_path, env=env)
    assert staff.returncode == 0, staff.stderr
    assert staff.stdout.startswith("request 1: new -> accepted")

    again = navbot("console", stdin="/menu\nМои заявки\n", cwd=tmp_path, env=env)
    assert "Иванова Мария · принята организацией" in again.stdout
    assert "Отменить заявку №1" in again.stdout
