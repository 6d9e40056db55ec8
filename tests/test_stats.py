"""The statistics page: real conversations through the engine, then every chart's numbers
(its CSV, the same numbers as its table) checked against counts computed directly from
the database with SQL of their own; counted live, and again after the ticker's rollup.
Staff only; the deep-link maker validates the source."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from storage.stats import rollup
from tests.chat import ChatClient
from tests.enrollment import full_request, program
from tests.staff import OPERATOR_PASSWORD, Served, StaffClient, create_accounts

ZONE = ZoneInfo("Europe/Moscow")


@pytest.fixture
async def console(app):
    await create_accounts(app)
    served = Served(app)
    await served.start()
    client = StaffClient(served.base)
    status, _ = await client.signin("oper", OPERATOR_PASSWORD)
    assert status == 303
    yield client
    await client.close()
    await served.stop()


async def conversations(app) -> None:
    """Three parents: one walks the registration through and confirms the data, one stops
    at step 3 and asks questions, one comes from a VK-style ref and files a request."""
    first = ChatClient(app.engine, channel="telegram", user_id="501")
    await first.send("/start school12")
    await first.send(payload="reg")
    for n in range(1, 9):
        await first.send(payload=f"reg:next:{n}")
    assert "registration" not in first.text
    await first.send(payload="reg:back:8")  # going back counts nothing again
    await first.send(payload="confirm:done")

    second = ChatClient(app.engine, channel="telegram", user_id="502")
    await second.send("/start")
    await second.send(payload="reg")
    await second.send(payload="reg:next:1")
    await second.send(payload="reg:next:2")
    await second.send("/menu")
    await second.send("Как получить сертификат дополнительного образования?")
    await second.send("зелёный слон играет на трубе")
    await second.send("Позвать специалиста", payload="person:faq")

    third = ChatClient(app.engine, channel="vk", user_id="503")
    await third.send("/start poster-mfc")
    target = await program(app, "900000")
    await full_request(third, target.id)
    await third.press("Отправить")
    await third.send(payload="remind:stop")


async def csv_of(console: StaffClient, chart: str, **period: str) -> list[list[str]]:
    async with console.http.get(f"{console.base}/stats/{chart}.csv", params=period) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/csv")
        body = (await r.read()).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body), delimiter=";"))


async def sql(app, statement: str, **params) -> list[tuple]:
    async with app.db.session() as session:
        return [tuple(row) for row in (await session.execute(text(statement), params)).all()]


async def expected(app) -> dict[str, dict[str, int]]:
    """Each chart's totals, from the rows themselves."""
    out: dict[str, dict[str, int]] = {}
    rows = await sql(
        app,
        "SELECT u.channel, count(*) FROM transcript t JOIN users u ON u.id = t.user_id "
        "WHERE t.direction = 'in' GROUP BY u.channel",
    )
    out["messages"] = {channel: n for channel, n in rows}
    rows = await sql(
        app,
        "SELECT u.channel, count(DISTINCT t.user_id) FROM transcript t "
        "JOIN users u ON u.id = t.user_id WHERE t.direction = 'in' GROUP BY u.channel",
    )
    out["parents"] = {channel: n for channel, n in rows}  # one day: distinct over the day
    rows = await sql(
        app, "SELECT detail, count(*) FROM events WHERE kind = 'reg_step' GROUP BY detail"
    )
    out["funnel"] = dict(rows)
    rows = await sql(app, "SELECT count(*) FROM users WHERE data_confirmed_at IS NOT NULL")
    out["confirmations"] = {"all": rows[0][0]}
    rows = await sql(
        app,
        "SELECT p.municipality_id, r.status, count(*) FROM enrollment_requests r "
        "JOIN programs p ON p.id = r.program_id GROUP BY p.municipality_id, r.status",
    )
    out["requests"] = {f"{m}/{s}": n for m, s, n in rows}
    rows = await sql(
        app, "SELECT detail, count(*) FROM events WHERE kind = 'reminder' GROUP BY detail"
    )
    out["reminders"] = dict(rows)
    rows = await sql(app, "SELECT outcome, count(*) FROM faq_unanswered GROUP BY outcome")
    out["faq_unanswered"] = dict(rows)
    rows = await sql(
        app,
        "SELECT count(*) FROM handoffs WHERE reason IN ('faq_unknown', 'faq_person')",
    )
    out["faq_person"] = {"all": rows[0][0]}
    rows = await sql(
        app, "SELECT coalesce(source, ''), count(*) FROM users GROUP BY coalesce(source, '')"
    )
    out["sources"] = dict(rows)
    return out


def total_row(table: list[list[str]]) -> list[int]:
    return [sum(int(row[i]) for row in table[1:]) for i in range(1, len(table[0]))]


async def check_charts(app, console: StaffClient) -> None:
    want = await expected(app)
    period = {"days": "7"}

    table = await csv_of(console, "messages", **period)
    assert table[0][0] == "День" and table[0][-1] == "Всего"
    names = {"Telegram": "telegram", "ВКонтакте": "vk"}
    got = dict(zip((names[h] for h in table[0][1:-1]), total_row(table)[:-1], strict=True))
    assert got == want["messages"]
    table = await csv_of(console, "parents", **period)
    got = dict(zip((names[h] for h in table[0][1:-1]), total_row(table)[:-1], strict=True))
    assert got == want["parents"] == {"telegram": 2, "vk": 1}

    table = await csv_of(console, "funnel", **period)
    counts = [int(row[1]) for row in table[1:]]
    assert counts == [
        want["funnel"].get(step, 0)
        for step in ["start", *(f"s{n}" for n in range(1, 9)), "finished"]
    ]
    assert counts[0] == 2 and counts[-1] == 1 and counts[3] == 2 and counts[4] == 1
    assert table[1][2] == "100%" and table[-1][2] == "50%"

    table = await csv_of(console, "confirmations", **period)
    assert sum(int(row[1]) for row in table[1:]) == want["confirmations"]["all"] == 1

    table = await csv_of(console, "requests", **period)
    statuses = {"Новая": "new", "Принята": "accepted"}
    region = app.region
    got = {}
    for row in table[1:]:
        place = next(m.id for m in region.municipalities if m.name == row[0])
        for header, cell in zip(table[0][1:-1], row[1:-1], strict=True):
            if int(cell):
                got[f"{place}/{statuses.get(header, header)}"] = int(cell)
    assert got == want["requests"] and sum(got.values()) == 1

    table = await csv_of(console, "reminders", **period)
    got = {row[0]: int(row[1]) for row in table[1:]}
    assert got["Отказались от напоминаний"] == want["reminders"].get("opted_out", 0)
    assert got["Подтвердили данные после напоминания"] == want["reminders"].get("confirmed", 0)
    assert got["Доставлено"] == want["reminders"].get("sent", 0)

    table = await csv_of(console, "faq", **period)
    got = {row[0]: int(row[1]) for row in table[1:]}
    assert got["Бот не знал ответа"] == want["faq_unanswered"].get("unknown", 0) == 1
    assert got["Передано специалисту"] == want["faq_person"]["all"] == 1
    assert got["Бот ответил"] + got["Бот предложил варианты"] == 1

    table = await csv_of(console, "sources", **period)
    got = {row[0]: int(row[1]) for row in table[1:]}
    want_sources = {name or "без метки (пришли сами)": n for name, n in want["sources"].items()}
    assert got == want_sources == {"school12": 1, "poster-mfc": 1, "без метки (пришли сами)": 1}


async def test_each_chart_matches_the_database_live_and_after_the_rollup(app, console):
    await conversations(app)
    status, page = await console.get("/stats", days="7")
    assert status == 200
    assert page.count("Цифры таблицей") == 8 and page.count("<svg") >= 7
    await check_charts(app, console)
    # The ticker rolls today up once it is over: the same numbers, now from stats_daily.
    async with app.db.session() as session:
        days = await rollup(session, datetime.now(ZONE) + timedelta(days=1), ZONE)
    assert len(days) == 1
    async with app.db.session() as session:
        assert await rollup(session, datetime.now(ZONE) + timedelta(days=1), ZONE) == []
    await check_charts(app, console)
    stored = await sql(app, "SELECT count(*) FROM stats_daily WHERE metric LIKE 'e:%'")
    assert stored[0][0] > 0


async def test_periods_and_a_bad_period(app, console):
    for days in ("7", "30", "90", "365"):
        status, page = await console.get("/stats", days=days)
        assert status == 200 and 'aria-current="true"' in page
    status, page = await console.get("/stats", **{"from": "2026-01-01", "to": "2026-03-31"})
    assert status == 200 and "С 01.01.2026 по 31.03.2026" in page
    status, page = await console.get("/stats", **{"from": "2026-05-01", "to": "2026-01-01"})
    assert status == 200 and "Период не понят" in page


async def test_making_a_link_for_a_new_source(app, console):
    app.settings.telegram.bot_username = "navigator_bot"
    app.settings.vk.group_screen_name = "navigator26"
    await console.get("/stats")
    status, page = await console.post("/stats/link?days=30", {"source": "school_12"})
    assert status == 200
    assert "https://t.me/navigator_bot?start=school_12" in page
    assert "https://vk.me/navigator26?ref=school_12" in page
    for bad, message in (
        ("школа 12", "только из латинских букв"),
        ("", "Впишите метку"),
        ("x" * 65, "не длиннее 64"),
        ("ln_abc", "одноразовый код"),
    ):
        status, page = await console.post("/stats/link?days=30", {"source": bad})
        assert status == 400 and message in page, bad
    # No CSRF token: refused.
    status, _ = await console.post("/stats/link", {"source": "school_12"}, csrf="wrong")
    assert status == 403


async def test_only_signed_in_staff(app):
    served = Served(app)
    await served.start()
    client = StaffClient(served.base)
    try:
        status, _ = await client.get("/stats")
        assert status in (302, 303)
        status, _ = await client.get("/stats/messages.csv")
        assert status in (302, 303, 401, 403)
    finally:
        await client.close()
        await served.stop()


async def test_a_purge_after_the_rollup_does_not_count_the_days_again(app):
    from storage import retention

    await conversations(app)
    later = datetime.now(ZONE) + timedelta(days=3)
    async with app.db.session() as session:
        await rollup(session, later, ZONE)
    async with app.db.session() as session:
        before = await sql(app, "SELECT sum(value) FROM stats_daily WHERE metric = 'messages_in'")
        await retention.purge(session, later, 1, ZONE)
    rows = await sql(app, "SELECT count(*) FROM transcript")
    assert rows[0][0] == 0  # purged
    after = await sql(app, "SELECT sum(value) FROM stats_daily WHERE metric = 'messages_in'")
    assert after == before and before[0][0] > 0
