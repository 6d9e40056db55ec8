"""Telegram webhook endpoint: checks the secret token header, then hands the update
to the Telegram channel. A wrong or missing secret gets 401 and is not handled."""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.web.security import access

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_PATH = "/telegram/webhook"


def webhook_path(webhook_url: str) -> str:
    return urlsplit(webhook_url).path or DEFAULT_PATH


def add_telegram_routes(web_app: web.Application, telegram: Any, webhook_url: str) -> None:
    secret: str = telegram.webhook_secret

    @access("public")  # Telegram proves itself with the secret token header
    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if secret and not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("telegram webhook: wrong secret token from %s", request.remote)
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=401)
        try:
            update = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        if not isinstance(update, dict) or "update_id" not in update:
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        await telegram.feed(update)
        return web.json_response({"ok": True})

    web_app.router.add_post(webhook_path(webhook_url), webhook)
