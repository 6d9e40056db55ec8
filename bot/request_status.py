"""Staff changing a request's status: one function for the CLI and the staff console.

The change is stored (with an audit entry) first; then the parent is told in their own
messenger through the delivery path. A parent who cannot be reached still has the
new status in «Мои заявки».
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.delivery import Delivery
from handlers.core import Button, Reply
from storage.db import Database
from storage.linking import linked_users
from storage.models import Child, EnrollmentRequest, Program
from storage.requests import StatusChangeError, as_utc, set_status
from texts import Texts

__all__ = ["RequestStatusService", "StatusChange", "StatusChangeError"]


@dataclass(frozen=True)
class StatusChange:
    request_id: int
    before: str
    after: str
    notified: bool


class RequestStatusService:
    def __init__(
        self,
        db: Database,
        delivery: Delivery,
        texts: Texts,
        pd_channels: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.delivery = delivery
        self.texts = texts
        # Where personal data may be sent (None: everywhere); the outbox enforces it.
        self.pd_channels = pd_channels

    async def change(
        self, request_id: int, status: str, reason: str = "", *, by: str | None = None
    ) -> StatusChange:
        """Set a request's status as staff and notify the parent; StatusChangeError if the
        rules forbid it (unknown request, final status, rejection without a reason).
        `by` is the login of the member of staff, for the audit log."""
        async with self.db.session() as session:
            request = await session.get(EnrollmentRequest, request_id, with_for_update=True)
            if request is None:
                raise StatusChangeError(f"no request {request_id}")
            before = await set_status(session, request, status, reason, "staff", by)
            program = await session.get(Program, request.program_id)
            child = await session.get(Child, request.child_id)
            assert program is not None and child is not None
            user_id = await self._recipient(session, request.user_id)
            text = self.texts(
                f"requests.notify.{status}",
                number=request.id,
                title=program.title,
                organisation=program.organisation,
                name=child.full_name,
                reason=request.reason,
            )
        reply = Reply(text, [[Button(self.texts("requests.menu_item"), "req")]], personal=True)
        notified = await self.delivery.notify(user_id, [reply])
        return StatusChange(request_id, before, status, notified)

    async def _recipient(self, session, user_id: int) -> int:
        """Of the parent's linked conversations, the one used last in a messenger where
        the notice (it names the child) may go; else the one used last (the outbox then
        sends only «there is news»)."""
        users = [u for u in await linked_users(session, user_id) if u.reachable]
        if not users:
            return user_id
        users.sort(key=lambda u: as_utc(u.last_seen), reverse=True)
        allowed = [u for u in users if self.pd_channels is None or u.channel in self.pd_channels]
        return (allowed or users)[0].id
