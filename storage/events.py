"""Statistics events: one row per thing that happened, with no personal data.

Kinds (detail in brackets):
- reg_step (the walkthrough step shown: "start", a step name, "finished")
- faq (answered | suggested | unknown | handoff)
- handoff (asked | faq_unknown | faq_person), handoff_closed (operator | silence)
- reminder (sent | confirmed | opted_out | failed | unreachable)
- data_confirmed
- source (the deep-link source of a new parent)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, User, utcnow


def record_event(
    session: AsyncSession,
    kind: str,
    detail: str | None = None,
    *,
    user: User | None = None,
    at: datetime | None = None,
) -> Event:
    """Add an event to the caller's transaction (it commits with what it describes)."""
    event = Event(
        kind=kind,
        detail=detail[:64] if detail else detail,
        channel=user.channel if user is not None else None,
        user_id=user.id if user is not None else None,
        created_at=at or utcnow(),
    )
    session.add(event)
    return event
