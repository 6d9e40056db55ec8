"""Pacing: how fast the bot may call a messenger's API with one token.

A platform limits each bot token: Telegram about 30 messages/s overall and about one
message a second per chat after a short burst, VK 20 requests/s per community token,
MAX 30 requests/s overall and 2 messages/s per chat. A `Limiter` per token grants calls
under those limits (`Limits`):

* overall, at most `Limits.calls` calls in any sliding window of `Limits.window`
  seconds. The budget is let through as a burst: 30 calls at once, then the next call
  when the first of them leaves the window, never spaced 1/30 s apart;
* per chat, a token bucket: `chat_burst` calls at once, then `chat_per_second`;
* `penalise(seconds)`: after a 429 / flood-control answer no call with that token goes
  out for `seconds`, from any sender, in any process sharing the limiter.

How a call is counted. The platform counts a call when it receives it, some time after
our grant: the request is built, waits for a connection or a worker thread (vk_api sends
one call at a time), is queued on a busy event loop and crosses the network. That is
tens of milliseconds on a loopback API under load, and a burst of 20 VK calls queued
behind each other took over a second on a loaded machine. So a call made through
`Limiter.slot()` (`Delivery.paced()`) holds its slot while it is in flight, as if the
platform received it at every moment until it answers. Once it answered, the slot is
counted from the answer less the network's share of a round trip, and then never from
less than `MARGIN` (25 ms) after the grant; counted from the answer itself it needs no
floor, since the platform received the call before it answered. The network's share is
`NETWORK_SHARE` (half) of the shortest round trip the limiter has seen since it started:
the way back of a call takes at least that long, so the platform received it no later
than its answer less that share. The shortest since the start, not among recent calls:
under a long burst every recent trip is inflated by our own busy event loop, on either
leg, and half of such a trip is no bound on the way back; and only once `TRIPS_KNOWN`
(20) calls were measured, since a first call also opens its connection. Only the spread
of the delays and half the latency count against the budget: at 100 ms to the API a
long burst runs at about `calls / (window + 0.05 s)`. Round trips shorter than
`NETWORK_MIN` (30 ms: a loopback, a LAN, a data centre near the API) earn no credit,
since there a busy event loop delays a call as much as the wire.
A call that failed (timeout, connection error, an error answer) is counted from its
end. A call in flight longer than `HOLD` (5 s; a hung call, or a process killed
mid-call) is counted from `HOLD` after its grant, so it cannot stall the budget; a long
poll, which the platform holds open by design, from `LONG_POLL` (2 s) after it. A call to
no chat (chat id "": a poll, start-up calls) is paced by the overall limit alone. A bare
`acquire()` whose caller never reports the end is counted from `MARGIN` after the grant.
A chat's bucket refills `CHAT_MARGIN` (5%) slower than the platform's rate so that
jitter cannot accumulate into a per-chat 429.

Calls made while `BACKGROUND` is set (the delivery sets it for reminders and campaign
messages) give way: in each process, one of them at a time waits for the budget, and only
while no other call does, so a parent's answer never queues behind a batch of reminders.

Two backends behind the same interface:

* `MemoryLimiter`: one process (the default, and what SQLite deployments need);
* `RedisLimiter`: shared by every process that uses the same token and the same Redis.
  Each decision is one atomic Lua script on Redis's own clock (`TIME`), so processes on
  different machines agree; keys are named after a hash of the token, never the token.
  If Redis stops answering mid-run the limiter logs one warning and paces this process
  alone with an in-memory limiter at a conservative share of the limits (the limits
  divided by the number of processes seen in the last minute, at least two), counting the
  current window as used; it tries Redis again every `RETRY_REDIS` seconds.

`Pacing` builds the limiters of one process from the `[pacing]` settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.config import ConfigError, PacingSection

log = logging.getLogger(__name__)

# A granted call is counted from this long after the grant at the earliest (see above).
MARGIN = 0.025
# A call still in flight this long after its grant is counted from then.
HOLD = 5.0
# A long poll (MAX's GET /updates) still open this long after its grant has reached the
# platform, which holds it open until an update comes: it is counted from then, so a poll
# waiting through a burst of sends keeps one of the token's slots for 3 s, not 6.
LONG_POLL = 2.0
# How often a caller waiting for a slot held by a call in flight looks again.
POLL = 0.02
# Set while sending what no parent is waiting for (reminders, campaigns): such calls let
# every other call of this process go first (see above).
BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("background", default=False)
# A chat's bucket refills this much slower than the platform's per-chat rate.
CHAT_MARGIN = 0.05
# The share of the shortest round trip counted early: half, the way back of a symmetric
# network; a larger share let a congested way out (a busy event loop before the request
# left) reach the platform later than counted.
NETWORK_SHARE = 0.5
# Shorter round trips (a loopback or a LAN) earn no credit: there the spread of the delays
# on our own side (a busy event loop) is as large as the trip itself. On a loaded
# loopback the shortest of thousands of trips was still 11 ms.
NETWORK_MIN = 0.030
# Round trips measured before any credit: the first calls also open their connections.
TRIPS_KNOWN = 20


@dataclass(frozen=True)
class Limits:
    """A token's limits: `per_second` calls overall (counted over `window` seconds);
    per chat a burst of `chat_burst`, then `chat_per_second`. 0 means unlimited."""

    per_second: float = 0.0
    chat_per_second: float = 0.0
    chat_burst: int = 1
    window: float = 1.0

    @property
    def calls(self) -> int:
        """Calls allowed in any one window (0: unlimited)."""
        return max(1, int(self.per_second * self.window)) if self.per_second > 0 else 0

    @property
    def chat_rate(self) -> float:
        """The per-chat refill rate we keep to, a little under the platform's."""
        return self.chat_per_second / (1 + CHAT_MARGIN)

    @property
    def unlimited(self) -> bool:
        return not self.calls and not self.chat_per_second


TELEGRAM_LIMITS = Limits(per_second=30, chat_per_second=1, chat_burst=5)
VK_LIMITS = Limits(per_second=20)
# dev.max.ru: 30 requests a second per token; 2 messages a second per chat, counted in
# any one-second window (a burst of 1 at 2/s never puts 3 in one second).
MAX_LIMITS = Limits(per_second=30, chat_per_second=2, chat_burst=1)


def token_hash(key: str) -> str:
    """What names a token in shared state: a hash, never the token itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


class Grant:
    """One granted call, at `granted` on the limiter's clock. `done()` once the platform
    answered (or the call failed)."""

    granted = 0.0

    async def done(self, early: float = 0.0) -> None:
        """The call ended now; with `early`, the platform received it at least `early`
        seconds before now."""
        return None


class Limiter(ABC):
    limits: Limits

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._shortest: float | None = None  # the shortest round trip since the start
        self._trips = 0  # round trips measured
        self._waiting = 0  # calls of this process waiting for the budget, not in BACKGROUND
        self._none_waiting = asyncio.Event()
        self._none_waiting.set()
        self._background = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _queue(self, lock: asyncio.Lock) -> AsyncIterator[None]:
        """Wait in line for the budget (`lock`); a BACKGROUND call first waits until it is
        the only one of its kind in line and no other call of this process is."""
        if not BACKGROUND.get():
            self._waiting += 1
            self._none_waiting.clear()
            try:
                async with lock:
                    yield
            finally:
                self._waiting -= 1
                if not self._waiting:
                    self._none_waiting.set()
            return
        async with self._background:
            await self._none_waiting.wait()
            async with lock:
                yield

    def network_floor(self) -> float:
        """How long, at least, a call of this limiter spends on the wire (see above)."""
        shortest = self._shortest
        if shortest is None or shortest < NETWORK_MIN or self._trips < TRIPS_KNOWN:
            return 0.0
        return NETWORK_SHARE * shortest

    @abstractmethod
    async def acquire(self, chat_id: str, *, hold: bool = False, longest: float = HOLD) -> Grant:
        """Wait until one more call to `chat_id` is allowed ("": a call to no chat, which
        only the overall limit paces). With `hold`, the call counts as in flight until
        `Grant.done()`, or `longest` seconds after its grant at most."""

    @abstractmethod
    async def penalise(self, seconds: float) -> None:
        """After a flood-control answer, hold every call with this token for `seconds`."""

    async def close(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: str, *, longest: float = HOLD) -> AsyncIterator[None]:
        """`async with limiter.slot(chat)`: one call made inside, counted until it ends
        (or `longest` seconds after its grant: see `LONG_POLL`)."""
        grant = await self.acquire(chat_id, hold=True, longest=longest)
        started = self.clock()
        try:
            yield
        except BaseException:
            await grant.done()
            raise
        early = self.network_floor()
        trip = self.clock() - started
        self._trips += 1
        if self._shortest is None or trip < self._shortest:
            self._shortest = trip
        await grant.done(early)


def _wait_step(wait: float, window: float) -> float:
    """How long to sleep for a slot that frees in `wait` seconds: a wait longer than any
    settled slot's (one window and the margin) is a call in flight, which may answer any
    moment and free its slot a window later, so look again soon."""
    return min(wait, POLL) if wait > window + MARGIN else wait


class _Slot(Grant):
    __slots__ = ("clock", "granted", "latest", "stamp")

    def __init__(
        self, granted: float, hold: bool, clock: Callable[[], float], longest: float = HOLD
    ) -> None:
        self.granted = granted
        self.latest = granted + max(longest, MARGIN)
        self.stamp = self.latest if hold else granted + MARGIN
        self.clock = clock

    async def done(self, early: float = 0.0) -> None:
        answered = self.clock() - early
        floor = self.granted + MARGIN if early else self.granted
        self.stamp = max(floor, min(answered, self.latest))


_NO_GRANT = Grant()


class MemoryLimiter(Limiter):
    """The limits of one token within this process.

    Callers whose chat may send queue first come, first served for the overall window;
    a caller whose chat must wait does not hold the others up. `full=True` starts with
    the current window counted as used (taking over from a shared limiter).
    """

    MAX_CHATS = 10_000

    def __init__(
        self,
        limits: Limits,
        *,
        full: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self.limits = limits
        self.penalty_until = 0.0
        self._lock = asyncio.Lock()
        self._slots: list[_Slot] = []
        self._chats: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, stamp
        if full and limits.calls:
            now = clock()
            self._slots = [_Slot(now - MARGIN, False, clock)] * limits.calls

    async def acquire(self, chat_id: str, *, hold: bool = False, longest: float = HOLD) -> Grant:
        while True:
            wait = self._chat_wait(chat_id, self.clock())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            async with self._queue(self._lock):
                while True:
                    now = self.clock()
                    wait = self._window_wait(now)
                    if wait <= 0:
                        break
                    await asyncio.sleep(_wait_step(wait, self.limits.window))
                if self._chat_wait(chat_id, now) > 0:
                    continue  # another call to this chat went first
                self._take_chat(chat_id, now)
                if not self.limits.calls:
                    return _NO_GRANT
                slot = _Slot(now, hold, self.clock, longest)
                self._slots.append(slot)
                return slot

    async def penalise(self, seconds: float) -> None:
        self.penalty_until = max(self.penalty_until, self.clock() + seconds)

    def _window_wait(self, now: float) -> float:
        wait = self.penalty_until - now
        calls = self.limits.calls
        if calls:
            horizon = now - self.limits.window
            self._slots = [slot for slot in self._slots if slot.stamp > horizon]
            if len(self._slots) >= calls:
                stamps = sorted(slot.stamp for slot in self._slots)
                wait = max(wait, stamps[len(stamps) - calls] - horizon)
        return wait

    def _chat_wait(self, chat_id: str, now: float) -> float:
        rate = self.limits.chat_rate
        if not rate or not chat_id:
            return 0.0
        tokens = self._tokens(chat_id, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / rate

    def _tokens(self, chat_id: str, now: float) -> float:
        burst = float(self.limits.chat_burst)
        tokens, stamp = self._chats.get(chat_id, (burst, now))
        return min(burst, tokens + (now - stamp) * self.limits.chat_rate)

    def _take_chat(self, chat_id: str, now: float) -> None:
        if not self.limits.chat_rate or not chat_id:
            return
        tokens = self._tokens(chat_id, now)
        self._chats.pop(chat_id, None)
        self._chats[chat_id] = (tokens - 1, now)
        while len(self._chats) > self.MAX_CHATS:
            self._chats.popitem(last=False)  # the least recently used, long refilled


# KEYS: window (sorted set of slot stamps), penalty, peers (processes seen), chat bucket.
# ARGV: calls, window, offset (the slot's stamp after the grant), chat rate, chat burst,
# slot id, process id.
# Returns {granted, value, why, peers}: value is the grant time, or the seconds to wait.
# Numbers go back as strings: Redis would truncate a Lua number to an integer.
_GRANT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local calls, window, offset = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rate, burst = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZADD', KEYS[3], now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60)
redis.call('EXPIRE', KEYS[3], 120)
local peers = redis.call('ZCARD', KEYS[3])
local penalty = tonumber(redis.call('GET', KEYS[2]) or '0')
if penalty > now then
  return {0, tostring(penalty - now), 'penalty', peers}
end
local tokens = burst
if rate > 0 then
  local state = redis.call('HMGET', KEYS[4], 'tokens', 'stamp')
  if state[1] then
    tokens = math.min(burst, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
  end
  if tokens < 1 then
    return {0, tostring((1 - tokens) / rate), 'chat', peers}
  end
end
if calls > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[1])
  if count >= calls then
    local first = redis.call('ZRANGE', KEYS[1], count - calls, count - calls, 'WITHSCORES')
    return {0, tostring(tonumber(first[2]) + window - now), 'window', peers}
  end
  redis.call('ZADD', KEYS[1], now + offset, ARGV[6])
  redis.call('PEXPIRE', KEYS[1], math.ceil((2 * window + offset) * 1000))
end
if rate > 0 then
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'stamp', tostring(now))
  redis.call('PEXPIRE', KEYS[4], math.ceil(burst / rate * 1000) + 1000)
end
return {1, tostring(now), 'granted', peers}
"""

# KEYS: window. ARGV: slot id, earliest and latest stamp (the grant, + MARGIN with a
# network credit; grant + HOLD),
# seconds the platform received the call before now at least.
_DONE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 - tonumber(ARGV[4])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local stamp = math.max(tonumber(ARGV[2]), math.min(now, tonumber(ARGV[3])))
redis.call('ZADD', KEYS[1], 'XX', stamp, ARGV[1])
return 1
"""

# KEYS: penalty. ARGV: seconds.
_PENALISE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local seconds = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + seconds > current then
  redis.call('SET', KEYS[1], tostring(now + seconds), 'PX', math.ceil(seconds * 1000) + 1000)
end
return 1
"""


class _RedisGrant(Grant):
    __slots__ = ("granted", "limiter", "longest", "member")

    def __init__(self, limiter: RedisLimiter, member: str, granted: float, longest: float) -> None:
        self.limiter = limiter
        self.member = member
        self.granted = granted
        self.longest = max(longest, MARGIN)

    async def done(self, early: float = 0.0) -> None:
        await self.limiter._done(self, early)


class RedisLimiter(Limiter):
    """The limits of one token shared through Redis by every process using it."""

    RETRY_REDIS = 30.0  # seconds between attempts to go back to Redis after a failure

    def __init__(self, redis: Any, limits: Limits, key: str, prefix: str = "navbot") -> None:
        from redis.exceptions import RedisError

        super().__init__()
        self.limits = limits
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._redis = redis
        base = f"{prefix}:pacing:{{{token_hash(key)}}}"
        self._base = base
        self._keys = [f"{base}:window", f"{base}:penalty", f"{base}:peers"]
        self._process = uuid.uuid4().hex
        self._grant = redis.register_script(_GRANT)
        self._done_script = redis.register_script(_DONE)
        self._penalise = redis.register_script(_PENALISE)
        self._lock = asyncio.Lock()
        self._peers = 1
        self._penalty_until = 0.0  # the latest penalty known here, on the local clock
        self.fallback: MemoryLimiter | None = None
        self._failed_at = 0.0
        self._warned = False

    def _chat_key(self, chat_id: str) -> str:
        return f"{self._base}:chat:{token_hash(chat_id)}"

    async def acquire(self, chat_id: str, *, hold: bool = False, longest: float = HOLD) -> Grant:
        if self.fallback is not None:
            if time.monotonic() - self._failed_at < self.RETRY_REDIS:
                return await self.fallback.acquire(chat_id, hold=hold, longest=longest)
            self._failed_at = time.monotonic()  # this call tries Redis; the others go on
        try:
            grant = await self._acquire(chat_id, hold, longest)
        except self._errors as exc:
            return await self._fall_back(exc).acquire(chat_id, hold=hold, longest=longest)
        if self.fallback is not None:
            log.info("pacing: Redis answers again; pacing is shared again")
            self.fallback = None
            self._warned = False
        return grant

    async def _acquire(self, chat_id: str, hold: bool, longest: float) -> Grant:
        keys = [*self._keys, self._chat_key(chat_id)]
        limits = self.limits
        while True:
            # One waiter per process asks Redis at a time; the rest queue here in order.
            async with self._queue(self._lock):
                while True:
                    member = uuid.uuid4().hex
                    granted, value, why, peers = await self._grant(
                        keys=keys,
                        args=[
                            limits.calls,
                            limits.window,
                            max(longest, MARGIN) if hold else MARGIN,
                            limits.chat_rate if chat_id else 0,
                            limits.chat_burst,
                            member,
                            self._process,
                        ],
                    )
                    self._peers = int(peers)
                    if int(granted) and not limits.calls:
                        return _NO_GRANT
                    if int(granted):
                        return _RedisGrant(self, member, float(value), longest)
                    wait = float(value)
                    if why == "chat":
                        break  # this chat refills; let the others through meanwhile
                    if why == "penalty":
                        self._penalty_until = max(self._penalty_until, time.monotonic() + wait)
                    else:
                        wait = _wait_step(wait, limits.window)
                    await asyncio.sleep(wait)
            await asyncio.sleep(wait)

    async def _done(self, grant: _RedisGrant, early: float = 0.0) -> None:
        if self.fallback is not None:
            return
        earliest = grant.granted + MARGIN if early else grant.granted
        latest = grant.granted + grant.longest
        args = [grant.member, earliest, latest, early]
        try:
            await self._done_script(keys=self._keys[:1], args=args)
        except self._errors as exc:
            self._fall_back(exc)

    async def penalise(self, seconds: float) -> None:
        self._penalty_until = max(self._penalty_until, time.monotonic() + seconds)
        if self.fallback is not None:
            await self.fallback.penalise(seconds)
            return
        try:
            await self._penalise(keys=self._keys[1:2], args=[seconds])
        except self._errors as exc:
            await self._fall_back(exc).penalise(seconds)

    def _fall_back(self, exc: BaseException) -> MemoryLimiter:
        self._failed_at = time.monotonic()
        if self.fallback is None:
            share = max(2, self._peers)
            limits = replace(
                self.limits,
                per_second=self.limits.per_second / share,
                chat_burst=1,
            )
            self.fallback = MemoryLimiter(limits, full=True)
            self.fallback.penalty_until = self._penalty_until
            if not self._warned:
                self._warned = True
                log.warning(
                    "pacing: Redis cannot be reached (%s); pacing this process alone at "
                    "%.4g calls/s until it is back",
                    type(exc).__name__,
                    limits.per_second,
                )
        return self.fallback


def redact_url(url: str) -> str:
    """The URL with its password hidden, fit for a log line or an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


class Pacing:
    """The limiters of one process, built from the `[pacing]` settings."""

    def __init__(self, settings: PacingSection | None = None) -> None:
        self.settings = settings or PacingSection()
        self._redis: Any = None
        self._limiters: dict[tuple[str, Limits], Limiter] = {}

    @property
    def shared(self) -> bool:
        return self.settings.backend == "redis"

    def _client(self) -> Any:
        if self._redis is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._redis = Redis.from_url(
                self.settings.redis_url,
                decode_responses=True,
                socket_timeout=2.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 1),
            )
        return self._redis

    def limiter(self, limits: Limits, key: str) -> Limiter:
        """The limiter for the token named by `key`; one per token and limits."""
        found = self._limiters.get((key, limits))
        if found is None:
            if self.shared and not limits.unlimited:
                found = RedisLimiter(self._client(), limits, key, self.settings.key_prefix)
            else:
                found = MemoryLimiter(limits)
            self._limiters[(key, limits)] = found
        return found

    async def check(self) -> None:
        """At start: the configured Redis answers, or ConfigError naming the setting."""
        if not self.shared:
            return
        from redis.exceptions import RedisError

        try:
            await self._client().ping()
        except (RedisError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"'pacing.redis_url': Redis at {redact_url(self.settings.redis_url)} "
                f'cannot be reached ({reason}); start it, or set [pacing] backend = "memory" '
                "when a single process uses each token"
            ) from None

    async def close(self) -> None:
        for limiter in self._limiters.values():
            await limiter.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
