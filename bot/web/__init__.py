"""The project's aiohttp application: the Telegram webhook endpoint today, the staff
console later. Each feature mounts its routes with its own `add_*_routes` function."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.max import add_max_routes
from bot.web.telegram import add_telegram_routes

APP_KEY = web.AppKey("navbot_app", object)


def create_web_app(
    app: Any, telegram: Any | None = None, max_channel: Any | None = None
) -> web.Application:
    """The aiohttp application for `app`; with a Telegram or MAX channel in webhook mode
    it serves their webhooks at the paths of settings.telegram.webhook_url and
    settings.max.webhook_url."""
    web_app = web.Application(client_max_size=1024**2)
    web_app[APP_KEY] = app
    if telegram is not None:
        add_telegram_routes(web_app, telegram, app.settings.telegram.webhook_url)
    if max_channel is not None:
        add_max_routes(web_app, max_channel, app.settings.max.webhook_url)
    return web_app


async def serve(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `web_app`; the caller cleans the returned runner up."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
