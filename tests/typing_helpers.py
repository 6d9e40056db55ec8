"""A parent at the terminal channel, in the test's own process: each line typed goes
through the real ConsoleChannel (buttons numbered as printed, digits pressed by number),
and what it printed in answer is kept."""

from __future__ import annotations

import io
from contextlib import asynccontextmanager
from pathlib import Path

from bot.app import App, build_app
from bot.channels.console import ConsoleChannel
from bot.config import Settings
from storage.models import ConversationState, User

NO_READY_ANSWER = "на этот вопрос у меня нет готового ответа"


@asynccontextmanager
async def sqlite_app(tmp_path: Path):
    """The app on a fresh SQLite file (what the typed words mean does not depend on the
    database; the engine's storage is tested on both elsewhere)."""
    settings = Settings(
        bot={"data_dir": tmp_path / "data", "region": "stavropol"},
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'typing.sqlite3'}"},
    )
    app: App = build_app(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.close()


class Terminal:
    def __init__(self, app: App, user_id: str = "local") -> None:
        self.app = app
        self.user_id = user_id
        self.out = io.StringIO()
        self.channel = ConsoleChannel(
            app.engine, app.delivery, user_id=user_id, stdin=io.StringIO(""), stdout=self.out
        )
        self.text = ""

    async def type(self, *lines: str) -> str:
        """Type each line as a message; returns (and keeps) what the last one printed."""
        for line in lines:
            start = len(self.out.getvalue())
            await self.channel.handle(line)
            self.text = self.out.getvalue()[start:]
        return self.text

    @property
    def labels(self) -> list[str]:
        """The buttons printed in answer to the last line, in their numbered order."""
        return [
            line.split("] ", 1)[1]
            for line in self.text.splitlines()
            if line.startswith("  [") and "] " in line
        ]

    async def step(self) -> str | None:
        """The step waiting for typed input, as stored."""
        async with self.app.db.session() as session:
            user = await self.app.engine.get_user(session, "console", self.user_id)
            assert isinstance(user, User)
            state = await session.get(ConversationState, user.id)
            return state.step if state else None
