"""One parent in several messengers, and the one-time codes that carry a parent from one
messenger into another.

A conversation (a `User`) linked to others points at one owner conversation through
`person_id`; the owner's own `person_id` stays empty. Children, consent and requests
belong to any conversation of the set and are read by the set (`linked_ids`).

A code is random (`secrets`, 144 bits), kept only as its SHA-256, used once and valid
for a configured time.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LinkCode, User, utcnow

CODE_PREFIX = "ln_"
_CODE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def looks_like_code(text: str) -> bool:
    return text.startswith(CODE_PREFIX) and set(text) <= _CODE_CHARS and len(text) <= 64


def root_of(user_id: int):
    """The owner conversation's id of `user_id`'s set, as a SQL expression."""
    return (
        select(func.coalesce(User.person_id, User.id)).where(User.id == user_id).scalar_subquery()
    )


def linked_ids(user_id: int):
    """A select of the ids of every conversation linked with `user_id` (itself included)."""
    root = root_of(user_id)
    return select(User.id).where(or_(User.id == root, User.person_id == root))


async def linked_users(session: AsyncSession, user_id: int) -> list[User]:
    return list(
        await session.scalars(
            select(User).where(User.id.in_(linked_ids(user_id))).order_by(User.id)
        )
    )


async def issue_code(session: AsyncSession, user: User, carry: dict[str, Any], minutes: int) -> str:
    """A new one-time code for `user`; only its hash is stored."""
    code = CODE_PREFIX + secrets.token_urlsafe(18)
    now = utcnow()
    session.add(
        LinkCode(
            code_hash=_hash(code),
            user_id=user.id,
            target="",
            carry=carry,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    await session.flush()
    return code


@dataclass(frozen=True)
class Redeemed:
    problem: str  # "" when the code was good, else "unknown", "used", "expired", "same"
    carry: dict[str, Any]
    origin: User | None = None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def redeem(session: AsyncSession, code: str, user: User) -> Redeemed:
    """Use `code` in `user`'s conversation: link it with the code's owner and return what
    was carried. A code unknown, used or expired links nothing."""
    entry = await session.get(LinkCode, _hash(code), with_for_update=True)
    if entry is None:
        return Redeemed("unknown", {})
    if entry.used_at is not None:
        return Redeemed("used", {})
    if _aware(entry.expires_at) <= utcnow():
        return Redeemed("expired", {})
    origin = await session.get(User, entry.user_id)
    if origin is None:
        return Redeemed("unknown", {})
    if origin.channel == user.channel:
        return Redeemed("same", {})
    # Single use, even if two messengers open it at once: the row is updated only once.
    done = await session.execute(
        update(LinkCode)
        .where(LinkCode.code_hash == entry.code_hash, LinkCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if done.rowcount != 1:
        return Redeemed("used", {})
    await link(session, origin, user)
    return Redeemed("", dict(entry.carry or {}), origin)


async def link(session: AsyncSession, origin: User, other: User) -> None:
    """Join `other`'s set into `origin`'s: every conversation of both points at one owner."""
    owner = origin.person_id or origin.id
    other_root = other.person_id or other.id
    if other_root == owner:
        return
    await session.execute(
        update(User)
        .where(or_(User.id == other_root, User.person_id == other_root))
        .values(person_id=owner)
    )
    await session.execute(update(User).where(User.id == owner).values(person_id=None))
    await session.refresh(other)
    await session.refresh(origin)


async def unlink_all(session: AsyncSession, user_id: int) -> None:
    """Undo the links of `user_id`'s set (after its data were erased)."""
    ids = [row for row in await session.scalars(linked_ids(user_id))]
    await session.execute(update(User).where(User.id.in_(ids)).values(person_id=None))
