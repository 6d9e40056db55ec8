"""GET /healthz and GET /metrics on the real aiohttp server, with the real Telegram and VK
adapters against the fakes and a real database: what an operator's monitoring sees."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.app import build_app
from bot.config import Settings
from bot.web import address, create_web_app, serve
from storage.models import Handoff, Reminder, TranscriptEntry, User, utcnow
from tests.messengers import (
    Running,
    TelegramParent,
    VkParent,
    messenger_settings,
    wait_until,
)

PHONE = "+7 912 345-67-89"


async def get(base: str, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(base.rstrip("/") + path) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def ops_settings(settings: Settings, fake_telegram, fake_vk, **ops) -> Settings:
    merged = messenger_settings(settings, fake_telegram, fake_vk)
    return Settings(**{**merged.model_dump(), "ops": {**merged.ops.model_dump(), **ops}})


async def test_metrics_count_what_happened_and_hold_no_personal_data(
    settings, fake_telegram, fake_vk
):
    running = Running(ops_settings(settings, fake_telegram, fake_vk), fake_vk)
    app = await running.start()
    runner = await serve(create_web_app(app), "127.0.0.1", 0)
    base = address(runner)
    try:
        telegram = TelegramParent(running, fake_telegram, 4101)
        vk = VkParent(running, fake_vk, 4201)
        await telegram.send("/start")
        await telegram.send(f"Как записать ребёнка на две программы? Мой телефон {PHONE}")
        await vk.send("/start")
        async with app.db.session() as session:
            user = await session.scalar(select(User).where(User.platform_user_id == "4101"))
            session.add(Handoff(user_id=user.id, reason="asked", state="waiting"))
            past = utcnow() - timedelta(hours=1)
            session.add(Reminder(user_id=user.id, due_at=past, state="planned"))

        status, kind, text = await get(base, "/metrics")
        assert status == 200 and kind.startswith("text/plain")
        found = samples(text)
        assert value(found, "navbot_updates_in_total", channel="telegram") == 2
        assert value(found, "navbot_updates_in_total", channel="vk") == 1
        assert value(found, "navbot_replies_out_total", channel="telegram", kind="reply") >= 2
        assert value(found, "navbot_replies_out_total", channel="vk", kind="reply") >= 1
        # one latency per message: to the first reply it got
        assert value(found, "navbot_reply_latency_seconds_count", channel="telegram") == 2
        assert value(found, "navbot_reply_latency_seconds_count", channel="vk") == 1
        assert 0 < value(found, "navbot_reply_latency_seconds_sum", channel="telegram") < 30
        faq = sum(
            value(found, "navbot_faq_questions_total", outcome=outcome)
            for outcome in ("answered", "suggested", "unanswered")
        )
        assert faq == 1
        assert value(found, "navbot_handoff_queue_length") == 1
        assert value(found, "navbot_reminder_backlog") == 1
        assert value(found, "navbot_inbox_backlog") == 0
        assert ("navbot_outbox_backlog", (("channel", "telegram"),)) in found
        assert value(found, "navbot_outbox_backlog", channel="telegram") == 0
        assert value(found, "navbot_channel_last_ok_seconds", channel="telegram") < 30
        # counts by channel, kind and outcome only: no user ids, no texts, no phones
        # (ids as whole tokens: a float such as 0.0177154101 may hold the digits)
        for secret in ("4101", "4201", "912", "345-67-89", "телефон", "ребёнка"):
            assert not re.search(rf"(?<![\d.e+-]){re.escape(secret)}(?![\d.])", text), secret

        status, kind, body = await get(base, "/healthz")
        assert status == 200 and kind.startswith("application/json"), body
        health = json.loads(body)
        assert health["status"] == "ok" and health["problems"] == []
        assert health["database"]["ok"] is True
        assert health["channels"]["telegram"]["mode"] == "polling"
        assert health["channels"]["telegram"]["ok"] is True
        assert health["channels"]["vk"]["ok"] is True
        assert health["channels"]["telegram"]["last_ok_seconds_ago"] < 30
        assert health["outbox"] == {}
        assert health["queues"] == {"inbox": 0, "reminders_due": 1, "handoffs_waiting": 1}
        assert health["scheduler"]["ticker_here"] is False
        for secret in ("4101", "4201", "912"):
            assert not re.search(rf"(?<![\d.e+-]){secret}(?![\d.])", body), secret
    finally:
        await runner.cleanup()
        await running.stop()


async def test_healthz_is_503_while_delivery_is_stuck_or_a_messenger_is_silent(
    settings, fake_telegram, fake_vk
):
    running = Running(
        ops_settings(settings, fake_telegram, fake_vk, channel_silence_seconds=2), fake_vk
    )
    app = await running.start()
    runner = await serve(create_web_app(app), "127.0.0.1", 0)
    base = address(runner)
    try:
        telegram = TelegramParent(running, fake_telegram, 4301)
        await telegram.send("/start")
        status, _, body = await get(base, "/healthz")
        assert status == 200, body

        # A notice queued an hour ago and still not accepted by Telegram.
        fake_telegram.hold_sends = True
        async with app.db.session() as session:
            user = await session.scalar(select(User).where(User.platform_user_id == "4301"))
            session.add(
                TranscriptEntry(
                    user_id=user.id,
                    direction="out",
                    text="Статус заявки изменился",
                    status="pending",
                    kind="notice",
                    created_at=utcnow() - timedelta(hours=1),
                )
            )
        app.delivery.wake_user(user.id)
        await wait_until(lambda: fake_telegram.held >= 1)
        status, _, body = await get(base, "/healthz")
        assert status == 503, body
        assert '"problems": ["outbox"]' in body
        assert '"pending": 1' in body

        fake_telegram.release()
        await wait_until(lambda: any("Статус заявки" in m.text for m in telegram._sent()))

        async def healthy() -> bool:
            return (await get(base, "/healthz"))[0] == 200

        deadline = time.monotonic() + 20
        while not await healthy():
            assert time.monotonic() < deadline, "the outbox did not empty"
            await asyncio.sleep(0.1)

        # Telegram stops answering the poller: after its timeout (1 s) and 2 s more, 503.
        await fake_telegram.stop()
        deadline = time.monotonic() + 30
        while True:
            status, _, body = await get(base, "/healthz")
            if status == 503:
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)
        assert '"problems": ["telegram"]' in body
        assert '"vk": {"mode": "polling", "ok": true' in body
    finally:
        await runner.cleanup()
        await running.stop()


async def test_healthz_is_503_when_the_database_does_not_answer(tmp_path):
    # Nothing listens on port 9: the database is unreachable from the start.
    settings = Settings(
        bot={"data_dir": tmp_path / "data"},
        database={"url": "postgresql+asyncpg://navbot@127.0.0.1:9/navbot"},
    )
    app = build_app(settings)
    runner = await serve(create_web_app(app), "127.0.0.1", 0)
    try:
        status, kind, body = await get(address(runner), "/healthz")
        assert status == 503 and kind.startswith("application/json")
        assert '"problems": ["database"]' in body
        assert '"database": {"ok": false' in body
        status, _, text = await get(address(runner), "/metrics")
        assert status == 200 and "navbot_updates_in_total" in text
    finally:
        await runner.cleanup()
        await app.close()


async def test_healthz_names_the_scheduler_leader(settings: Settings):
    leader_app = build_app(settings)
    await leader_app.start()
    other = build_app(settings)  # a second process on the same database, no ticker
    runner = await serve(create_web_app(other), "127.0.0.1", 0)
    web = await serve(create_web_app(leader_app), "127.0.0.1", 0)
    try:
        from bot.scheduler import Ticker

        _, _, body = await get(address(runner), "/healthz")
        assert json.loads(body)["scheduler"]["leader"] == "none"

        leader_app.ticker = Ticker(leader_app)
        assert await leader_app.ticker.tick() is not None
        status, _, body = await get(address(web), "/healthz")
        assert status == 200, body
        scheduler = json.loads(body)["scheduler"]
        assert scheduler["leader"] == "this process" and scheduler["ticker_here"] is True
        assert scheduler["last_tick_seconds_ago"] < 30

        status, _, body = await get(address(runner), "/healthz")
        assert status == 200, body
        expected = "another process" if other.db.dialect == "postgresql" else "none"
        assert json.loads(body)["scheduler"]["leader"] == expected
    finally:
        await web.cleanup()
        await runner.cleanup()
        await other.close()
        await leader_app.close()
