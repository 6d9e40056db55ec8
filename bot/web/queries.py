"""What the console's pages read: the conversation list, one conversation, the requests
table and the audit log, through the same models as the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from storage import search
from storage.models import (
    AuditEntry,
    Child,
    Consent,
    ConversationState,
    EnrollmentRequest,
    FaqUnanswered,
    Program,
    TranscriptEntry,
    User,
    utcnow,
)

PAGE = 50
TRANSCRIPT_PAGE = 200
CHANNELS = ("telegram", "vk", "max", "console")
# Stored FAQ questions the bot gave no answer to (the others got guesses or a weak answer).
NOT_ANSWERED = ("unknown", "handoff")


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def page_number(value: str | None) -> int:
    return max(int(value), 1) if value and value.isdigit() and len(value) < 7 else 1


@dataclass
class ConversationFilters:
    q: str = ""
    channel: str = ""
    municipality: str = ""
    date_from: date | None = None
    date_to: date | None = None
    unanswered: bool = False
    requests: bool = False
    stuck: bool = False
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> ConversationFilters:
        channel = query.get("channel", "")
        return cls(
            q=query.get("q", "").strip()[:200],
            channel=channel if channel in CHANNELS else "",
            municipality=query.get("municipality", "")[:64],
            date_from=parse_day(query.get("from")),
            date_to=parse_day(query.get("to")),
            unanswered=query.get("unanswered") == "1",
            requests=query.get("requests") == "1",
            stuck=query.get("stuck") == "1",
            page=page_number(query.get("page")),
        )

    def query_string(self, **override: Any) -> dict[str, str]:
        values = {
            "q": self.q,
            "channel": self.channel,
            "municipality": self.municipality,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "unanswered": "1" if self.unanswered else "",
            "requests": "1" if self.requests else "",
            "stuck": "1" if self.stuck else "",
            "page": str(self.page),
        }
        values.update({key: str(value) for key, value in override.items()})
        return {key: value for key, value in values.items() if value and value != "0"}


@dataclass
class ConversationRow:
    user: User
    step: str | None
    step_since: datetime | None
    stuck: bool
    snippet: TranscriptEntry | None
    unanswered: int = 0
    requests: int = 0
    children: list[str] = field(default_factory=list)
    # known personal data of the conversation (phones, dates of birth, certificates)
    values: list[str] = field(default_factory=list)


async def conversations(
    session: AsyncSession, filters: ConversationFilters, zone: ZoneInfo, stuck_after: timedelta
) -> tuple[list[ConversationRow], bool]:
    """One page of conversations, newest activity first; and whether a next page exists."""
    stuck_before = utcnow() - stuck_after
    statement = select(User, ConversationState.step, ConversationState.updated_at).outerjoin(
        ConversationState, ConversationState.user_id == User.id
    )
    if filters.channel:
        statement = statement.where(User.channel == filters.channel)
    if filters.municipality:
        statement = statement.where(User.municipality_id == filters.municipality)
    if filters.date_from or filters.date_to:
        in_range = [TranscriptEntry.user_id == User.id]
        if filters.date_from:
            in_range.append(TranscriptEntry.created_at >= day_start(filters.date_from, zone))
        if filters.date_to:
            end = day_start(filters.date_to + timedelta(days=1), zone)
            in_range.append(TranscriptEntry.created_at < end)
        statement = statement.where(exists(select(TranscriptEntry.id).where(and_(*in_range))))
    if filters.unanswered:
        statement = statement.where(
            exists(
                select(FaqUnanswered.id).where(
                    FaqUnanswered.user_id == User.id, FaqUnanswered.outcome.in_(NOT_ANSWERED)
                )
            )
        )
    if filters.requests:
        statement = statement.where(
            exists(select(EnrollmentRequest.id).where(EnrollmentRequest.user_id == User.id))
        )
    if filters.stuck:
        statement = statement.where(
            ConversationState.step.is_not(None), ConversationState.updated_at < stuck_before
        )
    if filters.q:
        condition = await search.conversation_matches(session, filters.q, User.id)
        if condition is not None:
            statement = statement.where(condition)
    statement = (
        statement.order_by(User.last_seen.desc(), User.id.desc())
        .offset((filters.page - 1) * PAGE)
        .limit(PAGE + 1)
    )
    found = (await session.execute(statement)).all()
    more = len(found) > PAGE
    rows = []
    for user, step, step_since in found[:PAGE]:
        since = _aware(step_since)
        rows.append(
            ConversationRow(
                user=user,
                step=step,
                step_since=since,
                stuck=bool(step and since and since < stuck_before),
                snippet=None,
            )
        )
    await _fill_rows(session, rows, filters.q)
    return rows, more


async def _fill_rows(session: AsyncSession, rows: list[ConversationRow], q: str) -> None:
    ids = [row.user.id for row in rows]
    if not ids:
        return
    by_id = {row.user.id: row for row in rows}
    for model, attribute in ((FaqUnanswered, "unanswered"), (EnrollmentRequest, "requests")):
        # Questions kept with a suggestion list or a low-confidence answer had an answer.
        only = [FaqUnanswered.outcome.in_(NOT_ANSWERED)] if model is FaqUnanswered else []
        counts = await session.execute(
            select(model.user_id, func.count())
            .where(model.user_id.in_(ids), *only)
            .group_by(model.user_id)
        )
        for user_id, count in counts:
            setattr(by_id[user_id], attribute, count)
    for user_id, name, birth, certificate in await session.execute(
        select(Child.user_id, Child.full_name, Child.birth_date, Child.certificate_number).where(
            Child.user_id.in_(ids)
        )
    ):
        by_id[user_id].children.append(name)
        by_id[user_id].values += [birth.strftime("%d.%m.%Y"), certificate or ""]
    for user_id, phone in await session.execute(
        select(EnrollmentRequest.user_id, EnrollmentRequest.phone)
        .where(EnrollmentRequest.user_id.in_(ids))
        .distinct()
    ):
        by_id[user_id].values.append(phone)
    snippets = await search.latest_matches(session, q, ids) if q else {}
    missing = [user_id for user_id in ids if user_id not in snippets]
    if missing:
        snippets.update(await _latest_messages(session, missing))
    for row in rows:
        row.snippet = snippets.get(row.user.id)


async def _latest_messages(
    session: AsyncSession, user_ids: list[int]
) -> dict[int, TranscriptEntry]:
    """The newest message of each conversation, in one query."""
    newest = (TranscriptEntry.created_at.desc(), TranscriptEntry.id.desc())
    if session.bind.dialect.name == "postgresql":
        statement = (
            select(TranscriptEntry)
            .where(TranscriptEntry.user_id.in_(user_ids))
            .order_by(TranscriptEntry.user_id, *newest)
            .ext(distinct_on(TranscriptEntry.user_id))
        )
    else:
        latest = (
            select(TranscriptEntry.id)
            .where(TranscriptEntry.user_id == User.id)
            .order_by(*newest)
            .limit(1)
            .correlate(User)
            .scalar_subquery()
        )
        ids = select(latest).select_from(User).where(User.id.in_(user_ids))
        statement = select(TranscriptEntry).where(TranscriptEntry.id.in_(ids))
    return {entry.user_id: entry for entry in await session.scalars(statement)}


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Conversation:
    user: User
    state: ConversationState | None
    messages: list[TranscriptEntry]
    earlier: int | None  # id to page back from, when older messages exist
    children: list[Child]
    consents: list[Consent]
    requests: list[tuple[EnrollmentRequest, Program, Child]]
    unanswered: list[FaqUnanswered]


async def conversation(
    session: AsyncSession, user_id: int, before: int | None = None
) -> Conversation | None:
    user = await session.get(User, user_id)
    if user is None:
        return None
    statement = select(TranscriptEntry).where(TranscriptEntry.user_id == user_id)
    if before:
        statement = statement.where(TranscriptEntry.id < before)
    newest = list(
        await session.scalars(
            statement.order_by(TranscriptEntry.created_at.desc(), TranscriptEntry.id.desc()).limit(
                TRANSCRIPT_PAGE + 1
            )
        )
    )
    earlier = newest[TRANSCRIPT_PAGE - 1].id if len(newest) > TRANSCRIPT_PAGE else None
    messages = list(reversed(newest[:TRANSCRIPT_PAGE]))
    children = list(
        await session.scalars(select(Child).where(Child.user_id == user_id).order_by(Child.id))
    )
    consents = list(
        await session.scalars(
            select(Consent).where(Consent.user_id == user_id).order_by(Consent.id.desc())
        )
    )
    requests = [
        tuple(row)
        for row in await session.execute(
            select(EnrollmentRequest, Program, Child)
            .join(Program, Program.id == EnrollmentRequest.program_id)
            .join(Child, Child.id == EnrollmentRequest.child_id)
            .where(EnrollmentRequest.user_id == user_id)
            .order_by(EnrollmentRequest.id.desc())
        )
    ]
    unanswered = list(
        await session.scalars(
            select(FaqUnanswered)
            .where(FaqUnanswered.user_id == user_id)
            .order_by(FaqUnanswered.id.desc())
            .limit(20)
        )
    )
    state = await session.get(ConversationState, user_id)
    return Conversation(
        user,
        state,
        messages,
        earlier,
        children,
        consents,
        requests,
        unanswered,  # type: ignore[arg-type]
    )


@dataclass
class RequestFilters:
    status: str = ""
    municipality: str = ""
    program: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    @classmethod
    def from_query(cls, query: Any, statuses: tuple[str, ...]) -> RequestFilters:
        status = query.get("status", "")
        return cls(
            status=status if status in statuses else "",
            municipality=query.get("municipality", "")[:64],
            program=query.get("program", "").strip()[:200],
            date_from=parse_day(query.get("from")),
            date_to=parse_day(query.get("to")),
            page=page_number(query.get("page")),
        )

    def query_string(self, **override: Any) -> dict[str, str]:
        values = {
            "status": self.status,
            "municipality": self.municipality,
            "program": self.program,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "page": str(self.page),
        }
        values.update({key: str(value) for key, value in override.items()})
        return {key: value for key, value in values.items() if value}


def requests_statement(filters: RequestFilters, zone: ZoneInfo):  # type: ignore[no-untyped-def]
    statement = (
        select(EnrollmentRequest, Program, Child, User)
        .join(Program, Program.id == EnrollmentRequest.program_id)
        .join(Child, Child.id == EnrollmentRequest.child_id)
        .join(User, User.id == EnrollmentRequest.user_id)
    )
    if filters.status:
        statement = statement.where(EnrollmentRequest.status == filters.status)
    if filters.municipality:
        statement = statement.where(Program.municipality_id == filters.municipality)
    if filters.program:
        needle = filters.program.lower().replace("ё", "е")
        # search_text is the lower-cased title, organisation and address (SQLite's lower()
        # leaves Cyrillic as it is, so the comparison is on the stored lower-case text)
        statement = statement.where(
            or_(
                Program.navigator_id == filters.program,
                Program.search_text.contains(needle, autoescape=True),
            )
        )
    if filters.date_from:
        statement = statement.where(
            EnrollmentRequest.created_at >= day_start(filters.date_from, zone)
        )
    if filters.date_to:
        statement = statement.where(
            EnrollmentRequest.created_at < day_start(filters.date_to + timedelta(days=1), zone)
        )
    return statement.order_by(EnrollmentRequest.created_at.desc(), EnrollmentRequest.id.desc())


async def requests_page(
    session: AsyncSession, filters: RequestFilters, zone: ZoneInfo
) -> tuple[list[tuple[EnrollmentRequest, Program, Child, User]], bool]:
    statement = requests_statement(filters, zone).offset((filters.page - 1) * PAGE).limit(PAGE + 1)
    found = [tuple(row) for row in await session.execute(statement)]
    return found[:PAGE], len(found) > PAGE  # type: ignore[return-value]


async def request_history(session: AsyncSession, request_id: int) -> list[AuditEntry]:
    return list(
        await session.scalars(
            select(AuditEntry).where(AuditEntry.request_id == request_id).order_by(AuditEntry.id)
        )
    )


async def audit_page(
    session: AsyncSession, action: str, login: str, page: int
) -> tuple[list[AuditEntry], bool]:
    statement = select(AuditEntry)
    if action:
        statement = statement.where(AuditEntry.action == action)
    if login:
        statement = statement.where(AuditEntry.staff_login == login)
    found = list(
        await session.scalars(
            statement.order_by(AuditEntry.id.desc()).offset((page - 1) * PAGE).limit(PAGE + 1)
        )
    )
    return found[:PAGE], len(found) > PAGE
