"""When the region's hotline staff answer in the chat: the `[working_hours]` table of a
region profile, in the region's time zone, with its holidays and working weekend days.

    [working_hours]
    mon = "09:00-18:00"        # a day not listed (or "") is a day off
    ...
    fri = "09:00-17:00"
    holidays = [2027-01-01]    # days off on a working weekday
    workdays = []              # weekend days worked (with the hours of `workday_hours`)
    workday_hours = "09:00-18:00"
    zone_label = "по московскому времени"   # how the parent is told the time zone

A profile without the table has no working hours: the parent is never told to wait.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from texts import Region, TextsError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_KEYS = {*DAYS, "holidays", "workdays", "workday_hours", "zone_label"}


@dataclass(frozen=True)
class WorkingHours:
    zone: ZoneInfo
    # Per weekday (0 = Monday): (opens, closes) local times, or None for a day off.
    week: tuple[tuple[dt.time, dt.time] | None, ...]
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    workdays: frozenset[dt.date] = field(default_factory=frozenset)
    workday_hours: tuple[dt.time, dt.time] | None = None
    zone_label: str = ""

    def hours_on(self, day: dt.date) -> tuple[dt.time, dt.time] | None:
        if day in self.holidays:
            return None
        if day in self.workdays:
            return self.workday_hours or self.week[0]
        return self.week[day.weekday()]

    def is_open(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.zone)
        hours = self.hours_on(local.date())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def next_opening(self, moment: dt.datetime) -> dt.datetime | None:
        """None when the centre works at `moment`; else when it opens next (local time of
        the region), within a year."""
        if self.is_open(moment):
            return None
        local = moment.astimezone(self.zone)
        for ahead in range(0, 370):
            day = local.date() + dt.timedelta(days=ahead)
            hours = self.hours_on(day)
            if hours is None:
                continue
            opens = dt.datetime.combine(day, hours[0], self.zone)
            if opens > local:
                return opens
        return None


def _span(where: str, value: Any) -> tuple[dt.time, dt.time] | None:
    if value in ("", None):
        return None
    found = _SPAN.match(str(value).strip())
    if not found:
        raise TextsError(f'{where}: expected hours like "09:00-18:00", got {value!r}')
    h1, m1, h2, m2 = (int(part) for part in found.groups())
    opens = dt.time(h1, m1)
    closes = dt.time.max if (h2, m2) >= (24, 0) else dt.time(h2, m2)
    if closes <= opens:
        raise TextsError(f"{where}: the hours {value!r} end before they start")
    return opens, closes


def _dates(where: str, value: Any) -> frozenset[dt.date]:
    if not isinstance(value, list):
        raise TextsError(f"{where}: expected a list of dates like [2027-01-01]")
    days = set()
    for item in value:
        if isinstance(item, dt.datetime):
            item = item.date()
        if not isinstance(item, dt.date):
            try:
                item = dt.date.fromisoformat(str(item))
            except ValueError:
                raise TextsError(f"{where}: {item!r} is not a date like 2027-01-01") from None
        days.add(item)
    return frozenset(days)


def working_hours(region: Region) -> WorkingHours | None:
    """The region's working hours, or None when its profile states none; a malformed
    table raises TextsError naming the key."""
    table = region.extra.get("working_hours")
    if table is None:
        return None
    where = f"texts/regions/{region.id}.toml [working_hours]"
    if not isinstance(table, Mapping):
        raise TextsError(f"{where}: must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise TextsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    try:
        zone = ZoneInfo(region.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TextsError(f"texts/regions/{region.id}.toml: unknown timezone") from None
    week = tuple(_span(f"{where} {day}", table.get(day)) for day in DAYS)
    if not any(week):
        raise TextsError(f"{where}: no working day listed")
    return WorkingHours(
        zone=zone,
        week=week,
        holidays=_dates(f"{where} holidays", table.get("holidays", [])),
        workdays=_dates(f"{where} workdays", table.get("workdays", [])),
        workday_hours=_span(f"{where} workday_hours", table.get("workday_hours")),
        zone_label=str(table.get("zone_label", "")).strip(),
    )
