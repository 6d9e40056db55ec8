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

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OUT_KINDS, TranscriptEntry, User

if TYPE_CHECKING:
    from handlers.core import Reply

# session.info key: the channels that got new rows in this transaction, for wake-up.
_WAKE = "navbot_outbox_wake"


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
    channels: set[str] = session.info.setdefault(_WAKE, set())
    channels.add(user.channel)
    return entries


def channels_to_wake(session: AsyncSession) -> set[str]:
    """The channels that got outgoing rows in this session (read after the commit)."""
    return set(session.info.get(_WAKE, ()))


def on_commit(session: AsyncSession, callback) -> None:  # type: ignore[no-untyped-def]
    """Call `callback(channels)` after this session's transaction commits, with the
    channels that got new outgoing rows in it (nothing on rollback)."""

    def after_commit(sync_session) -> None:  # type: ignore[no-untyped-def]
        channels = sync_session.info.pop(_WAKE, None)
        if channels:
            callback(set(channels))

    def after_rollback(sync_session) -> None:  # type: ignore[no-untyped-def]
        sync_session.info.pop(_WAKE, None)

    event.listen(session.sync_session, "after_commit", after_commit, once=True)
    event.listen(session.sync_session, "after_soft_rollback", after_rollback, once=True)
