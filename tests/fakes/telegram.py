"""A fake Telegram Bot API (core.telegram.org/bots/api): getUpdates long polling that
confirms by offset and delivers only the update types in allowed_updates (by default
every type but chat_member, message_reaction and message_reaction_count), 409 while a
webhook is set or when a newer getUpdates call ends a waiting one; sendMessage with
Telegram's checks (UTF-8 only, HTML entities, 4096 UTF-16 code units after entity parsing, inline
keyboards with exactly one action per button and 1-64 bytes of callback data, "chat
not found" for a chat that never wrote to the bot); flood control (429 with
parameters.retry_after beyond 30 messages/s or a chat's burst), blocked users (403),
answerCallbackQuery only for a fresh query, setMyCommands, and setWebhook with its
secret_token rules. Parents can send text, media, locations, contacts, edit messages,
block and unblock the bot, and write in groups. `faults` (tests/fakes/common.py) makes
calls fail as Telegram's do. With `push_to(urls)` the fake delivers updates as Telegram
does to a webhook: POSTed to the bot's workers in turn, a failed push tried again on
the next, one chat's updates one at a time."""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.common import Bucket, Server, Window

TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
TAGS |= {"span", "tg-spoiler", "tg-emoji", "blockquote"}
TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>")
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
PARSE_ERROR = "Bad Request: can't parse entities: "
COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
UPDATE_TYPES = {
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "chosen_inline_result",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "message_reaction_count",
}
# Delivered when allowed_updates was never given (or given as an empty list).
DEFAULT_UPDATES = UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}
BUTTON_ACTIONS = {
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
}
# A callback query not answered within this many seconds can no longer be answered.
CALLBACK_ANSWER_LIMIT = 10.0


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def parse_html(text: str) -> str:
    """The text a user sees for HTML parse mode, or ApiError as Telegram answers."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        offset = len(text[:i].encode())
        if char == "<":
            match = TAG.match(text, i)
            if not match:
                raise ApiError(
                    400,
                    f"{PARSE_ERROR}Unexpected end of name token at byte offset {offset}",
                )
            closing, name = match.group(1), match.group(2).lower()
            if name not in TAGS:
                raise ApiError(
                    400,
                    f'Bad Request: can\'t parse entities: Unsupported start tag "{name}" '
                    f"at byte offset {offset}",
                )
            if closing:
                if not stack or stack[-1] != name:
                    raise ApiError(
                        400,
                        f"{PARSE_ERROR}Unmatched end tag at byte offset {offset}",
                    )
                stack.pop()
            else:
                stack.append(name)
            i = match.end()
        elif char == "&" and ENTITY.match(text, i):
            match = ENTITY.match(text, i)
            assert match is not None
            out.append(html.unescape(match.group()))
            i = match.end()
        else:
            out.append(char)
            i += 1
    if stack:
        raise ApiError(
            400,
            f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1]}"',
        )
    return "".join(out)


def _utf8(text: str) -> bool:
    """Telegram takes UTF-8 only: a lone surrogate has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Sent:
    chat_id: int
    message_id: int
    text: str
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)  # (label, data)
    at: float = field(default_factory=time.monotonic)


class FakeTelegram(Server):
    def __init__(
        self, token: str = "123456:TEST-token", *, per_second: int = 30, chat_burst: int = 10
    ):
        super().__init__()
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[str] = []
        self.answered: list[str] = []
        self.open_callbacks: dict[str, float] = {}  # query id -> when it was pressed
        self.chats: set[int] = set()  # chats the bot may write to: users who wrote to it
        self.allowed_updates: set[str] = set(DEFAULT_UPDATES)
        self.blocked: set[int] = set()
        self.commands: list[dict[str, str]] = []
        self.webhook: dict[str, Any] = {}
        self.flood_next = 0  # answer that many sendMessage calls with 429
        self.flood_retry_after = 1
        self.server_errors_next = 0  # answer that many sendMessage calls with 502
        self.global_window = Window(per_second)
        self.chat_burst = chat_burst
        # hold_sends: sendMessage calls wait for release() before Telegram looks at them.
        self.hold_sends = False
        self.held = 0
        self.dropped = 0
        self._drop_held = False
        self._polls = 0  # getUpdates calls so far
        self.conflicts = 0  # getUpdates calls ended by a newer one (409)
        self._release = asyncio.Event()
        self._chat_buckets: dict[int, Bucket] = {}
        # Webhook push mode (push_to): where updates go, and how it went.
        self.push_targets: list[str] = []
        self.pushed = 0  # updates a webhook answered with 2xx
        self.push_failures = 0  # pushes refused, reset, timed out or answered otherwise
        self.push_retry_delay = 0.2
        self._turn = 0
        self._outgoing: dict[Any, deque[dict[str, Any]]] = {}
        self._pushers: dict[Any, asyncio.Task[None]] = {}
        self._connections: asyncio.Semaphore | None = None
        self._client: aiohttp.ClientSession | None = None
        self.web_app.router.add_post("/bot{token}/{method}", self._handle)
        self.web_app.router.add_get("/bot{token}/{method}", self._handle)

    # -- what users do ----------------------------------------------------------------
    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"Parent{user_id}"}

    def _message(self, user_id: int, **content: Any) -> dict[str, Any]:
        self.chats.add(user_id)
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": f"Parent{user_id}"},
            "from": self._user(user_id),
            **content,
        }

    async def content(self, user_id: int, **content: Any) -> dict[str, Any]:
        """A message with any content: photo=[...], location={...}, contact={...}, ..."""
        return await self.push({"message": self._message(user_id, **content)})

    async def edit(self, message: dict[str, Any], text: str) -> dict[str, Any]:
        edited = {**message, "text": text, "edit_date": int(time.time())}
        return await self.push({"edited_message": edited})

    async def group_message(self, user_id: int, group_id: int, text: str) -> dict[str, Any]:
        message = self._message(user_id, text=text)
        message["chat"] = {"id": group_id, "type": "group", "title": "Родительский чат"}
        return await self.push({"message": message})

    async def membership(self, user_id: int, status: str) -> dict[str, Any]:
        """The parent blocks ("kicked") or unblocks / restarts ("member") the bot."""
        old = "member" if status == "kicked" else "kicked"
        bot = {"id": 1, "is_bot": True, "first_name": "Bot"}
        member = {"status": status, "user": bot}
        if status == "kicked":
            member["until_date"] = 0
        change = {
            "chat": {"id": user_id, "type": "private", "first_name": f"Parent{user_id}"},
            "from": self._user(user_id),
            "date": int(time.time()),
            "old_chat_member": {
                "status": old,
                "user": bot,
                **({"until_date": 0} if old == "kicked" else {}),
            },
            "new_chat_member": member,
        }
        if status == "kicked":
            self.blocked.add(user_id)
        else:
            self.blocked.discard(user_id)
        return await self.push({"my_chat_member": change})

    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        await self.redeliver(update)
        return update

    async def redeliver(self, update: dict[str, Any]) -> None:
        if self.push_targets:
            self._queue_push(update)
            return
        self.updates.append(update)
        await self.notify()

    # -- webhook push mode -------------------------------------------------------------
    def push_to(self, urls: list[str], *, connections: int = 40) -> None:
        """Deliver updates by POSTing them to `urls` (the bot's web workers, as a proxy in
        front of them would) once setWebhook was called, instead of keeping them for
        getUpdates. As Telegram does: the secret token in its header, one chat's updates
        one at a time and in order (the next after the previous was answered 2xx), up to
        `connections` requests in flight. Each attempt goes to the next URL in turn; a
        failed one (refused, reset, timed out, not 2xx) is tried again on the next URL
        after `push_retry_delay` seconds."""
        self.push_targets = list(urls)
        self._connections = asyncio.Semaphore(connections)

    @staticmethod
    def _chat_of(update: dict[str, Any]) -> Any:
        for value in update.values():
            if isinstance(value, dict):
                chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
                return chat.get("id") or (value.get("from") or {}).get("id")
        return None

    def _queue_push(self, update: dict[str, Any]) -> None:
        chat = self._chat_of(update)
        self._outgoing.setdefault(chat, deque()).append(update)
        if chat not in self._pushers:
            self._pushers[chat] = asyncio.create_task(self._push_chat(chat))

    @property
    def push_backlog(self) -> int:
        """Updates not yet answered by a webhook."""
        return sum(len(queue) for queue in self._outgoing.values())

    async def _push_chat(self, chat: Any) -> None:
        queue = self._outgoing[chat]
        try:
            while queue:
                await self._push_one(queue[0])
                queue.popleft()
        finally:
            del self._pushers[chat]
            if not queue:
                self._outgoing.pop(chat, None)

    async def _push_one(self, update: dict[str, Any]) -> None:
        assert self._connections is not None
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        while True:
            if self.webhook and self.allowed_updates & update.keys():
                url = self.push_targets[self._turn % len(self.push_targets)]
                self._turn += 1
                secret = self.webhook.get("secret_token")
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                try:
                    async with self._connections:
                        async with self._client.post(url, json=update, headers=headers) as answer:
                            await answer.read()
                            if 200 <= answer.status < 300:
                                self.pushed += 1
                                return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                self.push_failures += 1
            elif self.webhook:
                return  # a type not asked for: Telegram never sends it
            await asyncio.sleep(self.push_retry_delay)

    async def stop(self) -> None:
        for task in list(self._pushers.values()):
            task.cancel()
        await asyncio.gather(*self._pushers.values(), return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        await super().stop()

    async def message(self, user_id: int, text: str) -> dict[str, Any]:
        return await self.push({"message": self._message(user_id, text=text)})

    async def sticker(self, user_id: int) -> dict[str, Any]:
        sticker = {
            "file_id": "CAAC",
            "file_unique_id": "AQAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return await self.push({"message": self._message(user_id, sticker=sticker)})

    async def voice(self, user_id: int) -> dict[str, Any]:
        voice = {"file_id": "AwAC", "file_unique_id": "AgAD", "duration": 3}
        return await self.push({"message": self._message(user_id, voice=voice)})

    async def callback(self, user_id: int, data: str, message_id: int = 1) -> dict[str, Any]:
        query_id = str(next(self._callback_ids))
        self.open_callbacks[query_id] = time.monotonic()
        message = self._message(user_id, text="…")
        message["message_id"] = message_id
        message["from"] = {"id": 1, "is_bot": True, "first_name": "Bot"}
        query = {
            "id": query_id,
            "from": self._user(user_id),
            "chat_instance": "1",
            "message": message,
            "data": data,
        }
        return await self.push({"callback_query": query})

    def to(self, chat_id: int) -> list[Sent]:
        return [sent for sent in self.sent if sent.chat_id == chat_id]

    # -- the API ----------------------------------------------------------------------
    def release(self, *, drop: bool = False) -> None:
        """Let held sendMessage calls go on (and stop holding new ones); with `drop`, they
        never reached Telegram (the bot died while sending): answered with an error and
        not delivered."""
        self.hold_sends = False
        self._drop_held = drop
        self._release.set()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        faulty = await self.fault(request, self._faulty, poll=method == "getUpdates", method=method)
        if faulty is not None:
            return faulty
        params = await self._params(request)
        if method == "sendMessage" and self.hold_sends:
            self.held += 1
            self._release.clear()
            await self._release.wait()
            if self._drop_held:
                self.dropped += 1
                return web.Response(status=499)
        self.calls.append((method, params))
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params)
        except ApiError as exc:
            if method == "sendMessage":
                self.rejected.append(exc.description)
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.status,
                "description": exc.description,
            }
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.status)
        return web.json_response({"ok": True, "result": result})

    def _faulty(self, kind: str) -> web.Response:
        """Telegram's answers to a call it could not take (core.telegram.org/bots/api,
        "Making requests"; flood control: "Too Many Requests: retry after N" with
        parameters.retry_after)."""
        if kind == "429":
            retry_after = self.faults.retry_after
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
            return web.json_response(body, status=429)
        if kind == "5xx":
            if self.faults.random.random() < 0.5:  # the front end's own page
                return web.Response(
                    status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
                )
            body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            return web.json_response(body, status=500)
        return self.faults.garbage_body()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return await request.json()
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
        for key in ("reply_markup", "allowed_updates", "commands"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError as exc:
                    raise web.HTTPBadRequest(text=f"{key} is not JSON") from exc
        return params

    async def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": 1, "is_bot": True, "first_name": "Навигатор", "username": "navigator_bot"}

    async def api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    def _allow(self, params: dict[str, Any]) -> None:
        allowed = params.get("allowed_updates")
        if allowed is None:
            return  # the previous setting stays
        if not isinstance(allowed, list) or not set(allowed) <= UPDATE_TYPES:
            raise ApiError(400, "Bad Request: wrong allowed_updates")
        self.allowed_updates = set(allowed) or set(DEFAULT_UPDATES)

    async def api_setWebhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url", "")
        if not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.match(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self._allow(params)
        self.webhook = params
        return True

    async def api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        if timeout < 0 or not 1 <= limit <= 100:
            raise ApiError(400, "Bad Request: wrong parameters")
        self._allow(params)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        # A new getUpdates ends the one still waiting, which gets 409: two processes
        # polling one token keep cutting each other off.
        self._polls += 1
        mine = self._polls
        await self.notify()

        def wanted() -> list[dict[str, Any]]:
            return [u for u in self.updates if self.allowed_updates & u.keys()]

        deadline = time.monotonic() + timeout
        async with self.changed:
            while not wanted() and time.monotonic() < deadline:
                if self._polls != mine:
                    self.conflicts += 1
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                try:
                    await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        # updates of types not asked for are dropped, as Telegram never sends them
        self.updates = wanted()
        return list(self.updates[:limit])

    async def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands") or []
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands")
        for command in commands:
            if not COMMAND.match(command.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = commands
        return True

    async def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        query_id = params.get("callback_query_id", "")
        pressed = self.open_callbacks.pop(query_id, None)
        if pressed is None or time.monotonic() - pressed > CALLBACK_ANSWER_LIMIT:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.answered.append(query_id)
        return True

    async def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if self.server_errors_next > 0:
            self.server_errors_next -= 1
            raise ApiError(502, "Bad Gateway")
        if self.flood_next > 0:
            self.flood_next -= 1
            raise ApiError(
                429,
                f"Too Many Requests: retry after {self.flood_retry_after}",
                self.flood_retry_after,
            )
        window = self._chat_buckets.setdefault(chat_id, Bucket(self.chat_burst, 1.0))
        if not self.global_window.allow() or not window.allow():
            raise ApiError(429, "Too Many Requests: retry after 1", 1)
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        raw = params.get("text", "")
        if not _utf8(raw):
            raise ApiError(400, "Bad Request: strings must be encoded in UTF-8")
        text = parse_html(raw) if params.get("parse_mode") == "HTML" else raw
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        buttons = self._keyboard(params.get("reply_markup"))
        sent = Sent(chat_id, next(self._message_ids), text, buttons)
        self.accepted(sent)
        await self.notify()
        return {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
            "text": text,
        }

    @staticmethod
    def _keyboard(markup: Any) -> list[list[tuple[str, str]]]:
        if not markup:
            return []
        rows = markup.get("inline_keyboard")
        if not isinstance(rows, list):
            raise ApiError(400, "Bad Request: can't parse inline keyboard button: field is missing")
        if sum(len(row) for row in rows) > 100:
            raise ApiError(400, "Bad Request: reply markup is too long")
        result = []
        for row in rows:
            if len(row) > 8:
                raise ApiError(400, "Bad Request: too many buttons in a row")
            out = []
            for button in row:
                label = button.get("text", "")
                data = button.get("callback_data")
                if "url" in button and "callback_data" not in button:
                    if not str(button["url"]).startswith(("https://", "http://", "tg://")):
                        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
                    out.append((label, button["url"]))
                    continue
                if not label:
                    raise ApiError(400, "Bad Request: BUTTON_TEXT_EMPTY")
                if len(BUTTON_ACTIONS & button.keys()) != 1:
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                out.append((label, data))
            result.append(out)
        return result
