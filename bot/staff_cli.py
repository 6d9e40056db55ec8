"""`navbot staff-user add|passwd|disable|enable|list`: console accounts, and `navbot web`:
the staff console alone.

There is no default account or password: the first admin is created with
`navbot staff-user add LOGIN --role admin`. The password is read without echo from the
terminal (asked twice), or as the first line of stdin when a script pipes it in.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from bot.errors import CliError
from storage.models import STAFF_ROLES
from storage.staff import (
    StaffError,
    add_staff,
    find_staff,
    list_staff,
    set_active,
    set_password,
)

if TYPE_CHECKING:
    from bot.app import App


def staff_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("login")
    add.add_argument("--role", choices=STAFF_ROLES, default="operator")
    for name, text in (
        ("passwd", "set an account's password (signs its sessions out)"),
        ("disable", "stop an account from signing in (signs its sessions out)"),
        ("enable", "let a disabled account sign in again"),
    ):
        sub.add_parser(name, help=text).add_argument("login")
    sub.add_parser("list", help="list the accounts")


def read_password(prompt: str = "Password: ") -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Repeat the password: ") != first:
            raise CliError("the passwords do not match")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CliError("no password on stdin")
    return line.rstrip("\r\n")


async def cmd_staff_user(app: App, args: argparse.Namespace) -> int:
    await app.db.migrate()
    try:
        if args.action == "list":
            async with app.db.session() as session:
                users = await list_staff(session)
            if not users:
                print("no accounts yet: navbot staff-user add LOGIN --role admin")
            for user in users:
                state = "active" if user.active else "disabled"
                print(f"{user.login}\t{user.role}\t{state}\tcreated {user.created_at:%Y-%m-%d}")
            return 0
        if args.action == "add":
            password = read_password()
            async with app.db.session() as session:
                await add_staff(session, args.login, password, args.role)
            print(f"account {args.login.strip().lower()} ({args.role}) created")
            return 0
        async with app.db.session() as session:
            user = await find_staff(session, args.login)
        if user is None:
            raise CliError(f"no account {args.login!r}")
        password = read_password("New password: ") if args.action == "passwd" else ""
        async with app.db.session() as session:
            user = await find_staff(session, args.login)
            assert user is not None
            if args.action == "passwd":
                await set_password(session, user, password)
            else:
                await set_active(session, user, args.action == "enable")
        done = {"passwd": "password changed", "disable": "disabled", "enable": "enabled"}
        print(f"account {user.login}: {done[args.action]}")
        return 0
    except StaffError as exc:
        raise CliError(str(exc)) from None


async def cmd_web(app: App, args: argparse.Namespace) -> int:
    """The console without the messengers' polling; status notices still reach parents
    through send-only channels."""
    from bot.channels.serve import messenger_senders, run_until_stopped
    from bot.web import address, create_web_app, serve

    await app.start()
    web = app.settings.web
    async with messenger_senders(app):
        runner = await serve(create_web_app(app), web.host, web.port)
        print(f"staff console on {address(runner)}", file=sys.stderr, flush=True)
        try:
            return await run_until_stopped({})
        finally:
            await runner.cleanup()
