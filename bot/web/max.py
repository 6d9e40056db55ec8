"""MAX webhook endpoint: checks the `X-Max-Bot-Api-Secret` header on every push, then
hands the update to the MAX channel and answers 200 once it is handled (MAX waits up
to 30 seconds and retries a push that failed). A wrong or missing secret gets 401 and
is not handled."""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.web.security import access

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Max-Bot-Api-Secret"
DEFAULT_PATH = "/max/webhook"


def webhook_path(webhook_url: str) -> str:
    return urlsplit(webhook_url).path or DEFAULT_PATH


def add_max_routes(web_app: web.Application, channel: Any, webhook_url: str) -> None:
    secret: str = channel.webhook_secret

    @access("public")  # MAX proves itself with the secret header
    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("max webhook: wrong secret from %s", request.remote)
            return web.json_response({"success": False, "message": "wrong secret"}, status=401)
        try:
            update = await request.json()
        except ValueError:
            return web.json_response({"success": False, "message": "not JSON"}, status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_type"), str):
            return web.json_response({"success": False, "message": "not an update"}, status=400)
        await channel.feed(update)
        return web.json_response({"success": True})

    web_app.router.add_post(webhook_path(webhook_url), webhook)
