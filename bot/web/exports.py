"""The requests table as CSV or XLSX: Russian headers, dates as dates, and every text cell
safe to open in a spreadsheet: in CSV a cell starting like a formula gets an apostrophe
(bot.catalogue_io.safe_cell); in XLSX every text is stored as a string cell, which a
spreadsheet never evaluates."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalogue_io import safe_cell
from bot.web.queries import RequestFilters, requests_statement
from texts import Region, Texts

COLUMNS = (
    "request",
    "created",
    "updated",
    "status",
    "reason",
    "navigator_id",
    "program",
    "organisation",
    "municipality",
    "child",
    "birth_date",
    "certificate",
    "phone",
    "comment",
    "channel",
)
DATE_FORMAT = "DD.MM.YYYY"
DATETIME_FORMAT = "DD.MM.YYYY HH:MM"


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    # spreadsheets keep no time zone: the region's wall-clock time
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


async def request_records(
    session: AsyncSession, filters: RequestFilters, region: Region, texts: Texts
) -> list[list[Any]]:
    """The whole filtered table (header first) with typed values: int, datetime, date, str."""
    zone = ZoneInfo(region.timezone)
    rows: list[list[Any]] = [[texts(f"staff.export.{name}") for name in COLUMNS]]
    for request, program, child, user in (
        await session.execute(requests_statement(filters, zone))
    ).all():
        municipality = region.municipality(program.municipality_id)
        rows.append(
            [
                request.id,
                _local(request.created_at, zone),
                _local(request.updated_at, zone),
                texts(f"staff.status.{request.status}"),
                request.reason,
                program.navigator_id,
                program.title,
                program.organisation,
                municipality.name if municipality else program.municipality_id,
                child.full_name,
                child.birth_date,
                child.certificate_number or "",
                request.phone,
                request.comment,
                texts(f"staff.channel.{user.channel}")
                if texts.has(f"staff.channel.{user.channel}")
                else user.channel,
            ]
        )
    return rows


def encode(rows: list[list[Any]], fmt: str, sheet_title: str) -> tuple[bytes, str]:
    """The file's bytes and its content type."""
    if fmt == "xlsx":
        return xlsx_bytes(rows, sheet_title), (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    return csv_bytes(rows), "text/csv; charset=utf-8"


def _csv_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return safe_cell(value) if isinstance(value, str) else str(value)


def csv_bytes(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    # ";" is what Excel expects in a Russian locale; the BOM makes it read UTF-8
    writer = csv.writer(buffer, delimiter=";")
    writer.writerows([[_csv_value(value) for value in row] for row in rows])
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(rows: list[list[Any]], sheet_title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title[:31]
    for row in rows:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
            elif isinstance(cell.value, date):
                cell.number_format = DATE_FORMAT
            elif isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text
    widths = [10, 17, 17, 12, 24, 12, 36, 36, 24, 30, 13, 18, 18, 40, 12]
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
