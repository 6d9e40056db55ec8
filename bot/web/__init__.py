"""The project's aiohttp application: the staff console, and the Telegram webhook endpoint
in webhook mode. Each feature mounts its routes with its own `add_*_routes` function and
declares each route's access (bot.web.security.access); console pages add themselves to
the top menu through `web_app[MENU_KEY]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.ops import add_ops_routes
from bot.web.console import MENU, add_console_routes
from bot.web.handoff import add_handoff_routes
from bot.web.max import add_max_routes
from bot.web.security import (
    APP_KEY,
    MENU_KEY,
    SETTINGS_KEY,
    auth_middleware,
    headers_middleware,
)
from bot.web.stats import add_stats_routes
from bot.web.telegram import add_telegram_routes
from bot.web.upkeep import add_upkeep_routes

__all__ = ["APP_KEY", "address", "create_web_app", "serve"]

WEB_DIR = Path(__file__).resolve().parent


def create_web_app(
    app: Any, telegram: Any | None = None, max_channel: Any | None = None
) -> web.Application:
    """The aiohttp application for `app`: the staff console, and with a Telegram or MAX
    channel in webhook mode their webhooks at the paths of settings.telegram.webhook_url
    and settings.max.webhook_url."""
    web_app = web.Application(
        client_max_size=1024**2, middlewares=[headers_middleware, auth_middleware]
    )
    web_app[APP_KEY] = app
    web_app[SETTINGS_KEY] = app.settings
    web_app[MENU_KEY] = list(MENU)
    aiohttp_jinja2.setup(
        web_app,
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    web_app.router.add_static("/static/", WEB_DIR / "static", append_version=True)
    add_console_routes(web_app)
    add_ops_routes(web_app, app)  # /healthz and /metrics
    add_handoff_routes(web_app)
    add_stats_routes(web_app)
    add_upkeep_routes(web_app)
    if telegram is not None:
        add_telegram_routes(web_app, telegram, app.settings.telegram.webhook_url)
    if max_channel is not None:
        add_max_routes(web_app, max_channel, app.settings.max.webhook_url)
    return web_app


async def serve(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `web_app` (port 0: any free one); the caller cleans the returned
    runner up."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def address(runner: web.AppRunner) -> str:
    """The URL the runner listens on."""
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}/"
