"""Pacing as a platform sees it: the per-second budget goes out as a burst, never more
than the limit in any window, per-chat limits, a flood answer holds every sender; the
same shared through Redis by several processes, with a fallback when Redis goes away;
and the bot under a burst of 300 parents against the fake Telegram with its limits on.

Times are read from the limiter's own clock (a test clock, or Redis's), never measured:
the tests check what was allowed, not how fast it ran."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from bot.config import ConfigError, PacingSection, Settings, load_settings
from bot.pacing import (
    BACKGROUND,
    HOLD,
    LONG_POLL,
    MARGIN,
    NETWORK_SHARE,
    TRIPS_KNOWN,
    Limits,
    MemoryLimiter,
    Pacing,
    RedisLimiter,
    token_hash,
)
from storage.models import TranscriptEntry
from tests.cli import navbot
from tests.fakes.common import max_in_window
from tests.messengers import Running, messenger_settings, wait_until

REDIS_URL = os.environ.get("NAVBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test's own; its keys are removed after the test."""
    from redis import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        client.close()
        reason = f"Redis at {REDIS_URL} unavailable: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    prefix = f"test-pacing-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def redis(redis_prefix):
    """An asyncio Redis client and the test's key prefix."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client, redis_prefix
    await client.aclose()


async def _take(limiter, chat: str, granted: list[float]) -> None:
    grant = await limiter.acquire(chat, hold=True)
    granted.append(grant.granted)
    await grant.done()  # the platform answered


# -- in memory ------------------------------------------------------------------------


async def test_the_budget_goes_out_at_once_and_the_rest_waits_for_the_window():
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=50, window=0.1), clock=clock)  # 5 a window
    granted: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, f"chat{n}", granted)) for n in range(8)]
    await wait_until(lambda: len(granted) == 5)
    await asyncio.sleep(0.3)  # real time passes, the limiter's clock does not
    assert granted == [1000.0] * 5  # five at the same instant: a burst, not spaced calls
    clock.now += 0.1 + MARGIN + 0.001
    await wait_until(lambda: len(granted) == 8)
    await asyncio.gather(*tasks)
    assert granted[5:] == [clock.now] * 3


async def test_never_more_than_the_limit_in_any_window():
    limiter = MemoryLimiter(Limits(per_second=25, window=0.2))  # 5 in any 0.2 s
    granted: list[float] = []
    await asyncio.gather(*(_take(limiter, f"chat{n}", granted) for n in range(20)))
    assert len(granted) == 20
    assert max_in_window(granted, 0.2) == 5


async def test_a_call_in_flight_keeps_its_slot_until_the_platform_answers():
    """However late a call reaches the platform, it is counted until it was answered."""
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=50, window=0.1), clock=clock)  # 5 a window
    in_flight = [await limiter.acquire(f"chat{n}", hold=True) for n in range(5)]
    granted: list[float] = []
    task = asyncio.create_task(_take(limiter, "next", granted))
    clock.now += 1.0  # ten windows later the five calls are still on their way
    await asyncio.sleep(0.3)
    assert granted == []
    await in_flight[0].done()  # answered now: counted from now, for one window
    clock.now += 0.05
    await asyncio.sleep(0.3)
    assert granted == []
    clock.now += 0.051
    await wait_until(lambda: granted == [clock.now])
    await task
    # a call that never answers (hung, or its process died) frees its slot after HOLD
    clock.now = 2000.0
    for n in range(5):
        await limiter.acquire(f"hung{n}", hold=True)
    granted.clear()
    task = asyncio.create_task(_take(limiter, "after", granted))
    clock.now = 2000.0 + HOLD
    await asyncio.sleep(0.3)
    assert granted == []
    clock.now = 2000.0 + HOLD + 0.101
    await wait_until(lambda: granted == [clock.now])
    await task


async def test_a_call_answered_at_once_frees_its_slot_one_window_after_the_answer():
    """The platform received a call before it answered it, so a call answered a few
    milliseconds after its grant is counted from that answer, with no margin on top: a
    burst on a fast link keeps to the limit itself, not to the limit less a margin."""
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=50, window=0.1), clock=clock)  # 5 a window
    for n in range(5):
        async with limiter.slot(f"chat{n}"):
            clock.now += 0.002  # a loopback round trip
    answered = clock.now
    granted: list[float] = []
    task = asyncio.create_task(_take(limiter, "next", granted))
    clock.now = answered + 0.1 - 0.008 + 0.0005  # the first answer left the window
    await wait_until(lambda: len(granted) == 1)
    assert granted == [clock.now]
    assert clock.now < answered - 0.008 + 0.1 + MARGIN  # a MARGIN on top would still hold it
    await task


async def test_the_network_round_trip_does_not_use_up_the_budget():
    """A call is counted from its answer less the network's floor (NETWORK_SHARE of the
    shortest round trip seen since the start): at 100 ms to the API a steady call frees
    its slot half the round trip after its grant plus one window, not 100 ms later; a
    slower call's extra delay counts, and a failed call is counted from its end."""
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=50, window=0.1), clock=clock)

    async def call(round_trip: float, fail: bool = False) -> tuple[float, float]:
        with contextlib.suppress(RuntimeError):
            async with limiter.slot("chat"):
                granted = clock.now
                clock.now += round_trip
                if fail:
                    raise RuntimeError("connection reset")
        return granted, limiter._slots[-1].stamp

    for _ in range(TRIPS_KNOWN):  # nothing known of the network yet: from the answer
        granted, stamp = await call(0.1)
        assert stamp == pytest.approx(granted + 0.1)
    granted, stamp = await call(0.1)
    assert stamp == pytest.approx(granted + 0.1 - NETWORK_SHARE * 0.1)
    granted, stamp = await call(0.3)  # 200 ms slower than the floor: that much later
    assert stamp == pytest.approx(granted + 0.3 - NETWORK_SHARE * 0.1)
    granted, stamp = await call(0.1, fail=True)
    assert stamp == pytest.approx(granted + 0.1)
    # one quick trip shows the wire is short (a loopback): the slower trips were our own
    # delays, on either leg, and earn nothing from then on
    await call(0.02)
    for _ in range(300):
        granted, stamp = await call(0.1)
        assert stamp == pytest.approx(granted + 0.1)


async def test_a_chat_gets_a_short_burst_then_waits_and_holds_no_one_else_up():
    clock = Clock()
    limiter = MemoryLimiter(Limits(chat_per_second=10, chat_burst=3), clock=clock)
    to_a: list[float] = []
    to_b: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, "a", to_a)) for _ in range(4)]
    tasks += [asyncio.create_task(_take(limiter, "b", to_b)) for _ in range(2)]
    await wait_until(lambda: len(to_a) == 3 and len(to_b) == 2)
    await asyncio.sleep(0.3)
    assert len(to_a) == 3  # the fourth message to chat a waits for its chat's bucket
    clock.now += 0.2
    await wait_until(lambda: len(to_a) == 4)
    await asyncio.gather(*tasks)


async def test_a_call_to_no_chat_is_paced_by_the_overall_limit_alone():
    """A poll or a start-up call names no chat: no chat's bucket holds it back."""
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=50, chat_per_second=1, chat_burst=1), clock=clock)
    granted: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, "", granted)) for _ in range(4)]
    await wait_until(lambda: len(granted) == 4)
    await asyncio.gather(*tasks)
    assert granted == [1000.0] * 4
    # a real chat still gets its burst of one and then waits for its bucket
    to_a: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, "a", to_a)) for _ in range(2)]
    await wait_until(lambda: len(to_a) == 1)
    await asyncio.sleep(0.2)
    assert len(to_a) == 1
    clock.now += 1.1
    await wait_until(lambda: len(to_a) == 2)
    await asyncio.gather(*tasks)


async def test_a_long_poll_left_open_is_counted_from_long_poll_after_its_grant():
    """The platform holds a long poll open until an update comes: it has received it
    long before it answers, so the poll's slot is free LONG_POLL after its grant, not
    only after HOLD as for a call that may have hung."""
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=10, window=0.1), clock=clock)  # 1 a window
    poll = await limiter.acquire("", hold=True, longest=LONG_POLL)
    granted: list[float] = []
    task = asyncio.create_task(_take(limiter, "chat", granted))
    clock.now = 1000.0 + LONG_POLL
    await asyncio.sleep(0.2)
    assert granted == []  # the poll is counted until LONG_POLL after its grant
    clock.now = 1000.0 + LONG_POLL + 0.101
    await wait_until(lambda: granted == [clock.now])
    assert clock.now < 1000.0 + HOLD
    await task
    await poll.done()


async def _take_in_background(limiter, chat: str, granted: list[float]) -> None:
    BACKGROUND.set(True)  # this task's context only
    await _take(limiter, chat, granted)


async def test_a_parents_answer_goes_before_a_batch_of_reminders_waiting_for_the_budget():
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=10, window=0.1), clock=clock)  # 1 a window
    reminders: list[float] = []
    answer: list[float] = []
    batch = [
        asyncio.create_task(_take_in_background(limiter, f"parent{n}", reminders)) for n in range(5)
    ]
    await wait_until(lambda: len(reminders) == 1)  # the first reminder takes the window
    task = asyncio.create_task(_take(limiter, "asking", answer))
    await asyncio.sleep(0.1)
    clock.now += 0.1 + MARGIN + 0.001
    await wait_until(lambda: len(reminders) + len(answer) == 2)
    # one reminder already waited inside for the window; the parent's answer comes next,
    # before the four reminders still waiting
    await asyncio.sleep(0.1)
    clock.now += 0.1 + MARGIN + 0.001
    await wait_until(lambda: answer != [])
    assert len(reminders) <= 2
    for _ in range(5):
        clock.now += 0.1 + MARGIN + 0.001
        await asyncio.sleep(0.05)
    await asyncio.gather(task, *batch)
    assert len(reminders) == 5


async def test_a_flood_answer_holds_every_chat_until_it_ends():
    clock = Clock()
    limiter = MemoryLimiter(Limits(per_second=50, window=0.1), clock=clock)
    await limiter.penalise(0.5)
    granted: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, f"chat{n}", granted)) for n in range(3)]
    await asyncio.sleep(0.3)
    assert granted == []
    clock.now += 0.51
    await wait_until(lambda: len(granted) == 3)
    await asyncio.gather(*tasks)
    assert min(granted) >= 1000.5


# -- shared through Redis -------------------------------------------------------------


async def test_redis_lets_the_budget_through_at_once_and_keeps_the_token_out_of_keys(redis):
    client, prefix = redis
    token = "123456:SECRET-token"
    limiter = RedisLimiter(client, Limits(per_second=0.5, window=10), token, prefix)  # 5/10 s
    granted: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, f"chat{n}", granted)) for n in range(6)]
    try:
        await wait_until(lambda: len(granted) == 5)
        await asyncio.sleep(0.3)
        assert len(granted) == 5  # the sixth waits for the window
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert limiter.fallback is None
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    assert keys
    assert not any(part in key for key in keys for part in ("SECRET", "123456"))


async def test_redis_per_chat_burst_then_rate(redis):
    client, prefix = redis
    limiter = RedisLimiter(client, Limits(chat_per_second=0.1, chat_burst=3), "tok", prefix)
    to_a: list[float] = []
    to_b: list[float] = []
    tasks = [asyncio.create_task(_take(limiter, "a", to_a)) for _ in range(4)]
    try:
        await wait_until(lambda: len(to_a) == 3)
        await _take(limiter, "b", to_b)  # another chat goes at once
        await asyncio.sleep(0.3)
        assert len(to_a) == 3 and len(to_b) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_flood_answer_in_one_process_holds_the_others_on_that_token(redis):
    from redis.asyncio import Redis

    client, prefix = redis
    limits = Limits(per_second=30)
    # Separate connections and limiters: all they share is Redis, as processes do.
    others = [Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(2)]
    try:
        flooded = RedisLimiter(client, limits, "token-1", prefix)
        same_token = RedisLimiter(others[0], limits, "token-1", prefix)
        other_token = RedisLimiter(others[1], limits, "token-2", prefix)
        seconds, micros = await client.time()
        before = seconds + micros / 1e6
        await flooded.penalise(3.0)
        held = asyncio.create_task(same_token.acquire("chat1"))
        free = await other_token.acquire("chat1")
        assert free.granted < before + 3.0
        assert not held.done()
        grant = await asyncio.wait_for(held, 30)
        assert grant.granted >= before + 3.0
    finally:
        for other in others:
            await other.aclose()


async def test_two_processes_on_one_token_never_exceed_the_limit_together(redis):
    client, prefix = redis
    per_second, grants = 20, 40
    args = [REDIS_URL, prefix, "tok", str(grants), str(per_second)]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.pacing_worker",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for _ in workers:
            assert await client.blpop([f"{prefix}:ready"], timeout=60)
        await client.rpush(f"{prefix}:go", *["go"] * len(workers))
        results = []
        for worker in workers:
            out, err = await asyncio.wait_for(worker.communicate(), 120)
            assert worker.returncode == 0, err.decode()
            results.append(json.loads(out))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    first, second = (result["granted"] for result in results)
    assert not any(result["fell_back"] for result in results)
    assert len(first) == len(second) == grants
    assert min(first) < max(second) and min(second) < max(first)  # they ran side by side
    assert max_in_window(first + second, 1.0) <= per_second


class Relay:
    """A TCP relay to Redis that the test can cut, as a network failure would."""

    def __init__(self) -> None:
        target = urlsplit(REDIS_URL)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.links += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.transport.abort()
        self.links.clear()


async def test_redis_going_away_mid_run_falls_back_to_half_the_limit_then_comes_back(redis, caplog):
    client, prefix = redis
    relay = Relay()
    await relay.start()
    pacing = Pacing(PacingSection(backend="redis", redis_url=relay.url, key_prefix=prefix))
    limiter = pacing.limiter(Limits(per_second=20), "tok")
    window_key = f"{prefix}:pacing:{{{token_hash('tok')}}}:window"
    try:
        assert isinstance(limiter, RedisLimiter)
        await _take(limiter, "chat", [])
        assert await client.zcard(window_key) == 1
        await relay.cut()
        with caplog.at_level(logging.INFO, logger="bot.pacing"):
            granted: list[float] = []
            await asyncio.gather(*(_take(limiter, f"chat{n}", granted) for n in range(25)))
            assert len(granted) == 25  # delivery goes on
            assert max_in_window(granted, 1.0) <= 10  # alone, at half the limit
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "Redis" in warnings[0].getMessage()
            await relay.start()  # Redis reachable again, on the same address
            limiter.RETRY_REDIS = 0.0
            await _take(limiter, "chat", [])
        assert await client.zcard(window_key) >= 1  # counted in Redis again
        assert limiter.fallback is None
        assert any("again" in r.getMessage() for r in caplog.records)
    finally:
        await pacing.close()
        await relay.cut()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_start_with_an_unreachable_redis_stops_with_one_line_naming_the_setting(tmp_path):
    url = f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"
    result = navbot(
        "run",
        cwd=tmp_path,
        env={"NAVBOT_PACING__BACKEND": "redis", "NAVBOT_PACING__REDIS_URL": url},
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "pacing.redis_url" in lines[0] and "cannot be reached" in lines[0]
    assert "s3cret" not in result.stderr + result.stdout


def test_pacing_settings_come_from_the_environment_and_a_wrong_url_names_the_key(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAVBOT_CONFIG", raising=False)
    assert load_settings().pacing.backend == "memory"
    monkeypatch.setenv("NAVBOT_PACING__BACKEND", "redis")
    monkeypatch.setenv("NAVBOT_PACING__REDIS_URL", "redis://cache.internal:6380/2")
    settings = load_settings()
    assert (settings.pacing.backend, settings.pacing.redis_url) == (
        "redis",
        "redis://cache.internal:6380/2",
    )
    monkeypatch.setenv("NAVBOT_PACING__REDIS_URL", "http://cache.internal")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "'pacing.redis_url'" in str(error.value) and "\n" not in str(error.value)


# -- the bot under a burst ------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def pacing_settings(request):
    """The [pacing] settings of each backend."""
    if request.param == "memory":
        return PacingSection()
    prefix = request.getfixturevalue("redis_prefix")
    return PacingSection(backend="redis", redis_url=REDIS_URL, key_prefix=prefix)


async def test_300_parents_at_once_all_get_one_reply_without_flood_control(
    pacing_settings, tmp_path, fake_telegram, fake_vk
):
    base = Settings(
        bot={"data_dir": tmp_path / "data"},
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'navbot.sqlite3'}"},
    )
    settings = messenger_settings(base, fake_telegram, fake_vk).model_copy(
        update={"pacing": pacing_settings}
    )
    running = Running(settings, fake_vk)  # Telegram's real limits on both sides
    app = await running.start()
    parents = range(700_000, 700_300)
    try:
        for parent in parents:
            await fake_telegram.message(parent, "/help")
        await wait_until(lambda: len({m.chat_id for m in fake_telegram.sent}) == 300, 240)

        async def pending() -> int:
            async with app.db.session() as session:
                query = select(func.count()).select_from(TranscriptEntry)
                return await session.scalar(query.where(TranscriptEntry.status == "pending"))

        for _ in range(600):
            if not await pending():
                break
            await asyncio.sleep(0.1)
        assert await pending() == 0
    finally:
        await running.stop()
    assert not [r for r in fake_telegram.rejected if "Too Many Requests" in r]
    assert len([c for c in fake_telegram.calls if c[0] == "sendMessage"]) == 300
    for parent in parents:
        replies = fake_telegram.to(parent)
        assert len(replies) == 1 and "/menu" in replies[0].text
    assert max_in_window([m.at for m in fake_telegram.sent], 1.0) <= 30
