"""Import the program catalogue from CSV / XLSX; export enrollment requests to CSV / XLSX.

Import columns (header row; comment lines starting with "#" above it are skipped):
navigator_id, title, organisation, municipality (id or name from the region profile),
address, direction (technical, science, sports, arts, tourism, social, or the
Russian name), age_from, age_to, funding (free, certificate, pf), price (roubles,
required for pf), schedule, places_left, url, sample (yes/no). A program is keyed
by navigator_id: a known id with other values is updated, the same values leave it
unchanged, so importing one file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from tqdm import tqdm

from handlers.municipality import find_municipality
from storage.catalogue import normalise, search_text
from storage.db import Database
from storage.models import DIRECTIONS, FUNDINGS, Child, EnrollmentRequest, Program, utcnow
from storage.requests import as_utc
from texts import TEXTS_DIR, Region, Texts

log = logging.getLogger(__name__)

SAMPLE_DIR = TEXTS_DIR / "catalogue"
REQUIRED = (
    "navigator_id",
    "title",
    "organisation",
    "municipality",
    "direction",
    "age_from",
    "age_to",
    "funding",
    "url",
)
# Every column of a catalogue file, in the order the shipped sample writes them.
COLUMNS = (
    "navigator_id",
    "title",
    "organisation",
    "municipality",
    "address",
    "direction",
    "age_from",
    "age_to",
    "funding",
    "price",
    "schedule",
    "places_left",
    "url",
    "sample",
)
FIELDS = (
    "title",
    "organisation",
    "municipality_id",
    "address",
    "direction",
    "age_from",
    "age_to",
    "funding",
    "price",
    "schedule",
    "places_left",
    "url",
    "sample",
)
# Show a progress bar from this many rows on (and only on a terminal).
PROGRESS_FROM = 500
INSERT_BATCH = 1000
IMPORT_LOCK_ID = 726_005


class CatalogueFileError(Exception):
    """The file cannot be imported at all (unreadable, unknown format, missing columns)."""


class RowError(ValueError):
    """One row is rejected; the message says why."""


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"rejected {len(self.rejected)}"
        )

    def lines(self) -> list[str]:
        return [self.summary()] + [
            f"  line {line}: rejected: {reason}" for line, reason in self.rejected
        ]


# -- reading ---------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_preamble(cells: list[str]) -> bool:
    return not any(cells) or cells[0].startswith("#")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number in the file, {column: value}) for every data row."""
    if not path.exists():
        raise CatalogueFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path)
    else:
        raise CatalogueFileError(f"{path}: expected a .csv or .xlsx file")
    header: list[str] | None = None
    for line, cells in rows:
        if header is None:
            if _is_preamble(cells):
                continue
            header = [c.strip().lower() for c in cells]
            missing = [name for name in REQUIRED if name not in header]
            if missing:
                raise CatalogueFileError(
                    f"{path}: line {line}: missing column(s) {', '.join(missing)}"
                )
            continue
        if not any(cells):
            continue
        yield line, {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(header)}
    if header is None:
        raise CatalogueFileError(f"{path}: no header row")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="cp1251")
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and _is_preamble([lines[skip].strip()]):
        skip += 1
    sample = "".join(lines[skip : skip + 5])
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines[skip:], dialect)
    for cells in reader:
        yield reader.line_num + skip, [c.strip() for c in cells]


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise CatalogueFileError(f"{path}: not a readable XLSX file: {exc}") from None
    try:
        for line, values in enumerate(book.active.iter_rows(values_only=True), start=1):
            yield line, [_cell(v) for v in values]
    finally:
        book.close()


# -- parsing one row -------------------------------------------------------------------------
def _int(raw: dict[str, str], name: str, low: int, high: int, *, required: bool) -> int | None:
    value = raw.get(name, "").replace(" ", "").replace("\u00a0", "").replace(",", ".")
    if not value:
        if required:
            raise RowError(f"{name} is empty")
        return None
    try:
        parsed = float(value)
    except ValueError:
        parsed = float("nan")
    if not parsed.is_integer():
        raise RowError(f"{name} must be a whole number, got {raw[name]!r}")
    number = int(parsed)
    if not low <= number <= high:
        raise RowError(f"{name} must be from {low} to {high}, got {number}")
    return number


def _text(raw: dict[str, str], name: str, limit: int, *, required: bool) -> str:
    value = " ".join(raw.get(name, "").split())
    if required and not value:
        raise RowError(f"{name} is empty")
    if len(value) > limit:
        raise RowError(f"{name} is longer than {limit} characters")
    return value


class ProgramParser:
    def __init__(self, region: Region, texts: Texts) -> None:
        self.region = region
        self.directions = {code: code for code in DIRECTIONS}
        for code in DIRECTIONS:
            self.directions[normalise(texts(f"catalogue.dir.{code}"))] = code

    def __call__(self, raw: dict[str, str]) -> dict[str, Any]:
        navigator_id = _text(raw, "navigator_id", 32, required=True)
        municipality_raw = _text(raw, "municipality", 255, required=True)
        municipality = self.region.municipality(municipality_raw) or find_municipality(
            self.region, municipality_raw
        )
        if municipality is None:
            raise RowError(f"unknown municipality {municipality_raw!r} in {self.region.id}")
        direction = self.directions.get(normalise(raw.get("direction", "")))
        if direction is None:
            raise RowError(
                f"unknown direction {raw.get('direction', '')!r} "
                f"(expected one of {', '.join(DIRECTIONS)})"
            )
        age_from = _int(raw, "age_from", 0, 18, required=True)
        age_to = _int(raw, "age_to", 0, 18, required=True)
        assert age_from is not None and age_to is not None
        if age_from > age_to:
            raise RowError(f"age_from {age_from} is greater than age_to {age_to}")
        funding = raw.get("funding", "").strip().lower()
        if funding not in FUNDINGS:
            raise RowError(f"unknown funding {funding!r} (expected one of {', '.join(FUNDINGS)})")
        price = _int(raw, "price", 0, 10_000_000, required=funding == "pf")
        url = _text(raw, "url", 500, required=True)
        if not url.startswith(("https://", "http://")):
            raise RowError(f"url must start with https://, got {url!r}")
        title = _text(raw, "title", 255, required=True)
        organisation = _text(raw, "organisation", 255, required=True)
        address = _text(raw, "address", 255, required=False)
        return {
            "navigator_id": navigator_id,
            "title": title,
            "organisation": organisation,
            "municipality_id": municipality.id,
            "address": address,
            "direction": direction,
            "age_from": age_from,
            "age_to": age_to,
            "funding": funding,
            "price": price if funding == "pf" else None,
            "schedule": _text(raw, "schedule", 255, required=False),
            "places_left": _int(raw, "places_left", 0, 100_000, required=False),
            "url": url,
            "sample": raw.get("sample", "").strip().lower() in ("yes", "y", "true", "1"),
            "search_text": search_text(title, organisation, address),
        }


# -- import ----------------------------------------------------------------------------------
async def import_programs(
    db: Database,
    region: Region,
    texts: Texts,
    path: Path,
    *,
    progress: bool = False,
) -> ImportReport:
    """Add new programs, update changed ones; every bad row is reported, none is half-saved."""
    report = ImportReport()
    parse = ProgramParser(region, texts)
    rows = list(read_rows(path))
    seen: dict[str, int] = {}
    bar = tqdm(
        total=len(rows),
        desc="import",
        unit="row",
        file=sys.stderr,
        disable=not progress or len(rows) < PROGRESS_FROM,
    )
    async with db.session() as session:
        if db.dialect == "postgresql":
            # Two imports at once (e.g. workers loading the sample) run one after the other.
            await session.execute(text(f"SELECT pg_advisory_xact_lock({IMPORT_LOCK_ID})"))
        existing = {p.navigator_id: p for p in await session.scalars(select(Program))}
        new_rows: list[dict[str, Any]] = []
        for line, raw in rows:
            bar.update()
            try:
                values = parse(raw)
            except RowError as exc:
                report.rejected.append((line, str(exc)))
                continue
            key = values["navigator_id"]
            if key in seen:
                report.rejected.append((line, f"navigator_id {key} repeats line {seen[key]}"))
                continue
            seen[key] = line
            program = existing.get(key)
            if program is None:
                new_rows.append({**values, "updated_at": utcnow()})
                report.added += 1
            elif any(getattr(program, name) != values[name] for name in FIELDS):
                for name, value in values.items():
                    setattr(program, name, value)
                program.updated_at = utcnow()
                report.updated += 1
            else:
                report.unchanged += 1
        table = Program.__table__
        for start in range(0, len(new_rows), INSERT_BATCH):
            await session.execute(table.insert(), new_rows[start : start + INSERT_BATCH])
    bar.close()
    return report


def sample_file(region: Region) -> Path:
    return SAMPLE_DIR / f"{region.id}.csv"


async def load_sample_if_empty(db: Database, region: Region, texts: Texts) -> ImportReport | None:
    """Import the region's shipped sample catalogue when no program is stored yet."""
    async with db.session() as session:
        count = await session.scalar(select(func.count()).select_from(Program))
    if count:
        return None
    path = sample_file(region)
    if not path.exists():
        log.info("catalogue is empty and region %s ships no sample catalogue", region.id)
        return None
    report = await import_programs(db, region, texts, path)
    log.info("catalogue was empty: imported the sample catalogue %s (%s)", path, report.summary())
    return report


# -- export ----------------------------------------------------------------------------------
EXPORT_COLUMNS = (
    "request",
    "created",
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
)


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CatalogueFileError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


async def request_rows(
    db: Database,
    region: Region,
    texts: Texts,
    *,
    organisation: str | None = None,
    municipality: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[list[str]]:
    """The requests to export (header first), dates taken in the region's time zone."""
    zone = ZoneInfo(region.timezone)
    query = (
        select(EnrollmentRequest, Program, Child)
        .join(Program, EnrollmentRequest.program_id == Program.id)
        .join(Child, EnrollmentRequest.child_id == Child.id)
        .order_by(EnrollmentRequest.created_at, EnrollmentRequest.id)
    )
    if municipality:
        found = region.municipality(municipality) or find_municipality(region, municipality)
        if found is None:
            raise CatalogueFileError(f"unknown municipality {municipality!r} in {region.id}")
        query = query.where(Program.municipality_id == found.id)
    if date_from:
        query = query.where(
            EnrollmentRequest.created_at
            >= datetime.combine(date_from, time(), zone).astimezone(UTC)
        )
    if date_to:
        end = datetime.combine(date_to + timedelta(days=1), time(), zone).astimezone(UTC)
        query = query.where(EnrollmentRequest.created_at < end)
    rows = [[texts(f"requests.export.{name}") for name in EXPORT_COLUMNS]]
    async with db.session() as session:
        for request, program, child in (await session.execute(query)).all():
            # Matched here, not in SQL: SQLite's lower() leaves Cyrillic letters as they are.
            if organisation and organisation.casefold() not in program.organisation.casefold():
                continue
            muni = region.municipality(program.municipality_id)
            rows.append(
                [
                    str(request.id),
                    as_utc(request.created_at).astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    texts(f"requests.status.{request.status}"),
                    request.reason,
                    program.navigator_id,
                    program.title,
                    program.organisation,
                    muni.name if muni else program.municipality_id,
                    child.full_name,
                    child.birth_date.strftime("%d.%m.%Y"),
                    child.certificate_number or "",
                    request.phone,
                    request.comment,
                ]
            )
    return rows


# A cell starting with one of these is taken for a formula by spreadsheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """A text cell for CSV that a spreadsheet shows as text: «=HYPERLINK(...)» becomes
    «'=HYPERLINK(...)», as OWASP recommends."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def write_rows(rows: list[list[str]], target: Path | None, fmt: str, stdout: TextIO) -> None:
    """CSV cells are escaped with safe_cell(); XLSX cells are all strings (never formulas)."""
    if fmt == "xlsx":
        from openpyxl import Workbook

        if target is None:
            raise CatalogueFileError("XLSX needs an output file: --output FILE.xlsx")
        book = Workbook()
        sheet = book.active
        for row in rows:
            sheet.append(row)
        for sheet_row in sheet.iter_rows():
            for cell in sheet_row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
        book.save(target)
        return
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[safe_cell(cell) for cell in row] for row in rows])
    if target is None:
        stdout.write(buffer.getvalue())
    else:
        target.write_text(buffer.getvalue(), encoding="utf-8-sig")
