"""The dialogue engine: one incoming message in, the replies out, everything recorded.

For each message, in one database transaction: skip it if its platform update id
was already handled; find or create the user; load their conversation state
(row-locked on PostgreSQL so two workers never interleave one user); write the
incoming message to the transcript; dispatch; write every reply to the transcript;
save the state. A crash before the commit leaves no trace, so the platform's
re-delivery is handled as new; a re-delivery after the commit is ignored.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import re
import traceback
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import understanding
from handlers.core import Button, Context, Incoming, Reply, Router, State
from storage.db import Database
from storage.models import (
    ConversationState,
    InboxEntry,
    ProcessedUpdate,
    TranscriptEntry,
    User,
    utcnow,
)
from storage.outbox import queue_replies
from texts import Texts

log = logging.getLogger(__name__)

# Where the project's own code is, for the short traceback of a failed handler.
_OWN_CODE = re.compile(r"(?:bot|handlers|storage|texts)/[\w/]+\.py$")

# A check before routing: True when it dealt with the message.
Hook = Callable[[Incoming, Context], Awaitable[bool]]

# Channels whose update ids grow with each update (Telegram): their stored updates are
# handled in update-id order; the others in the order they were stored.
ORDERED_UPDATE_IDS = frozenset({"telegram"})


def _int32(value: str) -> int:
    """A stable signed 32-bit number for `value` (advisory lock keys)."""
    digest = hashlib.blake2b(value.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def parent_lock_key(channel: str, platform_user_id: str) -> int:
    """The second key of a parent's advisory lock (two parents sharing one only wait)."""
    return _int32(f"{channel}:{platform_user_id}")


def inbox_order(channel: str, row_id: int, update_id: str) -> tuple[int, int]:
    """Sort key of a parent's stored updates: the oldest first."""
    if channel in ORDERED_UPDATE_IDS and update_id.isdigit():
        return (int(update_id), row_id)
    return (0, row_id)


@dataclass
class Turn:
    """What `DialogueEngine.handle_next` did: handled one stored update (`row_id`, its
    message and replies), found none left, or found the parent busy elsewhere."""

    row_id: int | None = None
    incoming: Incoming | None = None
    replies: list[Reply] = field(default_factory=list)
    busy: bool = False


class DialogueEngine:
    def __init__(
        self,
        db: Database,
        router: Router,
        texts: Texts,
        menu: Any,
        services: Any = None,
    ) -> None:
        self.db = db
        self.router = router
        self.texts = texts
        self.menu = menu
        self.services = services if services is not None else SimpleNamespace()
        # Checks run before routing, in order; one that returns True has dealt with the
        # message (answered it, or decided it gets no answer) and routing is skipped.
        self.hooks: list[Hook] = []
        self._menu_label_cache: dict[str, str] | None = None
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _lock(self, incoming: Incoming) -> asyncio.Lock:
        key = (incoming.channel, incoming.user_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def handle(self, incoming: Incoming, *, inbox_id: int | None = None) -> list[Reply]:
        """Handle one message; the replies it queued in the outbox (already committed).

        A handler that raises does not take the conversation down: the message's
        changes are rolled back, the error is logged with a reference id (and no
        personal data), and the parent gets a short apology with the way to the menu.
        """
        incoming = incoming.cleaned()  # nothing unstorable reaches the database
        async with self._lock(incoming):
            try:
                async with self.db.session() as session:
                    return await self._handle(session, incoming, inbox_id)
            except Exception as exc:
                return await self._after_error(incoming, inbox_id, exc)

    async def _after_error(
        self, incoming: Incoming, inbox_id: int | None, exc: Exception
    ) -> list[Reply]:
        """A handling transaction failed and was rolled back: a re-delivered update is
        dropped, a handler's error answered with an apology; the database being away is
        raised (nothing to answer with)."""
        if isinstance(exc, IntegrityError):
            if incoming.update_id is not None and await self.already_handled(incoming):
                log.info("duplicate update %s/%s ignored", incoming.channel, incoming.update_id)
                await self._drop_inbox(inbox_id)
                return []
            return await self._failed(incoming, inbox_id, exc)
        if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
            # the database is away or every connection busy: nothing to answer with now;
            # the inbox keeps the message and tries it again
            raise exc
        return await self._failed(incoming, inbox_id, exc)

    async def handle_next(self, channel: str, platform_user_id: str) -> Turn:
        """Several processes on PostgreSQL: handle the parent's oldest stored update,
        whichever process stored it, under the parent's advisory lock.

        The lock (pg_try_advisory_xact_lock, held until this transaction ends) makes one
        process at a time handle one parent; the oldest row (Telegram's update_id, else
        the order stored) keeps their messages in order even when consecutive updates
        reached different web workers. `Turn.busy`: another process holds the parent
        now and handles its rows; `Turn.done`: nothing is left to handle."""
        key = (channel, platform_user_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        picked: list[tuple[int, Incoming]] = []
        async with lock:
            try:
                async with self.db.session() as session:
                    taken = await session.scalar(
                        text("SELECT pg_try_advisory_xact_lock(:space, :parent)"),
                        {"space": self._lock_space(), "parent": parent_lock_key(*key)},
                    )
                    if not taken:
                        return Turn(busy=True)
                    rows = (
                        await session.execute(
                            select(InboxEntry.id, InboxEntry.update_id, InboxEntry.incoming).where(
                                InboxEntry.channel == channel,
                                InboxEntry.platform_user_id == platform_user_id,
                            )
                        )
                    ).all()
                    if not rows:
                        return Turn()
                    row_id, _, data = min(rows, key=lambda row: inbox_order(channel, *row[:2]))
                    picked.append((row_id, Incoming.from_json(data).cleaned()))
                    replies = await self._handle(session, picked[0][1], row_id)
                return Turn(row_id=row_id, incoming=picked[0][1], replies=replies)
            except Exception as exc:
                if not picked:
                    raise
                row_id, incoming = picked[0]
                replies = await self._after_error(incoming, row_id, exc)
                return Turn(row_id=row_id, incoming=incoming, replies=replies)

    def _lock_space(self) -> int:
        """The first key of the parents' advisory locks: one per database schema."""
        return _int32(f"navbot-inbox:{self.db.schema or ''}")

    async def _failed(
        self, incoming: Incoming, inbox_id: int | None, exc: BaseException
    ) -> list[Reply]:
        ref = uuid.uuid4().hex[:8]
        # The type and the code location only: an exception's message may quote what the
        # parent typed.
        ours = [f for f in traceback.extract_tb(exc.__traceback__) if _OWN_CODE.search(f.filename)]
        frames = " <- ".join(f"{_OWN_CODE.search(f.filename)[0]}:{f.lineno}" for f in ours[::-1])
        log.error(
            "handling %s update %s failed (ref %s): %s at %s",
            incoming.channel,
            incoming.update_id,
            ref,
            type(exc).__name__,
            frames,
            extra={"ref": ref, "update": f"{incoming.channel}:{incoming.update_id}"},
        )
        async with self.db.session() as session:
            if incoming.update_id is not None:
                session.add(
                    ProcessedUpdate(channel=incoming.channel, update_id=str(incoming.update_id))
                )
            user = await self._user(session, incoming)
            session.add(self._incoming_entry(user, incoming, incoming.payload))
            await self._drop(session, inbox_id)
            reply = Reply(
                self.texts("errors.handler_failed", ref=ref),
                [[Button(self.texts("common.to_menu"), "menu")]],
            )
            await queue_replies(session, user, [reply], kind="reply")
            state_row = await self._state(session, user)
            state_row.last_buttons = [b.stored() for b in reply.all_buttons()]
        return [reply]

    async def _drop_inbox(self, inbox_id: int | None) -> None:
        if inbox_id is None:
            return
        async with self.db.session() as session:
            await self._drop(session, inbox_id)

    @staticmethod
    async def _drop(session: AsyncSession, inbox_id: int | None) -> None:
        if inbox_id is not None:
            await session.execute(
                delete(InboxEntry)
                .where(InboxEntry.id == inbox_id)
                .execution_options(synchronize_session=False)
            )

    async def already_handled(self, incoming: Incoming) -> bool:
        async with self.db.session() as session:
            row = await session.get(ProcessedUpdate, (incoming.channel, str(incoming.update_id)))
            return row is not None

    async def _handle(
        self, session: AsyncSession, incoming: Incoming, inbox_id: int | None = None
    ) -> list[Reply]:
        await self._drop(session, inbox_id)
        if incoming.update_id is not None:
            # The primary key decides: a re-delivered update fails this insert, and
            # handle() then returns no replies.
            session.add(
                ProcessedUpdate(channel=incoming.channel, update_id=str(incoming.update_id))
            )
            await session.flush()

        user = await self._user(session, incoming)
        state_row = await self._state(session, user)
        # A deep copy: nested dicts changed in place must differ from the loaded value,
        # or the JSON column would compare equal and not be saved.
        state = State(step=state_row.step, data=copy.deepcopy(state_row.data or {}))

        # Words typed to a person of the hotline are words, not a button's label («да»,
        # «Мои заявки» are said to the person); only a message that is a menu word as a
        # whole («меню», «в меню») asks for the menu, as /menu does.
        if user.with_person_since is not None:
            role, whole = understanding.phrase_role(incoming.text)
            payload = incoming.payload or ("menu" if role == "menu" and whole else None)
        else:
            payload = incoming.payload or self._payload_for_label(state_row, incoming.text)
        session.add(self._incoming_entry(user, incoming, payload))
        if payload and payload != incoming.payload:
            incoming = Incoming(**{**incoming.__dict__, "payload": payload})

        ctx = Context(incoming, user, state, self.texts, session, self.services, self.menu)
        for hook in self.hooks:
            if await hook(incoming, ctx):
                break
        else:
            if not await self.router.dispatch(incoming, ctx):
                ctx.say("menu.not_understood")
                ctx.show_menu()

        await queue_replies(session, user, ctx.replies, kind="reply")

        shown = [b for reply in ctx.replies for b in reply.all_buttons()]
        state_row.step = state.step
        state_row.data = state.checked_data()
        if ctx.replies:
            state_row.last_buttons = [b.stored() for b in shown]
        state_row.updated_at = utcnow()
        return ctx.replies

    @staticmethod
    def _incoming_entry(user: User, incoming: Incoming, payload: str | None) -> TranscriptEntry:
        return TranscriptEntry(
            user_id=user.id,
            direction="in",
            text=incoming.text or (f"[{incoming.attachment}]" if incoming.attachment else ""),
            payload=payload[:255] if payload else None,
            platform_message_id=incoming.message_id,
            platform_update_id=None if incoming.update_id is None else str(incoming.update_id),
            created_at=incoming.time,
        )

    async def last_buttons(self, channel: str, platform_user_id: str) -> list[tuple[str, str]]:
        """The buttons the user was last shown, as (label, payload)."""
        async with self.db.session() as session:
            user = await self.get_user(session, channel, platform_user_id)
            if user is None:
                return []
            row = await session.get(ConversationState, user.id)
            return [(item[0], item[1]) for item in (row.last_buttons or [])] if row else []

    def _payload_for_label(self, state_row: ConversationState, text: str) -> str | None:
        """What the parent means by typing instead of pressing (handlers/understanding.py):
        one of the buttons last shown (by label, start, typo, digit, yes/no word), a main-menu
        item («Мои заявки» typed on any screen opens it), a control or topic word, or a
        question asked in the middle of a step."""
        if not text:
            return None
        return understanding.resolve(
            text,
            step=state_row.step,
            shown=[understanding.Shown.from_stored(item) for item in state_row.last_buttons or []],
            menu=self._menu_labels(),
            free_step=self.router.is_free_step(state_row.step),
            handles=self.router.handles,
        )

    def _menu_labels(self) -> dict[str, str]:
        if self._menu_label_cache is None:
            labels = {
                understanding.normalise(self.texts(item.label_key)): item.payload
                for item in self.router.menu_items
            }
            labels.setdefault(understanding.normalise(self.texts("common.to_menu")), "menu")
            self._menu_label_cache = labels
        return self._menu_label_cache

    async def _user(self, session: AsyncSession, incoming: Incoming) -> User:
        user = await self.get_user(session, incoming.channel, incoming.user_id)
        now = utcnow()
        if user is None:
            user = User(
                channel=incoming.channel,
                platform_user_id=incoming.user_id,
                chat_id=incoming.chat_id,
                name=incoming.user_name[:255],
                first_seen=now,
                last_seen=now,
                reachable=True,
            )
            session.add(user)
            await session.flush()
        else:
            user.last_seen = now
            user.chat_id = incoming.chat_id
            # A parent who writes again has unblocked the bot.
            user.reachable = True
            if incoming.user_name:
                user.name = incoming.user_name[:255]
        return user

    @staticmethod
    async def get_user(session: AsyncSession, channel: str, platform_user_id: str) -> User | None:
        return await session.scalar(
            select(User).where(User.channel == channel, User.platform_user_id == platform_user_id)
        )

    @staticmethod
    async def _state(session: AsyncSession, user: User) -> ConversationState:
        row = await session.scalar(
            select(ConversationState).where(ConversationState.user_id == user.id).with_for_update()
        )
        if row is None:
            row = ConversationState(user_id=user.id, step=None, data={}, updated_at=utcnow())
            session.add(row)
            await session.flush()
        return row
