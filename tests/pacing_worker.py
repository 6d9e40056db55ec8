"""One process taking grants from the Redis limiter, as a `navbot run` worker does;
tests/test_pacing.py runs two at once on one token.

    python -m tests.pacing_worker REDIS_URL PREFIX TOKEN GRANTS PER_SECOND

Says `ready` on the list PREFIX:ready, waits for a word on PREFIX:go so that every
worker starts at the same moment, takes GRANTS grants (several at a time, each held
for a short call), then prints one JSON line: the grant times on Redis's clock and
whether the limiter had to fall back to pacing in memory.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from redis.asyncio import Redis

from bot.pacing import Limits, RedisLimiter


async def main(url: str, prefix: str, token: str, grants: int, per_second: float) -> None:
    redis = Redis.from_url(url, decode_responses=True)
    limiter = RedisLimiter(redis, Limits(per_second=per_second), token, prefix)
    await redis.rpush(f"{prefix}:ready", "1")
    await redis.blpop([f"{prefix}:go"], timeout=60)
    granted: list[float] = []

    async def call(n: int) -> None:
        grant = await limiter.acquire(f"chat{n}", hold=True)
        granted.append(grant.granted)  # on Redis's clock, as every process sees it
        await asyncio.sleep(random.uniform(0, 0.01))  # the platform call
        await grant.done()

    await asyncio.gather(*(call(n) for n in range(grants)))
    print(json.dumps({"granted": granted, "fell_back": limiter.fallback is not None}))
    await redis.aclose()


if __name__ == "__main__":
    url, prefix, token, grants, per_second = sys.argv[1:6]
    asyncio.run(main(url, prefix, token, int(grants), float(per_second)))
