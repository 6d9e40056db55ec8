"""`navbot` / `python -m bot`: the command line of the Navigator assistant."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.app import App, build_app
from bot.config import ConfigError, Settings, load_settings
from bot.errors import CliError
from bot.faq_tools import (
    add_ask_arguments,
    add_eval_arguments,
    cmd_ask,
    cmd_faq_check,
    cmd_faq_eval,
)
from texts import TextsError

log = logging.getLogger("navbot")


def _setup_logging(settings: Settings, quiet: bool) -> None:
    from bot import logs

    level = logging.WARNING if quiet else getattr(logging, settings.bot.log_level)
    logs.setup(level, settings.logging.format, sql_echo=settings.database.echo)


async def _with_app(settings: Settings, work: Callable[[App], Awaitable[int]]) -> int:
    app = build_app(settings)
    try:
        return await work(app)
    finally:
        await app.close()


async def cmd_migrate(app: App, args: argparse.Namespace) -> int:
    await app.start()
    print(f"database schema is at revision {await app.db.revision()}")
    return 0


async def cmd_console(app: App, args: argparse.Namespace) -> int:
    await app.start()
    await console_channel(app).run()
    return 0


def console_channel(app: App):
    from bot.channels.console import ConsoleChannel

    cfg = app.settings.console
    return ConsoleChannel(app.engine, app.delivery, user_id=cfg.user_id, user_name=cfg.user_name)


async def cmd_run(app: App, args: argparse.Namespace) -> int:
    from bot.channels.serve import ChannelError, serve_channels
    from bot.roles import check_roles, parse_roles

    roles = parse_roles(getattr(args, "role", None))
    check_roles(roles, app.settings)
    await app.delivery.pacing.check()
    await app.start()
    try:
        return await serve_channels(
            app,
            console_channel(app),
            force_console=getattr(args, "console", False),
            roles=roles,
        )
    except ChannelError as exc:
        raise CliError(str(exc)) from exc


from bot.catalogue_cli import (  # noqa: E402
    cmd_export_requests,
    cmd_import_programs,
    cmd_request_status,
    export_arguments,
    import_arguments,
    status_arguments,
)
from bot.reminders_cli import (  # noqa: E402
    campaign_arguments,
    cmd_campaign,
    cmd_reminders,
    reminders_arguments,
)
from bot.staff_cli import cmd_staff_user, cmd_web, staff_arguments  # noqa: E402

COMMANDS: dict[str, tuple[str, Callable[[App, argparse.Namespace], Awaitable[int]]]] = {
    "run": (
        "start every configured channel (the terminal one when no token is set) "
        "and the staff console",
        cmd_run,
    ),
    "web": ("serve the staff console alone", cmd_web),
    "staff-user": (
        "manage staff console accounts: add, passwd, disable, enable, list",
        cmd_staff_user,
    ),
    "console": ("chat with the bot in this terminal (or script it through stdin)", cmd_console),
    "migrate": ("create or upgrade the database schema", cmd_migrate),
    "ask": ("print the answer the bot would give to a question (or to stdin lines)", cmd_ask),
    "faq-eval": ("score the FAQ knowledge base on a labelled JSONL question file", cmd_faq_eval),
    "faq-check": ("validate the FAQ knowledge base files under texts/faq/", cmd_faq_check),
    "import-programs": (
        "import the program catalogue from a CSV or XLSX file",
        cmd_import_programs,
    ),
    "export-requests": (
        "export enrollment requests as CSV or XLSX (by organisation, municipality, dates)",
        cmd_export_requests,
    ),
    "request-status": (
        "set a request's status as staff and notify the parent",
        cmd_request_status,
    ),
    "reminders": (
        "list due and planned document reminders with counts by state",
        cmd_reminders,
    ),
    "campaign": (
        "send one announcement to parents chosen by filters (asks before sending)",
        cmd_campaign,
    ),
}


# Arguments of the commands that take any: name -> function adding them to its parser.
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--console",
        action="store_true",
        help="also chat in this terminal even when stdin is not one (scripts, tests)",
    )
    parser.add_argument(
        "--role",
        default="all",
        metavar="ROLES",
        help="what this process runs, comma-separated: web (console, webhooks, healthz, "
        "metrics), vk (the VK long-poll reader), max (the MAX long-poll reader), scheduler "
        "(the reminders' ticker leader), delivery (the outbox workers), or all (default). "
        "Several processes need PostgreSQL; see the README's 'Several processes'",
    )


ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "run": add_run_arguments,
    "import-programs": import_arguments,
    "export-requests": export_arguments,
    "request-status": status_arguments,
    "staff-user": staff_arguments,
    "reminders": reminders_arguments,
    "campaign": campaign_arguments,
    "ask": add_ask_arguments,
    "faq-eval": add_eval_arguments,
}


# Commands whose output is the point: log warnings only.
QUIET_COMMANDS = ("console", "ask", "faq-eval", "faq-check", "reminders", "campaign")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="navbot",
        description="The Navigator assistant: a Telegram / VK chatbot for parents.",
    )
    parser.add_argument(
        "-c",
        "--config",
        help="path to config.toml (default: $NAVBOT_CONFIG, or ./config.toml if present, "
        "else embedded defaults)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name in ARGUMENTS:
            ARGUMENTS[name](command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        _setup_logging(
            settings,
            quiet=args.command
            in ("console", "ask", "faq-eval", "faq-check", "staff-user", "reminders", "campaign")
            or sys.stdin.isatty(),
        )
        _, handler = COMMANDS[args.command]
        return asyncio.run(_with_app(settings, lambda app: handler(app, args)))
    except (ConfigError, TextsError, CliError) as exc:
        print(f"navbot: error: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        print(f"navbot: error: database unavailable: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
