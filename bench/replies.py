"""Cost per parent message, end-to-end through the Telegram adapter, against the fake Bot API.

Three processes per bot, so each one's CPU is its own: this script (orchestrator), the
fake Bot API with the driver that plays the parents (a child process), and the bot (a
child process: the Navigator assistant -- aiogram adapter, inbox, dialogue engine,
outbox, delivery -- or a bare aiogram echo bot). Both bots run in the same invocation
against the same kind of fake, one after the other.

Two modes:

* capacity (default): USERS parents each send ROUNDS messages (/help, one reply each),
  all users at once per round, Telegram's limits lifted on both sides. Prints
  updates/s, the bot process's CPU time per message and reply latency.
* --steady: USERS (60) parents writing RATE (20) messages/s in all for SECONDS, the
  fake enforcing Telegram's real limits (30/s, per-chat burst) and the Navigator using
  its real pacing. Prints p50/p99 time from a parent's message to its reply, and CPU.

For the Navigator it also counts, with SQLAlchemy event hooks, the SQL statements and
transactions (commits) per message -- a figure that does not depend on the load.

    .venv/bin/python -m bench.replies [--users 100] [--rounds 5]
    .venv/bin/python -m bench.replies --steady [--users 60] [--rate 20] [--seconds 30]
    .venv/bin/python -m bench.replies --db postgresql      # or --database URL
    .venv/bin/python -m bench.replies --sql                # statements by kind
    .venv/bin/python -m bench.replies --profile            # cProfile of the bot process
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

UNLIMITED = 10**9
POSTGRES_URL = "postgresql+asyncpg://127.0.0.1:5432/test"
FIRST_USER = 100_000


# -- the fake Bot API and the parents (child process) ----------------------------------
async def _drive(options: argparse.Namespace) -> None:
    from tests.fakes.telegram import FakeTelegram

    if options.steady:
        fake = FakeTelegram()  # Telegram's own limits: 30/s overall, per-chat burst
    else:
        fake = FakeTelegram(per_second=UNLIMITED, chat_burst=UNLIMITED)
    await fake.start()
    _say({"base": fake.base, "token": fake.token})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    users = list(range(FIRST_USER, FIRST_USER + options.users))
    while command := (await reader.readline()).decode().strip():
        if command == "warmup":
            if options.steady:  # under the real limits: one round at the steady rate
                await _steady(fake, users, options.rate, len(users) / options.rate)
            else:
                await _burst(fake, users, 1)
            _say({"ok": True})
        elif command == "go":
            if options.steady:
                result = await _steady(fake, users, options.rate, options.seconds)
            else:
                result = await _burst(fake, users, options.rounds)
            result["rejected"] = len(fake.rejected)
            _say(result)
        elif command == "stop":
            break
    await fake.stop()


async def _burst(fake: Any, users: list[int], rounds: int) -> dict[str, Any]:
    latencies: list[float] = []
    started = time.monotonic()
    for round_no in range(rounds):
        pushed: dict[int, float] = {}
        seen = len(fake.sent)
        for user in users:
            pushed[user] = time.monotonic()
            await fake.message(user, "/help")
        answered: dict[int, float] = {}
        deadline = time.monotonic() + 120
        while len(answered) < len(users):
            for sent in fake.sent[seen:]:
                answered.setdefault(sent.chat_id, sent.at)
            if time.monotonic() > deadline:
                raise RuntimeError(f"round {round_no}: only {len(answered)}/{len(users)} answered")
            await asyncio.sleep(0.005)
        latencies += [answered[user] - pushed[user] for user in pushed]
    elapsed = time.monotonic() - started
    return {"messages": len(users) * rounds, "elapsed": elapsed, "latencies": latencies}


async def _steady(fake: Any, users: list[int], rate: float, seconds: float) -> dict[str, Any]:
    """Each parent writes every len(users)/rate seconds, the parents evenly staggered;
    the latency of a message is the time to the next message sent to that chat (the
    fake stamps each send when it accepts it)."""
    period = len(users) / rate
    waiting: dict[int, collections.deque[float]] = collections.defaultdict(collections.deque)
    latencies: list[float] = []
    seen = len(fake.sent)
    total = int(rate * seconds)

    def collect() -> None:
        nonlocal seen
        for sent in fake.sent[seen:]:
            queue = waiting.get(sent.chat_id)
            if queue:
                latencies.append(sent.at - queue.popleft())
        seen = len(fake.sent)

    started = time.monotonic()
    for index in range(total):
        due = started + index * period / len(users)
        while (now := time.monotonic()) < due:
            collect()
            await asyncio.sleep(min(0.005, due - now))
        user = users[index % len(users)]
        waiting[user].append(time.monotonic())
        await fake.message(user, "/help")
    deadline = time.monotonic() + 60
    while len(latencies) < total and time.monotonic() < deadline:
        collect()
        await asyncio.sleep(0.005)
    elapsed = time.monotonic() - started
    return {"messages": len(latencies), "elapsed": elapsed, "latencies": latencies}


# -- the bots (child process) ------------------------------------------------------------
class _Counter:
    """SQL statements and committed transactions on the app's engine (event hooks)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = 0
        self.commits = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements += 1
        words = re.sub(r"\s+", " ", statement).strip()
        match = re.match(r"(\w+)(?:.*? (?:FROM|INTO|UPDATE) (\w+))?", words)
        if match:
            head = match.group(1).upper()
            table = re.search(r"(?:FROM|INTO) (\w+)", words) if head != "UPDATE" else None
            name = table.group(1) if table else (words.split(" ")[1] if " " in words else "")
            self.kinds[f"{head} {name}"] += 1

    def _commit(self, _conn: Any) -> None:
        self.commits += 1


async def _bot(options: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    start, stop, counter = await (_echo if options.kind == "echo" else _navigator)(options)
    await start()
    _say({"ready": True})
    mark: dict[str, Any] = {}
    profiler = None
    while command := (await reader.readline()).decode().strip():
        if command == "mark":
            if options.profile and options.kind == "navigator":
                import cProfile

                # CPU time, not wall time: waits (the event loop's poll, a loaded
                # machine) do not show as cost
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
            mark = _usage(counter)
            _say({"ok": True})
        elif command == "report":
            now = _usage(counter)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(options.profile)
            result = {key: now[key] - mark[key] for key in ("cpu", "statements", "commits")}
            if counter is not None:
                result["kinds"] = dict(counter.kinds - mark["kinds"])
            result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            _say(result)
        elif command == "stop":
            break
    await stop()


def _usage(counter: _Counter | None) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "statements": counter.statements if counter else 0,
        "commits": counter.commits if counter else 0,
        "kinds": collections.Counter(counter.kinds) if counter else collections.Counter(),
    }


async def _navigator(options: argparse.Namespace) -> tuple[Any, Any, _Counter]:
    from bot.app import build_app
    from bot.channels.telegram import TelegramChannel
    from bot.config import Settings
    from bot.delivery import TELEGRAM_LIMITS, Limits

    folder = Path(options.folder)
    settings = Settings(
        bot={"data_dir": folder},
        database={
            "url": options.database or f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}",
            "schema_name": options.schema,
        },
        telegram={"token": options.token, "api_base": options.base, "polling_timeout": 1},
    )
    app = build_app(settings)
    counter = _Counter(app.db.engine.sync_engine)
    channel = TelegramChannel(app, limits=TELEGRAM_LIMITS if options.steady else Limits())
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        await app.start()
        await app.serve()
        tasks.append(asyncio.create_task(channel.run()))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await channel.close()
        await app.close()

    return start, stop, counter


async def _echo(options: argparse.Namespace) -> tuple[Any, Any, None]:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    bot = Bot(options.token, session=AiohttpSession(api=TelegramAPIServer.from_base(options.base)))
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        tasks.append(
            asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        )

    async def stop() -> None:
        await dp.stop_polling()
        await asyncio.gather(*tasks, return_exceptions=True)

    return start, stop, None


# -- the orchestrator ----------------------------------------------------------------------
def _say(item: dict[str, Any]) -> None:
    print(json.dumps(item), flush=True)


class _Child:
    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.replies", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"child {self.process.args} ended")
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _run(kind: str, options: argparse.Namespace, common: list[str]) -> dict[str, Any]:
    driver = _Child(["--role", "driver", *common])
    bot: _Child | None = None
    try:
        fake = driver.read()
        with tempfile.TemporaryDirectory() as folder:
            bot_args = ["--role", "bot", "--kind", kind, "--base", fake["base"]]
            bot_args += ["--token", fake["token"], "--folder", folder, *common]
            if options.database:
                bot_args += ["--database", options.database, "--schema", options.schema]
            if options.profile:
                bot_args += ["--profile", options.profile]
            bot = _Child(bot_args)
            bot.read()  # ready
            driver.ask("warmup")
            bot.ask("mark")
            result = driver.ask("go")
            result.update(bot.ask("report"))
            bot.stop()
        return result
    finally:
        if bot is not None:
            bot.stop()
        driver.stop()


def _line(name: str, result: dict[str, Any]) -> str:
    ordered = sorted(result["latencies"])
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = result["messages"] / result["elapsed"]
    cpu = result["cpu"] / result["messages"] * 1000
    return (
        f"{name:<20} {rate:7.1f} updates/s  CPU {cpu:6.2f} ms/msg  "
        f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  rss {result['rss_mib']:5.0f} MiB"
    )


def main(options: argparse.Namespace) -> None:
    if options.db == "postgresql" and not options.database:
        options.database = POSTGRES_URL
    if options.database.startswith("postgresql"):
        options.schema = f"bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg(options.database, f'CREATE SCHEMA "{options.schema}"'))
    common = ["--users", str(options.users), "--rounds", str(options.rounds)]
    common += ["--rate", str(options.rate), "--seconds", str(options.seconds)]
    if options.steady:
        common.append("--steady")
    try:
        echo = _run("echo", options, common)
        ours = _run("navigator", options, common)
    finally:
        if options.schema:
            asyncio.run(_pg(options.database, f'DROP SCHEMA "{options.schema}" CASCADE'))
    where = options.database.split("://")[0] if options.database else "SQLite"
    mode = (
        f"steady: {options.users} parents, {options.rate:g} messages/s for {options.seconds:g} s, "
        "Telegram's limits on"
        if options.steady
        else f"capacity: {options.users} parents x {options.rounds} rounds, limits lifted"
    )
    print(f"{mode}; database: {where}; load average {os.getloadavg()[0]:.2f}")
    print(_line("aiogram echo bot", echo))
    print(_line("Navigator assistant", ours))
    messages = ours["messages"]
    print(
        f"ratio (assistant / echo): capacity "
        f"{(ours['messages'] / ours['elapsed']) / (echo['messages'] / echo['elapsed']):.2f}, "
        f"CPU per message {(ours['cpu'] / messages) / (echo['cpu'] / echo['messages']):.2f}x"
    )
    print(
        f"per message: {ours['statements'] / messages:.2f} SQL statements, "
        f"{ours['commits'] / messages:.2f} transactions; 429s at the fake: "
        f"echo {echo['rejected']}, assistant {ours['rejected']}"
    )
    if options.sql:
        for kind, count in sorted(ours["kinds"].items(), key=lambda item: -item[1]):
            print(f"  {count / messages:6.2f}  {kind}")
    if options.profile:
        import pstats

        print(f"profile of the Navigator process: {options.profile}")
        pstats.Stats(options.profile).sort_stats("tottime").print_stats(25)


async def _pg(url: str, statement: str) -> None:
    from bench.catalogue import pg_execute

    await pg_execute(url, statement)


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=0, help="parents (100; --steady: 60)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steady", action="store_true", help="steady load with real limits")
    parser.add_argument("--rate", type=float, default=20.0, help="--steady: messages/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="--steady: duration")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--database",
        default="",
        help="database URL (default: a fresh SQLite file); PostgreSQL runs in a throw-away schema",
    )
    parser.add_argument("--sql", action="store_true", help="print statements per message by kind")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="artifacts/replies.prof",
        default="",
        help="cProfile the Navigator's process into this file (default artifacts/replies.prof)",
    )
    # internal: the child processes
    parser.add_argument("--role", choices=["main", "driver", "bot"], default="main")
    parser.add_argument("--kind", choices=["echo", "navigator"], default="navigator")
    parser.add_argument("--base", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--folder", default="")
    parser.add_argument("--schema", default="")
    options = parser.parse_args()
    if not options.users:
        options.users = 60 if options.steady else 100
    return options


if __name__ == "__main__":
    arguments = _options()
    if arguments.role == "driver":
        asyncio.run(_drive(arguments))
    elif arguments.role == "bot":
        asyncio.run(_bot(arguments))
    else:
        if arguments.profile:
            Path(arguments.profile).parent.mkdir(parents=True, exist_ok=True)
            arguments.profile = str(Path(arguments.profile).resolve())
        main(arguments)
