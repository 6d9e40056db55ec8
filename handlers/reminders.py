"""Reminders to bring the documents and confirm the child's data in person.

A parent whose child's data is not confirmed is offered reminders (after the
confirmation dialogue, after adding a child, at the end of the registration
walkthrough). Switched on, they come after the region's cadence of days (2, 5, 10 by
default), only in the region's daytime window and time zone, each naming the
documents and the confirmation points of the parent's municipality. Every reminder
carries «Я подтвердил(а)», «Где подтвердить?», «Напомнить позже» and «Не напоминать»;
typing those words works as well. `/reminders` shows what is planned.

Region profile:

    [reminders]
    cadence_days = [2, 5, 10]   # days after switching on
    daytime = "10:00-20:00"     # local time of the region's `timezone` ("00:00-24:00": any)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.buttons import Grammar, MunicipalityId
from handlers.confirmation import points_parts
from handlers.core import Button, Context, Incoming, Reply, Router
from handlers.menu import menu_button
from handlers.municipality import find_municipality
from handlers.places import candidates
from handlers.understanding import normalise as _norm_label
from storage import reminders as rows
from storage.events import record_for
from storage.models import utcnow
from storage.requests import as_utc
from texts import Region, TextsError

router = Router("reminders")

DEFAULT_CADENCE = (2.0, 5.0, 10.0)
DEFAULT_DAYTIME = (time(10, 0), time(20, 0))
SNOOZE = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """When a region's reminders and campaign messages may go out."""

    cadence_days: tuple[float, ...]
    start: time
    end: time
    zone: ZoneInfo

    def local(self, moment: datetime) -> datetime:
        return as_utc(moment).astimezone(self.zone)

    def is_daytime(self, moment: datetime) -> bool:
        return self.start <= self.local(moment).time() < self.end

    def next_daytime(self, moment: datetime) -> datetime:
        """`moment` itself when it is daytime, else the next start of the window (UTC)."""
        if self.is_daytime(moment):
            return moment
        local = self.local(moment)
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)

    def window(self) -> str:
        end = "24:00" if self.end == time.max else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}-{end}"

    def series(self, start: datetime) -> list[datetime]:
        """The due times of a series switched on at `start`, each moved into daytime."""
        return [self.next_daytime(start + timedelta(days=d)) for d in self.cadence_days]


def _clock_time(value: str, where: str) -> time:
    if value.strip() == "24:00":  # the end of the day
        return time.max
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise TextsError(f"{where}: expected a time as HH:MM, got {value!r}") from None


def policy(region: Region) -> Policy:
    """The region profile's `[reminders]` table with its defaults; TextsError if malformed."""
    where = f"texts/regions/{region.id}.toml [reminders]"
    table = region.extra.get("reminders", {})
    if not isinstance(table, dict):
        raise TextsError(f"{where}: must be a table")
    unknown = sorted(set(table) - {"cadence_days", "daytime"})
    if unknown:
        raise TextsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    cadence = table.get("cadence_days", DEFAULT_CADENCE)
    if (
        not isinstance(cadence, list | tuple)
        or not cadence
        or not all(isinstance(d, int | float) and d > 0 for d in cadence)
        or list(cadence) != sorted(cadence)
    ):
        raise TextsError(f"{where}: cadence_days must be a rising list of days, e.g. [2, 5, 10]")
    start, end = DEFAULT_DAYTIME
    if "daytime" in table:
        text = str(table["daytime"])
        if "-" not in text:
            raise TextsError(f'{where}: daytime must look like "10:00-20:00", got {text!r}')
        first, second = text.split("-", 1)
        start, end = _clock_time(first, where), _clock_time(second, where)
        if not start < end:
            raise TextsError(f"{where}: daytime must start before it ends, got {text!r}")
    try:
        zone = ZoneInfo(region.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TextsError(
            f"texts/regions/{region.id}.toml: unknown timezone {region.timezone!r}"
        ) from None
    return Policy(tuple(float(d) for d in cadence), start, end, zone)


def now(ctx: Context) -> datetime:
    """The current time: the app's clock (a fixed one in tests)."""
    clock = getattr(ctx.services, "clock", None)
    return clock() if clock is not None else utcnow()


def _when(ctx: Context, moment: datetime) -> str:
    local = policy(ctx.region).local(moment)
    return ctx.texts("reminders.date", date=local.strftime("%d.%m"), time=local.strftime("%H:%M"))


def _dates(ctx: Context, planned: list) -> str:
    return ", ".join(_when(ctx, reminder.due_at) for reminder in planned)


# -- what other dialogues call ------------------------------------------------------------
async def offer_rows(ctx: Context) -> list[list[Button]]:
    """The «remind me» button for a parent whose child's data is not confirmed and who has
    no reminders planned; nothing otherwise."""
    if ctx.user.data_confirmed_at is not None:
        return []
    if await rows.planned(ctx.session, ctx.user.id):
        return []
    return [[ctx.button("reminders.offer_button", "remind:on")]]


async def stop_confirmed(ctx: Context) -> None:
    """The parent confirmed the child's data: stop every reminder not yet sent."""
    await rows.stop(ctx.session, ctx.user.id, "confirmed")


def compose(ctx: Context) -> Reply:
    """The reminder as the parent sees it: documents, then the points of their municipality
    (or a request to name it), with the four buttons."""
    parts = [ctx.texts("reminders.title"), ctx.texts("reminders.documents")]
    municipality = ctx.region.municipality(ctx.user.municipality_id)
    if municipality is None:
        parts.append(ctx.texts("reminders.no_municipality"))
    else:
        parts.extend(points_parts(ctx, municipality))
    return Reply("\n\n".join(parts), reminder_rows(ctx))


def reminder_rows(ctx: Context) -> list[list[Button]]:
    return [
        [ctx.button("reminders.done_button", "confirm:done")],
        [ctx.button("reminders.where_button", "confirm:where")],
        [
            ctx.button("reminders.later_button", "remind:later"),
            ctx.button("reminders.stop_button", "remind:stop"),
        ],
    ]


# -- the parent's buttons and commands ----------------------------------------------------
async def switch_on(ctx: Context) -> None:
    ctx.finish()
    if ctx.user.data_confirmed_at is not None:
        await show_status(ctx)
        return
    existing = await rows.planned(ctx.session, ctx.user.id)
    if existing:
        ctx.say(
            "reminders.already_on",
            [[ctx.button("reminders.off_button", "remind:stop")], [menu_button(ctx)]],
            dates=_dates(ctx, existing),
        )
        return
    if ctx.region.municipality(ctx.user.municipality_id) is None:
        ctx.go("remind:muni")
        ctx.say(
            "reminders.ask_municipality",
            [[ctx.button("reminders.skip_municipality", "remind:start")], [menu_button(ctx)]],
        )
        return
    await start_series(ctx)


async def start_series(ctx: Context) -> None:
    ctx.finish()
    rule = policy(ctx.region)
    planned = await rows.plan_series(ctx.session, ctx.user.id, rule.series(now(ctx)))
    ctx.say(
        "reminders.switched_on",
        [[ctx.button("reminders.off_button", "remind:stop")], [menu_button(ctx)]],
        dates=_dates(ctx, planned),
        start=rule.start.strftime("%H:%M"),
        end=rule.end.strftime("%H:%M"),
    )


async def snooze(ctx: Context) -> None:
    ctx.finish()
    if ctx.user.data_confirmed_at is not None:
        await show_status(ctx)
        return
    rule = policy(ctx.region)
    until = rule.next_daytime(now(ctx) + SNOOZE)
    row = await rows.snooze(ctx.session, ctx.user.id, until)
    local = rule.local(row.due_at)
    ctx.say(
        "reminders.snoozed",
        [[ctx.button("reminders.stop_button", "remind:stop")], [menu_button(ctx)]],
        date=local.strftime("%d.%m"),
        time=local.strftime("%H:%M"),
    )


async def opt_out(ctx: Context) -> None:
    ctx.finish()
    stopped = await rows.stop(ctx.session, ctx.user.id, "opted_out")
    if stopped:
        record_for(ctx, "reminder", "opted_out")
    buttons = [[ctx.button("reminders.on_button", "remind:on")], [menu_button(ctx)]]
    ctx.say("reminders.stopped" if stopped else "reminders.stopped_nothing", buttons)


async def show_status(ctx: Context) -> None:
    ctx.finish()
    if ctx.user.data_confirmed_at is not None:
        ctx.say(
            "reminders.status_confirmed",
            [[menu_button(ctx)]],
            date=ctx.user.data_confirmed_at.strftime("%d.%m.%Y"),
        )
        return
    planned = await rows.planned(ctx.session, ctx.user.id)
    if planned:
        ctx.say(
            "reminders.status_on",
            [[ctx.button("reminders.off_button", "remind:stop")], [menu_button(ctx)]],
            n=len(planned),
            dates=_dates(ctx, planned),
        )
    else:
        ctx.say(
            "reminders.status_off",
            [[ctx.button("reminders.on_button", "remind:on")], [menu_button(ctx)]],
        )


@router.command("reminders", description_key="reminders.cmd")
async def reminders_command(incoming: Incoming, ctx: Context) -> None:
    await show_status(ctx)


BUTTONS = Grammar(
    "remind",
    {
        "": {},
        "on": {},
        "start": {},
        "at": {"municipality": MunicipalityId()},
        "later": {},
        "stop": {},
    },
)


@router.button(BUTTONS)
async def reminder_buttons(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    if action == "on":
        await switch_on(ctx)
    elif action == "start":
        await start_series(ctx)
    elif action == "at":
        ctx.user.municipality_id = ctx.pressed["municipality"].id
        await start_series(ctx)
    elif action == "later":
        await snooze(ctx)
    elif action == "stop":
        await opt_out(ctx)
    else:
        await show_status(ctx)


@router.step("remind:muni")
async def municipality_typed(incoming: Incoming, ctx: Context) -> None:
    query = incoming.text.strip()[:100]
    chosen = find_municipality(ctx.region, query)
    if chosen is not None:
        ctx.user.municipality_id = chosen.id
        await start_series(ctx)
        return
    options = [[Button(m.name, f"remind:at:{m.id}")] for m in candidates(ctx.region, query)]
    key = "reminders.not_found" if options else "reminders.not_found_none"
    skip = [ctx.button("reminders.skip_municipality", "remind:start")]
    ctx.say(key, [*options, skip, [menu_button(ctx)]], query=query)


# The reminder's own words typed instead of pressed, whatever was shown last.
_TYPED = {
    "reminders.done_button": "confirm:done",
    "reminders.where_button": "confirm:where",
    "reminders.later_button": "remind:later",
    "reminders.stop_button": "remind:stop",
}


@router.text()
async def typed_reminder_words(incoming: Incoming, ctx: Context) -> bool:
    wanted = _norm_label(incoming.text).rstrip("?!. ")
    for key, payload in _TYPED.items():
        if _norm_label(ctx.texts(key)).rstrip("?!. ") == wanted:
            return await ctx.services.router.dispatch(replace(incoming, payload=payload), ctx)
    return False
