"""The staff console over HTTP against the real aiohttp server, on SQLite and PostgreSQL:
every route needs a session and the right role, forms need the CSRF token, what a parent
typed is escaped and their personal data masked until unmasked (and audited), sign-in is
limited, requests change status and export safely, and Russian search finds word forms."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from yarl import URL

from bot.web.queries import ConversationFilters, conversations
from storage.models import (
    AuditEntry,
    EnrollmentRequest,
    StaffSession,
    TranscriptEntry,
    User,
    utcnow,
)
from tests.chat import ChatClient
from tests.enrollment import program, start_request
from tests.staff import (
    ADMIN_PASSWORD,
    OPERATOR_PASSWORD,
    Served,
    StaffClient,
    create_accounts,
)

PHONE = "+7 928 614-27-53"


@pytest.fixture
async def console(app):
    await create_accounts(app)
    served = Served(app)
    await served.start()
    yield served
    await served.stop()


@pytest.fixture
async def admin(console):
    client = StaffClient(console.base)
    status, _ = await client.signin("admin", ADMIN_PASSWORD)
    assert status == 303
    yield client
    await client.close()


@pytest.fixture
async def operator(console):
    client = StaffClient(console.base)
    status, _ = await client.signin("oper", OPERATOR_PASSWORD)
    assert status == 303
    yield client
    await client.close()


def console_routes(console) -> list[tuple[str, str, str]]:
    """(method, concrete path, access) of every route but static files and HEAD."""
    found = []
    for route in console.web_app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        info = route.resource.get_info()
        if "directory" in info:
            continue
        path = info.get("path") or re.sub(r"\{[^}]+\}", "1", info.get("formatter", ""))
        access = getattr(route.handler, "navbot_access", "admin")
        found.append((route.method, path, access))
    return found


async def parent_with_request(app, user_id: str = "5001", text: str = "") -> User:
    """A parent (terminal channel) who wrote `text`, then made a request with a phone."""
    chat = ChatClient(app.engine, channel="console", user_id=user_id)
    await chat.send("/start")
    if text:
        await chat.send(text)
    target = await program(app, "900000")
    await start_request(chat, target.id)
    if "Согласие на обработку" in chat.text:
        await chat.press("Согласен(на)")
    await chat.send("Иванова Мария Сергеевна")
    await chat.send("05.03.2014")
    await chat.press("Пропустить")
    await chat.send(PHONE)
    await chat.send('=HYPERLINK("http://evil.example","нажми")')
    await chat.press("Отправить заявку")
    async with app.db.session() as session:
        return await session.scalar(select(User).where(User.platform_user_id == user_id))


async def test_every_route_without_a_session_goes_to_sign_in(console):
    routes = console_routes(console)
    assert {"/conversations", "/requests", "/audit", "/accounts", "/requests/export"} <= {
        path for _, path, _ in routes
    }
    client = StaffClient(console.base)
    try:
        for method, path, access in routes:
            if access == "public":
                continue
            if method == "GET":
                status, _ = await client.get(path)
            else:
                status, _ = await client.post(path, {"status": "accepted"}, csrf="x")
            assert status == 303, (method, path, status)
            assert client.last.headers["Location"].startswith("/signin"), (method, path)
        public = {path for _, path, access in routes if access == "public"}
        assert public == {"/signin", "/healthz", "/metrics"}  # ops: for the probes
    finally:
        await client.close()


async def test_an_operator_is_refused_every_admin_route(console, operator):
    admin_routes = [(m, p) for m, p, access in console_routes(console) if access == "admin"]
    assert {("GET", "/audit"), ("GET", "/accounts"), ("POST", "/requests/export")} <= set(
        admin_routes
    )
    for method, path in admin_routes:
        if method == "GET":
            status, body = await operator.get(path)
        else:
            status, body = await operator.post(path, {"format": "csv", "login": "x"})
        assert status == 403, (method, path)
        assert "Недостаточно прав" in body
    status, body = await operator.get("/requests")
    assert status == 200 and "Выгрузить" not in body


async def test_a_post_without_the_sessions_csrf_token_is_refused(app, console, admin):
    parent = await parent_with_request(app)
    posts = [path for method, path, access in console_routes(console) if method == "POST"]
    posts = [p.replace("/1/", f"/{parent.id}/") if "conversations" in p else p for p in posts]
    for path in posts:
        if path == "/signin":
            continue
        for token in ("", "forged-token"):
            status, body = await admin.post(path, {"status": "accepted"}, csrf=token)
            assert status == 403, (path, token, status)
            assert "Форма устарела" in body
    async with app.db.session() as session:
        request = await session.scalar(select(EnrollmentRequest))
        unmasks = await session.scalar(select(AuditEntry).where(AuditEntry.action == "unmask"))
    assert request.status == "new" and unmasks is None
    # a sign-in form whose token is not its own cookie's is refused too
    other = StaffClient(console.base)
    try:
        status, _ = await other.post(
            "/signin", {"login": "admin", "password": ADMIN_PASSWORD}, csrf="forged"
        )
        assert status == 403 and SESSION_COOKIE_NAME not in other.http.cookie_jar.filter_cookies(
            URL(console.base)
        )
    finally:
        await other.close()


SESSION_COOKIE_NAME = "navbot_staff"


async def test_script_is_text_and_the_phone_shows_only_after_an_audited_unmask(
    app, console, operator
):
    parent = await parent_with_request(
        app, text=f"<script>alert('x')</script> Мой номер {PHONE}, пишите на mama@example.ru"
    )
    page = f"/conversations/{parent.id}"
    for path in ("/conversations", page, "/requests", "/requests/1"):
        status, body = await operator.get(path)
        assert status == 200, path
        assert "<script>" not in body and "alert('x')" not in body, path
        assert "614-27-53" not in body and "6142753" not in body, path
        assert "Иванова Мария" not in body and "05.03.2014" not in body, path
        assert "mama@example.ru" not in body, path
    _, body = await operator.get(page)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
    assert "+7 ••• •••-••-53" in body
    assert "Показать персональные данные" in body

    status, _ = await operator.post(f"{page}/unmask", {"back": page})
    assert status == 303
    _, body = await operator.get(page)
    assert PHONE in body and "Иванова Мария Сергеевна" in body and "05.03.2014" in body
    assert "mama@example.ru" in body and "<script>" not in body
    async with app.db.session() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "unmask"))
        )
    assert [(e.staff_login, e.user_id) for e in entries] == [("oper", parent.id)]

    # another member of staff still sees it masked
    other = StaffClient(console.base)
    try:
        await other.signin("admin", ADMIN_PASSWORD)
        _, body = await other.get(page)
        assert "614-27-53" not in body
        _, audit = await other.get("/audit", action="unmask")
        assert "Показаны персональные данные" in audit and "oper" in audit
    finally:
        await other.close()
    await operator.post(f"{page}/mask", {"back": page})
    _, body = await operator.get(page)
    assert "614-27-53" not in body


async def test_the_transcript_shows_authors_buttons_presses_and_delivery(app, console, operator):
    parent = await parent_with_request(app)
    async with app.db.session() as session:
        session.add_all(
            [
                TranscriptEntry(
                    user_id=parent.id,
                    direction="out",
                    text="Здравствуйте, это оператор.",
                    status="failed",
                    error="Forbidden: bot was blocked by the user",
                    kind="operator",
                    author="staff:oper",
                )
            ]
        )
    _, body = await operator.get(f"/conversations/{parent.id}")
    assert "Сотрудник oper" in body and "Родитель" in body and "Бот" in body
    assert "Нажата кнопка «Отправить заявку»" in body
    assert '<span class="btn">Пропустить</span>' in body
    assert "не доставлено" in body and "bot was blocked by the user" in body
    assert "Согласие на обработку данных" in body and "И••• М••• С•••" in body
    assert "/requests/1" in body


@pytest.mark.parametrize(
    "typed", ["Как получить сертификата номер", "СЕРТИФИКАТОМ воспользоваться"]
)
async def test_search_finds_other_word_forms(app, typed):
    async with app.db.session() as session:
        found, other = (
            User(channel="vk", platform_user_id="1", chat_id="1"),
            User(channel="vk", platform_user_id="2", chat_id="2"),
        )
        session.add_all([found, other])
        await session.flush()
        session.add_all(
            [
                TranscriptEntry(user_id=found.id, direction="in", text=typed),
                TranscriptEntry(
                    user_id=other.id, direction="in", text="Где найти программу для сына?"
                ),
            ]
        )
    zone = app.region.timezone
    from zoneinfo import ZoneInfo

    for query in ("сертификат", "Сертификаты", "сертификату"):
        async with app.db.session() as session:
            rows, _ = await conversations(
                session, ConversationFilters(q=query), ZoneInfo(zone), timedelta(hours=24)
            )
        assert [row.user.id for row in rows] == [found.id], query
        assert rows[0].snippet.text == typed
    async with app.db.session() as session:
        rows, _ = await conversations(
            session, ConversationFilters(q="программы"), ZoneInfo(zone), timedelta(hours=24)
        )
        assert [row.user.id for row in rows] == [other.id]
        # erasing a conversation takes it out of the search
        await session.execute(
            TranscriptEntry.__table__.delete().where(TranscriptEntry.user_id == other.id)
        )
        rows, _ = await conversations(
            session, ConversationFilters(q="программы"), ZoneInfo(zone), timedelta(hours=24)
        )
        assert rows == []


async def test_conversation_filters(app, console, operator):
    first = await parent_with_request(app, user_id="6001")
    chat = ChatClient(app.engine, channel="console", user_id="6002")
    await chat.send("/start")
    await chat.send("Какая погода на Марсе в четверг?")
    async with app.db.session() as session:
        second = await session.scalar(select(User).where(User.platform_user_id == "6002"))
        second_id = second.id
        await session.execute(update(User).where(User.id == first.id).values(channel="max"))
    _, body = await operator.get("/conversations", requests="1")
    assert f"/conversations/{first.id}" in body and f"/conversations/{second_id}" not in body
    _, body = await operator.get("/conversations", channel="max")
    assert f"/conversations/{first.id}" in body and f"/conversations/{second_id}" not in body
    _, body = await operator.get("/conversations", unanswered="1")
    assert f"/conversations/{second_id}" in body and f"/conversations/{first.id}" not in body
    _, body = await operator.get("/conversations", q="погоды")
    assert f"/conversations/{second_id}" in body and f"/conversations/{first.id}" not in body
    _, body = await operator.get("/conversations", **{"from": "2001-01-01", "to": "2001-01-31"})
    assert "Разговоров не найдено" in body


async def test_sign_in_is_limited_per_account_and_per_address(app, console):
    client = StaffClient(console.base)
    try:
        for _ in range(5):
            status, body = await client.signin("oper", "wrong password")
            assert status == 401 and "Неверный логин или пароль" in body
        status, body = await client.signin("oper", OPERATOR_PASSWORD)
        assert status == 429 and "Слишком много неудачных попыток" in body
        # other accounts from this address still sign in, until the address's limit
        status, _ = await client.signin("admin", ADMIN_PASSWORD)
        assert status == 303
        for number in range(15):
            await client.signin(f"nobody{number}", "wrong password")
        status, body = await client.signin("admin", ADMIN_PASSWORD)
        assert status == 429
    finally:
        await client.close()
    async with app.db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert actions.count("staff_signin_failed") == 20 and "staff_signin" in actions


async def test_session_cookie_flags_idle_expiry_and_headers(app, console, admin):
    client = StaffClient(console.base)
    try:
        _, page = await client.get("/signin")
        token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
        async with client.http.post(
            console.base + "/signin",
            data={"login": "admin", "password": ADMIN_PASSWORD, "_csrf": token},
            allow_redirects=False,
        ) as response:
            set_cookie = [v for v in response.headers.getall("Set-Cookie") if "navbot_staff" in v]
        assert set_cookie and "HttpOnly" in set_cookie[0] and "SameSite=Strict" in set_cookie[0]
        assert "Secure" not in set_cookie[0]  # plain http on this machine
        async with client.http.get(
            console.base + "/signin", headers={"X-Forwarded-Proto": "https"}
        ) as response:
            assert "Secure" in response.headers["Set-Cookie"]
    finally:
        await client.close()

    status, _ = await admin.get("/conversations")
    headers = admin.last.headers
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    # scripts only from the console's own static files (bot/web/static), none inline
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    assert (await admin.get("/static/console.css"))[0] == 200
    assert "no-store" not in admin.last.headers.get("Cache-Control", "")
    # nothing loads from elsewhere, and no page has an inline script
    from bot.web import WEB_DIR

    for template in (WEB_DIR / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text
        for script in re.findall(r"<script[^>]*>(.*?)</script>", text, re.S):
            assert not script.strip(), template
        for tag in re.findall(r"<script[^>]*>", text):
            assert re.fullmatch(r'<script src="/static/[a-z_]+\.js" defer>', tag), tag

    async with app.db.session() as session:
        for row in await session.scalars(select(StaffSession)):
            row.last_seen = utcnow() - timedelta(minutes=31)
    status, _ = await admin.get("/requests")
    assert status == 303 and admin.last.headers["Location"].startswith("/signin")


async def test_status_change_notifies_the_parent_and_is_audited(app, console, operator):
    parent = await parent_with_request(app)
    await operator.get("/requests/1")
    status, body = await operator.post("/requests/1/status", {"status": "rejected"})
    assert status == 400 and "Укажите причину отказа" in body
    status, body = await operator.post(
        "/requests/1/status", {"status": "rejected", "reason": "Группа уже набрана"}
    )
    assert status == 200 and "«Новая» → «Отклонена»" in body
    status, body = await operator.post("/requests/1/status", {"status": "accepted"})
    assert status == 400 and "Статус не изменён" in body
    async with app.db.session() as session:
        notice = await session.scalar(
            select(TranscriptEntry)
            .where(TranscriptEntry.user_id == parent.id, TranscriptEntry.direction == "out")
            .order_by(TranscriptEntry.id.desc())
            .limit(1)
        )
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "request_status")
        )
    assert "отклонена" in notice.text and "Группа уже набрана" in notice.text
    assert (entry.staff_login, entry.request_id, entry.detail["after"]) == ("oper", 1, "rejected")
    _, body = await operator.get("/requests", status="rejected")
    assert "/requests/1" in body
    _, body = await operator.get("/requests", status="new")
    assert "/requests/1" not in body


async def test_export_is_admin_only_russian_typed_and_formula_safe(app, console, admin):
    await parent_with_request(app)
    await admin.get("/requests")
    status, _ = await admin.post("/requests/export", {"format": "csv", "status": "new"})
    assert status == 200
    assert admin.last.headers["Content-Disposition"].endswith('.csv"')
    async with admin.http.post(
        console.base + "/requests/export", data={"format": "csv", "_csrf": admin.csrf}
    ) as response:
        raw = await response.read()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Номер заявки", "Дата подачи", "Дата изменения", "Статус"]
    comment = rows[1][rows[0].index("Комментарий")]
    assert comment == '\'=HYPERLINK("http://evil.example","нажми")'
    assert rows[1][rows[0].index("Телефон")] == "'" + PHONE
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", rows[1][1])

    async with admin.http.post(
        console.base + "/requests/export", data={"format": "xlsx", "_csrf": admin.csrf}
    ) as response:
        data = await response.read()
    sheet = load_workbook(io.BytesIO(data)).active
    header = [cell.value for cell in sheet[1]]
    row = list(sheet[2])
    assert header[0] == "Номер заявки" and row[0].value == 1
    assert row[1].is_date and row[header.index("Дата рождения")].is_date
    cell = row[header.index("Комментарий")]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    async with app.db.session() as session:
        exports = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "export"))
        )
    assert [(e.staff_login, e.detail["format"], e.detail["rows"]) for e in exports] == [
        ("admin", "csv", 1),
        ("admin", "csv", 1),
        ("admin", "xlsx", 1),
    ]


async def test_cli_export_escapes_formula_cells(app, tmp_path):
    from bot.catalogue_io import request_rows, write_rows

    await parent_with_request(app)
    rows = await request_rows(app.db, app.region, app.texts)
    buffer = io.StringIO()
    write_rows(rows, None, "csv", buffer)
    exported = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert exported[1][-1] == '\'=HYPERLINK("http://evil.example","нажми")'
    assert exported[1][-2] == "'" + PHONE
    for bad in ("+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert write_cell(bad) == "'" + bad
    target = tmp_path / "requests.xlsx"
    write_rows(rows, target, "xlsx", buffer)
    cell = load_workbook(target).active.cell(row=2, column=13)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


def write_cell(value: str) -> str:
    from bot.catalogue_io import safe_cell

    return safe_cell(value)


async def test_accounts_page_adds_disables_and_audits(app, console, admin):
    await admin.get("/accounts")
    status, body = await admin.post(
        "/accounts",
        {"login": "new.op", "role": "operator", "password": "short", "password2": "short"},
    )
    assert status == 400 and "не короче 10 символов" in body
    status, body = await admin.post(
        "/accounts",
        {
            "login": "new.op",
            "role": "operator",
            "password": "long-enough-1",
            "password2": "long-enough-1",
        },
    )
    assert status == 200 and "Учётная запись new.op создана" in body
    newcomer = StaffClient(console.base)
    try:
        assert (await newcomer.signin("new.op", "long-enough-1"))[0] == 303
        async with app.db.session() as session:
            from storage.staff import find_staff

            user = await find_staff(session, "new.op")
        status, body = await admin.post(f"/accounts/{user.id}", {"action": "disable"})
        assert status == 200 and "отключена" in body
        status, _ = await newcomer.get("/conversations")
        assert status == 303  # signed out at once
        assert (await newcomer.signin("new.op", "long-enough-1"))[0] == 401
    finally:
        await newcomer.close()
    async with app.db.session() as session:
        actions = [
            (e.action, e.staff_login)
            for e in await session.scalars(
                select(AuditEntry).where(AuditEntry.action.like("staff_%")).order_by(AuditEntry.id)
            )
        ]
    assert ("staff_add", "admin") in actions and ("staff_disable", "admin") in actions


async def test_a_route_without_a_declared_access_is_admin_only(app):
    """A route added without @access fails closed: only admins reach it."""
    from aiohttp import web

    await create_accounts(app)
    served = Served(app)

    async def undeclared(request):
        return web.Response(text="reached")

    served.web_app.router.add_get("/undeclared", undeclared)
    await served.start()
    operator, admin = StaffClient(served.base), StaffClient(served.base)
    try:
        assert (await operator.get("/undeclared"))[0] == 303
        await operator.signin("oper", OPERATOR_PASSWORD)
        await admin.signin("admin", ADMIN_PASSWORD)
        assert (await operator.get("/undeclared"))[0] == 403
        assert await admin.get("/undeclared") == (200, "reached")
    finally:
        await operator.close()
        await admin.close()
        await served.stop()
