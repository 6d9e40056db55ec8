"""CLI commands of the catalogue and requests: import-programs, export-requests, request-status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.catalogue_io import (
    CatalogueFileError,
    import_programs,
    parse_day,
    request_rows,
    write_rows,
)
from bot.errors import CliError
from storage.requests import STAFF_STATUSES, StatusChangeError

if TYPE_CHECKING:
    from bot.app import App


def import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="catalogue file, .csv or .xlsx")


async def cmd_import_programs(app: App, args: argparse.Namespace) -> int:
    # Only the schema: the sample catalogue is not loaded into a database being filled.
    await app.db.migrate()
    try:
        report = await import_programs(
            app.db, app.region, app.texts, args.file, progress=sys.stderr.isatty()
        )
    except CatalogueFileError as exc:
        raise CliError(str(exc)) from None
    print("\n".join(report.lines()))
    return 0


def export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--organisation", help="only programs of organisations containing this")
    parser.add_argument("--municipality", help="only programs in this municipality (id or name)")
    parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--format", choices=("csv", "xlsx"), help="default: by the file suffix")
    parser.add_argument("-o", "--output", type=Path, help="file to write (CSV: default stdout)")


async def cmd_export_requests(app: App, args: argparse.Namespace) -> int:
    await app.db.migrate()
    fmt = args.format or ("xlsx" if args.output and args.output.suffix == ".xlsx" else "csv")
    try:
        rows = await request_rows(
            app.db,
            app.region,
            app.texts,
            organisation=args.organisation,
            municipality=args.municipality,
            date_from=parse_day(args.date_from) if args.date_from else None,
            date_to=parse_day(args.date_to) if args.date_to else None,
        )
        write_rows(rows, args.output, fmt, sys.stdout)
    except CatalogueFileError as exc:
        raise CliError(str(exc)) from None
    print(f"{len(rows) - 1} request(s) exported", file=sys.stderr)
    return 0


def status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request_id", type=int, help="the request number")
    parser.add_argument("status", choices=STAFF_STATUSES)
    parser.add_argument("--reason", default="", help="why (required for rejected)")


async def cmd_request_status(app: App, args: argparse.Namespace) -> int:
    from bot.channels.serve import messenger_senders

    await app.db.migrate()
    async with messenger_senders(app):
        try:
            change = await app.services.request_status.change(
                args.request_id, args.status, args.reason
            )
        except StatusChangeError as exc:
            raise CliError(str(exc)) from None
    told = (
        "parent notified"
        if change.notified
        else "parent not reached from this process; the notice is kept in their transcript "
        "and the new status shows in their list of requests"
    )
    print(f"request {change.request_id}: {change.before} -> {change.after} ({told})")
    return 0
