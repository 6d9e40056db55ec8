"""The VK channel (vk_api): a community's messages in, replies out through delivery.

Method calls of the delivery path (messages.send, messages.sendMessageEventAnswer) go
out on aiohttp (`VkMethods`): concurrently, up to the 20 requests/s that the shared
pacing grants, each with a short timeout. vk_api's own client sends one call at a time
(it holds a lock for the whole HTTP request) and gives every call the long poll's
timeout, so at a real network's latency it could not reach the limit. vk_api's
`VkApiGroup` (explicit API version, a `requests` session that points its fixed URL at
`settings.vk.api_base`) remains for the start-up check and Bots Long Poll (the
long-poll server URL VK returns is used as given). Bots Long Poll runs in a thread that
hands each batch to the inbox (stored with the ts to go on from before the next batch is
asked for) and reconnects with backoff when the network fails. `message_new` and
`message_event` (callback buttons, answered with messages.sendMessageEventAnswer) become
`Incoming` with update_id = the event_id.

Buttons follow what the parent's app can show (`client_info` of their last message):
inline callback keyboards laid out to fit VK's limits; inline text buttons when the
app has no callback buttons; a one-time keyboard under the input field when it has
no inline keyboards; and the options written out in the text when it shows no
keyboard at all, or when VK refuses a keyboard. Typing an option works in every case.
Every messages.send carries a random_id derived from the reply's transcript id, so a
retried send is never shown twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import requests
import vk_api
from vk_api.bot_longpoll import VkBotLongPoll
from vk_api.exceptions import ApiError, ApiHttpError, VkApiError

from bot.channels.payloads import PayloadKeys
from bot.channels.serve import ChannelError
from bot.channels.text import split_text
from bot.delivery import VK_LIMITS, DeliveryError, Limits, RetryLater, TemporaryFailure
from handlers.core import Button, Incoming, Reply

log = logging.getLogger(__name__)

CHANNEL = "vk"
MAX_TEXT = 4096
MAX_LABEL = 40
MAX_PAYLOAD = 255
PER_ROW = 5
INLINE_ROWS, INLINE_TOTAL = 6, 10  # dev.vk.com/ru/api/bots/development/keyboard
STANDARD_ROWS, STANDARD_TOTAL = 10, 40
# VK's fixed endpoints that vk_api posts to, rewritten to settings.vk.api_base.
VK_ENDPOINTS = ("https://api.vk.ru/method/", "https://api.vk.com/method/")
RETRY_AFTER = {6: 1.0, 9: 2.0}  # too many requests per second; flood control
TEMPORARY = {1, 10}  # unknown error; internal server error
# blacklisted; the user did not allow messages from the community; privacy settings.
# (Error 7, "permission denied", is about the token or the community, not the user.)
UNREACHABLE = {900, 901, 902}
# Seconds the start-up check (groups.getById) waits for VK.
CHECK_TIMEOUT = 10
# Seconds one method call of the delivery path may take (connecting included), unless
# `[delivery] request_timeout_seconds` says otherwise.
CALL_TIMEOUT = 15.0
CONNECT_TIMEOUT = 10.0
# Parallel connections: the calls one second's budget of 20 may have in flight, twice.
POOL_SIZE = 40
AUTHORIZATION_FAILED = 5
# Keyboard format invalid; bot features off in the community; wrong button type.
KEYBOARD_REFUSED = {911, 912, 913}


class KeyboardRefused(DeliveryError):
    """VK refused the keyboard of a message; the text alone may still go."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class ClientInfo:
    """What the parent's VK app can show (object.client_info of message_new)."""

    keyboard: bool = True
    inline_keyboard: bool = True
    callback: bool = True

    @classmethod
    def parse(cls, raw: Any) -> ClientInfo:
        if not isinstance(raw, dict):
            return cls()
        actions = raw.get("button_actions")
        actions = actions if isinstance(actions, list) else []
        return cls(
            keyboard=bool(raw.get("keyboard", False)) and "text" in actions,
            inline_keyboard=bool(raw.get("inline_keyboard", False)) and "text" in actions,
            callback="callback" in actions,
        )


class RawLongPoll(VkBotLongPoll):
    """VkBotLongPoll handing events over as VK sent them: vk_api's event classes fail on
    an event without `object`, inside `check()` and after the ts was moved on, which
    would ask for the same batch again and again."""

    # Seconds a check may take beyond `wait` before it counts as hung (vk_api: 10).
    margin = 10.0

    def _parse_event(self, raw_event: Any) -> Any:
        return raw_event

    def check(self) -> list[Any]:
        """vk_api's check, with `margin` for a hung long poll; `failed` as VK documents
        it (dev.vk.com/ru/api/bots-long-poll/getting-started): 1, history out of date
        or partly lost: go on from the `ts` given; 2, key expired: a new key, the same
        ts; 3, information lost: a new key and ts."""
        values = {"act": "a_check", "key": self.key, "ts": self.ts, "wait": self.wait}
        response = self.session.get(self.url, params=values, timeout=self.wait + self.margin).json()
        if not isinstance(response, dict):
            raise ValueError("the long poll answered something that is not an object")
        if "failed" not in response:
            updates = response["updates"]
            if not isinstance(updates, list):
                raise ValueError("the long poll's updates are not a list")
            self.ts = response["ts"]
            return [self._parse_event(event) for event in updates]
        failed = response["failed"]
        if failed == 1:
            self.ts = response["ts"]
        elif failed == 2:
            self.update_longpoll_server(update_ts=False)
        elif failed == 3:
            self.update_longpoll_server()
        else:
            raise ValueError(f"the long poll failed with {failed!r}")
        return []


class VkApiSession(requests.Session):
    """A requests session that sends vk_api's calls to a configurable API base."""

    def __init__(self, api_base: str, timeout: float = 30) -> None:
        super().__init__()
        self.api_base = api_base.rstrip("/") + "/"
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):  # type: ignore[override]
        if isinstance(url, str):
            for endpoint in VK_ENDPOINTS:
                if url.startswith(endpoint):
                    url = self.api_base + url[len(endpoint) :]
                    break
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class VkMethods:
    """VK API method calls on aiohttp: POST {api_base}/{method} with the token and the
    API version, many at once, each with a short timeout. An `error` answer is raised as
    vk_api's `ApiError`; an HTTP error, a timeout or an unreadable answer as
    `TemporaryFailure`."""

    def __init__(
        self, token: str, api_version: str, api_base: str, timeout: float = CALL_TIMEOUT
    ) -> None:
        self._token = token
        self.api_version = api_version
        self.api_base = api_base.rstrip("/") + "/"
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_SIZE),
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT)
                ),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def call(self, method: str, values: dict[str, Any]) -> Any:
        form = {key: str(value) for key, value in values.items() if value is not None}
        form["access_token"] = self._token
        form["v"] = self.api_version
        try:
            async with self.session.post(self.api_base + method, data=form) as response:
                if response.status != 200:
                    raise TemporaryFailure(f"vk: HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TemporaryFailure(f"vk: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise TemporaryFailure("vk: an answer that is not a JSON object")
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            error.setdefault("error_code", 0)
            raise ApiError(None, method, values, data, error)
        return data.get("response")


def fit_keyboard(
    rows: list[list[Button]], max_rows: int = INLINE_ROWS, max_total: int = INLINE_TOTAL
) -> list[list[list[Button]]]:
    """Lay buttons out in keyboards VK accepts: rows of at most 5, at most `max_rows`
    rows and `max_total` buttons per keyboard (inline: 6 and 10). Long rows are
    re-flowed, short rows merged while that makes the menu fit one keyboard; otherwise
    the buttons go in several keyboards."""
    flowed = [row[i : i + PER_ROW] for row in rows for i in range(0, len(row), PER_ROW)]
    flowed = [row for row in flowed if row]
    total = sum(len(row) for row in flowed)
    if total <= max_total:
        while len(flowed) > max_rows:
            sizes = [len(a) + len(b) for a, b in itertools.pairwise(flowed)]
            best = min(range(len(sizes)), key=lambda i: sizes[i])
            flowed[best : best + 2] = [flowed[best] + flowed[best + 1]]
        return [flowed]
    keyboards: list[list[list[Button]]] = [[]]
    count = 0
    for row in flowed:
        if len(keyboards[-1]) == max_rows or count + len(row) > max_total:
            keyboards.append([])
            count = 0
        keyboards[-1].append(row)
        count += len(row)
    return keyboards


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _person(user_id: Any) -> bool:
    """A VK user's id: a positive number (communities are negative, chats above 2e9)."""
    return isinstance(user_id, int) and not isinstance(user_id, bool) and 0 < user_id < 2e9


def random_id(transcript_id: int | None, index: int) -> int:
    """A stable random_id for the index-th message of one reply (0: no deduplication)."""
    if transcript_id is None:
        return 0
    return (transcript_id * 32 + index) % (2**31 - 1) + 1


class VkSender:
    def __init__(self, channel: VkChannel) -> None:
        self.channel = channel

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        try:
            return await self._send(chat_id, reply, self.channel.client(chat_id))
        except KeyboardRefused as exc:
            log.warning("vk refused a keyboard (%s); sending the options as text", exc.reason)
            if exc.code == 912:  # bot features are off for the whole community
                self.channel.keyboards_off = True
            return await self._send(chat_id, reply, ClientInfo(False, False, False))

    async def _send(self, chat_id: str, reply: Reply, client: ClientInfo) -> str | None:
        messages = await self.channel.layout(reply, client)
        message_id: str | None = None
        for index, (text, keyboard) in enumerate(messages):
            values: dict[str, Any] = {
                "peer_id": int(chat_id),
                "message": text,
                "random_id": random_id(reply.transcript_id, index),
            }
            if keyboard is not None:
                values["keyboard"] = keyboard
            # The first message goes out under the slot Delivery took for this reply.
            async with (
                self.channel.delivery.paced(CHANNEL, chat_id) if index else contextlib.nullcontext()
            ):
                result = await self.channel.call("messages.send", values)
            message_id = str(result)
        return message_id


def _delivery_exception(exc: Exception) -> Exception:
    if isinstance(exc, ApiError):
        reason = f"vk: error {exc.code}: {exc.error.get('error_msg', '')}"
        if exc.code in RETRY_AFTER:
            return RetryLater(reason, RETRY_AFTER[exc.code])
        if exc.code in TEMPORARY:
            return TemporaryFailure(reason)
        if exc.code in KEYBOARD_REFUSED:
            return KeyboardRefused(reason, exc.code)
        return DeliveryError(reason, unreachable=exc.code in UNREACHABLE)
    if isinstance(exc, ApiHttpError):
        return TemporaryFailure(f"vk: HTTP {exc.response.status_code}")
    if isinstance(exc, requests.RequestException | ValueError):
        return TemporaryFailure(f"vk: {type(exc).__name__}: {exc}")
    return DeliveryError(f"vk: {exc}")


class VkChannel:
    MAX_CLIENTS = 50_000

    def __init__(self, app: Any, limits: Limits = VK_LIMITS) -> None:
        cfg = app.settings.vk
        self.app = app
        self.engine = app.engine
        self.delivery = app.delivery
        self.group_id = cfg.group_id
        self.wait = cfg.longpoll_wait
        self.vk = vk_api.VkApiGroup(
            token=cfg.token.get_secret_value(),
            api_version=cfg.api_version,
            # method calls (groups.getLongPollServer included); the long poll's own
            # check waits `wait` + 10 s on a session of its own
            session=VkApiSession(cfg.api_base, timeout=self.delivery.request_timeout),
        )
        # Flood control is waited out by the delivery path, not by vk_api's blocking sleep.
        self.vk.error_handlers.pop(vk_api.vk_api.TOO_MANY_RPS_CODE, None)
        # Calls are paced by Delivery (bot/pacing.py, shared by every process on this token);
        # vk_api's own spacing of 1/20 s after each answer would hold them under the limit.
        self.vk.RPS_DELAY = 0.0
        # sends and button answers: `delivery.request_timeout_seconds` each, many at once
        self.methods = VkMethods(
            cfg.token.get_secret_value(),
            cfg.api_version,
            cfg.api_base,
            timeout=self.delivery.request_timeout,
        )
        self.keys = PayloadKeys(app.db)
        self.sender = VkSender(self)
        self.delivery.register(CHANNEL, self.sender, limits, key=cfg.token.get_secret_value())
        self._stopping = threading.Event()
        # peer id -> the app they last wrote from; unknown peers get the full keyboards
        self._clients: OrderedDict[str, ClientInfo] = OrderedDict()
        self.keyboards_off = False

    def client(self, peer_id: str) -> ClientInfo:
        if self.keyboards_off:
            return ClientInfo(False, False, False)
        return self._clients.get(peer_id) or ClientInfo()

    def remember_client(self, peer_id: str, raw: Any) -> None:
        self._clients.pop(peer_id, None)
        self._clients[peer_id] = ClientInfo.parse(raw)
        while len(self._clients) > self.MAX_CLIENTS:
            self._clients.popitem(last=False)

    async def call(self, method: str, values: dict[str, Any]) -> Any:
        """One method call of the delivery path (see `VkMethods`), its failure as
        delivery sees it."""
        try:
            return await self.methods.call(method, values)
        except (VkApiError, requests.RequestException, ValueError) as exc:
            raise _delivery_exception(exc) from exc

    async def close(self) -> None:
        await self.methods.close()

    # -- outgoing ---------------------------------------------------------------------
    async def layout(
        self, reply: Reply, client: ClientInfo | None = None
    ) -> list[tuple[str, str | None]]:
        """(text, keyboard JSON) of each message that carries this reply, for an app
        that can show what `client` says."""
        client = client or ClientInfo()
        text = reply.text
        if reply.buttons and not (client.inline_keyboard or client.keyboard):
            options = "\n".join(f"• {b.label}" for row in reply.buttons for b in row)
            text = f"{text}\n\n{self.app.texts('channels.type_an_option')}\n{options}"
        parts = split_text(text, MAX_TEXT)
        if not reply.buttons or not (client.inline_keyboard or client.keyboard):
            return [(part, None) for part in parts]
        inline = client.inline_keyboard
        kind = "callback" if client.callback else "text"
        limits = (INLINE_ROWS, INLINE_TOTAL) if inline else (STANDARD_ROWS, STANDARD_TOTAL)
        keyboards = [
            await self._keyboard(rows, kind, inline)
            for rows in fit_keyboard(reply.buttons, *limits)
        ]
        messages: list[tuple[str, str | None]] = [(part, None) for part in parts[:-1]]
        messages.append((parts[-1], keyboards[0]))
        more = self.app.texts("channels.more_buttons")
        messages.extend((more, keyboard) for keyboard in keyboards[1:])
        return messages

    async def _keyboard(self, rows: list[list[Button]], kind: str, inline: bool) -> str:
        async def button(item: Button) -> dict[str, Any]:
            if item.payload.startswith("https://"):  # a link (into another messenger)
                return {
                    "action": {
                        "type": "open_link",
                        "link": item.payload,
                        "label": _label(item.label),
                    }
                }
            payload = json.dumps({"p": item.payload}, ensure_ascii=False)
            if len(payload.encode()) > MAX_PAYLOAD:
                key = await self.keys.shorten(item.payload, 0)
                payload = json.dumps({"p": key})
            action = {"type": kind, "label": _label(item.label), "payload": payload}
            return {"action": action}

        buttons = [[await button(item) for item in row] for row in rows]
        keyboard: dict[str, Any] = {"inline": inline, "buttons": buttons}
        if not inline:
            keyboard["one_time"] = True  # hidden once pressed, like a menu that was used
        return json.dumps(keyboard, ensure_ascii=False)

    # -- incoming ---------------------------------------------------------------------
    async def _payload(self, raw: Any) -> str | None:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return None
        if not isinstance(raw, dict) or not isinstance(raw.get("p"), str):
            return None
        # A key this bot never issued stays as it is: the router calls it out of date.
        return await self.keys.expand(raw["p"]) or raw["p"] or "menu"

    async def to_incoming(self, event: dict[str, Any]) -> Incoming | None:
        kind, obj = event.get("type"), event.get("object") or {}
        update_id = event.get("event_id")
        if kind == "message_new":
            message = obj.get("message", obj)
            peer, sender = message.get("peer_id"), message.get("from_id")
            if not _person(sender) or peer != sender:  # only private dialogues with a person
                return None
            self.remember_client(str(peer), obj.get("client_info"))
            text = message.get("text") or ""
            payload = await self._payload(message.get("payload"))
            raw_payload = message.get("payload") or ""
            if '"command":"start"' in raw_payload.replace(" ", ""):
                # VK's own «Начать» button; a vk.me/...?ref=<param> link brings its ref
                ref = str(message.get("ref") or "")
                text = f"/start {ref}" if ref else "/start"
            attachments = message.get("attachments") or []
            return Incoming(
                channel=CHANNEL,
                user_id=str(sender),
                chat_id=str(peer),
                text=text,
                payload=payload,
                update_id=str(update_id) if update_id else f"msg{message.get('id')}",
                message_id=str(message.get("id")),
                time=datetime.fromtimestamp(message.get("date") or 0, UTC)
                if message.get("date")
                else datetime.now(UTC),
                attachment=str(attachments[0].get("type")) if attachments and not text else None,
            )
        if kind == "message_event":
            if not _person(obj.get("user_id")) or obj.get("peer_id") != obj.get("user_id"):
                return None  # a button pressed in a group chat, or an event not from VK
            await self._answer_event(obj)
            return Incoming(
                channel=CHANNEL,
                user_id=str(obj.get("user_id")),
                chat_id=str(obj.get("peer_id")),
                payload=await self._payload(obj.get("payload")) or "menu",
                update_id=str(update_id) if update_id else f"ev{obj.get('event_id')}",
            )
        return None

    async def _answer_event(self, obj: dict[str, Any]) -> None:
        values = {
            "event_id": obj.get("event_id"),
            "user_id": obj.get("user_id"),
            "peer_id": obj.get("peer_id"),
        }
        try:
            async with self.delivery.paced(CHANNEL, str(obj.get("peer_id"))):
                await self.call("messages.sendMessageEventAnswer", values)
        except Exception as exc:
            log.info("sendMessageEventAnswer failed: %s", exc)

    async def store(self, events: list[dict[str, Any]], ts: str | None) -> None:
        """Store a long-poll batch in the inbox, with the ts to go on from; the poller asks
        VK for the next batch only after this returns."""
        messages: list[Incoming] = []
        for event in events:
            try:
                if not isinstance(event, dict):
                    raise TypeError("an event is not an object")
                incoming = await self.to_incoming(event)
            except Exception as exc:
                name = event.get("event_id") if isinstance(event, dict) else None
                log.warning("vk: event %s ignored: %s", name, type(exc).__name__)
                continue
            if incoming is not None:
                messages.append(incoming)
        await self.app.inbox.accept(messages, cursor=(CHANNEL, ts) if ts else None)

    # -- start-up ---------------------------------------------------------------------
    async def check(self) -> None:
        """Refuse to start with a token VK rejects, a community id that is not the token's,
        or an API that does not answer: groups.getById (the token's own community),
        with a short timeout, before anything is served."""
        cfg = self.app.settings.vk
        api = vk_api.VkApiGroup(
            token=cfg.token.get_secret_value(),
            api_version=cfg.api_version,
            session=VkApiSession(cfg.api_base, timeout=CHECK_TIMEOUT),
        )
        try:
            result = await asyncio.to_thread(api.method, "groups.getById", {})
        except ApiError as exc:
            message = exc.error.get("error_msg", "")
            if exc.code == AUTHORIZATION_FAILED:
                raise ChannelError(
                    f"vk.token (NAVBOT_VK__TOKEN) was rejected by VK (error 5: {message}): "
                    "create a community token with the messages permission"
                ) from None
            raise ChannelError(
                f"vk: groups.getById failed at start: error {exc.code}: {message}"
            ) from None
        except (ApiHttpError, requests.RequestException, ValueError) as exc:
            raise ChannelError(
                f"vk.api_base ({cfg.api_base}) cannot be reached: {type(exc).__name__}"
            ) from None
        groups = result.get("groups", []) if isinstance(result, dict) else result
        ids = [group.get("id") for group in groups or [] if isinstance(group, dict)]
        if self.group_id not in ids:
            raise ChannelError(
                f"vk.group_id (NAVBOT_VK__GROUP_ID) is {self.group_id}, but the token belongs "
                f"to community {', '.join(map(str, ids)) or 'unknown'}"
            )

    # -- long poll --------------------------------------------------------------------
    async def _connect_longpoll(self) -> RawLongPoll:
        # groups.getLongPollServer counts against the token's 20 requests/s like a send.
        async with self.delivery.paced(CHANNEL, ""):
            longpoll = await asyncio.to_thread(RawLongPoll, self.vk, self.group_id, wait=self.wait)
        longpoll.margin = self.delivery.request_timeout
        return longpoll

    def _poll(self, loop: asyncio.AbstractEventLoop, start_ts: str | None) -> None:
        longpoll: RawLongPoll | None = None
        last_ts: str | None = start_ts
        failures = 0
        while not self._stopping.is_set():
            try:
                if longpoll is None:
                    connect = self._connect_longpoll()
                    longpoll = asyncio.run_coroutine_threadsafe(connect, loop).result()
                    # Go on from where the last stored batch ended, so events sent
                    # meanwhile are not skipped (VK answers `failed: 1` if too old).
                    longpoll.ts = last_ts or longpoll.ts
                    log.info("vk: bots long poll connected")
                    if last_ts is None and longpoll.ts is not None:
                        # The first ts is stored at once: a process stopped before its
                        # first batch goes on from here, not from a newer ts that would
                        # skip what parents wrote meanwhile.
                        last_ts = str(longpoll.ts)
                        store = self.store([], last_ts)
                        asyncio.run_coroutine_threadsafe(store, loop).result()
                events = longpoll.check()
                self.delivery.telemetry.heard(CHANNEL)
                ts = str(longpoll.ts) if longpoll.ts is not None else None
                if events or ts != last_ts:
                    asyncio.run_coroutine_threadsafe(self.store(events, ts), loop).result()
                last_ts = ts
                failures = 0
            except Exception as exc:
                if self._stopping.is_set():
                    break
                failures += 1
                delay = self.delivery.backoff(failures)
                log.warning(
                    "vk: long poll failed (%s); reconnecting in %.1fs", type(exc).__name__, delay
                )
                longpoll = None  # re-fetch the server and key
                self._stopping.wait(delay)

    async def run(self) -> None:
        # /healthz: the long poll answers at least every `wait` seconds.
        self.delivery.telemetry.channel_started(
            CHANNEL, "polling", self.wait + self.app.settings.ops.channel_silence_seconds
        )
        loop = asyncio.get_running_loop()
        start_ts = await self.app.inbox.cursor(CHANNEL)
        self._stopping.clear()
        stopped = asyncio.Event()

        def poll() -> None:
            try:
                self._poll(loop, start_ts)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(stopped.set)

        threading.Thread(target=poll, name="vk-longpoll", daemon=True).start()
        try:
            await stopped.wait()
        finally:
            self._stopping.set()
            await self.close()
