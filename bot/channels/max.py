"""The MAX channel: the MAX Bot API over aiohttp (bot/channels/max_api.py), updates in,
replies out through the delivery path.

Why no client library: the maintained ones (maxapi, maxo, aiomax) bring their own
dispatcher and handler chain; the bot needs four REST calls, a configurable API base,
short timeouts, concurrent sends and its own TLS trust for this API, which a thin
aiohttp client gives directly.

Long polling (`GET /updates` with `marker`) or webhook mode (`POST /subscriptions`
with a secret; bot/web/max.py checks the `X-Max-Bot-Api-Secret` header and calls
`feed()`). The marker is stored in the channel_cursors table with the batch it
confirms, so a restart goes on from the first update not stored.

`message_created` (private dialogues only) and `message_callback` become `Incoming`
in `to_incoming()` (update_id = the message's mid / the callback_id, so a
re-delivered update is handled once) and are stored in the inbox before MAX is told
they arrived (the next poll's marker, or the webhook's HTTP answer); callbacks are
answered at once through `POST /answers`. `bot_started` becomes `/start <payload>`,
the deep-link parameter of a max.ru/<bot>?start=<payload> link, and marks the parent
reachable again; `bot_stopped` and the "dialog suspended" send error mark them
unreachable. A contact shared with the "share my phone" button becomes the typed phone.

Replies go out as plain text split at 4000 characters, with an inline keyboard
within MAX's limits (30 rows, 7 buttons a row or 3 with a link or contact button,
210 buttons, labels of 128 characters, payloads of 1024): rows that do not fit are
re-flowed, and a keyboard that still does not fit, or that MAX refuses, gives way to
the options written out in the text. The parent's id is the chat id: replies go to
`POST /messages?user_id=`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from datetime import UTC, datetime
from typing import Any

from bot.channels.max_api import (
    NETWORK_ERRORS,
    MaxApi,
    MaxApiError,
    is_certificate_error,
    max_ssl_context,
)
from bot.channels.payloads import PayloadKeys
from bot.channels.text import split_text
from bot.delivery import DeliveryError, Limits, RetryLater, TemporaryFailure
from bot.pacing import LONG_POLL, MAX_LIMITS
from handlers.core import Button, Incoming, Reply
from storage.models import utcnow

log = logging.getLogger(__name__)

CHANNEL = "max"
MAX_TEXT = 4000
MAX_ROWS, MAX_BUTTONS = 30, 210
PER_ROW, WIDE_PER_ROW = 7, 3  # a row with a link or contact button holds at most 3
MAX_LABEL = 128
MAX_PAYLOAD = 1024
UPDATE_TYPES = ["message_created", "message_callback", "bot_started", "bot_stopped"]
POLL_LIMIT = 100
# setup: the token is a header value: visible ASCII, no spaces or quotes
_TOKEN = re.compile(r"[!#-~]{16,512}")
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{5,256}")
_TEL = re.compile(r"^TEL[^:\r\n]*:([^\r\n]+)", re.MULTILINE | re.IGNORECASE)
_LINK = ("https://", "http://")
# Words of a 400 answer meaning MAX did not accept the message's keyboard.
_KEYBOARD_WORDS = ("keyboard", "button")


class ChannelSetupError(Exception):
    """MAX cannot be used as configured; the message names the setting."""


class KeyboardRefused(DeliveryError):
    """MAX refused the keyboard of a message; the text alone may still go."""


def _is_link(payload: str) -> bool:
    return payload.startswith(_LINK)


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def fit_keyboard(rows: list[list[Button]], contact_row: bool = False) -> list[list[Button]] | None:
    """Rows MAX accepts (None when the buttons cannot fit one keyboard): long rows are
    re-flowed (7 a row, 3 with a link), short rows merged while there are more than 30
    (one row is kept free for the contact button)."""

    def width(row: list[Button]) -> int:
        return WIDE_PER_ROW if any(_is_link(b.payload) for b in row) else PER_ROW

    flowed: list[list[Button]] = []
    for row in rows:
        size = width(row)
        flowed.extend(row[i : i + size] for i in range(0, len(row), size))
    flowed = [row for row in flowed if row]
    max_rows = MAX_ROWS - (1 if contact_row else 0)
    total = sum(len(row) for row in flowed) + (1 if contact_row else 0)
    if total > MAX_BUTTONS:
        return None
    while len(flowed) > max_rows:
        pairs = [
            (len(a) + len(b), i)
            for i, (a, b) in enumerate(itertools.pairwise(flowed))
            if len(a) + len(b) <= min(width(a), width(b))
        ]
        if not pairs:
            return None
        _, best = min(pairs)
        flowed[best : best + 2] = [flowed[best] + flowed[best + 1]]
    return flowed


def contact_phone(attachment: dict[str, Any]) -> str | None:
    """The phone of a shared contact (from its vCard), as the parent would type it."""
    payload = attachment.get("payload") or {}
    match = _TEL.search(str(payload.get("vcf_info") or ""))
    if not match:
        return None
    phone = re.sub(r"[^\d+]", "", match.group(1))
    if phone.isdigit() and len(phone) == 11 and phone[0] == "7":
        phone = "+" + phone
    return phone or None


def _delivery_exception(exc: Exception) -> Exception:
    if isinstance(exc, MaxApiError):
        reason = f"max: {exc.status} {exc.code}: {exc.message}"[:300]
        if exc.status == 429:
            return RetryLater(reason, 1.0)
        if exc.status >= 500:
            return TemporaryFailure(reason)
        if exc.status == 403 or "dialog.suspended" in exc.message or exc.code == "chat.denied":
            # the parent stopped or blocked the bot, or deleted the dialogue
            return DeliveryError(reason, unreachable=True)
        if exc.status == 404 and exc.code.startswith(("chat", "user", "dialog")):
            return DeliveryError(reason, unreachable=True)
        said = f"{exc.code} {exc.message}".lower()
        if exc.status == 400 and any(word in said for word in _KEYBOARD_WORDS):
            return KeyboardRefused(reason)
        return DeliveryError(reason)
    if is_certificate_error(exc):
        return DeliveryError(f"max: the API's certificate is not trusted: {exc}")
    return TemporaryFailure(f"max: {type(exc).__name__}: {exc}")


class MaxSender:
    def __init__(self, channel: MaxChannel) -> None:
        self.channel = channel
        # transcript id -> parts of that reply already sent, so a retry goes on from there
        self._progress: dict[int, int] = {}

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        try:
            return await self._send(chat_id, reply, keyboard=True)
        except KeyboardRefused as exc:
            log.warning("max refused a keyboard (%s); sending the options as text", exc.reason)
            return await self._send(chat_id, reply, keyboard=False)

    async def _send(self, chat_id: str, reply: Reply, *, keyboard: bool) -> str | None:
        messages = await self.channel.layout(reply, keyboard=keyboard)
        key = reply.transcript_id
        done = self._progress.get(key, 0) if key is not None else 0
        message_id: str | None = None
        for index in range(done, len(messages)):
            try:
                if index > done:
                    async with self.channel.delivery.paced(CHANNEL, chat_id):
                        sent = await self.channel.api.send_message(chat_id, messages[index])
                else:
                    sent = await self.channel.api.send_message(chat_id, messages[index])
            except (MaxApiError, *NETWORK_ERRORS) as exc:
                failure = _delivery_exception(exc)
                if isinstance(failure, DeliveryError) and key is not None:
                    self._progress.pop(key, None)
                raise failure from exc
            message_id = str((sent.get("body") or {}).get("mid") or "") or None
            if key is not None and index < len(messages) - 1:
                self._progress[key] = index + 1
        if key is not None:
            self._progress.pop(key, None)
        return message_id


class MaxChannel:
    """Owns the API client; `check()` validates the setup, `run()` polls or subscribes."""

    def __init__(self, app: Any, limits: Limits = MAX_LIMITS) -> None:
        cfg = app.settings.max
        self.app = app
        self.engine = app.engine
        self.delivery = app.delivery
        self.mode = cfg.mode
        self.api_base = cfg.api_base
        self.webhook_url = cfg.webhook_url
        self.webhook_secret = cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else ""
        self.polling_timeout = cfg.polling_timeout
        self.ca_file = cfg.ca_file
        token = cfg.token.get_secret_value() if cfg.token else ""
        self._token_ok = bool(_TOKEN.fullmatch(token))
        try:
            context = max_ssl_context(cfg.ca_file)
        except (OSError, ValueError) as exc:
            context = None
            self._ssl_problem = f"max.ca_file {cfg.ca_file} cannot be used as a PEM file: {exc}"
        else:
            self._ssl_problem = ""
        self.api = MaxApi(
            token if self._token_ok else "",
            cfg.api_base,
            context,
            timeout=self.delivery.request_timeout,
        )
        self.keys = PayloadKeys(app.db)
        self.sender = MaxSender(self)
        self.delivery.register(CHANNEL, self.sender, limits)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- start-up -----------------------------------------------------------------------
    async def check(self) -> dict[str, Any]:
        """GET /me; ChannelSetupError with one line naming the setting when MAX cannot be
        used: a malformed or rejected token, an untrusted certificate, no connection."""
        if not self._token_ok:
            raise ChannelSetupError(
                "max.token (NAVBOT_MAX__TOKEN) is malformed: paste the bot's token exactly as "
                "shown in its settings on business.max.ru, without spaces or quotes"
            )
        if self._ssl_problem:
            raise ChannelSetupError(self._ssl_problem)
        if self.mode == "webhook":
            if not self.webhook_url.startswith("https://"):
                raise ChannelSetupError("max.webhook_url must be an https:// URL in webhook mode")
            if not _WEBHOOK_SECRET.fullmatch(self.webhook_secret):
                raise ChannelSetupError(
                    "max.webhook_secret (NAVBOT_MAX__WEBHOOK_SECRET) must be 5-256 characters "
                    "of A-Z, a-z, 0-9, _ and - in webhook mode"
                )
        try:
            async with self.delivery.paced(CHANNEL, ""):
                return await self.api.me()
        except MaxApiError as exc:
            if exc.status == 401:
                raise ChannelSetupError(
                    "max.token (NAVBOT_MAX__TOKEN) was rejected by MAX (401 "
                    f"{exc.code}): copy the token again from the bot's settings on "
                    "business.max.ru"
                ) from None
            raise ChannelSetupError(
                f"max.api_base {self.api_base} answered GET /me with {exc.status} {exc.code}: "
                f"{exc.message}"
            ) from None
        except NETWORK_ERRORS as exc:
            if is_certificate_error(exc):
                raise ChannelSetupError(
                    f"max.api_base {self.api_base}: the server's certificate is not trusted "
                    "(the bot trusts the system store and the Russian Trusted Root CA): if MAX "
                    "changed its chain, save the new CA certificates as PEM and set max.ca_file "
                    "(NAVBOT_MAX__CA_FILE)"
                ) from None
            reason = str(exc) or type(exc).__name__
            raise ChannelSetupError(
                f"max.api_base {self.api_base} cannot be reached ({reason}): check the address "
                "(NAVBOT_MAX__API_BASE) and the network"
            ) from None

    # -- outgoing -----------------------------------------------------------------------
    async def layout(self, reply: Reply, *, keyboard: bool = True) -> list[dict[str, Any]]:
        """The bodies of the POST /messages calls that carry this reply."""
        rows = fit_keyboard(reply.buttons, reply.asks_phone) if keyboard else None
        text = reply.text
        written = [b for row in reply.buttons for b in row if not _is_link(b.payload)]
        if rows is None and written:
            options = "\n".join(f"• {b.label}" for b in written)
            text = f"{text}\n\n{self.app.texts('channels.type_an_option')}\n{options}"
        parts = split_text(text, MAX_TEXT)
        bodies: list[dict[str, Any]] = [{"text": part} for part in parts]
        buttons: list[list[dict[str, Any]]] = []
        if rows is not None:
            buttons = [[await self._button(b) for b in row] for row in rows]
        if reply.asks_phone and keyboard:
            label = _label(self.app.texts("channels.share_phone"))
            share = {"type": "request_contact", "text": label}
            buttons.insert(0, [share])
        if buttons:
            keyboard_attachment = {"type": "inline_keyboard", "payload": {"buttons": buttons}}
            bodies[-1]["attachments"] = [keyboard_attachment]
        return bodies

    async def _button(self, button: Button) -> dict[str, Any]:
        if _is_link(button.payload):
            return {"type": "link", "text": _label(button.label), "url": button.payload}
        payload = await self.keys.shorten(button.payload, MAX_PAYLOAD)
        return {"type": "callback", "text": _label(button.label), "payload": payload}

    # -- incoming -----------------------------------------------------------------------
    async def to_incoming(self, update: dict[str, Any]) -> Incoming | None:
        """The one place MAX updates become `Incoming` (None: nothing for the engine)."""
        kind = update.get("update_type")
        stamp = update.get("timestamp")
        when = datetime.fromtimestamp(stamp / 1000, UTC) if stamp else utcnow()
        if kind == "message_created":
            message = update.get("message") or {}
            recipient = message.get("recipient") or {}
            sender = message.get("sender") or {}
            if recipient.get("chat_type") != "dialog" or not _user_id(sender):
                return None  # the bot answers private dialogues only
            if sender.get("is_bot"):
                return None
            body = message.get("body") or {}
            text = body.get("text") or ""
            attachments = [a for a in body.get("attachments") or [] if isinstance(a, dict)]
            attachment = None
            if not text and attachments:
                first = attachments[0]
                phone = contact_phone(first) if first.get("type") == "contact" else None
                if phone:
                    text = phone
                else:
                    attachment = str(first.get("type") or "file")
            return Incoming(
                channel=CHANNEL,
                user_id=str(sender["user_id"]),
                chat_id=str(sender["user_id"]),
                text=text,
                update_id=str(body.get("mid") or f"msg{stamp}"),
                message_id=str(body.get("mid") or ""),
                time=when,
                user_name=_name(sender),
                attachment=attachment,
            )
        if kind == "message_callback":
            callback = update.get("callback") or {}
            user = callback.get("user") or {}
            if not _user_id(user) or not callback.get("callback_id"):
                return None
            payload = await self.keys.expand(str(callback.get("payload") or "")) or "menu"
            return Incoming(
                channel=CHANNEL,
                user_id=str(user["user_id"]),
                chat_id=str(user["user_id"]),
                payload=payload,
                update_id=str(callback["callback_id"]),
                time=when,
                user_name=_name(user),
            )
        if kind == "bot_started":
            user = update.get("user") or {}
            if not _user_id(user):
                return None
            param = str(update.get("payload") or "").strip()
            return Incoming(
                channel=CHANNEL,
                user_id=str(user["user_id"]),
                chat_id=str(user["user_id"]),
                text=f"/start {param}" if param else "/start",
                update_id=f"start:{user['user_id']}:{stamp}",
                time=when,
                user_name=_name(user),
            )
        return None

    async def prepare(self, update: dict[str, Any]) -> Incoming | None:
        """Apply what an update says about the parent (stopped or started the bot), answer
        a pressed button at once, and return the message for the engine, if any."""
        kind = update.get("update_type")
        user = update.get("user")
        user = user if isinstance(user, dict) else {}
        if kind in ("bot_started", "bot_stopped") and user.get("user_id"):
            reachable = kind == "bot_started"
            log.info("max: a parent %s the bot", "started" if reachable else "stopped")
            await self.delivery.set_reachable(CHANNEL, str(user["user_id"]), reachable)
        if kind == "message_callback":
            # the spinner on the parent's button stops at once, in the background
            task = asyncio.create_task(self._answer(update.get("callback") or {}))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await self.to_incoming(update)

    async def accept(self, updates: list[dict[str, Any]], marker: int | None = None) -> None:
        """Store a batch in the inbox (with the marker to go on from); returns once stored,
        so only then is the batch confirmed to MAX (the next poll's marker, or the
        webhook's 200)."""
        messages: list[Incoming] = []
        for update in updates:
            try:
                incoming = await self.prepare(update)
            except Exception as exc:
                log.warning("max: an update was ignored: %s", type(exc).__name__)
                continue
            if incoming is not None:
                messages.append(incoming)
        cursor = (CHANNEL, str(marker)) if marker is not None else None
        await self.app.inbox.accept(messages, cursor=cursor)

    async def feed(self, update: dict[str, Any]) -> None:
        """Store one pushed update (webhook mode)."""
        self.delivery.telemetry.heard(CHANNEL)
        await self.accept([update])

    async def _answer(self, callback: dict[str, Any]) -> None:
        """Answers count against the token's 30 requests a second and have their own 2 a
        second per chat, apart from the messages'."""
        if not isinstance(callback, dict):
            return
        callback_id = str(callback.get("callback_id") or "")
        user = callback.get("user")
        user_id = str(user.get("user_id") or "") if isinstance(user, dict) else ""
        if not callback_id:
            return
        try:
            async with self.delivery.paced(CHANNEL, f"answers:{user_id}"):
                await self.api.answer(callback_id, {})
        except (MaxApiError, *NETWORK_ERRORS) as exc:
            log.info("max: POST /answers failed: %s", exc)

    # -- long polling -------------------------------------------------------------------
    async def poll(self) -> None:
        """GET /updates in a loop; a batch is confirmed to MAX (the next call's marker)
        only after it was stored with that marker, so a restart goes on from there."""
        stored = await self.app.inbox.cursor(CHANNEL)
        marker = int(stored) if stored and stored.isdigit() else None
        failures = 0
        log.info("max: long polling started")
        while True:
            try:
                # MAX counts GET /updates in the token's 30 requests a second too, when
                # it receives the request: held as in flight until it answers (at once
                # when updates are waiting), or LONG_POLL while MAX holds it open. A call
                # to no chat: the per-chat limit is for messages.
                async with self.delivery.paced(CHANNEL, "", longest=LONG_POLL):
                    batch = await self.api.updates(
                        marker, limit=POLL_LIMIT, wait=self.polling_timeout, types=UPDATE_TYPES
                    )
                self.delivery.telemetry.heard(CHANNEL)
                moved = batch.marker is not None and batch.marker != marker
                if batch.updates or moved:
                    await self.accept(batch.updates, batch.marker if moved else None)
            except MaxApiError as exc:
                if exc.status == 401:
                    raise ChannelSetupError(
                        "max.token (NAVBOT_MAX__TOKEN) was rejected by MAX (401)"
                    ) from None
                failures += 1
                delay = self.delivery.backoff(failures)
                log.warning("max: GET /updates failed (%s); again in %.1fs", exc.code, delay)
                await asyncio.sleep(delay)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # the network, or a batch that could not be stored: asked for again
                failures += 1
                delay = self.delivery.backoff(failures)
                log.warning(
                    "max: GET /updates failed (%s); again in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            if moved:
                marker = batch.marker

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self) -> None:
        # /healthz: a poller hears from MAX at least every polling timeout.
        silence = (
            None
            if self.mode == "webhook"
            else self.polling_timeout + self.app.settings.ops.channel_silence_seconds
        )
        self.delivery.telemetry.channel_started(CHANNEL, self.mode, silence)
        if self.mode == "webhook":
            async with self.delivery.paced(CHANNEL, ""):
                await self.api.subscribe(self.webhook_url, UPDATE_TYPES, self.webhook_secret)
            log.info("max: webhook subscribed at %s", self.webhook_url)
            await asyncio.Event().wait()
            return
        # every call counts in the token's 30 a second, these at start-up too
        async with self.delivery.paced(CHANNEL, ""):
            subscriptions = await self.api.subscriptions()
        for subscription in subscriptions:
            # while a webhook subscription is active, long polling gets nothing
            url = str(subscription.get("url") or "")
            if url:
                async with self.delivery.paced(CHANNEL, ""):
                    await self.api.unsubscribe(url)
                log.info("max: webhook subscription %s removed for long polling", url)
        await self.poll()

    async def close(self) -> None:
        tasks = list(self._tasks)  # callback answers still under way
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.api.close()


def _user_id(user: Any) -> bool:
    """Whether `user` is a MAX user object with a numeric id (anything else is not
    from MAX and cannot be answered)."""
    if not isinstance(user, dict):
        return False
    user_id = user.get("user_id")
    return isinstance(user_id, int) and not isinstance(user_id, bool) and user_id > 0


def _name(user: dict[str, Any]) -> str:
    parts = (user.get("first_name") or user.get("name") or "", user.get("last_name") or "")
    return " ".join(part for part in parts if part).strip()


def _user_of(update: dict[str, Any]) -> str:
    if update.get("update_type") == "message_created":
        return str(((update.get("message") or {}).get("sender") or {}).get("user_id"))
    if update.get("update_type") == "message_callback":
        return str(((update.get("callback") or {}).get("user") or {}).get("user_id"))
    return str((update.get("user") or {}).get("user_id"))
