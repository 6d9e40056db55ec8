"""Checks the engine runs before routing a message (DialogueEngine.hooks).

- `FloodLimit`: a parent sending dozens of messages a second gets one polite notice;
  the excess is recorded in the transcript and not answered, and nobody else waits.
- `with_person`: while a member of staff has the conversation (users.with_person_since),
  the parent's typed messages are recorded for them and the bot does not answer on its
  own; commands and pressed buttons still work.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from sqlalchemy import select

from handlers.core import Context, Incoming
from storage.handoffs import parent_wrote
from storage.models import TranscriptEntry


class FloodLimit:
    """More than `limit` messages from one parent within `seconds` while answers to them
    are still unsent: one notice, then silence until the parent slows down.

    The rate is measured by the messages' own times (when the parent sent them), not by
    when they are handled: updates stored while the bot was down and handled together
    after a restart are not a flood. A parent who reads each answer before writing again
    is never a flood, however fast. Once in a flood the parent stays in it, answers
    delivered or not, until no more than `limit` of their messages fall in `seconds`.
    """

    MAX_PARENTS = 50_000

    def __init__(self, limit: int = 20, seconds: float = 10.0) -> None:
        self.limit = limit
        self.seconds = seconds
        self._seen: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._flooding: set[tuple[str, str]] = set()

    async def __call__(self, incoming: Incoming, ctx: Context) -> bool:
        key = (incoming.channel, incoming.user_id)
        sent = incoming.time.timestamp()
        stamps = self._seen.pop(key, None) or deque()
        self._seen[key] = stamps
        stamps.append(sent)
        while stamps and sent - stamps[0] >= self.seconds:
            stamps.popleft()
        while len(self._seen) > self.MAX_PARENTS:
            old, _ = self._seen.popitem(last=False)
            self._flooding.discard(old)
        if len(stamps) <= self.limit:
            self._flooding.discard(key)
            return False
        if key in self._flooding:
            return True
        if not await self._ahead_of_answers(ctx):
            return False
        self._flooding.add(key)
        ctx.say("flood.notice")
        return True

    @staticmethod
    async def _ahead_of_answers(ctx: Context) -> bool:
        """Whether the parent writes before the bot's answers to them went out: a parent
        who reads each answer before writing again is never a flood, however fast."""
        pending = await ctx.session.scalar(
            select(TranscriptEntry.id)
            .where(TranscriptEntry.user_id == ctx.user.id, TranscriptEntry.status == "pending")
            .limit(1)
        )
        return pending is not None


async def with_person(incoming: Incoming, ctx: Context) -> bool:
    """A conversation handed to a person of the hotline (storage/handoffs.py): what the
    parent types is recorded for them and not answered by the bot. Commands and pressed
    buttons (the menu, the buttons an operator sends) still work."""
    if ctx.user.with_person_since is None:
        return False
    if incoming.payload or incoming.text.strip().startswith("/"):
        return False
    await parent_wrote(ctx.session, ctx.user.id, incoming.time)
    return True
