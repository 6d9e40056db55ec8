"""A fake MAX Bot API (dev.max.ru/docs-api, OpenAPI schema 0.0.32 of July 2026) for a
bot in private dialogues: the token only in the `Authorization` header (a token as
the `access_token` query parameter is refused with 401, as the current API does);
errors as an HTTP status with `{"code": ..., "message": ...}` (400, 401, 403, 404,
405, 429, 503); 30 requests a second per token and 2 messages and 2 callback answers
a second per chat (429 `too.many.requests` beyond them); GET /me; GET /updates long
polling with `marker` (updates before a marker passed count as read), `limit`
1-1000, `timeout` 0-90 and `types`, and nothing for a poller while a webhook
subscription is active; POST /messages?user_id= with MAX's checks (text up to 4000
characters, `format` markdown/html, one inline_keyboard attachment of at most 30
rows and 210 buttons, 7 a row or 3 in a row with a link, open_app, geo or contact
button, labels 1-128 characters, callback payloads up to 1024, link URLs up to
2048), 403 `chat.denied` / error.dialog.suspended to a parent who stopped the bot;
PUT /messages; POST /answers for a fresh callback; GET/POST/DELETE /subscriptions
(an https:// URL, a secret of 5-256 of A-Z a-z 0-9 _ -) and the webhook push: each
update POSTed to the subscribed URL with the `X-Max-Bot-Api-Secret` header.
Parents can write, press callback buttons, share their contact, send a sticker,
start the bot (with the `start` payload of a max.ru/<bot>?start=<payload> link)
and stop it."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.common import Server, Window

BOT_ID = 9000
SECRET = re.compile(r"^[a-zA-Z0-9_-]{5,256}$")
UPDATE_TYPES = {
    "message_created",
    "message_callback",
    "message_edited",
    "message_removed",
    "bot_added",
    "bot_removed",
    "bot_started",
    "bot_stopped",
    "user_added",
    "user_removed",
    "chat_title_changed",
    "message_chat_created",
    "dialog_muted",
    "dialog_unmuted",
    "dialog_cleared",
    "dialog_removed",
}
BUTTON_TYPES = {
    "callback",
    "link",
    "request_contact",
    "request_geo_location",
    "open_app",
    "message",
    "clipboard",
    "chat",
}
WIDE_BUTTONS = {"link", "open_app", "request_geo_location", "request_contact"}
# Paths and the HTTP methods each one has; another method gets 405.
PATHS = {
    "/me": {"GET"},
    "/updates": {"GET"},
    "/messages": {"GET", "POST", "PUT", "DELETE"},
    "/answers": {"POST"},
    "/subscriptions": {"GET", "POST", "DELETE"},
}
CALLBACK_ANSWER_LIMIT = 60.0  # seconds a pressed button can be answered


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad(message: str) -> ApiError:
    return ApiError(400, "proto.payload", message)


@dataclass
class Sent:
    user_id: int
    mid: str
    text: str
    buttons: list[list[tuple[str, str, str]]] = field(default_factory=list)  # type, text, data
    format: str | None = None
    at: float = field(default_factory=time.monotonic)


def _keyboard(attachments: Any) -> list[list[tuple[str, str, str]]]:
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        raise _bad("attachments must be an array")
    if len(attachments) > 12:
        raise _bad("too many attachments: at most 12")
    keyboards = [
        a for a in attachments if isinstance(a, dict) and a.get("type") == "inline_keyboard"
    ]
    if len(keyboards) > 1:
        raise _bad("only one inline_keyboard attachment is allowed")
    if not keyboards:
        return []
    rows = (keyboards[0].get("payload") or {}).get("buttons")
    if not isinstance(rows, list) or not rows:
        raise _bad("attachments[0].payload.buttons: at least one row of buttons is required")
    if len(rows) > 30:
        raise _bad(f"inline keyboard: too many rows: {len(rows)} > 30")
    if sum(len(row) for row in rows if isinstance(row, list)) > 210:
        raise _bad("inline keyboard: too many buttons: more than 210")
    result = []
    for row in rows:
        if not isinstance(row, list) or not row:
            raise _bad("inline keyboard: a row must be a non-empty array of buttons")
        kinds = {button.get("type") for button in row if isinstance(button, dict)}
        limit = 3 if kinds & WIDE_BUTTONS else 7
        if len(row) > limit:
            raise _bad(f"inline keyboard: a row holds at most {limit} of these buttons")
        out = []
        for button in row:
            if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
                raise _bad(f"button.type {button.get('type')!r} is unknown")
            kind, text = button["type"], button.get("text")
            if not isinstance(text, str) or not 1 <= len(text) <= 128:
                raise _bad("button.text must be 1-128 characters")
            data = ""
            if kind == "callback":
                data = button.get("payload")
                if not isinstance(data, str) or not data:
                    raise _bad("callback button: payload is required")
                if len(data) > 1024:
                    raise _bad("callback button: payload is longer than 1024 characters")
            elif kind == "link":
                data = button.get("url")
                if not isinstance(data, str) or not data.startswith(("https://", "http://")):
                    raise _bad("link button: url must be an http(s) URL")
                if len(data) > 2048:
                    raise _bad("link button: url is longer than 2048 characters")
            out.append((kind, text, data))
        result.append(out)
    return result


class FakeMax(Server):
    def __init__(
        self,
        token: str = "f9LHodD0cOKs5_ZQjF2GmlqTm9Wrv8QX-TEST-max-token",
        *,
        per_second: int = 30,
        chat_per_second: int = 2,
    ) -> None:
        super().__init__()
        self.token = token
        self.per_second = per_second
        self.window = Window(per_second)
        self.chat_per_second = chat_per_second
        self._chat_windows: dict[int, Window] = {}
        self._answer_windows: dict[int, Window] = {}
        self._seq = itertools.count(1)
        self._mids = itertools.count(1)
        self._callbacks = itertools.count(1)
        self.log: list[tuple[int, dict[str, Any]]] = []  # (number, update) for GET /updates
        self.read_before = 1  # updates numbered below this were confirmed by a marker
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # method, path, query
        self.rejected: list[str] = []  # errors answered to POST /messages
        self.answered: list[str] = []
        self.pressed: list[str] = []  # callback ids of the buttons parents pressed
        self.open_callbacks: dict[str, tuple[float, int]] = {}  # id -> (pressed, user)
        self.dialogs: set[int] = set()  # parents who started or wrote to the bot
        self.stopped: set[int] = set()  # parents who stopped (blocked) the bot
        self.subscriptions: list[dict[str, Any]] = []
        self.webhook_target = ""  # where pushes really go: the bot's local address
        self.pushes: list[tuple[dict[str, Any], int]] = []  # (update, status answered)
        self.overloaded_next = 0  # answer that many POST /messages with 503
        self.too_many_next = 0  # answer that many POST /messages with 429
        for path, methods in PATHS.items():
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                self.web_app.router.add_route(method, path, self._handle)
            del methods
        self.web_app.router.add_route("*", "/{tail:.*}", self._unknown)

    # -- what parents do ----------------------------------------------------------------
    def _user(self, user_id: int) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "first_name": f"Родитель{user_id}",
            "last_name": "",
            "username": None,
            "is_bot": False,
            "last_activity_time": int(time.time() * 1000),
            "name": f"Родитель{user_id}",
        }

    def _message(self, user_id: int, text: str | None, attachments: list | None) -> dict:
        self.dialogs.add(user_id)
        return {
            "sender": self._user(user_id),
            "recipient": {
                "chat_id": 10_000_000 + user_id,
                "chat_type": "dialog",
                "user_id": BOT_ID,
            },
            "timestamp": int(time.time() * 1000),
            "body": {
                "mid": f"mid.{next(self._mids):016x}",
                "seq": next(self._mids),
                "text": text,
                "attachments": attachments,
            },
        }

    async def push(self, update_type: str, **fields: Any) -> dict[str, Any]:
        update = {"update_type": update_type, "timestamp": int(time.time() * 1000), **fields}
        await self.redeliver(update)
        return update

    async def redeliver(self, update: dict[str, Any]) -> None:
        if self.subscriptions:
            await self._push_webhook(update)
            return
        self.log.append((next(self._seq), update))
        await self.notify()

    async def message(self, user_id: int, text: str) -> dict[str, Any]:
        message = self._message(user_id, text, None)
        return await self.push("message_created", message=message, user_locale="ru")

    async def sticker(self, user_id: int) -> dict[str, Any]:
        sticker = {"type": "sticker", "payload": {"url": "https://i.max.ru/s", "code": "9a1"}}
        sticker.update(width=128, height=128)
        message = self._message(user_id, "", [sticker])
        return await self.push("message_created", message=message, user_locale="ru")

    async def share_contact(self, user_id: int, phone: str) -> dict[str, Any]:
        """What a MAX app sends when the parent presses a request_contact button."""
        digits = re.sub(r"\D", "", phone)
        vcf = (
            "BEGIN:VCARD\r\nVERSION:3.0\r\n"
            f"TEL;TYPE=cell:{digits}\r\nFN:Родитель{user_id}\r\nEND:VCARD\r\n"
        )
        contact = {
            "type": "contact",
            "payload": {"vcf_info": vcf, "hash": "h" * 16, "max_info": self._user(user_id)},
        }
        message = self._message(user_id, "", [contact])
        return await self.push("message_created", message=message, user_locale="ru")

    async def press(self, user_id: int, payload: str) -> dict[str, Any]:
        callback_id = f"cb.{next(self._callbacks):012d}"
        self.open_callbacks[callback_id] = (time.monotonic(), user_id)
        self.pressed.append(callback_id)
        callback = {
            "timestamp": int(time.time() * 1000),
            "callback_id": callback_id,
            "payload": payload,
            "user": self._user(user_id),
        }
        shown = next((s for s in reversed(self.sent) if s.user_id == user_id), None)
        message = None
        if shown is not None:
            message = {
                "sender": {**self._user(BOT_ID), "is_bot": True, "first_name": "Навигатор"},
                "recipient": {"chat_id": 10_000_000 + user_id, "chat_type": "dialog"},
                "timestamp": int(time.time() * 1000),
                "body": {"mid": shown.mid, "seq": 1, "text": shown.text, "attachments": []},
            }
        return await self.push("message_callback", callback=callback, message=message)

    async def open_bot(self, user_id: int, payload: str | None = None) -> dict[str, Any]:
        """The parent opens the bot (from a max.ru/<bot>?start=<payload> link) or restarts it."""
        self.dialogs.add(user_id)
        self.stopped.discard(user_id)
        return await self.push(
            "bot_started",
            chat_id=10_000_000 + user_id,
            user=self._user(user_id),
            payload=payload,
            user_locale="ru",
        )

    async def stop_bot(self, user_id: int) -> dict[str, Any]:
        """The parent stops the bot in its settings: nothing can be sent to them."""
        self.stopped.add(user_id)
        return await self.push(
            "bot_stopped", chat_id=10_000_000 + user_id, user=self._user(user_id)
        )

    def to(self, user_id: int) -> list[Sent]:
        return [sent for sent in self.sent if sent.user_id == user_id]

    # -- the webhook push -----------------------------------------------------------------
    async def _push_webhook(self, update: dict[str, Any]) -> None:
        subscription = self.subscriptions[-1]
        wanted = subscription.get("update_types")
        if wanted and update["update_type"] not in wanted:
            return
        headers = {"Content-Type": "application/json"}
        if subscription.get("secret"):
            headers["X-Max-Bot-Api-Secret"] = subscription["secret"]
        target = self.webhook_target or subscription["url"]
        async with (
            aiohttp.ClientSession() as http,
            http.post(target, data=json.dumps(update), headers=headers) as response,
        ):
            self.pushes.append((update, response.status))

    # -- the API --------------------------------------------------------------------------
    async def _unknown(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"code": "not.found", "message": f"Path {request.path} not found"}, status=404
        )

    async def _handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        faulty = await self.fault(request, self._faulty, poll=request.path == "/updates")
        if faulty is not None:
            return faulty
        self.calls.append((request.method, request.path, query))
        try:
            if request.method not in PATHS[request.path]:
                raise ApiError(405, "method.not.allowed", f"Method {request.method} not allowed")
            if "access_token" in query:
                raise ApiError(
                    401,
                    "verify.token",
                    "Passing the token in query parameters is no longer supported: "
                    "use the Authorization header",
                )
            if request.headers.get("Authorization") != self.token:
                raise ApiError(401, "verify.token", "Invalid access_token")
            if not self.window.allow():
                raise ApiError(429, "too.many.requests", "Too many requests")
            body: Any = None
            if request.can_read_body:
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise _bad("request body is not valid JSON") from exc
            name = f"api_{request.method.lower()}_{request.path.strip('/')}"
            handler = getattr(self, name, None)
            if handler is None:
                raise ApiError(405, "method.not.allowed", f"Method {request.method} not allowed")
            result = await handler(query, body)
        except ApiError as exc:
            if request.path == "/messages" and request.method == "POST":
                self.rejected.append(f"{exc.status} {exc.code}: {exc.message}")
            return web.json_response({"code": exc.code, "message": exc.message}, status=exc.status)
        return web.json_response(result)

    def _faulty(self, kind: str) -> web.Response:
        """MAX's answers to a call it could not take: 429 too.many.requests (MAX gives no
        retry time), 503 service.unavailable or a front end's 502 page."""
        if kind == "429":
            body = {"code": "too.many.requests", "message": "Too many requests"}
            return web.json_response(body, status=429)
        if kind == "5xx":
            if self.faults.random.random() < 0.5:
                return web.Response(
                    status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
                )
            body = {"code": "service.unavailable", "message": "Service temporarily unavailable"}
            return web.json_response(body, status=503)
        return self.faults.garbage_body()

    async def api_get_me(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        return {
            **self._user(BOT_ID),
            "first_name": "Навигатор",
            "username": "navigator_bot",
            "is_bot": True,
            "description": "Помощник по Навигатору и сертификату",
            "commands": None,
        }

    async def api_get_updates(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", 100))
            wait = int(query.get("timeout", 30))
            marker = int(query["marker"]) if query.get("marker") else None
        except ValueError as exc:
            raise _bad("limit, timeout and marker must be integers") from exc
        if not 1 <= limit <= 1000:
            raise _bad("limit must be between 1 and 1000")
        if not 0 <= wait <= 90:
            raise _bad("timeout must be between 0 and 90")
        types = {t for t in query.get("types", "").split(",") if t}
        if not types <= UPDATE_TYPES:
            raise _bad(f"unknown update types: {sorted(types - UPDATE_TYPES)}")
        if marker is not None:
            self.read_before = max(self.read_before, marker)
            self.log = [(n, u) for n, u in self.log if n >= marker]

        def ready() -> list[tuple[int, dict[str, Any]]]:
            if self.subscriptions:
                return []  # while a webhook subscription is active, long polling gets nothing
            return [
                (n, u)
                for n, u in self.log
                if n >= self.read_before and (not types or u["update_type"] in types)
            ]

        deadline = time.monotonic() + wait
        async with self.changed:
            while not ready() and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        batch = ready()[:limit]
        next_marker = batch[-1][0] + 1 if batch else (marker or self.read_before)
        return {"updates": [u for _, u in batch], "marker": next_marker}

    def _chat_allows(self, windows: dict[int, Window], user_id: int) -> bool:
        window = windows.setdefault(user_id, Window(self.chat_per_second))
        return window.allow()

    async def api_post_messages(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        if self.overloaded_next > 0:
            self.overloaded_next -= 1
            raise ApiError(503, "service.unavailable", "Service temporarily unavailable")
        if self.too_many_next > 0:
            self.too_many_next -= 1
            raise ApiError(429, "too.many.requests", "Too many requests")
        if not query.get("user_id") and not query.get("chat_id"):
            raise _bad("user_id or chat_id is required")
        try:
            user_id = int(query.get("user_id") or 0) or int(query["chat_id"]) - 10_000_000
        except ValueError as exc:
            raise _bad("user_id must be an integer") from exc
        if not self._chat_allows(self._chat_windows, user_id):
            raise ApiError(429, "too.many.requests", "Too many messages to this chat")
        if not isinstance(body, dict):
            raise _bad("a NewMessageBody is required")
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise _bad("text must be a string")
        if text and not _utf8(text):
            raise _bad("text: invalid UTF-8")
        if text and len(text) > 4000:
            raise _bad("text: the length must be no more than 4000 characters")
        if body.get("format") not in (None, "markdown", "html"):
            raise _bad("format must be markdown or html")
        buttons = _keyboard(body.get("attachments"))
        if not (text or "").strip() and not body.get("attachments"):
            raise _bad("the message is empty: text or attachments are required")
        if user_id in self.stopped:
            raise ApiError(403, "chat.denied", "error.dialog.suspended")
        if user_id not in self.dialogs:
            raise ApiError(404, "chat.not.found", f"Dialog with user {user_id} not found")
        mid = f"mid.{next(self._mids):016x}"
        sent = Sent(user_id, mid, text or "", buttons, body.get("format"))
        self.sent.append(sent)
        await self.notify()
        return {
            "message": {
                "sender": {**self._user(BOT_ID), "is_bot": True, "first_name": "Навигатор"},
                "recipient": {
                    "chat_id": 10_000_000 + user_id,
                    "chat_type": "dialog",
                    "user_id": user_id,
                },
                "timestamp": int(time.time() * 1000),
                "body": {"mid": sent.mid, "seq": 1, "text": sent.text, "attachments": []},
            }
        }

    async def api_put_messages(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        mid = query.get("message_id")
        found = next((s for s in self.sent if s.mid == mid), None)
        if not mid or found is None:
            raise ApiError(404, "message.not.found", "Message not found")
        if not isinstance(body, dict):
            raise _bad("a NewMessageBody is required")
        if body.get("text") is not None:
            found.text = str(body["text"])
        if body.get("attachments") is not None:
            found.buttons = _keyboard(body["attachments"])
        return {"success": True}

    async def api_post_answers(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        callback_id = (query.get("callback_id") or "").strip()
        if not callback_id:
            raise _bad("callback_id is required")
        if not isinstance(body, dict):
            raise _bad("a CallbackAnswer is required")
        if body.get("notification") is not None and not isinstance(body["notification"], str):
            raise _bad("notification must be a string")
        pressed, user = self.open_callbacks.get(callback_id, (0.0, 0))
        if not user or time.monotonic() - pressed > CALLBACK_ANSWER_LIMIT:
            raise ApiError(404, "callback.not.found", "Callback not found or expired")
        if not self._chat_allows(self._answer_windows, user):
            raise ApiError(429, "too.many.requests", "Too many answers to this chat")
        del self.open_callbacks[callback_id]
        self.answered.append(callback_id)
        return {"success": True}

    async def api_get_subscriptions(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        listed = [
            {"url": s["url"], "time": s["time"], "update_types": s.get("update_types")}
            for s in self.subscriptions
        ]
        return {"subscriptions": listed}

    async def api_post_subscriptions(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise _bad("url is required")
        if not body["url"].startswith("https://"):
            raise _bad("url must start with https://")
        secret = body.get("secret")
        if secret is not None and not (isinstance(secret, str) and SECRET.match(secret)):
            raise _bad("secret: only A-Z, a-z, 0-9, _ and - are allowed, 5-256 characters")
        types = body.get("update_types")
        if types is not None and (not isinstance(types, list) or not set(types) <= UPDATE_TYPES):
            raise _bad("update_types: unknown update types")
        self.subscriptions = [s for s in self.subscriptions if s["url"] != body["url"]]
        self.subscriptions.append({**body, "time": int(time.time() * 1000)})
        return {"success": True}

    async def api_delete_subscriptions(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        url = query.get("url")
        if not url:
            raise _bad("url is required")
        before = len(self.subscriptions)
        self.subscriptions = [s for s in self.subscriptions if s["url"] != url]
        if len(self.subscriptions) == before:
            return {"success": False, "message": "subscription not found"}
        return {"success": True}
