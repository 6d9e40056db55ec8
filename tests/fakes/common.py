"""Pieces shared by the fake messenger APIs."""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web


class Window:
    """At most `limit` events in any `seconds`-long window."""

    def __init__(self, limit: int, seconds: float = 1.0) -> None:
        self.limit = limit
        self.seconds = seconds
        self.stamps: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self.stamps and now - self.stamps[0] >= self.seconds:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return False
        self.stamps.append(now)
        return True


class Bucket:
    """A token bucket: bursts of `capacity`, refilled at `rate` per second."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def max_in_window(stamps: list[float], seconds: float = 1.0) -> int:
    """The most stamps in any half-open window (t - seconds, t], as the fakes count."""
    ordered = sorted(stamps)
    most = start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


_ACCEPTED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "accepted", default=None
)


class Server:
    """An aiohttp application served on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.web_app = web.Application(middlewares=[self._heard])
        # messages accepted by a call whose client had gone (timed out) before the answer
        # was written: the client never learnt they were sent, so at-least-once delivery
        # may send them again (README, "Nothing lost in or out")
        self.unheard: list[Any] = []
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.changed = asyncio.Condition()
        self.faults = Faults()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(self.web_app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _heard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        accepted: list[Any] = []
        token = _ACCEPTED.set(accepted)
        try:
            response = await handler(request)
        finally:
            _ACCEPTED.reset(token)
        transport = request.transport
        if accepted and (transport is None or transport.is_closing()):
            self.unheard.extend(accepted)
        return response

    def accepted(self, sent: Any) -> None:
        """Note a message this call accepted (and shows in `sent`)."""
        self.sent.append(sent)  # type: ignore[attr-defined]
        accepted = _ACCEPTED.get()
        if accepted is not None:
            accepted.append(sent)

    def answered_twice(self, messages: list[Any]) -> int:
        """How many of `messages` the client may be excused for sending again."""
        return sum(1 for message in messages if any(message is u for u in self.unheard))

    async def fault(
        self,
        request: web.Request,
        answer: Callable[[str], web.Response],
        *,
        poll: bool = False,
        method: str = "",
    ) -> web.Response | None:
        """The faulty answer to this call, if the schedule picks a fault for it: `answer`
        makes the platform's own answer for "5xx", "429" and "garbage"; a hang holds
        the call until the client gives up; a reset closes the connection."""
        kind = self.faults.pick(poll=poll, method=method)
        if kind is None:
            return None
        if kind == "hang":
            await asyncio.sleep(self.faults.hang_seconds)
            kind = "reset"
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)  # never reaches the client
        return answer(kind)

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class Faults:
    """A schedule of faults a fake API injects while `on`.

    Each call of a method the fake subjects to faults is, independently and with the
    given shares: answered with a server error (`server_errors`: the platform's own 5xx
    answer), held without an answer until the client gives up (`hangs`), or cut off
    (`resets`: the connection is closed before anything is answered). A poll may also be
    answered with a body that is not the API's JSON (`garbage`, polls only: a proxy's
    error page). Every `storm_every` seconds a 429 storm of `storm_seconds` begins:
    every call in it is refused as "too many requests" with `retry_after` where the
    platform gives one. The faults hit before the fake looks at the call, as a network
    failure or an overloaded front end would: what was refused was not done, so a
    client that retries loses nothing and repeats nothing. Seeded, so a run can be
    repeated; `counts` says what was injected."""

    def __init__(
        self,
        *,
        server_errors: float = 0.0,
        hangs: float = 0.0,
        resets: float = 0.0,
        garbage: float = 0.0,
        storm_every: float = 0.0,
        storm_seconds: float = 0.0,
        retry_after: int = 1,
        hang_seconds: float = 120.0,
        only: set[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.server_errors = server_errors
        self.hangs = hangs
        self.resets = resets
        self.garbage = garbage
        self.storm_every = storm_every
        self.storm_seconds = storm_seconds
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.only = only  # the API methods that fail (None: every one)
        self.random = random.Random(seed)
        self.on = False
        self.started = 0.0
        self.counts: Counter[str] = Counter()

    def start(self) -> None:
        self.on = True
        self.started = time.monotonic()

    def stop(self) -> None:
        self.on = False

    def in_storm(self) -> bool:
        if not self.storm_every or not self.storm_seconds:
            return False
        return (time.monotonic() - self.started) % self.storm_every < self.storm_seconds

    def pick(self, *, poll: bool = False, method: str = "") -> str | None:
        """The fault for one call: "429", "5xx", "hang", "reset", "garbage" or None."""
        if not self.on or (self.only is not None and method not in self.only):
            return None
        if self.in_storm() and not poll:
            return self._count("429")
        draw = self.random.random()
        for kind, share in (
            ("5xx", self.server_errors),
            ("hang", self.hangs),
            ("reset", self.resets),
            ("garbage", self.garbage if poll else 0.0),
        ):
            if draw < share:
                return self._count(kind)
            draw -= share
        return None

    def garbage_body(self) -> web.Response:
        """A 200 answer that is not what the API returns: a proxy's page, JSON cut off,
        or JSON of another shape."""
        return self.random.choice(
            [
                lambda: web.Response(
                    text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
                ),
                lambda: web.Response(
                    text='{"ok": true, "result": [{"upd', content_type="application/json"
                ),
                lambda: web.json_response(["unexpected"]),
            ]
        )()

    def _count(self, kind: str) -> str:
        self.counts[kind] += 1
        return kind
