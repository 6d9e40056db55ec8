"""`navbot run` serving Telegram, VK and the terminal from one process; the Telegram
webhook; what may import the messenger libraries; VK keyboard layout."""

from __future__ import annotations

import ast
import asyncio
import signal
from pathlib import Path

import aiohttp

from bot.app import build_app
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import fit_keyboard
from bot.web import create_web_app, serve
from bot.web.telegram import SECRET_HEADER
from handlers.core import Button
from tests.cli import LiveProcess, navbot, write_config
from tests.messengers import messenger_settings, wait_until

ROOT = Path(__file__).resolve().parent.parent
MESSENGER_LIBRARIES = ("aiogram", "vk_api")


def _update(update_id: int, user_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Мама"},
            "text": text,
        },
    }


async def test_webhook_checks_the_secret_token(settings, fake_telegram, fake_vk):
    configured = messenger_settings(
        settings,
        fake_telegram,
        fake_vk,
        mode="webhook",
        webhook_url="https://bot.example.org/tg/hook",
        webhook_secret="s3cret-token",
    )
    app = build_app(configured)
    await app.start()
    telegram = TelegramChannel(app)
    await app.serve()
    task = asyncio.create_task(telegram.run())
    runner = await serve(create_web_app(app, telegram), "127.0.0.1", 0)
    try:
        await wait_until(lambda: fake_telegram.webhook)
        assert fake_telegram.webhook["secret_token"] == "s3cret-token"
        assert fake_telegram.webhook["url"] == "https://bot.example.org/tg/hook"
        fake_telegram.chats.add(1801)
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/tg/hook"
        async with aiohttp.ClientSession() as http:
            for headers in ({SECRET_HEADER: "wrong"}, {}):
                async with http.post(url, json=_update(1, 1801, "/start"), headers=headers) as r:
                    assert r.status == 401
            assert not fake_telegram.to(1801)
            ok = {SECRET_HEADER: "s3cret-token"}
            async with http.post(url, json=_update(2, 1801, "/start"), headers=ok) as r:
                assert r.status == 200  # stored: the answer follows through the outbox
            await wait_until(lambda: len(fake_telegram.to(1801)) == 2)
            assert "Здравствуйте" in fake_telegram.to(1801)[0].text
            async with http.post(url, json=_update(2, 1801, "/start"), headers=ok) as r:
                assert r.status == 200  # a re-delivered update: accepted, not answered again
            await app.inbox.drain()
            await app.delivery.sweep()
            await asyncio.sleep(0.5)
            assert len(fake_telegram.to(1801)) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
        await telegram.close()
        await app.close()


async def test_navbot_run_serves_telegram_vk_and_the_terminal(
    tmp_path, database, fake_telegram, fake_vk
):
    config = write_config(tmp_path, database)
    env = {
        "NAVBOT_TELEGRAM__TOKEN": fake_telegram.token,
        "NAVBOT_TELEGRAM__API_BASE": fake_telegram.base,
        "NAVBOT_TELEGRAM__POLLING_TIMEOUT": "1",
        "NAVBOT_VK__TOKEN": fake_vk.token,
        "NAVBOT_VK__GROUP_ID": str(fake_vk.group_id),
        "NAVBOT_VK__API_BASE": f"{fake_vk.base}/method",
        "NAVBOT_VK__LONGPOLL_WAIT": "1",
    }
    process = LiveProcess("--config", str(config), "run", "--console", env=env)
    try:
        await fake_telegram.message(1901, "/start")
        await wait_until(lambda: fake_vk.lp_connects > 0, limit=60)
        await fake_vk.message(1902, "Привет")
        process.send("/start")
        await asyncio.to_thread(process.expect, "Здравствуйте")
        await wait_until(lambda: len(fake_telegram.to(1901)) >= 2, limit=60)
        await wait_until(lambda: len(fake_vk.to(1902)) >= 1, limit=60)
        assert "Здравствуйте" in fake_telegram.to(1901)[0].text
        assert "Напишите, пожалуйста, ваш вопрос" in fake_vk.to(1902)[0].text
        assert fake_telegram.commands
        process.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.proc.wait, 30) == 0
    finally:
        if process.proc.poll() is None:
            process.kill()
        for pipe in (process.proc.stdin, process.proc.stdout):
            if pipe is not None:
                pipe.close()


def test_messenger_libraries_are_imported_only_by_channels_and_delivery():
    allowed = {ROOT / "bot" / "delivery.py"}
    offenders = []
    for folder in ("bot", "handlers", "storage", "texts"):
        for path in (ROOT / folder).rglob("*.py"):
            if path in allowed or (ROOT / "bot" / "channels") in path.parents:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    if name.split(".")[0] in MESSENGER_LIBRARIES:
                        offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders
    # the channels themselves do use them
    assert "aiogram" in (ROOT / "bot" / "channels" / "telegram.py").read_text(encoding="utf-8")


def test_vk_keyboard_layout_fits_the_inline_limits():
    def buttons(n: int) -> list[Button]:
        return [Button(f"Кнопка {i}", f"b:{i}") for i in range(n)]

    # 9 one-button rows: merged into 6 rows, one keyboard, order kept
    (single,) = fit_keyboard([[b] for b in buttons(9)])
    assert len(single) == 6 and all(len(row) <= 5 for row in single)
    assert [b.payload for row in single for b in row] == [f"b:{i}" for i in range(9)]
    # a row of 7 is re-flowed into rows of at most 5
    (flowed,) = fit_keyboard([buttons(7)])
    assert [len(row) for row in flowed] == [5, 2]
    # 23 buttons do not fit one inline keyboard: several, each within the limits
    many = fit_keyboard([[b] for b in buttons(23)])
    assert len(many) > 1
    for keyboard in many:
        assert len(keyboard) <= 6 and sum(len(row) for row in keyboard) <= 10
    assert sum(len(row) for keyboard in many for row in keyboard) == 23


async def test_staff_status_change_from_the_command_line_reaches_the_parent_in_telegram(
    tmp_path, database, running, fake_telegram
):
    """`navbot request-status` runs in its own process; the notice still reaches the
    parent in their messenger through the delivery path."""
    from datetime import date

    from sqlalchemy import select

    from storage.models import Child, Program, User
    from storage.requests import submit
    from tests.messengers import TelegramParent

    parent = TelegramParent(running, fake_telegram, 7301)
    await parent.send("/start")
    app = running.app
    async with app.db.session() as session:
        user = await session.scalar(select(User).where(User.platform_user_id == "7301"))
        program = await session.scalar(select(Program).order_by(Program.id).limit(1))
        child = Child(user_id=user.id, full_name="Петрова Анна", birth_date=date(2015, 3, 5))
        session.add(child)
        await session.flush()
        made = await submit(
            session,
            user_id=user.id,
            child_id=child.id,
            program_id=program.id,
            phone="+7 912 345-67-89",
            comment="",
            key="cli-test",
        )
        number, title = made.request.id, program.title

    config = write_config(tmp_path, database)
    env = {
        "NAVBOT_CONFIG": str(config),
        "NAVBOT_TELEGRAM__TOKEN": fake_telegram.token,
        "NAVBOT_TELEGRAM__API_BASE": fake_telegram.base,
    }
    staff = await asyncio.to_thread(
        navbot, "request-status", str(number), "accepted", cwd=tmp_path, env=env
    )
    assert staff.returncode == 0, staff.stderr
    assert "parent notified" in staff.stdout
    notice = fake_telegram.to(7301)[-1]
    assert f"Заявка №{number} принята организацией.\nПрограмма: {title}" in notice.text
    assert "Ребёнок: Петрова Анна" in notice.text
    assert [label for row in notice.buttons for label, _ in row] == ["Мои заявки"]
