"""Personal data only in the messengers the operator allows, and one parent across
Telegram and MAX: through the real Telegram and MAX adapters against the fakes, with
`personal_data_channels = ["vk", "max"]`."""

from __future__ import annotations

import asyncio
import re
import signal
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from bot.app import App, build_app
from bot.channels.max import MaxChannel
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.delivery import Limits
from handlers.core import Reply
from handlers.linking import pd_channels_for
from storage.models import (
    Base,
    Child,
    EnrollmentRequest,
    LinkCode,
    TranscriptEntry,
    User,
    utcnow,
)
from storage.outbox import queue_replies
from tests.cli import LiveProcess, write_config
from tests.fakes.max import FakeMax
from tests.messengers import MaxParent, Running, TelegramParent, wait_until

MAX_BOT = "navigator_bot"
CHILD, BORN, PHONE = "Сидоров Павел", "01.09.2013", "+7 912 345-67-89"
FAST = Limits(per_second=30, chat_per_second=20, chat_burst=5)
LINK = re.compile(r"^https://max\.ru/navigator_bot\?start=(ln_[A-Za-z0-9_-]{20,})$")


class TelegramAndMax(Running):
    """The app with its Telegram and MAX channels running (long polling both)."""

    def __init__(self, settings: Settings, fake_max: FakeMax) -> None:
        super().__init__(settings, None, max=FAST)  # type: ignore[arg-type]
        self.fake_max = fake_max

    async def start(self) -> App:
        self.app = build_app(self.settings)
        await self.app.start()
        self.telegram = TelegramChannel(self.app)
        self.max = MaxChannel(self.app, limits=FAST)
        await self.max.check()
        await self.app.serve()
        polls = sum(1 for call in self.fake_max.calls if call[1] == "/updates")
        self.tasks = [asyncio.create_task(self.telegram.run()), asyncio.create_task(self.max.run())]
        await wait_until(
            lambda: sum(1 for call in self.fake_max.calls if call[1] == "/updates") > polls
        )
        return self.app

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.telegram.close()
        await self.max.close()
        assert self.app is not None
        await self.app.close()


@pytest.fixture
async def fake_max():
    fake = FakeMax(per_second=60, chat_per_second=20)
    await fake.start()
    yield fake
    await fake.stop()


def both_settings(base: Settings, telegram, fake_max: FakeMax, **bot) -> Settings:
    return Settings(
        bot={**base.bot.model_dump(), "personal_data_channels": ["vk", "max"], **bot},
        database=base.database.model_dump(),
        telegram={"token": telegram.token, "api_base": telegram.base, "polling_timeout": 1},
        max={
            "token": fake_max.token,
            "api_base": fake_max.base,
            "polling_timeout": 1,
            "bot_username": MAX_BOT,
        },
    )


@pytest.fixture
async def served(settings, fake_telegram, fake_max):
    running = TelegramAndMax(both_settings(settings, fake_telegram, fake_max), fake_max)
    await running.start()
    yield running
    await running.stop()


async def _to_the_request(parent: TelegramParent) -> None:
    await parent.send("/start")
    await parent.press("Найти кружок")
    await parent.press("Слово для поиска")
    await parent.send("радиоэлектроник")
    await parent.press("Записаться на №1")


def _code(parent: TelegramParent, label: str = "Продолжить в MAX") -> str:
    found = LINK.match(parent.data_for(label))
    assert found, parent.data_for(label)
    return found.group(1)


async def _user(app: App, channel: str, platform_id: int) -> User:
    async with app.db.session() as session:
        return await session.scalar(
            select(User).where(User.channel == channel, User.platform_user_id == str(platform_id))
        )


async def _telegram_transcript(app: App, platform_id: int) -> str:
    user = await _user(app, "telegram", platform_id)
    async with app.db.session() as session:
        rows = await session.scalars(
            select(TranscriptEntry.text).where(TranscriptEntry.user_id == user.id)
        )
        return "\n".join(rows)


async def _request_in_max(in_max: MaxParent) -> None:
    await in_max.press("Согласен(на)")
    assert "сначала добавим ребёнка" in in_max.text.lower()
    await in_max.send(CHILD)
    await in_max.send(BORN)
    await in_max.press("Пропустить")
    await in_max.send(PHONE)
    await in_max.press("Без комментария")
    await in_max.press("Отправить заявку")
    assert "Заявка №1 отправлена" in in_max.text


async def test_telegram_parent_is_sent_to_max_and_goes_on_there_with_the_program(
    served, fake_telegram, fake_max
):
    in_telegram = TelegramParent(served, fake_telegram, 5101)
    await _to_the_request(in_telegram)
    # the explanation with the law, no consent asked, a link into MAX
    assert "149-ФЗ, ст. 10, ч. 8" in in_telegram.text
    assert "Согласие на обработку" not in in_telegram.text
    code = _code(in_telegram)
    async with served.app.db.session() as session:
        (stored,) = (await session.scalars(select(LinkCode))).all()
    assert code not in stored.code_hash and len(stored.code_hash) == 64  # only the hash

    in_max = MaxParent(served, fake_max, 5101)
    await in_max.start(code)
    assert "связан с Telegram" in in_max.text
    # the step goes on: the consent for the request to the chosen program
    assert "Согласие на обработку персональных данных" in in_max.text
    await _request_in_max(in_max)
    async with served.app.db.session() as session:
        request = await session.scalar(select(EnrollmentRequest))
        title = await session.scalar(
            select(Base.metadata.tables["programs"].c.title).where(
                Base.metadata.tables["programs"].c.id == request.program_id
            )
        )
    assert "радиоэлектрон" in title.lower()

    # Telegram's «Мои заявки» shows the request made in MAX, without the child
    await in_telegram.send("/menu")
    await in_telegram.press("Мои заявки")
    assert "№1" in in_telegram.text and title in in_telegram.text
    assert "Новая" in in_telegram.text or "нов" in in_telegram.text.lower()
    # the children's page in Telegram sends to MAX instead of listing them
    await in_telegram.press("В меню")
    await in_telegram.press("Мои дети и данные")
    assert "149-ФЗ" in in_telegram.text and CHILD not in in_telegram.text

    # a status change notifies MAX (used last, allowed), with the child's name
    await served.app.services.request_status.change(1, "accepted")
    await wait_until(lambda: any("принята" in m.text for m in fake_max.to(5101)))
    (notice,) = [m.text for m in fake_max.to(5101) if "принята" in m.text]
    assert "Павел" in notice

    sent = "\n".join(m.text for m in fake_telegram.to(5101))
    stored_text = await _telegram_transcript(served.app, 5101)
    for secret in ("Сидоров", "Павел", BORN, "2013-09-01", "912 345"):
        assert secret not in sent and secret not in stored_text


async def test_a_code_used_twice_or_expired_is_refused_and_links_nothing(
    served, fake_telegram, fake_max
):
    in_telegram = TelegramParent(served, fake_telegram, 5201)
    await _to_the_request(in_telegram)
    code = _code(in_telegram)
    first = MaxParent(served, fake_max, 5201)
    await first.start(code)
    assert "связан с Telegram" in first.text
    # the same link opened again, by someone else in MAX
    other = MaxParent(served, fake_max, 5202)
    await other.start(code)
    assert "уже была использована" in other.text
    assert (await _user(served.app, "max", 5202)).person_id is None

    # a new link, opened after its time ran out
    await in_telegram.send("/menu")
    await in_telegram.press("Связать мессенджеры")
    late = _code(in_telegram, "Связать с MAX")
    async with served.app.db.session() as session:
        await session.execute(
            update(LinkCode)
            .where(LinkCode.used_at.is_(None))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    third = MaxParent(served, fake_max, 5203)
    await third.start(late)
    assert "Срок этой ссылки истёк" in third.text
    assert (await _user(served.app, "max", 5203)).person_id is None
    # a made-up code
    await third.start("ln_" + "A" * 24)
    assert "такого кода нет" in third.text
    assert (await _user(served.app, "max", 5203)).person_id is None


async def test_linked_parent_deletes_everything_from_telegram(served, fake_telegram, fake_max):
    in_telegram = TelegramParent(served, fake_telegram, 5301)
    await _to_the_request(in_telegram)
    in_max = MaxParent(served, fake_max, 5301)
    await in_max.start(_code(in_telegram))
    await _request_in_max(in_max)

    await in_telegram.send("/delete_my_data")
    await in_telegram.press("Да, удалить всё")
    assert "ваши данные удалены (1 ребёнок, 1 заявка)" in in_telegram.text

    chunks = []
    async with served.app.db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                chunks.append(f"{table.name}: {[str(value) for value in row]}")
        users = (await session.scalars(select(User))).all()
        (max_user,) = [user for user in users if user.channel == "max"]
        max_rows = (
            await session.scalars(
                select(TranscriptEntry.id).where(TranscriptEntry.user_id == max_user.id)
            )
        ).all()
    after = "\n".join(chunks)
    for secret in ("Сидоров", "Павел", "2013-09-01", BORN, "912 345", "912345"):
        assert secret not in after, after
    for table in ("children:", "enrollment_requests:", "consents:", "link_codes:"):
        assert table not in after
    assert not max_rows  # nothing of the MAX conversation is left
    assert all(user.person_id is None and user.name == "" for user in users)


async def test_the_outbox_replaces_personal_data_to_telegram(served, fake_telegram, fake_max):
    in_telegram = TelegramParent(served, fake_telegram, 5401)
    await _to_the_request(in_telegram)
    in_max = MaxParent(served, fake_max, 5401)
    await in_max.start(_code(in_telegram))
    await _request_in_max(in_max)
    user = await _user(served.app, "telegram", 5401)
    async with served.app.db.session() as session:
        child = await session.scalar(select(Child))
        declared = Reply("Заявка №1: Сидоров Павел зачислен", personal=True)
        # not declared, but it names the child: the safety net catches it
        undeclared = Reply(f"Напоминаем про {child.full_name}")
        harmless = Reply("Горячая линия: +7 (8652) 00-00-00")
        await queue_replies(session, user, [declared, undeclared, harmless], kind="notice")
    for reply in (declared, undeclared):
        assert reply.text.startswith("Есть новости по вашей заявке — откройте в MAX")
        assert LINK.match(reply.buttons[0][0].payload)
    assert harmless.text.startswith("Горячая линия")
    await wait_until(lambda: len([m for m in fake_telegram.to(5401) if "новости" in m.text]) == 2)
    assert "Сидоров" not in "\n".join(m.text for m in fake_telegram.to(5401))


def test_the_setting_reads_json_from_the_environment_and_the_profile_overrides_it(
    monkeypatch, settings
):
    monkeypatch.setenv("NAVBOT_BOT__PERSONAL_DATA_CHANNELS", '["vk", "max"]')
    assert Settings().bot.personal_data_channels == ["vk", "max"]
    region = build_app(settings).region
    assert pd_channels_for(Settings(), region) == ("vk", "max")
    monkeypatch.delenv("NAVBOT_BOT__PERSONAL_DATA_CHANNELS")
    assert pd_channels_for(Settings(), region) == ("telegram", "vk", "max")

    profile = SimpleNamespace(extra={"personal_data_channels": ["max"]})
    assert pd_channels_for(Settings(), profile) == ("max",)


async def test_navbot_run_names_the_channels_where_personal_data_are_collected(
    tmp_path, database, fake_max
):
    config = write_config(tmp_path, database)
    env = {
        "NAVBOT_MAX__TOKEN": fake_max.token,
        "NAVBOT_MAX__API_BASE": fake_max.base,
        "NAVBOT_MAX__POLLING_TIMEOUT": "1",
        "NAVBOT_BOT__PERSONAL_DATA_CHANNELS": '["vk", "max"]',
    }
    process = LiveProcess("--config", str(config), "run", env=env, cwd=tmp_path)
    try:
        # read in a thread: the fake MAX answers the process from this event loop
        seen = await asyncio.to_thread(process.expect, "personal data", 90)
        (line,) = [each for each in seen.splitlines() if "personal data" in each]
        assert line == (
            "personal data (consent, children, phones, requests) are collected in: vk, max; "
            "not in: telegram (a link to continue there is offered)"
        )
        await wait_until(lambda: any(c[1] == "/updates" for c in fake_max.calls), limit=60)
        process.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.proc.wait, 30) == 0
    finally:
        if process.proc.poll() is None:
            process.kill()
        for pipe in (process.proc.stdin, process.proc.stdout):
            if pipe is not None:
                pipe.close()


async def test_linked_conversations_share_reminders(app):
    from storage import reminders
    from storage.linking import link

    async with app.db.session() as session:
        in_telegram = User(channel="telegram", platform_user_id="61", chat_id="61")
        in_max = User(channel="max", platform_user_id="61", chat_id="61")
        session.add_all([in_telegram, in_max])
        await session.flush()
        await reminders.plan_series(session, in_max.id, [utcnow() + timedelta(days=1)])
        assert await reminders.planned(session, in_telegram.id) == []
        await link(session, in_telegram, in_max)
        assert len(await reminders.planned(session, in_telegram.id)) == 1
        # a series is not planned twice for one parent, and stops from either messenger
        await reminders.plan_series(session, in_telegram.id, [utcnow() + timedelta(days=2)])
        assert len(await reminders.planned(session, in_max.id)) == 1
        assert await reminders.stop(session, in_telegram.id, "opted_out") == 1
        assert await reminders.planned(session, in_max.id) == []
