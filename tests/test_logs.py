"""The log of a real `navbot run`, at DEBUG with SQL echo on, holds no personal data: a
parent's phone, a child's СНИЛС and name go through a whole conversation (the СНИЛС
check, a free-text question, an enrollment request) and none of them reaches stderr, in
JSON lines (through the real Telegram adapter against the fake) or text (the terminal
channel). Its /healthz and /metrics are served on the [ops] port too."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import aiohttp
from sqlalchemy import select

from bot.logs import HIDDEN
from storage.models import Program
from tests.cli import navbot, write_config
from tests.messengers import wait_until
from tests.processes import Bot
from tests.test_crash import _db_check

CHILD = "Петрова Анна Ивановна"
PHONE = "+7 912 345-67-89"
SNILS = "123-456-789 64"  # a valid checksum
QUESTION = f"Можно ли записать {CHILD} в кружок робототехники? Телефон {PHONE}, СНИЛС {SNILS}"
# Every form the data could take in a log line.
SECRETS = (
    "Петров",
    "Ивановн",
    "робототехник",
    "912 345",
    "345-67-89",
    "9123456789",
    "123-456-789",
    "123456789",
    "12345678964",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean(log: str) -> None:
    for secret in SECRETS:
        assert secret not in log, f"{secret!r} is in the log"
    # The last guard (bot/logs.py) had nothing to hide: the code never logged it.
    assert HIDDEN not in log


class Parent:
    def __init__(self, fake, user_id: int) -> None:
        self.fake = fake
        self.user_id = user_id

    def _button(self, label: str) -> str:
        for message in reversed(self.fake.to(self.user_id)):
            for row in message.buttons:
                for shown, data in row:
                    if shown == label:
                        return data
        raise AssertionError(f"no button {label!r}")

    async def step(self, expect: str, *, text=None, press=None, data=None) -> None:
        before = len(self.fake.to(self.user_id))
        if text is not None:
            await self.fake.message(self.user_id, text)
        else:
            await self.fake.callback(self.user_id, data or self._button(press))
        deadline = time.monotonic() + 120
        while not any(expect in m.text for m in self.fake.to(self.user_id)[before:]):
            assert time.monotonic() < deadline, f"{expect!r} never came"
            await asyncio.sleep(0.05)


async def test_a_whole_conversation_leaves_no_personal_data_in_json_logs(
    tmp_path, database, fake_telegram, fake_vk
):
    port = free_port()
    env = {
        "NAVBOT_BOT__LOG_LEVEL": "DEBUG",
        "NAVBOT_LOGGING__FORMAT": "json",
        "NAVBOT_DATABASE__ECHO": "true",
        "NAVBOT_OPS__PORT": str(port),
    }
    bot = Bot(tmp_path, database, fake_telegram, fake_vk, env=env)
    bot.start()
    try:
        # A VK parent asks the same question (vk_api, requests and urllib3 at DEBUG).
        await wait_until(lambda: fake_vk.lp_connects > 0, limit=120)
        await fake_vk.message(7401, "/start")
        await wait_until(lambda: len(fake_vk.to(7401)) >= 1, limit=120)
        await fake_vk.message(7401, QUESTION)
        await wait_until(lambda: len(fake_vk.to(7401)) >= 3, limit=120)
        parent = Parent(fake_telegram, 7301)
        await parent.step("Здравствуйте", text="/start")
        program_id = await _db_check(
            tmp_path,
            database,
            lambda session: session.scalar(
                select(Program.id).where(Program.age_from <= 9, Program.age_to >= 9).limit(1)
            ),
        )
        await parent.step("СНИЛС", data="reg:snils:7")
        await parent.step("написан правильно", text=SNILS)
        await parent.step("", text=QUESTION)
        await parent.step("Согласие на обработку персональных данных", data=f"req:new:{program_id}")
        await parent.step("фамилию", press="Согласен(на)")
        await parent.step("Дата рождения", text=CHILD)
        await parent.step("сертификата", text=f"05.03.{time.localtime().tm_year - 9}")
        await parent.step("Телефон для связи", press="Пропустить")
        await parent.step("Комментарий", text=PHONE)
        await parent.step("Проверьте заявку", press="Без комментария")
        await parent.step("отправлена", press="Отправить заявку")

        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200, await response.text()
                health = await response.json()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert health["channels"]["telegram"]["ok"] is True
        assert health["channels"]["vk"]["ok"] is True
        assert health["scheduler"]["leader"] == "this process"
        assert 'navbot_updates_in_total{channel="telegram"} 12.0' in metrics
        assert_clean(json.dumps(health, ensure_ascii=False) + metrics)
    finally:
        bot.stop()

    log = bot.log.read_text(encoding="utf-8")
    assert_clean(log)
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(records) > 50
    assert {"time", "level", "logger", "message"} <= set(records[0])
    loggers = {record["logger"] for record in records}
    # SQL echo is on, with the values hidden; handled updates name themselves.
    assert "sqlalchemy.engine.Engine" in loggers
    assert any("parameters hidden" in record["message"] for record in records)
    assert any(record.get("update", "").startswith("telegram:") for record in records)
    assert any(record.get("update", "").startswith("vk:") for record in records)
    assert any(record["level"] == "DEBUG" for record in records)
    # The lines that are not JSON are the start-up notices printed for the administrator.
    others = [line for line in log.splitlines() if line and not line.startswith("{")]
    assert all(
        line.startswith(("staff console on", "healthz and metrics on", "personal data"))
        for line in others
    ), others


def test_the_terminal_channel_at_debug_logs_no_personal_data_in_text(tmp_path, database):
    config = write_config(tmp_path, database)
    lines = ["/start", QUESTION, "/delete_my_data"]
    done = navbot(
        "--config",
        str(config),
        "run",
        stdin="\n".join(lines) + "\n",
        cwd=tmp_path,
        env={"NAVBOT_BOT__LOG_LEVEL": "DEBUG", "NAVBOT_DATABASE__ECHO": "true"},
    )
    assert done.returncode == 0, done.stderr
    assert "Здравствуйте" in done.stdout  # the conversation is on the terminal...
    assert_clean(done.stderr)  # ...and not in the log
    assert " DEBUG " in done.stderr and "parameters hidden" in done.stderr


async def test_the_reference_id_a_parent_is_shown_leads_to_one_json_line(
    settings, fake_telegram, fake_vk
):
    import io
    import logging

    from bot import logs
    from tests.messengers import Running, TelegramParent, messenger_settings
    from tests.test_safety_net import APOLOGY, fails_once, reference

    # The process's logging, as `navbot run` sets it up, into a buffer (and back after).
    root = logging.getLogger()
    names = (None, *logs.QUIET, *logs.CHATTY)
    saved = [(logger, logger.level) for logger in map(logging.getLogger, names)]
    handlers = list(root.handlers)
    stream = io.StringIO()
    logs.setup(logging.DEBUG, "json", stream=stream)
    running = Running(messenger_settings(settings, fake_telegram, fake_vk), fake_vk)
    app = await running.start()
    try:
        parent = TelegramParent(running, fake_telegram, 7501)
        await parent.send("/start")
        app.router.commands["help"] = fails_once(app.router.commands["help"])
        await parent.send(f"/help {CHILD} {PHONE}")
        assert parent.text.startswith(APOLOGY)
        ref = reference(parent.text)
    finally:
        await running.stop()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        for logger, level in saved:
            logger.setLevel(level)

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    failures = [record for record in records if record.get("ref") == ref]
    assert len(failures) == 1, records
    (failure,) = failures
    assert failure["level"] == "ERROR" and failure["logger"] == "handlers.engine"
    assert failure["update"].startswith("telegram:")
    assert "ValueError" in failure["message"]
    assert_clean(stream.getvalue())
