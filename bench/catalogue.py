"""Catalogue benchmark: import speed (first and repeated import) and search latency.

    python bench/catalogue.py [--count 20000] [--database URL]

Generates a made-up catalogue of --count programs, imports it twice into a fresh
database (a temporary SQLite file by default, or a throw-away schema of
--database postgresql+asyncpg://..., dropped afterwards) and times catalogue
searches like a parent's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_sample_catalogue import generate, write  # noqa: E402

from bot.catalogue_io import import_programs  # noqa: E402
from storage.catalogue import Filters, programs_by_id, search  # noqa: E402
from storage.db import Database  # noqa: E402
from texts import Texts, load_region  # noqa: E402

SEARCHES = [
    Filters(municipality_id="stavropol", age=10),
    Filters(municipality_id="pyatigorsk", direction="sports"),
    Filters(age=7, direction="arts", funding="pf"),
    Filters(keyword="робототехника"),
    Filters(municipality_id="stavropol", keyword="шохматы"),
]


async def run(count: int, url: str | None) -> None:
    region = load_region("stavropol")
    texts = Texts(region)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalogue.csv"
        write(generate(count), path)
        schema = f"bench_{uuid.uuid4().hex[:8]}" if url else ""
        if url:
            await pg_execute(url, f'CREATE SCHEMA "{schema}"')
        db = Database(url or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", schema=schema)
        try:
            await db.migrate()
            for label in ("first import", "re-import"):
                started = time.perf_counter()
                report = await import_programs(db, region, texts, path)
                elapsed = time.perf_counter() - started
                print(
                    f"{label}: {count} rows in {elapsed:.2f} s "
                    f"({count / elapsed:,.0f} rows/s): {report.summary()}"
                )
            for filters in SEARCHES:
                timings = []
                for _ in range(20):
                    started = time.perf_counter()
                    async with db.session() as session:
                        ids = await search(session, filters)
                        await programs_by_id(session, ids[:5])
                    timings.append((time.perf_counter() - started) * 1000)
                timings.sort()
                print(
                    f"search {filters}: {len(ids)} found, "
                    f"p50 {statistics.median(timings):.1f} ms, max {timings[-1]:.1f} ms"
                )
        finally:
            await db.close()
            if url:
                await pg_execute(url, f'DROP SCHEMA "{schema}" CASCADE')


async def pg_execute(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    asyncio.run(run(args.count, args.database))


if __name__ == "__main__":
    main()
