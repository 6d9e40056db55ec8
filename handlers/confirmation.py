"""Confirming the child's data in person: why, which documents, and where — the
confirmation points of the parent's municipality from the region profile, each with
a map link. «Я подтвердил(а) данные» is stored as `User.data_confirmed_at` (the
signal that stops document reminders) and can be undone.

Region profile schema, per municipality:

    [[municipalities.confirmation_points]]
    organisation = "..."   # required
    address = "..."        # required; the map link is a Yandex Maps search for it
    hours = "..."          # optional
    phone = "..."          # optional

and an optional region-wide `[confirmation] note = "..."` shown with the points.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from handlers.core import Button, Context, Incoming, Router
from handlers.hotline import hotline_lines
from handlers.menu import menu_button
from handlers.municipality import find_municipality
from handlers.places import candidates, region_note
from texts import Municipality, Region, TextsError

router = Router("confirmation")
router.menu_item(30, "confirmation.menu_item", "confirm")

MAP_SEARCH_URL = "https://yandex.ru/maps/?text="


@dataclass(frozen=True)
class ConfirmationPoint:
    organisation: str
    address: str
    hours: str = ""
    phone: str = ""

    def map_url(self, region: Region) -> str:
        """A map search for the address; the region's name keeps it from matching elsewhere."""
        query = self.address if region.name in self.address else f"{region.name}, {self.address}"
        return MAP_SEARCH_URL + quote(query, safe="")


def confirmation_points(region: Region, municipality: Municipality) -> list[ConfirmationPoint]:
    """The points listed for `municipality` in the region profile; TextsError if malformed."""
    raw = municipality.extra.get("confirmation_points", [])
    if not isinstance(raw, list):
        raise TextsError(
            f"region profile '{region.id}', municipality '{municipality.id}': "
            "confirmation_points must be a list of [[municipalities.confirmation_points]]"
        )
    points = []
    for index, item in enumerate(raw, start=1):
        where = f"region profile '{region.id}', municipality '{municipality.id}', point #{index}"
        if not isinstance(item, dict):
            raise TextsError(f"{where}: expected a table with organisation and address")
        unknown = sorted(set(item) - {"organisation", "address", "hours", "phone"})
        if unknown:
            raise TextsError(f"{where}: unknown key(s) {', '.join(unknown)}")
        values = {key: str(item.get(key, "")).strip() for key in ("organisation", "address")}
        missing = [key for key, value in values.items() if not value]
        if missing:
            raise TextsError(f"{where}: needs {' and '.join(missing)}")
        points.append(
            ConfirmationPoint(
                organisation=values["organisation"],
                address=values["address"],
                hours=str(item.get("hours", "")).strip(),
                phone=str(item.get("phone", "")).strip(),
            )
        )
    return points


def check_region(region: Region) -> None:
    """Fail at start-up, not mid-dialogue, when the profile's points are malformed."""
    for municipality in region.municipalities:
        confirmation_points(region, municipality)


def _date(ctx: Context) -> str:
    stamp = ctx.user.data_confirmed_at
    return stamp.strftime("%d.%m.%Y") if stamp else ""


async def show_intro(ctx: Context) -> None:
    from handlers.reminders import offer_rows

    ctx.finish()
    rows = [[ctx.button("confirmation.where_button", "confirm:where")]]
    text = ctx.texts("confirmation.intro")
    if ctx.user.data_confirmed_at is not None:
        text += "\n\n" + ctx.texts("confirmation.already", date=_date(ctx))
        rows.append([ctx.button("confirmation.undo_button", "confirm:undo")])
    else:
        rows.append([ctx.button("confirmation.done_button", "confirm:done")])
        rows.extend(await offer_rows(ctx))
    rows.append([menu_button(ctx)])
    ctx.reply(text, rows)


def ask_municipality(ctx: Context) -> None:
    ctx.go("confirm:muni")
    ctx.say("confirmation.ask_municipality", [[menu_button(ctx)]])


def points_parts(ctx: Context, municipality: Municipality) -> list[str]:
    """The confirmation points of `municipality` as paragraphs (or where to find them),
    with the region's note: what the dialogue and the document reminders show."""
    points = confirmation_points(ctx.region, municipality)
    parts = []
    if points:
        parts.append(ctx.texts("confirmation.points_title", name=municipality.name, n=len(points)))
        for point in points:
            lines = [
                ctx.texts(
                    "confirmation.point", organisation=point.organisation, address=point.address
                )
            ]
            if point.hours:
                lines.append(ctx.texts("confirmation.point_hours", hours=point.hours))
            if point.phone:
                lines.append(ctx.texts("confirmation.point_phone", phone=point.phone))
            lines.append(ctx.texts("confirmation.point_map", url=point.map_url(ctx.region)))
            parts.append("\n".join(lines))
        parts.append(ctx.texts("confirmation.also_instructions"))
    else:
        parts.append(
            ctx.texts("confirmation.no_points", name=municipality.name) + "\n" + hotline_lines(ctx)
        )
    note = region_note(ctx.region, "confirmation")
    if note:
        parts.append(note)
    return parts


def show_points(ctx: Context, municipality: Municipality) -> None:
    ctx.finish()
    points = confirmation_points(ctx.region, municipality)
    parts = points_parts(ctx, municipality)
    rows: list[list[Button]] = []
    if ctx.user.data_confirmed_at is None:
        rows.append([ctx.button("confirmation.done_button", "confirm:done")])
    rows.append([ctx.button("confirmation.other_municipality", "confirm:other")])
    if not points:
        rows.append([ctx.button("menu.item_contacts", "contacts")])
    rows.append([menu_button(ctx)])
    ctx.reply("\n\n".join(parts), rows)


def choose(ctx: Context, municipality: Municipality) -> None:
    if ctx.user.municipality_id is None:
        ctx.user.municipality_id = municipality.id
    show_points(ctx, municipality)


@router.button("confirm")
async def confirmation_buttons(incoming: Incoming, ctx: Context) -> None:
    ctx.finish()
    action = ctx.args[0] if ctx.args else ""
    if action == "where":
        current = ctx.region.municipality(ctx.user.municipality_id)
        if current is None:
            ask_municipality(ctx)
        else:
            show_points(ctx, current)
    elif action == "other":
        ask_municipality(ctx)
    elif action == "at" and len(ctx.args) > 1 and ctx.region.municipality(ctx.args[1]):
        choose(ctx, ctx.region.municipality(ctx.args[1]))
    elif action == "done":
        await mark_confirmed(ctx)
    elif action == "undo":
        from handlers.reminders import offer_rows

        ctx.user.data_confirmed_at = None
        ctx.say(
            "confirmation.undone",
            [
                [ctx.button("confirmation.where_button", "confirm:where")],
                [ctx.button("confirmation.done_button", "confirm:done")],
                *await offer_rows(ctx),
                [menu_button(ctx)],
            ],
        )
    else:
        await show_intro(ctx)


async def mark_confirmed(ctx: Context) -> None:
    """«Я подтвердил(а)»: record the date and stop every document reminder not yet sent."""
    from handlers.reminders import now, stop_confirmed

    if ctx.user.data_confirmed_at is None:
        ctx.user.data_confirmed_at = now(ctx)
    await stop_confirmed(ctx)
    ctx.say(
        "confirmation.saved",
        [[ctx.button("confirmation.undo_button", "confirm:undo")], [menu_button(ctx)]],
    )


@router.step("confirm:muni")
async def municipality_typed(incoming: Incoming, ctx: Context) -> None:
    query = incoming.text.strip()[:100]
    chosen = find_municipality(ctx.region, query)
    if chosen is not None:
        choose(ctx, chosen)
        return
    options = [[Button(m.name, f"confirm:at:{m.id}")] for m in candidates(ctx.region, query)]
    key = "confirmation.not_found" if options else "confirmation.not_found_none"
    ctx.say(key, [*options, [menu_button(ctx)]], query=query)
