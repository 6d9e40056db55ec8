"""Several processes on one PostgreSQL database, each with its roles (`navbot run --role`).

Two web workers receive Telegram's webhook pushes (the fake pushes each update to one
of them in turn, retrying a failed push on the other, one chat's updates in order) and
a third process reads VK, leads the scheduler and delivers the outbox under the pace
shared through Redis. 2,000 updates from 300 parents; halfway one web worker is killed
with SIGKILL and started again. Every update is answered once, each parent's answers
come in the order of their messages, and the fake Telegram never answers 429.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid

import aiohttp
import pytest

from bot.config import Settings
from bot.errors import CliError
from bot.roles import ALL, check_roles, parse_roles
from tests.cli import navbot, write_config
from tests.conftest import pg_schema
from tests.messengers import wait_until
from tests.processes import Bot

PARENTS = 300
UPDATES = 2000
SECRET = "roles-secret_1"
HELP = "Я отвечаю на вопросы"


@pytest.fixture
def pg_database():
    for schema in pg_schema():
        yield {"url": "postgresql+asyncpg://postgres@127.0.0.1:5432/test", "schema_name": schema}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def conversations() -> dict[int, list[str]]:
    """Each parent's messages: /help and /menu in a fixed random order, 2,000 in all."""
    rng = random.Random(14)
    per_parent = [UPDATES // PARENTS + (n < UPDATES % PARENTS) for n in range(PARENTS)]
    return {
        200_000 + n: [rng.choice(["/help", "/menu"]) for _ in range(count)]
        for n, count in enumerate(per_parent)
    }


def tag(text: str) -> str:
    return "/help" if text.startswith(HELP) else "/menu"


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as answer:
                return answer.status == 200
    except aiohttp.ClientError:
        return False


async def test_three_processes_two_web_workers_one_killed(
    tmp_path, pg_database, fake_telegram, fake_vk
):
    env = {
        "NAVBOT_PACING__BACKEND": "redis",
        "NAVBOT_PACING__KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "NAVBOT_TELEGRAM__MODE": "webhook",
        "NAVBOT_TELEGRAM__WEBHOOK_URL": "https://navbot.example/telegram/webhook",
        "NAVBOT_TELEGRAM__WEBHOOK_SECRET": SECRET,
        "NAVBOT_BOT__FLOOD_MESSAGES": "1000",
    }
    ports = [free_port(), free_port()]
    ops = free_port()
    webs = [
        Bot(
            tmp_path,
            pg_database,
            fake_telegram,
            fake_vk,
            env={**env, "NAVBOT_WEB__PORT": str(port)},
            name=f"web{i}",
            args=["--role", "web"],
        )
        for i, port in enumerate(ports)
    ]
    rest = Bot(
        tmp_path,
        pg_database,
        fake_telegram,
        fake_vk,
        env={**env, "NAVBOT_OPS__PORT": str(ops)},
        name="rest",
        args=["--role", "vk,scheduler,delivery"],
    )
    fake_telegram.push_to([f"http://127.0.0.1:{port}/telegram/webhook" for port in ports])
    # The schema is made by the first process alone; the others start on it.
    rest.start()
    try:
        await wait_until(lambda: "healthz and metrics on" in rest.log.read_text(), limit=180)
        for web in webs:
            web.start()
        await wait_until(
            lambda: all("staff console on" in web.log.read_text() for web in webs), limit=180
        )
        await wait_until(lambda: bool(fake_telegram.webhook), limit=30)
        assert await healthy(ops)

        talk = conversations()
        start = time.monotonic()
        for k in range(max(len(messages) for messages in talk.values())):
            for chat, messages in talk.items():
                if k < len(messages):
                    await fake_telegram.message(chat, messages[k])

        def answered() -> int:
            return sum(min(len(fake_telegram.to(chat)), len(m)) for chat, m in talk.items())

        async def until(condition, limit: float) -> None:
            try:
                await wait_until(condition, limit=limit)
            except AssertionError:
                raise AssertionError(
                    f"stuck: {fake_telegram.pushed} pushed, {fake_telegram.push_failures} "
                    f"failed pushes, {fake_telegram.push_backlog} waiting, {answered()} "
                    f"answered, {len(fake_telegram.sent)} sent"
                ) from None

        # The limits only catch a stuck run on a loaded machine; CI takes ~70-90 s.
        await until(lambda: fake_telegram.pushed >= UPDATES // 2, 300)
        webs[0].kill()
        failures = fake_telegram.push_failures
        await asyncio.sleep(1)
        webs[0].start()
        await until(lambda: fake_telegram.pushed >= UPDATES, 300)
        await until(lambda: answered() == UPDATES, 400)
        took = time.monotonic() - start
        await asyncio.sleep(2)  # late duplicates, if any, would come now
    finally:
        for bot in [*webs, rest]:
            bot.stop()

    assert fake_telegram.push_failures > failures, "the killed worker was never pushed to"
    for chat, messages in talk.items():
        got = [tag(sent.text) for sent in fake_telegram.to(chat)]
        texts = [sent.text[:40] for sent in fake_telegram.to(chat)]
        assert got == messages, f"parent {chat}: answers {texts}, messages {messages}"
    assert not [r for r in fake_telegram.rejected if "Too Many Requests" in r]
    assert not fake_telegram.rejected
    # the outbox went out at most at Telegram's 30 messages a second, by the fake's clock
    times = sorted(m.at for m in fake_telegram.sent if m.at >= start)
    assert all(b - a >= 1.0 for a, b in zip(times, times[30:], strict=False))
    print(f"{UPDATES} updates answered in {took:.1f}s; {fake_telegram.push_failures} failed pushes")


async def test_webhook_is_answered_before_the_replies_are_sent(settings, fake_telegram, fake_vk):
    """Telegram is answered once the update is stored: while Telegram holds every
    sendMessage (as during flood control), the webhook's answer has already come."""
    from bot.app import build_app
    from bot.channels.telegram import TelegramChannel
    from bot.web import create_web_app, serve
    from bot.web.telegram import SECRET_HEADER
    from tests.messengers import messenger_settings

    configured = messenger_settings(
        settings,
        fake_telegram,
        fake_vk,
        mode="webhook",
        webhook_url="https://bot.example.org/tg/hook",
        webhook_secret=SECRET,
    )
    app = build_app(configured)
    await app.start()
    telegram = TelegramChannel(app)
    await app.serve()
    runner = await serve(create_web_app(app, telegram), "127.0.0.1", 0)
    fake_telegram.chats.add(1401)
    fake_telegram.hold_sends = True
    host, port = runner.addresses[0][:2]
    update = {
        "update_id": 7,
        "message": {
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": {"id": 1401, "type": "private"},
            "from": {"id": 1401, "is_bot": False, "first_name": "Мама"},
            "text": "/help",
        },
    }
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"http://{host}:{port}/tg/hook", json=update, headers={SECRET_HEADER: SECRET}
            ) as answer:
                assert answer.status == 200
        await wait_until(lambda: fake_telegram.held >= 1)
        assert not fake_telegram.to(1401)  # answered Telegram, the reply still waiting
        fake_telegram.release()
        await wait_until(lambda: len(fake_telegram.to(1401)) == 1)
        assert fake_telegram.to(1401)[0].text.startswith(HELP)
    finally:
        fake_telegram.release()
        await runner.cleanup()
        await telegram.close()
        await app.close()


# -- refused layouts ------------------------------------------------------------------


def settings_for(url: str, **extra) -> Settings:
    return Settings(database={"url": url}, **extra)


def test_role_lists():
    assert parse_roles(None) is ALL
    assert parse_roles("all") is ALL
    assert str(parse_roles("delivery, web")) == "web,delivery"
    assert str(parse_roles("web,vk,max,scheduler,delivery")) == "all"
    with pytest.raises(CliError, match="unknown role 'mail'"):
        parse_roles("web,mail")
    with pytest.raises(CliError, match="give it alone"):
        parse_roles("all,web")


def test_refused_layouts(tmp_path):
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'navbot.sqlite3'}"
    check_roles(ALL, settings_for(sqlite))
    with pytest.raises(CliError, match="on SQLite only one process"):
        check_roles(parse_roles("web"), settings_for(sqlite))
    pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    check_roles(parse_roles("web,delivery"), settings_for(pg))
    with pytest.raises(CliError, match="VK, which is not configured"):
        check_roles(parse_roles("vk"), settings_for(pg))
    with pytest.raises(CliError, match="webhook mode"):
        check_roles(
            parse_roles("max"),
            settings_for(pg, max={"token": "x" * 20, "mode": "webhook"}),
        )


def test_role_split_on_sqlite_is_one_line_at_start(tmp_path):
    config = write_config(tmp_path, {"url": f"sqlite+aiosqlite:///{tmp_path / 'n.sqlite3'}"})
    result = navbot("-c", str(config), "run", "--role", "web,delivery", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "navbot: error: --role web,delivery: on SQLite only one process may serve the bot; "
        "run it with --role all (the default), or use PostgreSQL for several processes"
    ]
    result = navbot("-c", str(config), "run", "--role", "web,post", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown role 'post'" in result.stderr
