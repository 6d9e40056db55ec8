"""Shared fixtures: a real database (SQLite file and PostgreSQL), the app, a chat client.

PostgreSQL tests use a fresh schema per test on NAVBOT_TEST_PG_URL (default: the
local server's `test` database). Where no PostgreSQL answers they are skipped with
the reason, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import Settings
from tests.chat import ChatClient

PG_URL = os.environ.get("NAVBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, str | None] = {}


def _pg_unavailable_reason() -> str | None:
    if "reason" not in _pg_state:
        import asyncpg

        dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

        async def probe() -> None:
            conn = await asyncpg.connect(dsn, timeout=5)
            await conn.close()

        try:
            asyncio.run(probe())
            _pg_state["reason"] = None
        except Exception as exc:
            _pg_state["reason"] = f"PostgreSQL at {PG_URL} unavailable: {exc!r}"
    return _pg_state["reason"]


def pg_schema() -> Iterator[str]:
    """Create a throw-away schema on PG_URL and yield its name."""
    import asyncpg

    reason = _pg_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    yield schema
    asyncio.run(run(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The [database] settings of a fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield {"url": f"sqlite+aiosqlite:///{tmp_path / 'navbot.sqlite3'}"}
    else:
        for schema in pg_schema():
            yield {"url": PG_URL, "schema_name": schema}


@pytest.fixture
def settings(database: dict[str, str], tmp_path: Path) -> Settings:
    return Settings(
        # Scripted parents in the engine-level tests write faster than any person and
        # their "test" channel never sends: the flood limit has tests of its own.
        bot={"data_dir": tmp_path / "data", "region": "stavropol", "flood_messages": 10_000},
        database=database,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    application = build_app(settings)
    await application.start()
    yield application
    await application.close()


@pytest.fixture
def chat(app: App) -> ChatClient:
    return ChatClient(app.engine)


@pytest.fixture
async def fake_telegram():
    from tests.fakes.telegram import FakeTelegram

    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_vk():
    from tests.fakes.vk import FakeVk

    fake = FakeVk()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def running(settings, fake_telegram, fake_vk):
    """The app serving Telegram and VK through the real adapters against the fakes."""
    from tests.messengers import Running, messenger_settings

    served = Running(messenger_settings(settings, fake_telegram, fake_vk), fake_vk)
    await served.start()
    yield served
    await served.stop()
