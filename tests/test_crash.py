"""Nothing lost in or out when `navbot run` is killed (SIGKILL) at awkward moments.

The bot runs as a real process against the project's fake Telegram, VK and MAX; parents
write there, the bot is killed and started again, and the database and the fakes
are checked afterwards: every message handled once, every reply delivered.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from bot.app import build_app
from bot.config import Settings
from storage.models import EnrollmentRequest, InboxEntry, Program, TranscriptEntry, User
from tests.fakes.max import FakeMax
from tests.messengers import wait_until
from tests.processes import Bot

ROOT = Path(__file__).resolve().parent.parent


def _settings(tmp_path: Path, database: dict[str, str]) -> Settings:
    return Settings(bot={"data_dir": tmp_path / "data"}, database=database)


async def _db_check(tmp_path: Path, database: dict[str, str], work):
    app = build_app(_settings(tmp_path, database))
    try:
        await app.db.migrate()
        async with app.db.session() as session:
            return await work(session)
    finally:
        await app.close()


async def test_reply_committed_but_not_sent_is_sent_once_after_a_kill(
    tmp_path, database, fake_telegram
):
    bot = Bot(tmp_path, database, fake_telegram)
    bot.start()
    try:
        await fake_telegram.message(5001, "/start")
        await wait_until(lambda: len(fake_telegram.to(5001)) >= 2, limit=90)

        fake_telegram.hold_sends = True
        await fake_telegram.message(5001, "Регистрация в Навигаторе")
        await wait_until(lambda: fake_telegram.held >= 1, limit=60)

        async def pending(session):
            return await session.scalar(
                select(func.count()).where(TranscriptEntry.status == "pending")
            )

        # The reply was decided and committed; the platform has not accepted it.
        assert await _db_check(tmp_path, database, pending) >= 1
        bot.kill()
        fake_telegram.release(drop=True)  # the call never reached Telegram
        await wait_until(lambda: fake_telegram.dropped >= 1)
        assert not [m for m in fake_telegram.to(5001) if "Шаг 1 из 8" in m.text]

        bot.start()
        await wait_until(
            lambda: any("Шаг 1 из 8" in m.text for m in fake_telegram.to(5001)), limit=90
        )
        await asyncio.sleep(3)  # a second copy, if any, would have come by now
        assert len([m for m in fake_telegram.to(5001) if "Шаг 1 из 8" in m.text]) == 1
        assert await _db_check(tmp_path, database, pending) == 0
    finally:
        bot.stop()


# -- the soak: parents through the whole enrollment flow while the bot is killed ------


class Walker:
    """A parent going through the enrollment flow in one messenger, step by step: each
    step sends a message or presses a button, then waits for the answer it expects."""

    def __init__(self, fake, user_id: int, program_id: int, kind: str) -> None:
        self.fake = fake
        self.user_id = user_id
        self.program_id = program_id
        self.kind = kind
        self.sent_updates = 0
        self.done = False

    def _messages(self):
        return self.fake.to(self.user_id)

    def _latest_button(self, label: str):
        for message in reversed(self._messages()):
            for row in message.buttons:
                for button in row:
                    shown = button[0] if self.kind == "telegram" else button[1]
                    if shown == label:
                        return button
        return None

    async def _act(self, text: str | None, press: str | None, data: str | None) -> None:
        self.sent_updates += 1
        if self.kind == "telegram":
            if text is not None:
                await self.fake.message(self.user_id, text)
            else:
                if data is None:
                    button = self._latest_button(press or "")
                    assert button is not None, f"{self.user_id}: no button {press!r}"
                    data = button[1]
                await self.fake.callback(self.user_id, data)
        else:  # VK and MAX buttons are (kind, label, payload)
            if text is not None:
                await self.fake.message(self.user_id, text)
            else:
                if data is None:
                    button = self._latest_button(press or "")
                    assert button is not None, f"{self.user_id}: no button {press!r}"
                    data = button[2]
                elif self.kind == "vk":
                    data = json.dumps({"p": data})
                await self.fake.press(self.user_id, data)

    async def step(
        self, expect: str, *, text=None, press=None, data=None, limit: float = 240
    ) -> None:
        before = len(self._messages())
        await self._act(text, press, data)
        deadline = time.monotonic() + limit
        while not any(expect in m.text for m in self._messages()[before:]):
            if time.monotonic() > deadline:
                shown = [m.text[:60] for m in self._messages()[before:]]
                raise AssertionError(f"{self.user_id}: {expect!r} never came; got {shown}")
            await asyncio.sleep(0.05)

    async def walk(self, birth: str) -> None:
        await self.step("Здравствуйте", text="/start")
        await self.step(
            "Согласие на обработку персональных данных", data=f"req:new:{self.program_id}"
        )
        await self.step("фамилию", press="Согласен(на)")
        await self.step("Дата рождения", text="Петрова Анна Ивановна")
        await self.step("сертификата", text=birth)
        await self.step("Телефон для связи", press="Пропустить")
        await self.step("Комментарий", text="+7 912 345-67-89")
        await self.step("Проверьте заявку", press="Без комментария")
        await self.step("отправлена", press="Отправить заявку")
        self.done = True


@pytest.fixture
async def fake_max():
    fake = FakeMax()
    await fake.start()
    yield fake
    await fake.stop()


async def test_crash_soak_telegram_vk_and_max(tmp_path, database, fake_telegram, fake_vk, fake_max):
    """10 Telegram, 10 VK and 10 MAX parents through the whole enrollment flow while the
    bot is killed with SIGKILL 20 times at random moments and started again."""
    rng = random.Random(20261202)
    bot = Bot(tmp_path, database, fake_telegram, fake_vk, fake_max)
    bot.start()

    async def programs(session):
        rows = await session.scalars(
            select(Program.id)
            .where(
                Program.age_from <= 9,
                Program.age_to >= 9,
                or_(Program.places_left.is_(None), Program.places_left > 0),
            )
            .limit(30)
        )
        return list(rows)

    ids: list[int] = []
    try:
        await wait_until(lambda: fake_vk.lp_connects > 0, limit=120)
        ids = await _db_check(tmp_path, database, programs)
        walkers = [Walker(fake_telegram, 6000 + n, ids[n], "telegram") for n in range(10)]
        walkers += [Walker(fake_vk, 7000 + n, ids[10 + n], "vk") for n in range(10)]
        walkers += [Walker(fake_max, 8000 + n, ids[20 + n], "max") for n in range(10)]
        birth = f"05.03.{time.localtime().tm_year - 9}"
        walks = [asyncio.create_task(w.walk(birth)) for w in walkers]

        for _ in range(20):
            await asyncio.sleep(rng.uniform(0.3, 2.5))
            bot.kill()
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            bot.start()
        await asyncio.gather(*walks)
    finally:
        bot.stop()

    assert all(w.done for w in walkers)

    async def outcome(session):
        pending = await session.scalar(
            select(func.count()).where(TranscriptEntry.status == "pending")
        )
        inbox = await session.scalar(select(func.count()).select_from(InboxEntry))
        per_parent = dict(
            (
                await session.execute(
                    select(User.platform_user_id, func.count(EnrollmentRequest.id))
                    .join(EnrollmentRequest, EnrollmentRequest.user_id == User.id)
                    .group_by(User.platform_user_id)
                )
            ).all()
        )
        handled = dict(
            (
                await session.execute(
                    select(User.platform_user_id, func.count(TranscriptEntry.id))
                    .join(TranscriptEntry, TranscriptEntry.user_id == User.id)
                    .where(TranscriptEntry.direction == "in")
                    .group_by(User.platform_user_id)
                )
            ).all()
        )
        return pending, inbox, per_parent, handled

    pending, inbox, per_parent, handled = await _db_check(tmp_path, database, outcome)
    assert pending == 0, "replies decided but never delivered"
    assert inbox == 0, "updates stored but never handled"
    for walker in walkers:
        assert per_parent.get(str(walker.user_id)) == 1, walker.user_id
        # every message the parent sent was handled exactly once
        assert handled.get(str(walker.user_id)) == walker.sent_updates, walker.user_id
