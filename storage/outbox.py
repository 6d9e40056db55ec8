"""The outbox: every message to a parent is an outgoing transcript row first.

Whoever decides to say something (a dialogue step, a request status change, a
reminder, a campaign, an operator) calls `queue_replies()` inside the transaction
that holds the change which caused the message. Nothing else sends: after the
commit the delivery worker of the parent's channel (bot/delivery.py) picks the
pending rows up, sends them in order and records the outcome on each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OUT_KINDS, TranscriptEntry, User

if TYPE_CHECKING:
    from handlers.core import Reply

# session.info key set by storage.db.Database: the PostgreSQL schema of the tables.
SCHEMA_INFO = "navbot_schema"


async def queue_replies(
    session: AsyncSession,
    user: User,
    replies: Sequence[Reply],
    *,
    kind: str = "reply",
    author: str | None = None,
) -> list[TranscriptEntry]:
    """Record `replies` as pending outgoing rows of `user`'s transcript, in this session's
    transaction; sets each reply's `transcript_id`. They are sent after the commit."""
    if kind not in OUT_KINDS:
        raise ValueError(f"unknown outgoing kind {kind!r}")
    entries = [
        TranscriptEntry(
            user_id=user.id,
            direction="out",
            text=reply.text,
            buttons=reply.buttons_json(),
            status="pending",
            kind=kind,
            author=author,
        )
        for reply in replies
    ]
    if not entries:
        return entries
    session.add_all(entries)
    await session.flush()  # one batched insert; ids come back in order
    for reply, entry in zip(replies, entries, strict=True):
        reply.transcript_id = entry.id
        reply.user_id = user.id
    if session.bind.dialect.name == "postgresql":
        # Delivered at commit to every process LISTENing: another worker may send these.
        schema = str(session.info.get(SCHEMA_INFO, ""))
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": notify_channel(schema), "payload": f"{user.channel}:{user.id}"},
        )
    return entries


def notify_channel(schema: str) -> str:
    """The PostgreSQL NOTIFY channel of one database schema's outbox."""
    return f"navbot_outbox_{schema}" if schema else "navbot_outbox"
