"""Tables. Every schema change also gets an Alembic revision in storage/migrations/versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (so it stays an auto-incrementing rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class User(Base):
    """A parent as seen by one messenger: (channel, platform user id) is unique."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "platform_user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    municipality_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Deep-link parameter (/start <param>, VK ref): `source` is the first one that
    # brought the parent, `start_param` the latest one.
    source: Mapped[str | None] = mapped_column(String(64), default=None)
    start_param: Mapped[str | None] = mapped_column(String(64), default=None)


class ConversationState(Base):
    """Where a user is in a dialogue: the step and the fields collected so far (JSON)."""

    __tablename__ = "conversation_states"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str | None] = mapped_column(String(128), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [[label, payload], ...] of the buttons last shown, so typing a label presses it.
    last_buttons: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranscriptEntry(Base):
    """One message in or out, exactly as the parent saw it."""

    __tablename__ = "transcript"
    __table_args__ = (Index("ix_transcript_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    text: Mapped[str] = mapped_column(Text, default="")
    buttons: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    payload: Mapped[str | None] = mapped_column(String(255), default=None)
    platform_message_id: Mapped[str | None] = mapped_column(String(64), default=None)
    platform_update_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Outgoing only: "pending" until delivery reports "sent" or "failed" (with the error).
    status: Mapped[str | None] = mapped_column(String(16), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class ProcessedUpdate(Base):
    """A platform update id already handled, so a re-delivered update is ignored."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- channels ---


class ButtonPayload(Base):
    """A button payload too long for a platform's button data (Telegram: 64 bytes),
    kept under a short key derived from its hash, so it survives restarts and works
    across workers."""

    __tablename__ = "button_payloads"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
