"""Parents in MAX, through the real MAX adapter against the fake MAX Bot API: the
deep-link start, the walkthroughs, the FAQ, the enrollment with buttons and with
typed answers, the phone shared with the contact button, polling and webhook mode,
parents who stop the bot, MAX's limits, and start-up problems as one line."""

from __future__ import annotations

import asyncio
import itertools
import signal
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.channels.max import MAX_LIMITS, MAX_TEXT, fit_keyboard
from bot.delivery import Limits
from bot.web.max import SECRET_HEADER
from handlers.core import Button, Reply
from storage.models import ChannelCursor, EnrollmentRequest, User
from tests.cli import LiveProcess, navbot, write_config
from tests.fakes.max import FakeMax
from tests.messengers import MaxParent, MaxRunning, max_settings, wait_until

WEBHOOK = {
    "mode": "webhook",
    "webhook_url": "https://bot.example.org/max/hook",
    "webhook_secret": "max-s3cret_Hook",
}


# The dialogue tests pace one parent's chat faster than MAX's 2 messages a second, and
# the fake allows that and twice the token's 30 requests a second (so a test process
# starved of CPU, which then serves queued requests back to back, is not judged on
# them); test_many_messages_to_one_parent_keep_max_limits and bench/burst.py (--messenger max) keep
# MAX's own limits.
FAST = Limits(per_second=30, chat_per_second=20, chat_burst=5)


@pytest.fixture
async def fake_max():
    fake = FakeMax(per_second=60, chat_per_second=20)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def polling(settings, fake_max):
    served = MaxRunning(max_settings(settings, fake_max), fake_max, max=FAST)
    await served.start()
    yield served
    await served.stop()


@pytest.fixture
async def webhook(settings, fake_max):
    served = MaxRunning(max_settings(settings, fake_max, **WEBHOOK), fake_max, max=FAST)
    await served.start()
    yield served
    await served.stop()


async def _user(app, platform_id: int) -> User:
    async with app.db.session() as session:
        return await session.scalar(
            select(User).where(User.channel == "max", User.platform_user_id == str(platform_id))
        )


async def test_start_from_a_deep_link_records_the_source(polling, fake_max):
    parent = MaxParent(polling, fake_max, 4101)
    await parent.start("school_12")
    assert "Здравствуйте" in parent.text
    assert "Регистрация в Навигаторе" in parent.labels
    # every step's options are callback buttons
    assert {kind for m in parent.last for row in m.buttons for kind, _, _ in row} == {"callback"}
    await parent.start("poster-3")
    user = await _user(polling.app, 4101)
    assert (user.source, user.start_param) == ("school_12", "poster-3")
    # the token went only in the Authorization header, never in the address
    assert all("access_token" not in query for _, _, query in fake_max.calls)
    assert not fake_max.rejected


async def test_registration_walkthrough_certificate_and_a_question(polling, fake_max):
    parent = MaxParent(polling, fake_max, 4102)
    await parent.start()
    await parent.press("Регистрация в Навигаторе")
    assert "Шаг 1 из 8" in parent.text and "https://р26.навигатор.дети/" in parent.text
    await parent.press("Готово, дальше")
    assert "Шаг 2 из 8" in parent.text
    await parent.press("Назад")
    assert "Шаг 1 из 8" in parent.text
    await parent.press("В меню")
    await parent.press("Сертификат: что это и как получить")
    assert "сертификат" in parent.text.lower()
    await parent.send("как получить сертификат на ребенка?")
    assert "Госуслуг" in parent.text or "Навигатор" in parent.text
    # each press was answered through POST /answers, once
    assert fake_max.answered == fake_max.pressed and len(fake_max.pressed) == 5
    assert not fake_max.open_callbacks
    assert not fake_max.rejected


async def _search_and_consent(parent: MaxParent) -> None:
    await parent.start()
    await parent.press("Найти кружок")
    await parent.press("Слово для поиска")
    await parent.send("радиоэлектроник")
    await parent.press("Записаться на №1")
    assert "Согласие на обработку персональных данных" in parent.text


async def _request(app) -> EnrollmentRequest:
    async with app.db.session() as session:
        return await session.scalar(select(EnrollmentRequest))


async def test_enrollment_with_buttons_and_the_phone_shared_by_the_contact_button(
    polling, fake_max
):
    parent = MaxParent(polling, fake_max, 4103)
    await _search_and_consent(parent)
    await parent.press("Согласен(на)")
    await parent.send("Сидоров Павел")
    await parent.send("01.09.2013")
    await parent.press("Пропустить")
    assert "Телефон для связи" in parent.text
    (share,) = [b for m in parent.last for row in m.buttons for b in row if b[0] != "callback"]
    assert share[:2] == ("request_contact", "📱 Отправить мой номер")
    await parent.share_phone("+7 912 345-67-89")
    assert "Комментарий для организации" in parent.text
    await parent.press("Без комментария")
    assert "Телефон: +7 912 345-67-89" in parent.text
    await parent.press("Отправить заявку")
    assert "Заявка №1 отправлена" in parent.text
    stored = await _request(polling.app)
    assert (stored.phone, stored.status) == ("+7 912 345-67-89", "new")
    assert not fake_max.rejected
    # the marker moved on with the handled batches and is kept for a restart
    async with polling.app.db.session() as session:
        cursor = await session.get(ChannelCursor, "max")
    assert int(cursor.cursor) == fake_max.read_before > 1


async def test_enrollment_with_typed_answers_in_webhook_mode(webhook, fake_max):
    assert fake_max.subscriptions[-1]["secret"] == WEBHOOK["webhook_secret"]
    assert fake_max.subscriptions[-1]["url"] == WEBHOOK["webhook_url"]
    parent = MaxParent(webhook, fake_max, 4104)
    await _search_and_consent(parent)
    await parent.send("Согласен(на)")
    assert "Сначала добавим ребёнка" in parent.text
    await parent.send("Сидорова Анна")
    await parent.send("05.03.2014")
    await parent.send("Пропустить")
    await parent.send("8 (912) 345-67-89")
    await parent.send("Звоните после 18:00")
    assert "Комментарий: Звоните после 18:00" in parent.text
    await parent.send("Отправить заявку")
    assert "Заявка №1 отправлена" in parent.text
    stored = await _request(webhook.app)
    assert (stored.phone, stored.comment) == ("+7 912 345-67-89", "Звоните после 18:00")
    # every update came as a push, was answered 200, and nothing went through polling
    assert fake_max.pushes and all(status == 200 for _, status in fake_max.pushes)
    assert not fake_max.log
    assert not fake_max.rejected


async def test_webhook_refuses_a_push_without_the_secret(webhook, fake_max):
    parent = MaxParent(webhook, fake_max, 4105)
    await parent.start()
    sent = len(fake_max.to(4105))
    update = {
        "update_type": "message_created",
        "timestamp": 1_780_000_000_000,
        "message": {
            "sender": {"user_id": 4105, "first_name": "Мама", "is_bot": False},
            "recipient": {"chat_id": 1, "chat_type": "dialog"},
            "timestamp": 1_780_000_000_000,
            "body": {"mid": "mid.forged", "seq": 1, "text": "/help", "attachments": None},
        },
    }
    async with aiohttp.ClientSession() as http:
        for headers in ({SECRET_HEADER: "wrong-secret"}, {}):
            async with http.post(fake_max.webhook_target, json=update, headers=headers) as r:
                assert r.status == 401
        async with http.post(
            fake_max.webhook_target, data="{", headers={SECRET_HEADER: WEBHOOK["webhook_secret"]}
        ) as r:
            assert r.status == 400
    assert len(fake_max.to(4105)) == sent


async def test_polling_removes_a_webhook_subscription_and_goes_on_after_a_restart(
    settings, fake_max
):
    fake_max.subscriptions.append(
        {"url": "https://old.example.org/hook", "time": 1, "update_types": None}
    )
    first = MaxRunning(max_settings(settings, fake_max), fake_max, max=FAST)
    await first.start()
    parent = MaxParent(first, fake_max, 4106)
    try:
        assert not fake_max.subscriptions
        await parent.start()
    finally:
        await first.stop()
    greeted = len(fake_max.to(4106))
    # written while the bot was down: handled after the restart, the old ones not again
    await fake_max.message(4106, "/help")
    second = MaxRunning(max_settings(settings, fake_max), fake_max, max=FAST)
    await second.start()
    try:
        await wait_until(lambda: len(fake_max.to(4106)) > greeted)
        await asyncio.sleep(0.5)
        (answer,) = fake_max.to(4106)[greeted:]
        assert "/help" in answer.text and "Здравствуйте" not in answer.text
    finally:
        await second.stop()


async def test_a_parent_who_stops_the_bot_is_unreachable_until_they_start_it(polling, fake_max):
    app = polling.app
    parent = MaxParent(polling, fake_max, 4107)
    await parent.start()
    user = await _user(app, 4107)
    await fake_max.stop_bot(4107)
    for _ in range(200):
        if not (await _user(app, 4107)).reachable:
            break
        await asyncio.sleep(0.02)
    assert (await _user(app, 4107)).reachable is False
    calls = len(fake_max.calls)
    assert not await app.delivery.notify(user.id, [Reply("Статус заявки изменился")], wait=True)
    assert not [c for c in fake_max.calls[calls:] if c[1] == "/messages"]
    # started again (from the bot's profile): reachable, reminders reach them
    await parent.start()
    assert (await _user(app, 4107)).reachable is True
    assert await app.delivery.notify(user.id, [Reply("Напоминание")], wait=True)
    assert fake_max.to(4107)[-1].text == "Напоминание"
    # blocked without the bot hearing of it: the send error marks them unreachable
    fake_max.stopped.add(4107)
    assert not await app.delivery.notify(user.id, [Reply("Ещё одно")], wait=True)
    assert fake_max.rejected[-1] == "403 chat.denied: error.dialog.suspended"
    assert (await _user(app, 4107)).reachable is False


async def test_long_texts_big_keyboards_and_links_fit_max_limits(polling, fake_max):
    app = polling.app
    parent = MaxParent(polling, fake_max, 4108)
    await parent.start()
    user = await _user(app, 4108)
    paragraph = "Абзац о сертификате дополнительного образования. " * 20
    long_text = "\n\n".join([paragraph] * 9)
    assert len(long_text) > 2 * MAX_TEXT
    before = len(fake_max.to(4108))
    rows = [[Button(f"Программа {i}", f"prog:{i}")] for i in range(40)]
    rows.append([Button("Навигатор", "https://р26.навигатор.дети/")])
    rows.append([Button("Длинная", "req:" + "x" * 2000)])
    assert await app.delivery.notify(user.id, [Reply(long_text, rows)], wait=True)
    parts = fake_max.to(4108)[before:]
    assert len(parts) == 3 and all(len(p.text) <= MAX_TEXT for p in parts)
    assert not parts[0].buttons and parts[-1].buttons
    keyboard = parts[-1].buttons
    assert len(keyboard) <= 30
    assert ("link", "Навигатор", "https://р26.навигатор.дети/") in [b for r in keyboard for b in r]
    long_payload = next(data for row in keyboard for kind, text, data in row if text == "Длинная")
    assert len(long_payload) <= 1024
    # 250 options cannot fit one keyboard: they are written out, typing one works
    before = len(fake_max.to(4108))
    many = [[Button(f"Вариант {i}", "menu")] for i in range(250)]
    assert await app.delivery.notify(user.id, [Reply("Выберите вариант", many)], wait=True)
    written = fake_max.to(4108)[before:]
    assert not any(m.buttons for m in written)
    assert "Напишите один из вариантов:" in written[0].text and "• Вариант 249" in written[-1].text
    assert not fake_max.rejected


def test_keyboard_layout_within_max_limits():
    def buttons(n: int) -> list[Button]:
        return [Button(f"Кнопка {i}", f"b:{i}") for i in range(n)]

    # a row of 9 is re-flowed into 7 + 2; a row with a link holds 3
    assert [len(row) for row in fit_keyboard([buttons(9)])] == [7, 2]
    link_row = [*buttons(4), Button("Сайт", "https://example.org")]
    assert [len(row) for row in fit_keyboard([link_row])] == [3, 2]
    # 40 one-button rows are merged into at most 30, order kept; a contact row is left room
    merged = fit_keyboard([[b] for b in buttons(40)], contact_row=True)
    assert len(merged) <= 29 and all(len(row) <= 7 for row in merged)
    assert [b.payload for row in merged for b in row] == [f"b:{i}" for i in range(40)]
    assert fit_keyboard([[b] for b in buttons(211)]) is None


async def test_many_messages_to_one_parent_keep_max_limits(settings):
    fake = FakeMax()  # MAX's own limits: 2 messages a second per chat, 30 requests a second
    await fake.start()
    served = MaxRunning(max_settings(settings, fake), fake, max=MAX_LIMITS)
    try:
        await served.start()
        parent = MaxParent(served, fake, 4110)
        await parent.start()
        user = await _user(served.app, 4110)
        before = len(fake.to(4110))
        replies = [Reply(f"Напоминание {i}") for i in range(6)]
        assert await served.app.delivery.notify(user.id, replies, wait=True)
        sent = fake.to(4110)[before:]
        assert [m.text for m in sent] == [f"Напоминание {i}" for i in range(6)]
        assert not fake.rejected  # paced: no 429
        stamps = [m.at for m in sent]
        assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(stamps))
    finally:
        await served.stop()
        await fake.stop()


async def test_a_sticker_gets_a_text_answer_and_429_is_waited_out(polling, fake_max):
    parent = MaxParent(polling, fake_max, 4109)
    await parent.start()
    before = len(fake_max.to(4109))
    update = await fake_max.sticker(4109)
    await wait_until(lambda: len(fake_max.to(4109)) > before)
    assert "понимаю только текстовые сообщения" in fake_max.to(4109)[-1].text
    assert update["message"]["body"]["attachments"][0]["type"] == "sticker"
    fake_max.too_many_next, fake_max.overloaded_next = 2, 1
    await parent.send("/help")
    assert parent.text
    assert sum("429" in r for r in fake_max.rejected) == 2
    assert sum("503" in r for r in fake_max.rejected) == 1


# -- start-up through the real `navbot run` ------------------------------------------------


def _run(tmp_path: Path, database, env: dict[str, str]) -> subprocess.CompletedProcess:
    config = write_config(tmp_path, database)
    return navbot("--config", str(config), "run", cwd=tmp_path, env=env)


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("navbot: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_startup_problems_are_one_line_naming_the_setting(tmp_path, database, fake_max):
    base = {"NAVBOT_MAX__API_BASE": fake_max.base}
    malformed = await asyncio.to_thread(
        _run, tmp_path, database, {**base, "NAVBOT_MAX__TOKEN": "мой токен"}
    )
    assert "'max.token': malformed" in _one_line(malformed)
    rejected = await asyncio.to_thread(
        _run, tmp_path, database, {**base, "NAVBOT_MAX__TOKEN": "Wrong-token-0123456789abcdef"}
    )
    assert "max.token (NAVBOT_MAX__TOKEN) was rejected by MAX (401" in _one_line(rejected)
    closed = await asyncio.to_thread(
        _run,
        tmp_path,
        database,
        {"NAVBOT_MAX__TOKEN": fake_max.token, "NAVBOT_MAX__API_BASE": "http://127.0.0.1:9"},
    )
    assert "max.api_base http://127.0.0.1:9 cannot be reached" in _one_line(closed)


@pytest.fixture
async def self_signed_api(tmp_path):
    """A MAX API look-alike over https with a self-signed certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def unauthorized(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": "verify.token", "message": "Invalid access_token"}, status=401
        )

    web_app = web.Application()
    web_app.router.add_get("/me", unauthorized)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", cert
    await runner.cleanup()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_an_untrusted_certificate_chain_is_one_line_and_ca_file_trusts_it(
    tmp_path, database, self_signed_api
):
    api_base, cert = self_signed_api
    env = {"NAVBOT_MAX__TOKEN": "Good-token-0123456789abcdef", "NAVBOT_MAX__API_BASE": api_base}
    untrusted = await asyncio.to_thread(_run, tmp_path, database, env)
    line = _one_line(untrusted)
    assert "certificate is not trusted" in line and "max.ca_file (NAVBOT_MAX__CA_FILE)" in line
    # with the chain given in ca_file the connection is trusted (and the token judged)
    trusted = await asyncio.to_thread(
        _run, tmp_path, database, {**env, "NAVBOT_MAX__CA_FILE": str(cert)}
    )
    assert "was rejected by MAX (401" in _one_line(trusted)


def test_the_shipped_root_is_trusted_for_max_only(settings):
    from bot.channels.max_api import max_ssl_context, trusted_ca_pem

    pem = trusted_ca_pem()
    assert pem.count("BEGIN CERTIFICATE") == 2
    context = max_ssl_context()
    subjects = [
        dict(item[0] for item in ca["subject"]).get("commonName") for ca in context.get_ca_certs()
    ]
    assert "Russian Trusted Root CA" in subjects
    # the process-wide default stays as it was
    default = [
        dict(item[0] for item in ca["subject"]).get("commonName")
        for ca in ssl.create_default_context().get_ca_certs()
    ]
    assert "Russian Trusted Root CA" not in default


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_navbot_run_serves_max(tmp_path, database, fake_max):
    config = write_config(tmp_path, database)
    env = {
        "NAVBOT_MAX__TOKEN": fake_max.token,
        "NAVBOT_MAX__API_BASE": fake_max.base,
        "NAVBOT_MAX__POLLING_TIMEOUT": "1",
    }
    process = LiveProcess("--config", str(config), "run", env=env, cwd=tmp_path)
    try:
        await wait_until(lambda: any(c[1] == "/updates" for c in fake_max.calls), limit=90)
        await fake_max.open_bot(4111, "school_5")
        await wait_until(lambda: fake_max.to(4111), limit=60)
        assert "Здравствуйте" in fake_max.to(4111)[0].text
        process.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.proc.wait, 30) == 0
    finally:
        if process.proc.poll() is None:
            process.kill()
        for pipe in (process.proc.stdin, process.proc.stdout):
            if pipe is not None:
                pipe.close()


async def test_the_fake_refuses_what_max_refuses(fake_max):
    """The fake's own checks, as the documentation describes MAX's answers."""
    auth = {"Authorization": fake_max.token}
    async with aiohttp.ClientSession(base_url=fake_max.base) as http:
        # the token in the query is no longer accepted; a wrong header neither
        async with http.get("/me", params={"access_token": fake_max.token}) as r:
            assert r.status == 401 and (await r.json())["code"] == "verify.token"
        async with http.get("/me", headers={"Authorization": "nope"}) as r:
            assert r.status == 401
        async with http.get("/me", headers=auth) as r:
            assert r.status == 200 and (await r.json())["is_bot"] is True
        async with http.put("/answers", headers=auth) as r:
            assert r.status == 405 and set(await r.json()) == {"code", "message"}
        async with http.get("/no/such/path", headers=auth) as r:
            assert r.status == 404
        async with http.get("/updates", params={"timeout": "91"}, headers=auth) as r:
            assert r.status == 400
        bad_secret = {"url": "https://bot.example.org/hook", "secret": "с пробелом"}
        async with http.post("/subscriptions", json=bad_secret, headers=auth) as r:
            assert r.status == 400
        too_wide = [[{"type": "link", "text": f"{i}", "url": "https://x.ru"} for i in range(4)]]
        body = {
            "text": "x",
            "attachments": [{"type": "inline_keyboard", "payload": {"buttons": too_wide}}],
        }
        fake_max.dialogs.add(1)
        async with http.post("/messages", params={"user_id": "1"}, json=body, headers=auth) as r:
            assert r.status == 400 and "at most 3" in (await r.json())["message"]
        async with http.post(
            "/messages", params={"user_id": "1"}, json={"text": "я" * 4001}, headers=auth
        ) as r:
            assert r.status == 400
        # more requests in a second than the token may make: 429
        statuses = []
        for _ in range(fake_max.per_second + 5):
            async with http.get("/me", headers=auth) as r:
                statuses.append(r.status)
        assert 429 in statuses


async def test_a_staff_process_that_does_not_poll_reaches_max_parents(settings, fake_max):
    from bot.app import build_app
    from bot.channels.serve import messenger_senders

    app = build_app(max_settings(settings, fake_max))
    await app.start()
    try:
        async with app.db.session() as session:
            user = User(channel="max", platform_user_id="4112", chat_id="4112")
            session.add(user)
        fake_max.dialogs.add(4112)
        async with messenger_senders(app) as reachable:
            assert reachable == ["max"]
            assert await app.delivery.notify(
                user.id, [Reply("Заявка №7 принята организацией")], wait=True
            )
        assert fake_max.to(4112)[-1].text == "Заявка №7 принята организацией"
        assert not any(call[1] == "/updates" for call in fake_max.calls)
    finally:
        await app.close()


def test_a_reply_that_asks_for_the_phone_keeps_it_through_the_transcript():
    reply = Reply("Телефон для связи?", [[Button("Отменить", "req:stop")]], asks_phone=True)
    stored = reply.buttons_json()
    assert stored == {"rows": [[["Отменить", "req:stop"]]], "asks_phone": True}
    again = Reply.from_stored(reply.text, stored, 5)
    assert (again.buttons, again.asks_phone, again.transcript_id) == (reply.buttons, True, 5)
    assert Reply.from_stored("Привет", None).buttons == []


async def test_webhook_mode_needs_an_https_url_and_a_secret(settings, fake_max):
    from bot.app import build_app
    from bot.channels.max import ChannelSetupError, MaxChannel

    for extra, named in (
        ({"webhook_url": "http://bot.example.org/hook", "webhook_secret": "s3cret"}, "url"),
        ({"webhook_url": "https://bot.example.org/hook"}, "max.webhook_secret"),
        ({"webhook_url": "https://bot.example.org/hook", "webhook_secret": "a b"}, "5-256"),
    ):
        app = build_app(max_settings(settings, fake_max, mode="webhook", **extra))
        channel = MaxChannel(app)
        try:
            with pytest.raises(ChannelSetupError, match=named):
                await channel.check()
        finally:
            await channel.close()
    assert not fake_max.subscriptions
