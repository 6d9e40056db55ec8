"""A fake VK API for a community bot (dev.vk.com, API 5.199): methods under /method/
with VK's checks (access token, API version, 20 requests/s per token → error 6,
random_id required and deduplicated, message length 4096 → error 914, keyboard schema
and limits → error 911 (inline: 6 rows, 10 buttons; standard: 10 rows, 40 buttons; 5
a row; label ≤ 40; payload a JSON string ≤ 255; no one_time on inline keyboards),
keyboards while the community's bot features are off → error 912, users who did not
allow messages → error 901), messages.sendMessageEventAnswer once per fresh event,
and a Bots Long Poll server (`act=a_check`, `wait` ≤ 90, message_new with
client_info, message_event with an object payload, `failed` 1/2/3) at its own address,
as VK returns it from groups.getLongPollServer."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.common import Server, Window

ACTIONS = {"text", "callback", "open_link", "location", "vkpay", "open_app"}
FULL_CLIENT = {
    "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}
# An event can be answered with sendMessageEventAnswer for about this long.
EVENT_ANSWER_LIMIT = 60.0


class VkError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Sent:
    peer_id: int
    message_id: int
    text: str
    random_id: int
    buttons: list[list[tuple[str, str, str]]] = field(default_factory=list)  # type, label, payload
    inline: bool = False
    at: float = field(default_factory=time.monotonic)


def _keyboard(raw: str) -> tuple[list[list[tuple[str, str, str]]], bool]:
    def bad(why: str) -> VkError:
        return VkError(911, f"Keyboard format is invalid: {why}")

    try:
        keyboard = json.loads(raw)
    except ValueError as exc:
        raise bad("not JSON") from exc
    if not isinstance(keyboard, dict):
        raise bad("not an object")
    rows = keyboard.get("buttons")
    if not isinstance(rows, list):
        raise bad("buttons is a required field")
    inline = bool(keyboard.get("inline"))
    if inline and "one_time" in keyboard:
        raise bad("one_time is not supported for inline keyboards")
    max_rows, max_total = (6, 10) if inline else (10, 40)
    if len(rows) > max_rows:
        raise bad(f"too many rows: {len(rows)} > {max_rows}")
    if sum(len(row) for row in rows) > max_total:
        raise bad(f"too many buttons: > {max_total}")
    result = []
    for row in rows:
        if not isinstance(row, list) or len(row) > 5:
            raise bad("a row holds at most 5 buttons")
        out = []
        for button in row:
            action = button.get("action") or {}
            kind = action.get("type")
            if kind not in ACTIONS:
                raise bad(f"action.type {kind!r} is unknown")
            label = action.get("label", "")
            if kind in ("text", "callback", "open_link", "open_app"):
                if not label:
                    raise bad("action.label is required")
                if len(label) > 40:
                    raise bad("action.label is longer than 40 characters")
            payload = action.get("payload", "")
            if not isinstance(payload, str):
                raise bad("action.payload must be a string")
            if payload:
                if len(payload.encode()) > 255:
                    raise bad("action.payload is longer than 255 bytes")
                try:
                    json.loads(payload)
                except ValueError as exc:
                    raise bad("action.payload is not JSON") from exc
            color = button.get("color")
            if color is not None and color not in ("primary", "secondary", "negative", "positive"):
                raise bad("color is unknown")
            out.append((kind, label, payload))
        result.append(out)
    return result, inline


class FakeVk(Server):
    def __init__(
        self, token: str = "vk1.a.TEST", group_id: int = 777, *, per_second: int = 20
    ) -> None:
        super().__init__()
        self.token = token
        self.group_id = group_id
        self.window = Window(per_second)
        self.key = secrets.token_hex(8)
        self.ts = 1
        self.events: list[tuple[int, dict[str, Any]]] = []  # (ts, event)
        self._message_ids = itertools.count(1)
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[str] = []
        self.answered: list[str] = []
        self.blocked: set[int] = set()
        self.errors_next: list[int] = []  # error codes for the next messages.send calls
        self.lp_failures: list[int] = []  # `failed` values for the next long-poll checks
        self.lp_http_errors = 0  # long-poll checks answered with HTTP 502
        self.lp_connects = 0
        # events the long poll server lost (`failed` 1 or 3): never delivered
        self.lost: list[dict[str, Any]] = []
        self._lost_from: int | None = None
        self.bot_features = True  # "Возможности ботов" on: keyboards allowed
        self.open_events: dict[str, float] = {}  # message_event id -> when it was pressed
        self._seen_random: dict[tuple[int, int], int] = {}
        self.web_app.router.add_post("/method/{method}", self._method)
        self.web_app.router.add_get(f"/lp/wh{group_id}", self._longpoll)

    # -- what users do ----------------------------------------------------------------
    async def push(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "group_id": self.group_id,
            "type": kind,
            "event_id": secrets.token_hex(20),
            "v": "5.199",
            "object": obj,
        }
        await self.redeliver(event)
        return event

    async def redeliver(self, event: dict[str, Any]) -> None:
        self.events.append((self.ts, event))
        self.ts += 1
        await self.notify()

    async def message(
        self, user_id: int, text: str, client_info: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        message = {
            "date": int(time.time()),
            "from_id": user_id,
            "id": next(self._message_ids),
            "out": 0,
            "peer_id": user_id,
            "text": text,
            "conversation_message_id": 1,
            "attachments": [],
            "important": False,
            "is_hidden": False,
            **extra,
        }
        client_info = FULL_CLIENT if client_info is None else client_info
        return await self.push("message_new", {"message": message, "client_info": client_info})

    async def sticker(self, user_id: int) -> dict[str, Any]:
        attachment = {"type": "sticker", "sticker": {"product_id": 1, "sticker_id": 9}}
        return await self.message(user_id, "", attachments=[attachment])

    async def press(self, user_id: int, payload: str) -> dict[str, Any]:
        obj = {
            "user_id": user_id,
            "peer_id": user_id,
            "event_id": secrets.token_hex(6),
            "payload": json.loads(payload),
            "conversation_message_id": 1,
        }
        self.open_events[obj["event_id"]] = time.monotonic()
        return await self.push("message_event", obj)

    def to(self, peer_id: int) -> list[Sent]:
        return [sent for sent in self.sent if sent.peer_id == peer_id]

    # -- the API ----------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        faulty = await self.fault(request, self._faulty)
        if faulty is not None:
            return faulty
        form = await request.post()
        params = {key: value for key, value in form.items() if isinstance(value, str)}
        params.update(request.query)
        self.calls.append((method, params))
        try:
            if params.get("access_token") != self.token:
                raise VkError(5, "User authorization failed: invalid access_token (4).")
            if not params.get("v"):
                raise VkError(8, "Invalid request: v (version) is required")
            if not self.window.allow():
                raise VkError(6, "Too many requests per second")
            handler = getattr(self, "api_" + method.replace(".", "_"), None)
            if handler is None:
                raise VkError(3, "Unknown method passed")
            result = await handler(params)
        except VkError as exc:
            if method == "messages.send":
                self.rejected.append(f"{exc.code}: {exc.message}")
            error = {"error_code": exc.code, "error_msg": exc.message, "request_params": []}
            return web.json_response({"error": error})
        return web.json_response({"response": result})

    def _faulty(self, kind: str) -> web.Response:
        """VK's answers to a call it could not take (dev.vk.com/ru/reference/errors):
        error 6 "Too many requests per second" (VK names no retry time), error 10
        "Internal server error", or the front end's 502/504 page."""
        if kind in ("429", "5xx") and (kind == "429" or self.faults.random.random() < 0.5):
            code, message = (
                (6, "Too many requests per second")
                if kind == "429"
                else (
                    10,
                    "Internal server error",
                )
            )
            error = {"error_code": code, "error_msg": message, "request_params": []}
            return web.json_response({"error": error})
        if kind == "5xx":
            status = self.faults.random.choice([502, 504])
            return web.Response(
                status=status, text=f"<html>{status}</html>", content_type="text/html"
            )
        return self.faults.garbage_body()

    async def api_groups_getById(self, params: dict[str, str]) -> dict[str, Any]:
        """Since API 5.194 an object {"groups": [...], "profiles": [...]}; with a community
        token and no group_id(s), the token's own community."""
        asked = params.get("group_ids") or params.get("group_id") or str(self.group_id)
        groups = []
        for item in asked.split(","):
            if item.strip() != str(self.group_id):
                raise VkError(100, "One of the parameters specified was missing or invalid")
            groups.append(
                {
                    "id": self.group_id,
                    "name": "Навигатор: помощь родителям",
                    "screen_name": f"club{self.group_id}",
                    "is_closed": 0,
                    "type": "group",
                }
            )
        return {"groups": groups, "profiles": []}

    async def api_groups_getLongPollServer(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("group_id") != str(self.group_id):
            raise VkError(100, "One of the parameters specified was missing or invalid: group_id")
        self.lp_connects += 1
        if self._lost_from is not None:
            # after `failed: 3` the events since the client's ts are gone: the server
            # gives the current ts
            self._lose(self._lost_from)
            self._lost_from = None
        return {"key": self.key, "server": f"{self.base}/lp/wh{self.group_id}", "ts": str(self.ts)}

    async def api_messages_send(self, params: dict[str, str]) -> int:
        if self.errors_next:
            code = self.errors_next.pop(0)
            raise VkError(
                code,
                {
                    6: "Too many requests per second",
                    9: "Flood control",
                    10: "Internal server error",
                }.get(code, "Error"),
            )
        if "random_id" not in params:
            raise VkError(100, "One of the parameters specified was missing or invalid: random_id")
        peer_id, random_id = int(params["peer_id"]), int(params["random_id"])
        if peer_id in self.blocked:
            raise VkError(901, "Can't send messages for users without permission")
        text = params.get("message", "")
        if not text:
            raise VkError(100, "One of the parameters specified was missing or invalid: message")
        if len(text) > 4096:
            raise VkError(914, "Message is too long")
        buttons, inline = [], False
        if params.get("keyboard"):
            if not self.bot_features:
                raise VkError(912, "This is a chat bot feature, change this status in settings")
            buttons, inline = _keyboard(params["keyboard"])
        if random_id and (peer_id, random_id) in self._seen_random:
            return self._seen_random[(peer_id, random_id)]
        sent = Sent(peer_id, next(self._message_ids), text, random_id, buttons, inline)
        self.sent.append(sent)
        if random_id:
            self._seen_random[(peer_id, random_id)] = sent.message_id
        await self.notify()
        return sent.message_id

    async def api_messages_sendMessageEventAnswer(self, params: dict[str, str]) -> int:
        for name in ("event_id", "user_id", "peer_id"):
            if not params.get(name):
                raise VkError(
                    100, f"One of the parameters specified was missing or invalid: {name}"
                )
        pressed = self.open_events.pop(params["event_id"], None)
        if pressed is None or time.monotonic() - pressed > EVENT_ANSWER_LIMIT:
            raise VkError(100, "One of the parameters specified was missing or invalid: event_id")
        if params.get("event_data"):
            try:
                json.loads(params["event_data"])
            except ValueError as exc:
                raise VkError(100, "event_data is not JSON") from exc
        self.answered.append(params["event_id"])
        return 1

    def _lose(self, from_ts: int) -> None:
        self.lost.extend(event for t, event in self.events if t >= from_ts)
        self.events = [(t, event) for t, event in self.events if t < from_ts]

    async def _longpoll(self, request: web.Request) -> web.Response:
        """Bots Long Poll (dev.vk.com/ru/api/bots-long-poll/getting-started): `failed: 1`
        the event history is out of date or partly lost, go on with the `ts` given;
        `failed: 2` the key expired, get a new key with groups.getLongPollServer (the
        ts stays valid); `failed: 3` the information is lost, get a new key and ts with
        groups.getLongPollServer. Events that `failed` 1 or 3 skip are in `lost`."""
        self.calls.append(("lp", dict(request.query)))
        if request.query.get("act") != "a_check":
            return web.Response(status=404, text="act=a_check is required")
        faulty = await self.fault(request, self._faulty, poll=True)
        if faulty is not None:
            return faulty
        if self.lp_http_errors > 0:
            self.lp_http_errors -= 1
            return web.Response(status=502, text="Bad Gateway")
        try:
            asked = int(request.query.get("ts", 0))
        except ValueError:
            asked = 0
        if self.lp_failures:
            failed = self.lp_failures.pop(0)
            if failed == 1:
                self._lose(asked)
                return web.json_response({"failed": 1, "ts": str(self.ts)})
            self.key = secrets.token_hex(8)
            if failed == 3:
                self._lost_from = asked
            return web.json_response({"failed": failed})
        if request.query.get("key") != self.key:
            return web.json_response({"failed": 2})
        ts = asked
        wait = float(request.query.get("wait", 25))
        deadline = time.monotonic() + wait
        async with self.changed:
            while not any(t >= ts for t, _ in self.events) and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        updates = [event for t, event in self.events if t >= ts]
        return web.json_response({"ts": str(self.ts), "updates": updates})
