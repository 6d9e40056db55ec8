"""Statistics events: one row per thing that happened, with no personal data.

Kinds (detail in brackets):
- reg_step (the walkthrough: "start", the first time each step "s1".."s8" is reached in
  that walkthrough, "finished"; so the count of each is a count of parents' walkthroughs)
- faq (answered | suggested | unknown | handoff)
- handoff (asked | faq_unknown | faq_person), handoff_closed (operator | silence)
- reminder (sent | failed | unreachable: the delivery's result of a reminder message, or
  failed when it could not be composed; confirmed: the parent confirmed the data after a
  reminder reached them; opted_out: the parent stopped planned reminders)
- data_confirmed (the parent said the child's data are confirmed in person)
- source (the deep-link source of a new parent, recorded when it becomes users.source)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, User, utcnow


def record_event(
    session: AsyncSession,
    kind: str,
    detail: str | None = None,
    *,
    user: User | None = None,
    at: datetime | None = None,
    user_id: int | None = None,
    channel: str | None = None,
) -> Event:
    """Add an event to the caller's transaction (it commits with what it describes). The
    parent is `user`, or `user_id` and `channel` where only those are at hand."""
    event = Event(
        kind=kind,
        detail=detail[:64] if detail else detail,
        channel=user.channel if user is not None else channel,
        user_id=user.id if user is not None else user_id,
        created_at=at or utcnow(),
    )
    session.add(event)
    return event


def record_for(ctx: Any, kind: str, detail: str | None = None) -> Event:
    """An event about the parent a dialogue handler is talking to, at the app's clock."""
    clock = getattr(ctx.services, "clock", None)
    return record_event(ctx.session, kind, detail, user=ctx.user, at=clock() if clock else None)
