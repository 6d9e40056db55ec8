"""The app served through the real aiogram and vk_api adapters against the fake APIs,
and parents who talk to it there."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from sqlalchemy import select

from bot.app import App, build_app
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Settings
from bot.delivery import Limits
from storage.models import ProcessedUpdate, TranscriptEntry, User
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk


def messenger_settings(base: Settings, telegram: FakeTelegram, vk: FakeVk, **telegram_extra: Any):
    return Settings(
        bot=base.bot.model_dump(),
        database=base.database.model_dump(),
        telegram={
            "token": telegram.token,
            "api_base": telegram.base,
            "polling_timeout": 1,
            **telegram_extra,
        },
        vk={
            "token": vk.token,
            "group_id": vk.group_id,
            "api_base": f"{vk.base}/method",
            "longpoll_wait": 1,
        },
    )


class Running:
    """The app with its Telegram and VK channels running as tasks."""

    def __init__(self, settings: Settings, vk_fake: FakeVk, **limits: Limits) -> None:
        self.settings = settings
        self.vk_fake = vk_fake
        self.limits = limits
        self.app: App | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> App:
        self.app = build_app(self.settings)
        await self.app.start()
        self.telegram = TelegramChannel(self.app, **self._limits("telegram"))
        self.vk = VkChannel(self.app, **self._limits("vk"))
        await self.app.serve()
        connects = self.vk_fake.lp_connects
        self.tasks = [asyncio.create_task(self.telegram.run()), asyncio.create_task(self.vk.run())]
        await wait_until(lambda: self.vk_fake.lp_connects > connects)
        return self.app

    def _limits(self, channel: str) -> dict[str, Limits]:
        return {"limits": self.limits[channel]} if channel in self.limits else {}

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.telegram.close()
        assert self.app is not None
        await self.app.close()


async def wait_until(condition, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def settled(app: App, channel: str, update_id: str, user_id: int, limit: float = 30):
    """Wait until the update was handled and every reply to the user left delivery."""
    deadline = time.monotonic() + limit
    while True:
        async with app.db.session() as session:
            done = await session.get(ProcessedUpdate, (channel, str(update_id)))
            pending = await session.scalar(
                select(TranscriptEntry.id)
                .join(User, User.id == TranscriptEntry.user_id)
                .where(
                    User.channel == channel,
                    User.platform_user_id == str(user_id),
                    TranscriptEntry.status == "pending",
                )
                .limit(1)
            )
        if done is not None and pending is None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{channel} update {update_id} not settled")
        await asyncio.sleep(0.02)


class Parent:
    """Someone writing to the bot in one messenger; `text` and `labels` are what the
    bot sent in answer to the last message."""

    channel = ""

    def __init__(self, running: Running, user_id: int) -> None:
        self.running = running
        self.user_id = user_id
        self.last: list[Any] = []

    @property
    def text(self) -> str:
        return "\n\n".join(message.text for message in self.last)

    async def _settle(self, update_id: str, before: int) -> list[Any]:
        assert self.running.app is not None
        await settled(self.running.app, self.channel, update_id, self.user_id)
        self.last = self._sent()[before:]
        return self.last

    def _sent(self) -> list[Any]:
        raise NotImplementedError


class TelegramParent(Parent):
    channel = "telegram"

    def __init__(self, running: Running, fake: FakeTelegram, user_id: int) -> None:
        super().__init__(running, user_id)
        self.fake = fake

    def _sent(self) -> list[Any]:
        return self.fake.to(self.user_id)

    @property
    def labels(self) -> list[str]:
        return [label for m in self.last for row in m.buttons for label, _ in row]

    async def send(self, text: str) -> list[Any]:
        before = len(self._sent())
        update = await self.fake.message(self.user_id, text)
        return await self._settle(update["update_id"], before)

    def data_for(self, label: str) -> str:
        for message in reversed(self._sent()):
            for row in message.buttons:
                for shown, data in row:
                    if shown == label:
                        return data
        raise AssertionError(f"no button {label!r}; shown: {self.labels}")

    async def press(self, label: str) -> list[Any]:
        before = len(self._sent())
        update = await self.fake.callback(self.user_id, self.data_for(label))
        return await self._settle(update["update_id"], before)


class VkParent(Parent):
    """`client_info` is what their VK app can show (None: everything)."""

    channel = "vk"

    def __init__(
        self, running: Running, fake: FakeVk, user_id: int, client_info: dict | None = None
    ) -> None:
        super().__init__(running, user_id)
        self.fake = fake
        self.client_info = client_info

    def _sent(self) -> list[Any]:
        return self.fake.to(self.user_id)

    @property
    def labels(self) -> list[str]:
        return [label for m in self.last for row in m.buttons for _, label, _ in row]

    async def send(self, text: str) -> list[Any]:
        before = len(self._sent())
        event = await self.fake.message(self.user_id, text, self.client_info)
        return await self._settle(event["event_id"], before)

    def button(self, label: str) -> tuple[str, str]:
        """(type, payload) of the latest button shown with this label."""
        for message in reversed(self._sent()):
            for row in message.buttons:
                for kind, shown, payload in row:
                    if shown == label:
                        return kind, payload
        raise AssertionError(f"no button {label!r}; shown: {self.labels}")

    def payload_for(self, label: str) -> str:
        return self.button(label)[1]

    async def press(self, label: str) -> list[Any]:
        """A callback button sends message_event; a text button sends its label as a
        message with the button's payload, as VK apps do."""
        before = len(self._sent())
        kind, payload = self.button(label)
        if kind == "callback":
            event = await self.fake.press(self.user_id, payload)
        else:
            event = await self.fake.message(self.user_id, label, self.client_info, payload=payload)
        return await self._settle(event["event_id"], before)
