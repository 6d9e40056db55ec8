"""The database handle: engine, sessions, schema migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.search import register_sqlite_functions

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant: serialises concurrent `migrate` runs of several workers on PostgreSQL.
_MIGRATION_LOCK_ID = 726_001


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    register_sqlite_functions(dbapi_connection)


def _sqlite_reset(dbapi_connection, _record, _state) -> None:  # type: ignore[no-untyped-def]
    """A connection back in the pool is rolled back only when a transaction is open: the
    pool's usual unconditional rollback is one more trip to aiosqlite's thread after
    every committed unit of work."""
    inner = getattr(dbapi_connection, "_connection", None)
    if inner is None or getattr(inner, "in_transaction", True):
        dbapi_connection.rollback()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class Database:
    def __init__(self, url: str, *, echo: bool = False, schema: str = "") -> None:
        self.url = url
        self.schema = schema if schema else ""
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        connect_args: dict = {}
        pool: dict = {}
        if self.dialect == "sqlite":
            # SQLite has one writer at a time: one pooled connection makes transactions
            # queue in the event loop instead of sleeping in SQLite's busy handler.
            pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
            pool["pool_reset_on_return"] = None  # _sqlite_reset does it
        if schema and self.dialect == "postgresql":
            connect_args["server_settings"] = {"search_path": schema}
        if self.dialect == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(
            url,
            # SQL in a log ([database] echo) never shows the values: they are parents' data
            hide_parameters=True,
            # a server connection may have been dropped; a local SQLite file cannot be
            pool_pre_ping=self.dialect != "sqlite",
            connect_args=connect_args,
            **pool,
        )
        if echo:
            # through the process's log handler (bot/logs.py), not a stdout handler of its own
            logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine.pool, "reset", _sqlite_reset)
        # Given to every session (session.info): the schema, and what the app adds (the
        # outbox's personal-data guard).
        self.info: dict = {"navbot_schema": self.schema}
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, info=self.info)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success, rolls back on error."""
        async with self.sessions() as session:
            async with session.begin():
                yield session

    async def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))

    async def revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    async def close(self) -> None:
        await self.engine.dispose()


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
