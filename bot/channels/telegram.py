"""The Telegram channel (aiogram 3): updates in, replies out through the delivery path.

Long polling by default; in webhook mode bot/web feeds updates to `feed()`. Messages
and callback queries become `Incoming` (update_id = Telegram's update_id, so the
engine ignores a re-delivered update), stored in the inbox before Telegram is told
they arrived (the next getUpdates offset, or the webhook's HTTP answer). Replies go
out as HTML with everything escaped, split at paragraph breaks above 4096 characters,
with inline keyboards whose callback data never exceeds 64 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import sys
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType, ParseMode
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from pydantic import ValidationError

from bot.channels.payloads import PayloadKeys
from bot.channels.serve import ChannelError
from bot.channels.text import split_text, utf16_len
from bot.delivery import TELEGRAM_LIMITS, DeliveryError, Limits, RetryLater, TemporaryFailure
from handlers.core import Button, Incoming, Reply

log = logging.getLogger(__name__)


class ChannelStopped(Exception):
    """The platform refused this bot while it was running (printed as one line)."""


CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
# my_chat_member tells when a parent blocks the bot ("kicked") or unblocks it ("member").
# Edited messages, channel posts and the rest are not asked for.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
# Seconds the start-up check (getMe) waits for Telegram.
CHECK_TIMEOUT = 10
# Bad Request descriptions that mean the chat can no longer be written to.
_GONE = ("chat not found", "user is deactivated", "bot was kicked")


class TelegramSender:
    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel
        # transcript id -> parts of that reply already sent, so a retry goes on from there
        self._progress: dict[int, int] = {}

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        parts = split_text(reply.text, MAX_TEXT, utf16_len)
        markup = await self.channel.keyboard(reply) if reply.buttons else None
        done = self._progress.get(reply.transcript_id, 0) if reply.transcript_id else 0
        message_id: str | None = None
        for index in range(done, len(parts)):
            last = index == len(parts) - 1
            try:
                # The first part goes out under the slot Delivery took for this reply.
                async with (
                    self.channel.delivery.paced(CHANNEL, chat_id)
                    if index > done
                    else contextlib.nullcontext()
                ):
                    sent = await self.channel.bot.send_message(
                        chat_id=int(chat_id),
                        text=html.escape(parts[index], quote=False),
                        reply_markup=markup if last else None,
                    )
            except (TelegramAPIError, ClientDecodeError) as exc:
                failure = _delivery_exception(exc)
                if isinstance(failure, DeliveryError) and reply.transcript_id is not None:
                    self._progress.pop(reply.transcript_id, None)
                raise failure from exc
            message_id = str(sent.message_id)
            if reply.transcript_id is not None and not last:
                self._progress[reply.transcript_id] = index + 1
        if reply.transcript_id is not None:
            self._progress.pop(reply.transcript_id, None)
        return message_id


def _delivery_exception(exc: TelegramAPIError | ClientDecodeError) -> Exception:
    if isinstance(exc, ClientDecodeError):
        # Not Telegram's JSON: a front end's error page (502, 504) or a cut-off answer.
        # Sent again (at least once: a cut-off "ok" may have been delivered).
        return TemporaryFailure(f"telegram: {exc.message}")
    reason = f"telegram: {exc.message}"
    if isinstance(exc, TelegramRetryAfter):
        return RetryLater(reason, float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return DeliveryError(reason, unreachable=True)
    if isinstance(exc, TelegramServerError | TelegramNetworkError):
        return TemporaryFailure(reason)
    if isinstance(exc, TelegramBadRequest) and any(g in exc.message.lower() for g in _GONE):
        return DeliveryError(reason, unreachable=True)
    return DeliveryError(reason)


# aiogram parses every answer as Response[<result type>]; pydantic caches those classes
# weakly, so they were built anew (~20 ms each) whenever the garbage collector had taken
# them. Held here once a channel exists (not at import: the types are built on first use).
_RESPONSE_TYPES: list[Any] = []


def _hold_response_types() -> None:
    if not _RESPONSE_TYPES:
        from aiogram.methods import AnswerCallbackQuery, GetUpdates, SendMessage
        from aiogram.methods.base import Response

        _RESPONSE_TYPES.extend(
            Response[method.__returning__]  # type: ignore[name-defined]
            for method in (SendMessage, GetUpdates, AnswerCallbackQuery)
        )


class TelegramChannel:
    """Owns the aiogram Bot and Dispatcher; `run()` polls or sets the webhook."""

    def __init__(self, app: Any, limits: Limits = TELEGRAM_LIMITS) -> None:
        _hold_response_types()
        cfg = app.settings.telegram
        self.app = app
        self.engine = app.engine
        self.delivery = app.delivery
        self.mode = cfg.mode
        self.webhook_url = cfg.webhook_url
        self.webhook_secret = cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else ""
        self.polling_timeout = cfg.polling_timeout
        # Each call may take `delivery.request_timeout_seconds` (getUpdates its own).
        session = AiohttpSession(
            api=TelegramAPIServer.from_base(cfg.api_base), timeout=self.delivery.request_timeout
        )
        self.bot = Bot(
            token=cfg.token.get_secret_value(),
            session=session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        self.keys = PayloadKeys(app.db)
        self._answers: set[asyncio.Task[None]] = set()
        self.sender = TelegramSender(self)
        self.delivery.register(CHANNEL, self.sender, limits, key=cfg.token.get_secret_value())

    # -- outgoing ---------------------------------------------------------------------
    async def keyboard(self, reply: Reply) -> InlineKeyboardMarkup:
        async def button(item: Button) -> InlineKeyboardButton:
            if item.payload.startswith("https://"):  # a link (into another messenger)
                return InlineKeyboardButton(text=item.label, url=item.payload)
            return InlineKeyboardButton(
                text=item.label,
                callback_data=await self.keys.shorten(item.payload, MAX_CALLBACK_DATA),
            )

        rows = [[await button(item) for item in row] for row in reply.buttons]
        return InlineKeyboardMarkup(inline_keyboard=rows)

    async def set_commands(self) -> None:
        commands = [
            BotCommand(command=name, description=self.app.texts(key))
            for name, key in self.app.router.command_menu
        ]
        try:
            await self.bot.set_my_commands(commands)
        except TelegramAPIError as exc:
            log.warning("setMyCommands failed: %s", exc)

    # -- incoming ---------------------------------------------------------------------
    async def feed(self, update: dict[str, Any]) -> None:
        """Store one raw update (webhook mode); returns once it is stored, so the HTTP
        answer tells Telegram only about an update that cannot be lost any more."""
        self.delivery.telemetry.heard(CHANNEL)
        try:
            parsed = Update.model_validate(update, context={"bot": self.bot})
        except ValidationError:
            # Telegram would send an update it cannot have sent again and again: it is
            # dropped (answered 200), said in the log by its id only.
            log.warning(
                "telegram: update %s is not a valid Update; ignored", update.get("update_id")
            )
            return
        await self.accept([parsed])

    async def accept(self, updates: list[Update]) -> None:
        """Turn a batch of updates into messages and store them in the inbox. An update
        that cannot be read is logged (its id and type, nothing the parent wrote) and
        skipped: it must not hold the updates after it back."""
        messages: list[Incoming] = []
        for update in updates:
            try:
                incoming = await self.to_incoming(update)
            except Exception as exc:
                log.warning("telegram: update %s ignored: %s", update.update_id, type(exc).__name__)
                continue
            if incoming is not None:
                messages.append(incoming)
        await self.app.inbox.accept(messages)

    async def to_incoming(self, update: Update) -> Incoming | None:
        """The message of an update, or None for what the bot does not answer (block /
        unblock changes are applied here, group chats and other update types ignored)."""
        if update.message is not None:
            return self._message(update.message, update.update_id)
        if update.callback_query is not None:
            return await self._callback(update.callback_query, update.update_id)
        if update.my_chat_member is not None:
            await self._on_membership(update.my_chat_member)
        return None

    def _message(self, message: Message, update_id: int) -> Incoming | None:
        if message.chat.type != ChatType.PRIVATE or message.from_user is None:
            return None
        text = message.text or message.caption or ""
        kind = None if message.text else str(message.content_type)
        return Incoming(
            channel=CHANNEL,
            user_id=str(message.from_user.id),
            chat_id=str(message.chat.id),
            text=text,
            update_id=str(update_id),
            message_id=str(message.message_id),
            time=message.date,
            user_name=message.from_user.full_name,
            attachment=kind,
        )

    async def _on_membership(self, change: ChatMemberUpdated) -> None:
        """A parent blocked the bot (nothing more is sent to them) or unblocked it."""
        if change.chat.type != ChatType.PRIVATE:
            return
        status = change.new_chat_member.status
        if status in ("kicked", "left", "member"):
            reachable = status == "member"
            log.info("telegram: chat %s %s the bot", change.chat.id, status)
            await self.delivery.set_reachable(CHANNEL, str(change.chat.id), reachable)

    async def _callback(self, query: CallbackQuery, update_id: int) -> Incoming | None:
        # Answered at once (the spinner on the parent's button stops), in the background.
        task = asyncio.create_task(self._answer(query))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        message = query.message
        if message is not None and message.chat.type != ChatType.PRIVATE:
            return None
        chat_id = str(message.chat.id) if message is not None else str(query.from_user.id)
        # A key this bot never issued stays as it is: the router calls it out of date.
        data = query.data or ""
        payload = await self.keys.expand(data) or data or "menu"
        return Incoming(
            channel=CHANNEL,
            user_id=str(query.from_user.id),
            chat_id=chat_id,
            payload=payload,
            update_id=str(update_id),
            user_name=query.from_user.full_name,
        )

    async def _answer(self, query: CallbackQuery) -> None:
        try:
            await self.bot.answer_callback_query(query.id)
        except TelegramAPIError as exc:
            log.info("answerCallbackQuery failed: %s", exc)

    # -- lifecycle --------------------------------------------------------------------
    async def check(self) -> None:
        """Refuse to start with a token Telegram rejects or an API that does not answer:
        getMe, before anything is served."""
        base = self.app.settings.telegram.api_base
        try:
            await self.bot.get_me(request_timeout=CHECK_TIMEOUT)
        except TelegramUnauthorizedError:
            raise ChannelError(
                "telegram.token (NAVBOT_TELEGRAM__TOKEN) was rejected by Telegram "
                "(401 Unauthorized): copy the token from @BotFather again"
            ) from None
        except TelegramNetworkError as exc:
            raise ChannelError(
                f"telegram.api_base ({base}) cannot be reached: {exc.message}"
            ) from None
        except TelegramAPIError as exc:
            raise ChannelError(f"telegram: getMe failed at start: {exc.message}") from None

    async def run(self) -> None:
        # /healthz: a poller hears from Telegram at least every polling timeout.
        silence = (
            None
            if self.mode == "webhook"
            else self.polling_timeout + self.app.settings.ops.channel_silence_seconds
        )
        self.delivery.telemetry.channel_started(CHANNEL, self.mode, silence)
        await self.set_commands()
        if self.mode == "webhook":
            await self.bot.set_webhook(
                self.webhook_url,
                secret_token=self.webhook_secret or None,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram: webhook set to %s", self.webhook_url)
            await asyncio.Event().wait()
            return
        await self.bot.delete_webhook(drop_pending_updates=False)
        log.info("telegram: long polling started")
        await self.poll()
        # Another process polls this token: this one goes on sending the outbox.
        await asyncio.Event().wait()

    async def poll(self) -> None:
        """getUpdates in a loop. A batch is confirmed to Telegram (the next call's offset)
        only after it was stored. Network and server errors, answers that are not
        Telegram's JSON and a batch that could not be stored are retried with backoff;
        a second process polling the same token (409 Conflict) makes this one stop
        polling, said in one line, while its delivery worker goes on sending."""
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self.polling_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                    # the long poll's own wait, plus what any call may take
                    request_timeout=int(self.polling_timeout + self.delivery.request_timeout),
                )
                if updates:
                    await self.accept(updates)
            except TelegramConflictError:
                message = (
                    "telegram: another process is polling this bot token (409 Conflict); "
                    "this process stops polling and only sends. Run one poller per token, "
                    "or use webhooks to serve several processes."
                )
                log.error(message)
                print(f"navbot: {message}", file=sys.stderr, flush=True)
                return
            except TelegramUnauthorizedError as exc:
                raise ChannelStopped(
                    "telegram.token was rejected by Telegram (401 Unauthorized)"
                ) from exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if isinstance(exc, TelegramRetryAfter):
                    wait = float(exc.retry_after)
                else:
                    wait = self.delivery.backoff(failures)
                reason = exc.message if isinstance(exc, TelegramAPIError) else type(exc).__name__
                log.warning("telegram: getUpdates failed (%s); again in %.1fs", reason, wait)
                await asyncio.sleep(wait)
                continue
            failures = 0
            self.delivery.telemetry.heard(CHANNEL)
            if updates:
                offset = updates[-1].update_id + 1

    async def close(self) -> None:
        await self.bot.session.close()
