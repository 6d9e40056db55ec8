"""The outbox: every message to a parent is an outgoing transcript row first.

Whoever decides to say something (a dialogue step, a request status change, a
reminder, a campaign, an operator) calls `queue_replies()` inside the transaction
that holds the change which caused the message. Nothing else sends: after the
commit the delivery worker of the parent's channel (bot/delivery.py) picks the
pending rows up, sends them in order and records the outcome on each row.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.linking import linked_ids
from storage.models import (
    OUT_KINDS,
    Child,
    ConversationState,
    EnrollmentRequest,
    TranscriptEntry,
    User,
)

if TYPE_CHECKING:
    from handlers.core import Reply

# session.info key set by storage.db.Database: the PostgreSQL schema of the tables.
SCHEMA_INFO = "navbot_schema"
# session.info key set by bot/app.py: the PersonalDataGuard of the running bot.
GUARD_INFO = "navbot_pd_guard"
# A СНИЛС as people write it (123-456-789 01) or as its 11 digits.
_SNILS = re.compile(r"\b\d{3}[- ]?\d{3}[- ]?\d{3}[- ]\d{2}\b")


@dataclass(frozen=True)
class PersonalDataGuard:
    """No personal data into a channel outside `allowed`: a reply that declares it carries
    some (`Reply.personal`), or that contains what the bot knows of the parent (a child's
    name, date of birth or certificate number, a phone given in a request) or a СНИЛС, is
    replaced with `notice` (a short text and link buttons into an allowed messenger)."""

    allowed: frozenset[str]
    messengers: frozenset[str]  # the channels it applies to (not the local terminal)
    notice: Callable[[AsyncSession, User], Awaitable[tuple[str, list[list[Any]]]]]

    async def screen(self, session: AsyncSession, user: User, replies: Sequence[Reply]) -> None:
        if user.channel in self.allowed or user.channel not in self.messengers:
            return
        known: list[str] | None = None
        for reply in replies:
            if not reply.personal:
                if known is None:
                    known = await known_personal_data(session, user)
                labels = " ".join(b.label for b in reply.all_buttons())
                shown = f"{reply.text}\n{labels}"
                if not _SNILS.search(shown) and not any(item in shown for item in known):
                    continue
            reply.text, reply.buttons = await self.notice(session, user)
            reply.personal = False
            reply.asks_phone = False


async def known_personal_data(session: AsyncSession, user: User) -> list[str]:
    """What the bot holds about the parent (and the conversations linked with theirs)
    that must never reach a channel outside the list."""
    ids = linked_ids(user.id)
    found: set[str] = set()
    for name, born, cert in await session.execute(
        select(Child.full_name, Child.birth_date, Child.certificate_number).where(
            Child.user_id.in_(ids)
        )
    ):
        found.add(name)
        found.add(born.strftime("%d.%m.%Y"))
        if cert:
            found.add(cert)
    found.update(
        phone
        for phone in await session.scalars(
            select(EnrollmentRequest.phone).where(EnrollmentRequest.user_id.in_(ids))
        )
        if phone
    )
    for data in await session.scalars(
        select(ConversationState.data).where(ConversationState.user_id.in_(ids))
    ):
        data = data or {}
        draft = data.get("child_draft") or {}
        found.update(str(v) for v in (data.get("req_phone"), draft.get("name")) if v)
    return [item for item in found if len(item) >= 4]


async def queue_replies(
    session: AsyncSession,
    user: User,
    replies: Sequence[Reply],
    *,
    kind: str = "reply",
    author: str | None = None,
) -> list[TranscriptEntry]:
    """Record `replies` as pending outgoing rows of `user`'s transcript, in this session's
    transaction; sets each reply's `transcript_id`. They are sent after the commit.

    To a channel where personal data are not collected, a reply carrying any is
    replaced first (PersonalDataGuard), so no sender can put one there."""
    return await queue_many(session, [(user, replies)], kind=kind, author=author)


async def queue_many(
    session: AsyncSession,
    batch: Sequence[tuple[User, Sequence[Reply]]],
    *,
    kind: str = "reply",
    author: str | None = None,
) -> list[TranscriptEntry]:
    """`queue_replies` for several parents at once (reminders, campaigns): one insert."""
    if kind not in OUT_KINDS:
        raise ValueError(f"unknown outgoing kind {kind!r}")
    guard = session.info.get(GUARD_INFO)
    entries: list[TranscriptEntry] = []
    pairs: list[tuple[User, Reply]] = []
    for user, replies in batch:
        if guard is not None and replies:
            await guard.screen(session, user, replies)
        for reply in replies:
            entries.append(
                TranscriptEntry(
                    user_id=user.id,
                    direction="out",
                    text=reply.text,
                    buttons=reply.buttons_json(),
                    status="pending",
                    kind=kind,
                    author=author,
                )
            )
            pairs.append((user, reply))
    if not entries:
        return entries
    session.add_all(entries)
    await session.flush()  # one batched insert; ids come back in order
    for (user, reply), entry in zip(pairs, entries, strict=True):
        reply.transcript_id = entry.id
        reply.user_id = user.id
    if session.bind.dialect.name == "postgresql":
        # Delivered at commit to every process LISTENing: another worker may send these.
        schema = str(session.info.get(SCHEMA_INFO, ""))
        for user in {user.id: user for user, replies in batch if replies}.values():
            await session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": notify_channel(schema), "payload": f"{user.channel}:{user.id}"},
            )
    return entries


def notify_channel(schema: str) -> str:
    """The PostgreSQL NOTIFY channel of one database schema's outbox."""
    return f"navbot_outbox_{schema}" if schema else "navbot_outbox"
