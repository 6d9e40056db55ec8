"""The retention rule: the leader's ticker purges transcript rows older than
`[retention] days` through the personal-data registry and keeps anonymous daily counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import build_app
from bot.config import Settings
from bot.scheduler import Ticker
from storage import retention
from storage.models import AuditEntry, FaqUnanswered, StatsDaily, TranscriptEntry, User

# Stavropol: Europe/Moscow, UTC+3 all year.
ZONE = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # 12:00 in Stavropol


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


@pytest.fixture
async def app(settings: Settings):
    application = build_app(settings)
    await application.start()
    application.services.clock = lambda: NOW
    yield application
    await application.close()


async def _users(app) -> dict[str, int]:
    async with app.db.session() as session:
        users = {
            "anna": User(channel="telegram", platform_user_id="501", chat_id="501", name="Анна"),
            "oleg": User(channel="telegram", platform_user_id="502", chat_id="502", name="Олег"),
            "vera": User(channel="vk", platform_user_id="601", chat_id="601", name="Вера"),
        }
        session.add_all(users.values())
        await session.flush()
        return {name: user.id for name, user in users.items()}


def _row(user_id: int, at: datetime, direction: str = "in", status: str | None = None):
    return TranscriptEntry(
        user_id=user_id,
        direction=direction,
        text="Петрова Анна Ивановна, +7 912 345-67-89",
        status=status,
        kind=None if direction == "in" else "reply",
        created_at=at,
    )


async def _stats(app) -> dict[tuple[date, str, str], int]:
    async with app.db.session() as session:
        rows = (await session.execute(select(StatsDaily))).scalars().all()
        return {(row.day, row.channel, row.metric): row.value for row in rows}


async def _transcript(app) -> list[datetime]:
    async with app.db.session() as session:
        return sorted(
            (await session.scalars(select(TranscriptEntry.created_at))).all(),
            key=lambda moment: moment.replace(tzinfo=None),
        )


async def test_the_leaders_first_tick_purges_old_days_and_keeps_their_counts(app):
    ids = await _users(app)
    today = NOW.astimezone(ZONE).date()
    old = today - timedelta(days=400)
    edge = today - timedelta(days=366)  # the last day purged
    kept_day = today - timedelta(days=365)  # the first day kept
    async with app.db.session() as session:
        session.add_all(
            [
                # 400 days ago: Anna wrote twice (one reply sent, one failed), Oleg once
                # late in the evening (the previous day in UTC), Vera in VK once.
                _row(ids["anna"], local(old, 10)),
                _row(ids["anna"], local(old, 11)),
                _row(ids["anna"], local(old, 10, 1), "out", "sent"),
                _row(ids["anna"], local(old, 11, 1), "out", "failed"),
                _row(ids["oleg"], local(old, 0, 30)),
                _row(ids["oleg"], local(old, 0, 31), "out", "sent"),
                _row(ids["vera"], local(old, 15)),
                _row(ids["vera"], local(old, 15, 1), "out", "sent"),
                # 366 days ago, 23:30 in Stavropol (20:30 UTC): still that day
                _row(ids["anna"], local(edge, 23, 30)),
                # 365 days ago just after midnight: kept, as is everything newer
                _row(ids["anna"], local(kept_day, 0, 5)),
                _row(ids["oleg"], NOW - timedelta(days=10)),
                FaqUnanswered(
                    user_id=ids["oleg"],
                    question="мой СНИЛС 112-233-445 95",
                    outcome="unknown",
                    created_at=local(old, 0, 30),
                ),
            ]
        )

    ticker = Ticker(app)
    result = await ticker.tick()
    assert result is not None  # this process leads

    assert await _stats(app) == {
        (old, "telegram", "messages_in"): 3,
        (old, "telegram", "messages_out"): 2,
        (old, "telegram", "active_parents"): 2,
        (old, "vk", "messages_in"): 1,
        (old, "vk", "messages_out"): 1,
        (old, "vk", "active_parents"): 1,
        (edge, "telegram", "messages_in"): 1,
        (edge, "telegram", "active_parents"): 1,
    }
    left = await _transcript(app)
    assert len(left) == 2
    assert min(left).replace(tzinfo=UTC) == local(kept_day, 0, 5)
    async with app.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(FaqUnanswered)) == 0
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "retention_purge")
        )
        assert audit.detail["transcript"] == 9
        assert audit.detail["faq_unanswered"] == 1
        # the parents stay: their conversations go on
        assert await session.scalar(select(func.count()).select_from(User)) == 3

    # The next ticks of the day do not purge again; a second purge adds nothing.
    assert await ticker.retention() is None
    assert await ticker.retention(force=True) == {
        "transcript": 0,
        "inbox": 0,
        "faq_unanswered": 0,
        "reminders": 0,
        "processed_updates": 0,
        "link_codes": 0,
        "handoffs": 0,
    }
    assert (await _stats(app))[(old, "telegram", "messages_in")] == 3
    await ticker.stop()


async def test_a_purge_that_dies_midway_leaves_everything_as_it_was(app):
    ids = await _users(app)
    old = NOW.date() - timedelta(days=500)
    async with app.db.session() as session:
        session.add_all([_row(ids["anna"], local(old, 12)), _row(ids["vera"], local(old, 13))])

    class Killed(Exception):
        pass

    with pytest.raises(Killed):
        async with app.db.session() as session:
            await retention.purge(session, NOW, 365, ZONE)
            raise Killed  # the process dies before the commit
    assert await _stats(app) == {}
    assert len(await _transcript(app)) == 2

    async with app.db.session() as session:
        await retention.purge(session, NOW, 365, ZONE)
    stats = await _stats(app)
    assert stats[(old, "telegram", "messages_in")] == 1
    assert stats[(old, "vk", "messages_in")] == 1
    assert await _transcript(app) == []


async def test_retention_days_zero_keeps_everything(settings: Settings, tmp_path):
    kept = Settings(**{**settings.model_dump(), "retention": {"days": 0}})
    app = build_app(kept)
    await app.start()
    try:
        ids = await _users(app)
        async with app.db.session() as session:
            session.add(_row(ids["anna"], NOW - timedelta(days=4000)))
        ticker = Ticker(app)
        assert await ticker.tick() is not None
        assert len(await _transcript(app)) == 1
        # Nothing purged; the ticker's statistics rollup counted the row's day once.
        assert (
            sum(n for (_, _, metric), n in (await _stats(app)).items() if metric == "messages_in")
            == 1
        )
        await ticker.stop()
    finally:
        await app.close()
