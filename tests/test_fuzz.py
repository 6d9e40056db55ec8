"""Hostile input, fuzzed with Hypothesis, through each channel's parsing and the
dialogue engine, against the fake Telegram, VK and MAX APIs (which check what the
platforms check: message length, HTML entities, UTF-8, keyboards and payloads).

Texts up to the platform's maximum (Telegram 4096 UTF-16 code units, VK 4096
characters, MAX 4000) with markup, control, zero-width and RTL characters, NUL, lone
surrogates, emoji and SQL-looking text; forged or malformed button data (another
parent's request and child ids, unknown prefixes, oversized, VK payloads that are not
JSON); updates of unknown types and malformed ones. For each: no exception escapes
the channel, nothing is logged as an error, every reply is sent and accepted by the
platform's rules, and no parent ever sees another parent's data or changes it.

Fixed example counts, no deadline and a derandomized run keep it short and the same
in CI."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import build_app
from bot.channels.max import MaxChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.text import utf16_len
from bot.channels.vk import VkChannel
from bot.config import Settings
from handlers.core import storable
from storage.models import EnrollmentRequest, InboxEntry, TranscriptEntry, User
from tests.chat import ChatClient
from tests.enrollment import full_request, program
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk

FUZZ = hypothesis_settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VICTIM_CHILD = "Секретова Алиса Игоревна"
VICTIM_PHONE = "+7 913 555-12-34"

HOSTILE = [
    "<b>",
    "</b>",
    "<a href='javascript:alert(1)'>x</a>",
    "<script>alert(1)</script>",
    "&amp;",
    "&lt;",
    "&",
    "<",
    ">",
    "*жирный*",
    "_курсив_",
    "`код`",
    "```",
    "[ссылка](http://example.org)",
    "||спойлер||",
    "\\",
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "%s%s%n",
    "{0}{name}${x}",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\ud800",
    "\udfff",
    "👨‍👩‍👧",
    "🇷🇺",
    "\r\n",
    "\t",
    "/start",
    "/menu",
    "меню",
    "Записаться",
    "ё",
    " ",
]
PREFIXES = ["req", "child", "cert", "cat", "reg", "remind", "confirm", "faq", "u", "menu"]
ACTIONS = ["cancel", "cancelok", "child", "send", "new", "show", "name", "add", "stop", "x"]


def hostile_text(limit: int, measure=len) -> st.SearchStrategy[str]:
    pieces = st.one_of(
        st.sampled_from(HOSTILE),
        st.text(alphabet=st.characters(blacklist_categories=()), max_size=12),
    )
    short = st.lists(pieces, max_size=25).map("".join)
    long = st.builds(
        lambda piece, n: piece * n, st.sampled_from([*HOSTILE, "я", "a "]), st.integers(1, limit)
    )
    return st.one_of(short, long).map(lambda text: _cut(text, limit, measure))


def _cut(text: str, limit: int, measure) -> str:
    while measure(text) > limit:
        text = text[: max(limit, len(text) - (measure(text) - limit))]
        if measure(text) > limit:
            text = text[:-1]
    return text


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def OWN(user_id: int) -> st.SearchStrategy[object]:
    """The attacker's own id, or something that is no id at all (a platform delivers
    only chats that wrote to the bot, and the fakes refuse any other)."""
    return st.one_of(
        st.just(user_id),
        st.just(str(user_id)),
        st.none(),
        st.text(alphabet="abcxyz", max_size=5),
        st.lists(st.just(user_id), max_size=2),
        st.just({"id": user_id}),
    )


class World:
    """The app with its three channels (not polling: updates are handed to each
    channel's parsing directly) and the three fakes, on a loop of its own shared by
    every example; a victim parent with a request and a child."""

    USERS: ClassVar[dict[str, int]] = {"telegram": 7001, "vk": 7002, "max": 7003}

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.tmp = tmp
        self.errors: list[logging.LogRecord] = []

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def start(self) -> None:
        self.telegram, self.vk, self.max = FakeTelegram(), FakeVk(), FakeMax()
        for fake in (self.telegram, self.vk, self.max):
            await fake.start()
        settings = Settings(
            bot={"data_dir": self.tmp / "data", "region": "stavropol", "flood_messages": 10_000},
            database={"url": f"sqlite+aiosqlite:///{self.tmp / 'navbot.sqlite3'}"},
            telegram={"token": self.telegram.token, "api_base": self.telegram.base},
            vk={
                "token": self.vk.token,
                "group_id": self.vk.group_id,
                "api_base": f"{self.vk.base}/method",
            },
            max={"token": self.max.token, "api_base": self.max.base},
            delivery={"request_timeout_seconds": 5, "retry_max_seconds": 1},
        )
        self.app = build_app(settings)
        await self.app.start()
        self.channels = {
            "telegram": TelegramChannel(self.app),
            "vk": VkChannel(self.app),
            "max": MaxChannel(self.app),
        }
        await self.app.serve()
        # the victim: another parent, with a child and a request sent
        victim = ChatClient(self.app.engine, user_id="victim")
        await victim.send("/start")
        target = await program(self.app, "900000")
        await full_request(victim, target.id, phone=VICTIM_PHONE, name=VICTIM_CHILD)
        await victim.press("Отправить заявку")
        async with self.app.db.session() as session:
            request = await session.scalar(select(EnrollmentRequest))
            self.victim_request = (request.id, request.status, request.child_id)
        # each attacker starts from the menu
        for channel in self.channels:
            await self.feed_text(channel, "/start")

    async def stop(self) -> None:
        await self.app.close()
        await self.channels["telegram"].close()
        await self.channels["max"].close()
        for fake in (self.telegram, self.vk, self.max):
            await fake.stop()

    # -- what a parent sends, through the channel's own parsing -------------------------
    async def feed_text(self, channel: str, text: str) -> None:
        user = self.USERS[channel]
        if channel == "telegram":
            await self.channels["telegram"].feed(await self.telegram.message(user, text))
            self.telegram.updates.clear()
        elif channel == "vk":
            event = await self.vk.message(user, text)
            await self.channels["vk"].store([event], None)
        else:
            await self.channels["max"].accept([await self.max.message(user, text)])

    async def feed_button(self, channel: str, data: str, vk_raw: object = None) -> None:
        user = self.USERS[channel]
        if channel == "telegram":
            await self.channels["telegram"].feed(await self.telegram.callback(user, data))
            self.telegram.updates.clear()
        elif channel == "vk":
            payload = {"p": data} if vk_raw is None else vk_raw
            event = await self.vk.push(
                "message_event",
                {"user_id": user, "peer_id": user, "event_id": "e1", "payload": payload},
            )
            await self.channels["vk"].store([event], None)
        else:
            await self.channels["max"].accept([await self.max.press(user, data)])

    async def settle(self) -> None:
        """Everything stored was handled and every reply left the outbox."""
        await self.app.inbox.drain()
        deadline = time.monotonic() + 20
        while True:
            async with self.app.db.session() as session:
                pending = await session.scalar(
                    select(func.count())
                    .select_from(TranscriptEntry)
                    .join(User, User.id == TranscriptEntry.user_id)
                    .where(TranscriptEntry.status == "pending", User.channel.in_(LIMITS))
                )
                stored = await session.scalar(select(func.count()).select_from(InboxEntry))
            if not pending and not stored:
                return
            assert time.monotonic() < deadline, f"{pending} replies pending, {stored} stored"
            await asyncio.sleep(0.02)

    async def check(self) -> None:
        """What every example must leave behind."""
        await self.settle()
        assert not self.errors, [r.getMessage() for r in self.errors][:3]
        for name, fake in (("telegram", self.telegram), ("vk", self.vk), ("max", self.max)):
            assert not fake.rejected, (name, fake.rejected[:3])
        async with self.app.db.session() as session:
            failed = await session.scalar(
                select(func.count())
                .select_from(TranscriptEntry)
                .join(User, User.id == TranscriptEntry.user_id)
                .where(
                    TranscriptEntry.direction == "out",
                    TranscriptEntry.status != "sent",
                    User.channel.in_(LIMITS),
                )
            )
            request = await session.get(EnrollmentRequest, self.victim_request[0])
        assert not failed
        assert (request.id, request.status, request.child_id) == self.victim_request
        for fake in (self.telegram, self.vk, self.max):
            for sent in fake.sent:
                assert VICTIM_CHILD not in sent.text and "913 555" not in sent.text


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("fuzz"))

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            world.errors.append(record)

    handler = Errors(logging.ERROR)
    logging.getLogger().addHandler(handler)
    world.run(world.start())
    yield world
    logging.getLogger().removeHandler(handler)
    world.run(world.stop())
    world.loop.close()


LIMITS = {"telegram": (4096, utf16_len), "vk": (4096, len), "max": (4000, len)}


@st.composite
def typed(draw) -> tuple[str, str]:
    channel = draw(st.sampled_from(sorted(LIMITS)))
    limit, measure = LIMITS[channel]
    return channel, draw(hostile_text(limit, measure))


@hypothesis_settings(FUZZ, max_examples=40)
@given(typed())
def test_typed_text_is_answered_within_the_platform_rules(world, example):
    channel, text = example
    fake = {"telegram": world.telegram, "vk": world.vk, "max": world.max}[channel]
    before = len(fake.to(world.USERS[channel]))
    world.run(world.feed_text(channel, text))
    world.run(world.check())
    if storable(text).strip():
        assert len(fake.to(world.USERS[channel])) > before, "no answer"


def forged_data(victim: tuple[int, str, int]) -> st.SearchStrategy[str]:
    ids = st.one_of(
        st.sampled_from([str(victim[0]), str(victim[2]), "0", "-1", "1" * 30, "1e9", "x"]),
        st.integers().map(str),
    )
    known = st.builds(
        lambda prefix, action, value: f"{prefix}:{action}:{value}",
        st.sampled_from(PREFIXES),
        st.sampled_from(ACTIONS),
        ids,
    )
    unknown = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
    oversized = st.builds(
        lambda prefix, n: prefix + "9" * n,
        st.sampled_from(["req:cancel:", "k:", ""]),
        st.integers(60, 1100),
    )
    return st.one_of(known, unknown, oversized)


@hypothesis_settings(FUZZ, max_examples=40)
@given(st.data())
def test_forged_button_data_touches_no_other_parent(world, data):
    channel = data.draw(st.sampled_from(sorted(LIMITS)))
    forged = data.draw(forged_data(world.victim_request))
    vk_raw = None
    if channel == "vk":
        vk_raw = data.draw(st.one_of(st.none(), JSON, st.text(max_size=30)))
    fake = {"telegram": world.telegram, "vk": world.vk, "max": world.max}[channel]
    before = len(fake.to(world.USERS[channel]))
    world.run(world.feed_button(channel, forged or "x", vk_raw))
    world.run(world.check())
    assert len(fake.to(world.USERS[channel])) > before, "no answer"


def telegram_update() -> st.SearchStrategy[dict]:
    user = st.fixed_dictionaries({"id": OWN(7001), "is_bot": JSON, "first_name": JSON})
    message = st.fixed_dictionaries(
        {},
        optional={
            "message_id": JSON,
            "date": st.one_of(st.integers(0, 2**31), JSON),
            "chat": st.fixed_dictionaries(
                {"id": OWN(7001), "type": st.sampled_from(["private", "group", "x"])}
            ),
            "from": user,
            "text": st.one_of(st.text(max_size=20), JSON),
        },
    )
    kind = st.sampled_from(
        [
            "message",
            "edited_message",
            "callback_query",
            "my_chat_member",
            "poll",
            "business_message",
            "unknown_type",
        ]
    )
    return st.builds(
        lambda update_id, key, body: {"update_id": update_id, key: body},
        st.one_of(st.integers(1, 2**31), JSON),
        kind,
        st.one_of(message, JSON),
    )


def vk_event() -> st.SearchStrategy[object]:
    message = st.fixed_dictionaries(
        {},
        optional={
            "from_id": OWN(7002),
            "peer_id": OWN(7002),
            "text": JSON,
            "payload": st.one_of(st.text(max_size=30), JSON),
            "date": JSON,
            "id": JSON,
            "attachments": JSON,
        },
    )
    obj = st.one_of(
        st.fixed_dictionaries({"message": message, "client_info": JSON}),
        message,
        JSON,
    )
    kind = st.sampled_from(["message_new", "message_event", "message_reply", "group_join", "x"])
    event = st.fixed_dictionaries(
        {"type": st.one_of(kind, JSON)},
        optional={"object": obj, "event_id": JSON, "group_id": JSON},
    )
    return st.one_of(event, JSON)


def max_update() -> st.SearchStrategy[object]:
    kind = st.sampled_from(
        ["message_created", "message_callback", "bot_started", "bot_stopped", "message_edited", "x"]
    )
    return st.one_of(
        st.fixed_dictionaries(
            {"update_type": st.one_of(kind, JSON)},
            optional={
                "timestamp": st.one_of(st.integers(0, 2**42), JSON),
                "message": st.one_of(
                    st.fixed_dictionaries(
                        {
                            "sender": st.one_of(
                                st.fixed_dictionaries({"user_id": OWN(7003)}), JSON
                            ),
                            "recipient": st.one_of(st.just({"chat_type": "dialog"}), JSON),
                            "body": st.one_of(
                                st.fixed_dictionaries(
                                    {}, optional={"mid": JSON, "text": JSON, "attachments": JSON}
                                ),
                                JSON,
                            ),
                        }
                    ),
                    JSON,
                ),
                "callback": st.one_of(
                    st.fixed_dictionaries({"callback_id": JSON, "payload": JSON, "user": JSON}),
                    JSON,
                ),
                "user": JSON,
                "payload": JSON,
            },
        ),
        JSON,
    )


@hypothesis_settings(FUZZ, max_examples=100)
@given(st.data())
def test_malformed_and_unknown_updates_stop_no_channel(world, data):
    channel = data.draw(st.sampled_from(sorted(LIMITS)))
    if channel == "telegram":
        update = data.draw(telegram_update())
        world.run(world.channels["telegram"].feed(update))
    elif channel == "vk":
        events = data.draw(st.lists(vk_event(), max_size=3))
        world.run(world.channels["vk"].store(events, None))
    else:
        updates = data.draw(st.lists(max_update(), max_size=3))
        world.run(world.channels["max"].accept(updates))
    world.run(world.check())
