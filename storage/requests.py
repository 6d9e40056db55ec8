"""Children, consents, enrollment requests and the audit log: the storage side.

Status rules: new -> accepted / rejected / enrolled / cancelled; accepted -> enrolled /
rejected / cancelled; rejected, enrolled and cancelled are final. Only the parent
cancels; only staff accept, reject (with a reason) or enroll.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.linking import linked_ids
from storage.models import (
    OPEN_STATUSES,
    AuditEntry,
    Child,
    Consent,
    EnrollmentRequest,
    Program,
    utcnow,
)

STAFF_STATUSES = ("accepted", "rejected", "enrolled", "cancelled")
# Staff say why when they turn a request down or cancel it.
NEEDS_REASON = ("rejected", "cancelled")
TRANSITIONS = {
    "new": {"accepted", "rejected", "enrolled", "cancelled"},
    "accepted": {"enrolled", "rejected", "cancelled"},
}


class StatusChangeError(Exception):
    """A status change that the rules do not allow; the message says why."""


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives it back without the zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def audit(
    session: AsyncSession, action: str, actor: str, request_id: int | None = None, **detail: Any
) -> None:
    session.add(AuditEntry(action=action, actor=actor, request_id=request_id, detail=detail))


async def current_consent(session: AsyncSession, user_id: int, version: str) -> Consent | None:
    return await session.scalar(
        select(Consent)
        .where(Consent.user_id.in_(linked_ids(user_id)), Consent.text_version == version)
        .order_by(Consent.id.desc())
        .limit(1)
    )


async def children_of(session: AsyncSession, user_id: int) -> list[Child]:
    return list(
        await session.scalars(
            select(Child).where(Child.user_id.in_(linked_ids(user_id))).order_by(Child.id)
        )
    )


async def child_of(session: AsyncSession, user_id: int, child_id: int) -> Child | None:
    return await session.scalar(
        select(Child).where(Child.id == child_id, Child.user_id.in_(linked_ids(user_id)))
    )


async def open_request(session: AsyncSession, child_id: int, program_id: int):
    return await session.scalar(
        select(EnrollmentRequest).where(
            EnrollmentRequest.child_id == child_id,
            EnrollmentRequest.program_id == program_id,
            EnrollmentRequest.status.in_(OPEN_STATUSES),
        )
    )


@dataclass
class Submitted:
    request: EnrollmentRequest
    created: bool  # False: this submit was already made, or an open request exists


async def submit(
    session: AsyncSession,
    *,
    user_id: int,
    child_id: int,
    program_id: int,
    phone: str,
    comment: str,
    key: str,
) -> Submitted:
    """Store a request once: the same key, or an open request of the child for the program,
    returns the existing one. The partial unique index is the last guard."""
    same = await session.scalar(
        select(EnrollmentRequest).where(EnrollmentRequest.submit_key == key)
    )
    if same is not None:
        return Submitted(same, created=False)
    existing = await open_request(session, child_id, program_id)
    if existing is not None:
        return Submitted(existing, created=False)
    request = EnrollmentRequest(
        user_id=user_id,
        child_id=child_id,
        program_id=program_id,
        phone=phone,
        comment=comment,
        status="new",
        reason="",
        submit_key=key,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(request)
    await session.flush()
    audit(session, "request_created", "parent", request.id, program=program_id)
    return Submitted(request, created=True)


async def requests_of(session: AsyncSession, user_id: int):
    """(request, program, child) of a parent, newest first."""
    query = (
        select(EnrollmentRequest, Program, Child)
        .join(Program, EnrollmentRequest.program_id == Program.id)
        .join(Child, EnrollmentRequest.child_id == Child.id)
        .where(EnrollmentRequest.user_id.in_(linked_ids(user_id)))
        .order_by(EnrollmentRequest.id.desc())
    )
    return (await session.execute(query)).all()


async def set_status(
    session: AsyncSession,
    request: EnrollmentRequest,
    status: str,
    reason: str,
    actor: str,
    staff_login: str | None = None,
) -> str:
    """Apply a status change; returns the previous status."""
    allowed = TRANSITIONS.get(request.status, set())
    if status not in allowed:
        raise StatusChangeError(
            f"request {request.id} is {request.status}; it cannot become {status}"
        )
    if actor == "staff" and status not in STAFF_STATUSES:
        raise StatusChangeError(f"staff set one of {', '.join(STAFF_STATUSES)}, not {status}")
    if status == "rejected" and not reason.strip():
        raise StatusChangeError("a rejection needs a reason (--reason)")
    if actor == "staff" and status in NEEDS_REASON and not reason.strip():
        raise StatusChangeError(f"{status} by staff needs a reason (--reason)")
    previous = request.status
    request.status = status
    request.reason = reason.strip()
    request.updated_at = utcnow()
    session.add(
        AuditEntry(
            action="request_status",
            actor=actor,
            request_id=request.id,
            staff_login=staff_login,
            user_id=request.user_id,
            detail={"before": previous, "after": status},
        )
    )
    return previous
