"""Helpers for the guided-dialogue tests: apps on other region profiles, quick navigation."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from bot.app import App, build_app
from bot.config import Settings
from tests.chat import ChatClient
from texts import REGIONS_DIR

TEST_POINTS = """
[[municipalities.confirmation_points]]
organisation = "Центр «Пример» (тестовый)"
address = "г. Томск, ул. Примерная, д. 1"
hours = "пн–пт 9:00–18:00"
phone = "8 (3822) 00-00-01"
source = "https://example.org/tomsk/points"
found = 2026-12-02

[[municipalities.confirmation_points]]
organisation = "Школа «Образец» (тестовая)"
address = "г. Томск, пр. Условный, д. 2"
source = "https://example.org/tomsk/points"
found = 2026-12-02
"""


def profile_with_points(directory: Path) -> Path:
    """The Tomsk profile, copied to `directory` with two (fictional) points in город Томск."""
    text = (REGIONS_DIR / "tomsk.toml").read_text(encoding="utf-8")
    anchor = 'aliases = ["Томск"]\nfallback = "regional"\nfallback_searched = 2026-12-02\n'
    assert anchor in text
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tomsk.toml").write_text(text.replace(anchor, anchor + TEST_POINTS, 1), "utf-8")
    return directory


@asynccontextmanager
async def region_app(settings: Settings, region: str, regions_dir: Path | None = None):
    bot = settings.bot.model_copy(update={"region": region, "regions_dir": regions_dir})
    app: App = build_app(settings.model_copy(update={"bot": bot}))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


async def open_step(chat: ChatClient, n: int) -> None:
    """/start, open the walkthrough, and press «Готово, дальше» until step n."""
    await chat.send("/start")
    await chat.press("Регистрация в Навигаторе")
    for _ in range(n - 1):
        await chat.press("Готово, дальше")
    assert f"Шаг {n} из 8" in chat.text


def profile_with(directory: Path, region: str, municipality_id: str, tables: str) -> Path:
    """The packaged `region` profile copied to `directory`, with `tables` (TOML sub-tables
    of a municipality, such as [municipalities.hotline]) added to `municipality_id`."""
    text = (REGIONS_DIR / f"{region}.toml").read_text(encoding="utf-8")
    start = text.index(f'[[municipalities]]\nid = "{municipality_id}"\n')
    # The municipality's block ends at the first blank line (or the end of the file).
    end = text.find("\n\n", start)
    end = len(text.rstrip("\n")) + 1 if end < 0 else end + 1
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{region}.toml").write_text(text[:end] + tables + text[end:], "utf-8")
    return directory
