"""Tables. Every schema change also gets an Alembic revision in storage/migrations/versions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
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
    __table_args__ = (
        UniqueConstraint("channel", "platform_user_id"),
        # --- console: the conversation list, newest activity first ---
        Index("ix_users_last_seen", "last_seen"),
        # --- statistics: new parents of a period ---
        Index("ix_users_first_seen", "first_seen", "source", "channel", "person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    municipality_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # --- guided ---
    # When the parent told the bot the child's data are confirmed in person (None: not yet).
    # Reminders to bring the documents stop once this is set.
    data_confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Deep-link parameter (/start <param>, VK ref): `source` is the first one that
    # brought the parent, `start_param` the latest one.
    source: Mapped[str | None] = mapped_column(String(64), default=None)
    start_param: Mapped[str | None] = mapped_column(String(64), default=None)
    # --- outbox ---
    # The delivery worker sending this parent's pending messages holds a lease on the
    # chat, so one chat's messages go out in order from one worker at a time.
    outbox_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    outbox_lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # Since when a member of staff has this conversation (None: the bot answers).
    with_person_since: Mapped[datetime | None] = mapped_column(default=None)
    # --- linked messengers ---
    # The users.id of the conversation that owns this parent's children, consent and
    # requests when the parent linked several messengers (None: only this one).
    person_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )


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
    """One message in or out, exactly as the parent saw it. The outgoing rows are the
    outbox: the delivery worker sends every "pending" one and records the outcome."""

    __tablename__ = "transcript"
    __table_args__ = (
        Index("ix_transcript_user_created", "user_id", "created_at"),
        # --- statistics: today's messages counted live; the purge's old rows ---
        Index("ix_transcript_created", "created_at"),
        Index(
            "ix_transcript_pending",
            "user_id",
            "id",
            sqlite_where=sql_text("status = 'pending'"),
            postgresql_where=sql_text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    text: Mapped[str] = mapped_column(Text, default="")
    buttons: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    payload: Mapped[str | None] = mapped_column(String(255), default=None)
    platform_message_id: Mapped[str | None] = mapped_column(String(64), default=None)
    platform_update_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Outgoing only: "pending" until delivery reports "sent", "failed" (with the error)
    # or "expired" (a dialogue reply that waited too long to make sense any more).
    status: Mapped[str | None] = mapped_column(String(16), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Outgoing only: what sent it, one of OUT_KINDS.
    kind: Mapped[str | None] = mapped_column(String(16), default=None)
    # Who wrote it when not the bot: "staff:<login>" for an operator's reply.
    author: Mapped[str | None] = mapped_column(String(64), default=None)


# reply: an answer to the parent's message; notice: a request status change and the like;
# reminder, campaign: scheduled messages; operator: written by a member of staff.
OUT_KINDS = ("reply", "notice", "reminder", "campaign", "operator")


class InboxEntry(Base):
    """An update received from a messenger and not yet handled. It is stored before the
    platform is told it arrived, and deleted in the transaction that handles it, so an
    update is never lost between "received" and "handled"."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(64))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    # The channel-neutral message (handlers.core.Incoming as JSON).
    incoming: Mapped[dict[str, Any]] = mapped_column()
    # The process handling it and until when; an expired lease is taken over.
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelCursor(Base):
    """Where a channel's long poll goes on after a restart (VK ts, MAX marker)."""

    __tablename__ = "channel_cursors"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedUpdate(Base):
    """A platform update id already handled, so a re-delivered update is ignored."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- faq ---
# What a parent did after a question the bot did not answer well (faq_unanswered.next_step):
# a person of the hotline was asked for (a handoff opened), they wrote on, or they left.
NEXT_STEPS = ("person", "went_on", "left")
# How staff marked a group of such questions (faq_unanswered.resolution).
RESOLUTIONS = ("added", "not_for_bot")


class FaqUnanswered(Base):
    """A free-text question the bot did not answer well from the knowledge base, for the
    staff's upkeep page: outcome "unknown" (no entry fitted), "handoff" (a topic for a
    person), "suggest" (a list of guesses) or "answer" with a low score."""

    __tablename__ = "faq_unanswered"
    __table_args__ = (
        Index("ix_faq_unanswered_created", "created_at"),
        Index("ix_faq_unanswered_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    question: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    best_entry_id: Mapped[str | None] = mapped_column(String(64), default=None)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The question's search terms as the matcher reads them (lemmas, typos corrected,
    # stopwords dropped), sorted: questions are grouped by these (handlers/faq/upkeep.py).
    terms: Mapped[str | None] = mapped_column(Text, default=None)
    # The transcript row of the question: what the parent wrote next comes after it.
    message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # One of NEXT_STEPS, kept once it can no longer change (see handlers/faq/upkeep.py).
    next_step: Mapped[str | None] = mapped_column(String(16), default=None)
    # One of RESOLUTIONS once staff marked the question's group; who and when.
    resolution: Mapped[str | None] = mapped_column(String(16), default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(64), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


# --- catalogue and enrollment requests ---

# The six official направленности of additional general-education programs.
DIRECTIONS = ("technical", "science", "sports", "arts", "tourism", "social")
# free: no payment; certificate: by the «учёт» certificate; pf: paid from the nominal (ПФ).
FUNDINGS = ("free", "certificate", "pf")
# new -> accepted / rejected / enrolled / cancelled; accepted -> enrolled / rejected / cancelled.
REQUEST_STATUSES = ("new", "accepted", "rejected", "enrolled", "cancelled")
OPEN_STATUSES = ("new", "accepted")


class Program(Base):
    """One program of the catalogue, keyed by its id in the Navigator."""

    __tablename__ = "programs"
    __table_args__ = (
        Index("ix_programs_search", "municipality_id", "direction", "funding"),
        Index("ix_programs_organisation", "organisation"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    navigator_id: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    organisation: Mapped[str] = mapped_column(String(255))
    municipality_id: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(255), default="")
    direction: Mapped[str] = mapped_column(String(16))
    age_from: Mapped[int] = mapped_column(Integer)
    age_to: Mapped[int] = mapped_column(Integer)
    funding: Mapped[str] = mapped_column(String(16))
    price: Mapped[int | None] = mapped_column(Integer, default=None)  # roubles, ПФ only
    schedule: Mapped[str] = mapped_column(String(255), default="")
    places_left: Mapped[int | None] = mapped_column(Integer, default=None)
    url: Mapped[str] = mapped_column(String(500))
    sample: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lower-cased title, organisation and address with ё -> е, for keyword search.
    search_text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """A parent's consent to personal-data processing (152-ФЗ): which text, when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    region: Mapped[str] = mapped_column(String(32))
    text_version: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)


class Child(Base):
    """A child of a parent (user), stored only after the parent's consent."""

    __tablename__ = "children"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    full_name: Mapped[str] = mapped_column(String(255))
    birth_date: Mapped[date] = mapped_column(Date)
    certificate_number: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EnrollmentRequest(Base):
    """A parent's request (заявка) to enroll a child in a program."""

    __tablename__ = "enrollment_requests"
    __table_args__ = (
        # One open request per child and program, enforced by the database.
        Index(
            "uq_enrollment_requests_open",
            "child_id",
            "program_id",
            unique=True,
            sqlite_where=sql_text("status IN ('new', 'accepted')"),
            postgresql_where=sql_text("status IN ('new', 'accepted')"),
        ),
        Index("ix_enrollment_requests_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"))
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"))
    phone: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    reason: Mapped[str] = mapped_column(String(1000), default="")
    # The token of the confirmation screen: a second tap on «Отправить» finds this row.
    submit_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """What happened to requests and personal data, with no personal data in it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(16))  # "parent" | "staff" | "system"
    request_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # --- console ---
    # The member of staff who did it (their login), and the parent it concerns.
    staff_login: Mapped[str | None] = mapped_column(String(64), default=None)
    user_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


# --- channels ---


class ButtonPayload(Base):
    """A button payload too long for a platform's button data (Telegram: 64 bytes),
    kept under a short key derived from its hash, so it survives restarts and works
    across workers."""

    __tablename__ = "button_payloads"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- console ---

STAFF_ROLES = ("operator", "admin")


class StaffUser(Base):
    """A member of hotline staff who signs in to the web console."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # one of STAFF_ROLES
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random token, this row its SHA-256."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    # Parents (users.id) whose personal data this session has chosen to see unmasked.
    unmasked: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class SignInAttempt(Base):
    """A failed sign-in, for limiting attempts per account and per address."""

    __tablename__ = "staff_sign_in_attempts"
    __table_args__ = (
        Index("ix_staff_sign_in_attempts_login", "login", "created_at"),
        Index("ix_staff_sign_in_attempts_address", "address", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- reminders and campaigns ---

# planned: waiting for its time; sent: moved to the outbox (the transcript row tells whether
# it reached the parent); superseded: an older reminder still due when a newer one went out
# (after downtime only the newest is sent); confirmed / opted_out: stopped by the parent;
# failed: could not be composed or delivered.
REMINDER_STATES = ("planned", "sent", "superseded", "confirmed", "opted_out", "failed")
# confirm_data: bring the documents to confirm the child's data in person.
REMINDER_KINDS = ("confirm_data",)


class Reminder(Base):
    """One scheduled reminder to one parent. The ticker moves a due one to the outbox and
    marks it sent in one transaction; APScheduler never holds a job per parent."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index(
            "ix_reminders_due",
            "due_at",
            sqlite_where=sql_text("state = 'planned'"),
            postgresql_where=sql_text("state = 'planned'"),
        ),
        Index("ix_reminders_user_state", "user_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="confirm_data")
    # Which reminder of the series it is: 1, 2, 3 ... (a snoozed one keeps its number).
    seq: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="planned")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    # The outgoing transcript row (outbox) it became.
    transcript_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class Campaign(Base):
    """One announcement sent by staff to an audience chosen by filters. The audience is
    fixed as delivery rows when the campaign is confirmed, so a resumed run sends only
    to those who have not had it."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The `id` of the campaign's text file: running the same file again resumes it.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # sending -> done
    state: Mapped[str] = mapped_column(String(16), default="sending")
    audience: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class CampaignDelivery(Base):
    """A campaign for one parent: planned until moved to the outbox (then sent), skipped
    when the parent cannot be reached. One row per parent and campaign, by constraint."""

    __tablename__ = "campaign_deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        Index("ix_campaign_deliveries_state", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # planned | sent | unreachable | failed
    state: Mapped[str] = mapped_column(String(16), default="planned")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    transcript_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class LinkCode(Base):
    """A one-time code carried by a deep link into another messenger: it continues the
    parent's step there and links the two conversations. Only its SHA-256 is kept."""

    __tablename__ = "link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(16))  # the channel it is to be opened in
    # What the parent had chosen and where to go on: {"municipality", "program", "then"}.
    carry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


# --- handoff to a person ---

# waiting: in the operators' queue; taken: an operator has it; closed: the operator finished
# or the parent's silence ended it (the bot answers again).
HANDOFF_STATES = ("waiting", "taken", "closed")
# asked: «Позвать специалиста» or /operator; faq_unknown: the parent accepted the offer after
# the FAQ did not know; faq_person: a question the FAQ sends to a person (complaint, wrong
# data in the registry, a demand to investigate).
HANDOFF_REASONS = ("asked", "faq_unknown", "faq_person")


class Handoff(Base):
    """A conversation handed to hotline staff. At most one is open (waiting or taken) per
    parent, by a partial unique index; taking it is one conditional UPDATE, so two
    operators cannot take the same one."""

    __tablename__ = "handoffs"
    __table_args__ = (
        Index("ix_handoffs_state_created", "state", "created_at"),
        # The upkeep page: did a handoff open for this parent soon after a question.
        Index("ix_handoffs_user_created", "user_id", "created_at"),
        Index(
            "uq_handoffs_open_user",
            "user_id",
            unique=True,
            sqlite_where=sql_text("state != 'closed'"),
            postgresql_where=sql_text("state != 'closed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(16))  # one of HANDOFF_REASONS
    # The parent's question that led here, if any (personal data: erased with the parent).
    question: Mapped[str | None] = mapped_column(Text, default=None)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Since when it waits in the queue (reset when a taken one is returned to the queue).
    waiting_since: Mapped[datetime] = mapped_column(default=utcnow)
    taken_by: Mapped[str | None] = mapped_column(String(64), default=None)  # staff login
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    first_reply_at: Mapped[datetime | None] = mapped_column(default=None)
    last_operator_reply_at: Mapped[datetime | None] = mapped_column(default=None)
    last_parent_message_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # operator | silence | parent (/menu after the operator closed is not needed) | erased
    closed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    returned: Mapped[int] = mapped_column(Integer, default=0)


# --- statistics ---


class Event(Base):
    """One thing that happened, for the statistics page: a walkthrough step, a FAQ
    outcome, a reminder outcome, a handoff. No personal data: `detail` is a step name, an
    entry id or a source code; `user_id` is set to NULL when the parent is erased, so the
    counts stay."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_created", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatsDaily(Base):
    """Anonymous daily counts kept when old transcript rows are purged by the retention
    rule, so the statistics of those days stay: (day, channel, metric) -> value."""

    __tablename__ = "stats_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class StatsRollup(Base):
    """How far the ticker has rolled the daily counts up into stats_daily: every day up to
    and including `through` (the region's calendar) is there; later days are counted live
    from the transcript and the events."""

    __tablename__ = "stats_rollup"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    through: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
