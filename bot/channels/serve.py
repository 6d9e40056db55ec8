"""`navbot run`: every configured channel and the staff console in one process (or the
roles of bot/roles.py, one process each), stopped cleanly on SIGTERM or Ctrl+C. The
web server ([web] host and port) serves the console, and the Telegram and MAX webhooks
of channels in webhook mode; otherwise they poll. VK polls Bots Long Poll; the terminal
channel joins when stdin is a terminal, when asked for, or when no messenger is
configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any

log = logging.getLogger(__name__)
# setWebhook's secret_token: 1-256 characters, only A-Z, a-z, 0-9, _ and - are allowed.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ChannelError(Exception):
    """A channel could not start or stopped on its own; printed as one line."""


def personal_data_line(app: Any) -> str:
    """One line naming the channels where personal data are collected."""
    from handlers.linking import CHANNELS, pd_channels_for

    allowed = pd_channels_for(app.settings, app.region)
    others = [channel for channel in CHANNELS if channel not in allowed]
    line = "personal data (consent, children, phones, requests) are collected in: " + (
        ", ".join(allowed) or "no channel"
    )
    if others:
        line += f"; not in: {', '.join(others)} (a link to continue there is offered)"
    return line


async def serve_channels(
    app: Any, console: Any | None, *, force_console: bool = False, roles: Any = None
) -> int:
    """Serve `roles` (bot/roles.py; every role by default). Every configured messenger's
    channel is built and checked in every process (its sender sends what this process
    queues); only the roles named here receive updates, lead the ticker or deliver."""
    from bot.roles import ALL

    roles = ALL if roles is None else roles
    settings = app.settings
    jobs: dict[str, Coroutine[Any, Any, None]] = {}
    idle: list[Coroutine[Any, Any, None]] = []
    cleanups: list[Any] = []
    webhooks: dict[str, Any] = {}
    app.delivery.sends = "delivery" in roles

    def place(name: str, job: Coroutine[Any, Any, None], role: str) -> None:
        if role in roles:
            jobs[name] = job
        else:
            idle.append(job)  # built and checked for its sender; receives elsewhere

    try:
        if settings.max_enabled:
            job = await _max(app, cleanups, webhooks)
            reads = "web" if settings.max.mode == "webhook" else "max"
            place("max", job, reads)
        if settings.telegram_enabled:
            job = await _telegram(app, cleanups, webhooks)
            place("telegram", job, "web")
        if settings.vk.token and settings.vk.token.get_secret_value():
            job = await _vk(app, cleanups)
            place("vk", job, "vk")
        if "web" in roles:
            await _web(app, cleanups, webhooks)
        await serve_ops_alone(app, cleanups)
        messengers = bool(jobs)
        if not messengers and roles.all:
            print(
                "No messenger token is configured (NAVBOT_TELEGRAM__TOKEN, NAVBOT_MAX__TOKEN, "
                "or NAVBOT_VK__TOKEN with NAVBOT_VK__GROUP_ID): starting the terminal channel "
                "only.",
                file=sys.stderr,
            )
        if not roles.all:
            print(f"roles: {roles}", file=sys.stderr, flush=True)
            if settings.pacing.backend == "memory" and app.delivery.senders:
                print(
                    "navbot: warning: [pacing] backend = memory counts the platforms' rate "
                    "limits in this process only; with several processes set "
                    "NAVBOT_PACING__BACKEND=redis",
                    file=sys.stderr,
                    flush=True,
                )
        print(personal_data_line(app), file=sys.stderr, flush=True)
        if (
            console is not None
            and roles.all
            and (not messengers or force_console or sys.stdin.isatty())
        ):
            jobs["console"] = console.run()
        # Every channel's sender is registered now: send what is pending, handle what
        # was stored and not yet handled, then serve.
        await app.serve(
            ticker="scheduler" in roles, delivery="delivery" in roles, inbox=roles.receives
        )
        return await run_until_stopped(
            jobs, console_ends_all=roles.all and (not messengers or sys.stdin.isatty())
        )
    finally:
        for job in [*jobs.values(), *idle]:
            job.close()  # never-started coroutines, after a start failure
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                await cleanup()


@contextlib.asynccontextmanager
async def messenger_senders(app: Any) -> AsyncIterator[list[str]]:
    """Send-only Telegram / VK / MAX senders for a process that does not poll (a staff command):
    messages it sends reach parents in their messenger through the same delivery path.
    Yields the names of the channels that can be reached."""
    closers: list[Any] = []
    reachable: list[str] = []
    try:
        if app.settings.telegram_enabled:
            from bot.channels.telegram import TelegramChannel

            closers.append(TelegramChannel(app).close)
            reachable.append("telegram")
        if app.settings.vk_enabled:
            from bot.channels.vk import VkChannel

            closers.append(VkChannel(app).close)
            reachable.append("vk")
        if app.settings.max_enabled:
            from bot.channels.max import MaxChannel

            closers.append(MaxChannel(app).close)
            reachable.append("max")
        yield reachable
    finally:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()


async def _max(
    app: Any, cleanups: list[Any], webhooks: dict[str, Any]
) -> Coroutine[Any, Any, None]:
    """The MAX channel, checked before anything is served: GET /me with the token."""
    from bot.channels.max import ChannelSetupError, MaxChannel

    channel = MaxChannel(app)
    cleanups.append(channel.close)
    try:
        await channel.check()
    except ChannelSetupError as exc:
        raise ChannelError(str(exc)) from None
    if channel.mode == "webhook":
        webhooks["max_channel"] = channel
    return _max_run(channel)


async def _max_run(channel: Any) -> None:
    from bot.channels.max import ChannelSetupError

    try:
        await channel.run()
    except ChannelSetupError as exc:
        raise ChannelError(str(exc)) from None


async def _web(app: Any, cleanups: list[Any], webhooks: dict[str, Any]) -> None:
    """The staff console, with the webhooks of the channels in webhook mode."""
    from bot.web import address, create_web_app, serve

    web = app.settings.web
    try:
        runner = await serve(create_web_app(app, **webhooks), web.host, web.port)
    except OSError as exc:
        raise ChannelError(f"web server cannot listen on {web.host}:{web.port}: {exc}") from exc
    cleanups.append(runner.cleanup)
    print(f"staff console on {address(runner)}", file=sys.stderr, flush=True)


async def serve_ops_alone(app: Any, cleanups: list[Any]) -> None:
    """/healthz and /metrics on `[ops] host:port` as well, when a port is set."""
    from bot.ops import serve_ops
    from bot.web import address

    ops = app.settings.ops
    if not ops.port:
        return
    try:
        runner = await serve_ops(app, ops.host, ops.port)
    except OSError as exc:
        raise ChannelError(f"ops server cannot listen on {ops.host}:{ops.port}: {exc}") from exc
    cleanups.append(runner.cleanup)
    print(f"healthz and metrics on {address(runner)}", file=sys.stderr, flush=True)


async def _telegram(
    app: Any, cleanups: list[Any], webhooks: dict[str, Any] | None = None
) -> Coroutine[Any, Any, None]:
    """The Telegram channel; in webhook mode it joins `webhooks`, served by the caller."""
    from bot.channels.telegram import TelegramChannel

    cfg = app.settings.telegram
    if cfg.mode == "webhook":
        if not cfg.webhook_url.startswith("https://"):
            raise ChannelError("telegram.webhook_url must be an https:// URL in webhook mode")
        secret = cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else ""
        if not secret:
            raise ChannelError("set NAVBOT_TELEGRAM__WEBHOOK_SECRET for webhook mode")
        if not _WEBHOOK_SECRET.fullmatch(secret):
            raise ChannelError(
                "telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
    telegram = TelegramChannel(app)
    cleanups.append(telegram.close)
    await telegram.check()
    if cfg.mode == "webhook" and webhooks is not None:
        webhooks["telegram"] = telegram
    return telegram.run()


async def _vk(app: Any, cleanups: list[Any]) -> Coroutine[Any, Any, None]:
    from bot.channels.vk import VkChannel

    if not app.settings.vk.group_id:
        raise ChannelError(
            "vk.group_id (NAVBOT_VK__GROUP_ID) is not set: a VK community token needs "
            "the community's numeric id"
        )
    vk = VkChannel(app)
    cleanups.append(vk.close)
    await vk.check()
    return vk.run()


async def run_until_stopped(
    jobs: dict[str, Coroutine[Any, Any, None]], *, console_ends_all: bool = True
) -> int:
    """Run `jobs` until one fails or ends, or SIGTERM / Ctrl+C; with no jobs, until the
    signal alone."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    tasks = {asyncio.create_task(job, name=name): name for name, job in jobs.items()}
    jobs.clear()
    stopper = asyncio.create_task(stop.wait())
    failure: BaseException | None = None
    failed = ""
    try:
        pending = set(tasks)
        if not tasks:
            await stopper
        while pending and not stop.is_set():
            done, pending = await asyncio.wait(
                pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopper)
            for task in done - {stopper}:
                name = tasks[task]
                if not task.cancelled() and task.exception() is not None:
                    failure, failed = task.exception(), name
                    stop.set()
                elif name != "console" or console_ends_all:
                    stop.set()
    finally:
        log.info("shutting down")
        stopper.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    if failure is not None:
        raise ChannelError(f"{failed} channel stopped: {failure}") from failure
    return 0
