"""Confirming the child's data in person: why, which documents, and where — the
confirmation points of the parent's municipality from the region profile, each with
a map link, or, where the profile lists none, its stated fallback: the regional
centre's contacts. «Я подтвердил(а) данные» is stored as `User.data_confirmed_at`
(the signal that stops document reminders) and can be undone.

The points, with the page each was published on and the day it was found there, are
read and checked with the profile (texts/__init__.py, `ConfirmationPoint`); an
optional region-wide `[confirmation] note = "..."` is shown with the points.
"""

from __future__ import annotations

from handlers.buttons import Grammar, MunicipalityId
from handlers.core import Button, Context, Incoming, Router
from handlers.hotline import hotline_lines
from handlers.menu import menu_button
from handlers.municipality import find_municipality
from handlers.places import address_line, candidates, map_url, region_note
from storage.events import record_for
from storage.reminders import reminded
from texts import ConfirmationPoint, Municipality, Region, TextsError

router = Router("confirmation")
router.menu_item(30, "confirmation.menu_item", "confirm")


def confirmation_points(region: Region, municipality: Municipality) -> list[ConfirmationPoint]:
    """The points listed for `municipality` in the region profile."""
    return list(municipality.confirmation_points)


def check_region(region: Region) -> None:
    """Fail at start-up, not mid-dialogue: every municipality has points or sends parents,
    as its profile says, to the regional centre (load_region checks each point's fields)."""
    bare = [
        m.id for m in region.municipalities if not m.confirmation_points and not m.regional_fallback
    ]
    if bare:
        raise TextsError(
            f"region profile '{region.id}': municipality {', '.join(bare)} has no confirmation "
            'points and no fallback = "regional"'
        )


def point_text(ctx: Context, municipality: Municipality, point: ConfirmationPoint) -> str:
    address = address_line(point.address, municipality)
    lines = [ctx.texts("confirmation.point", organisation=point.organisation, address=address)]
    if point.hours:
        lines.append(ctx.texts("confirmation.point_hours", hours=point.hours))
    if point.phone:
        lines.append(ctx.texts("confirmation.point_phone", phone=point.phone))
    lines.append(ctx.texts("confirmation.point_map", url=map_url(ctx.region, address)))
    return "\n".join(lines)


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
    """The confirmation points of `municipality` as paragraphs (or where to find them):
    what the dialogue and the document reminders show."""
    points = municipality.confirmation_points
    parts = []
    if points:
        parts.append(ctx.texts("confirmation.points_title", name=municipality.name, n=len(points)))
        parts.extend(point_text(ctx, municipality, point) for point in points)
        parts.append(ctx.texts("confirmation.also_instructions"))
        note = region_note(ctx.region, "confirmation")
        if note:
            parts.append(note)
    else:
        # The profile's stated fallback: the regional centre stands in for the municipality.
        parts.append(
            ctx.texts("confirmation.no_points", name=municipality.name)
            + "\n"
            + hotline_lines(ctx, municipality)
        )
        parts.append(ctx.texts("confirmation.fallback_more"))
    return parts


def show_points(ctx: Context, municipality: Municipality) -> None:
    ctx.finish()
    points = municipality.confirmation_points
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


BUTTONS = Grammar(
    "confirm",
    {
        "": {},
        "where": {},
        "other": {},
        "at": {"municipality": MunicipalityId()},
        "done": {},
        "undo": {},
    },
)


@router.button(BUTTONS)
async def confirmation_buttons(incoming: Incoming, ctx: Context) -> None:
    ctx.finish()
    action = ctx.pressed.action
    if action == "where":
        current = ctx.region.municipality(ctx.user.municipality_id)
        if current is None:
            ask_municipality(ctx)
        else:
            show_points(ctx, current)
    elif action == "other":
        ask_municipality(ctx)
    elif action == "at":
        choose(ctx, ctx.pressed["municipality"])
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
        record_for(ctx, "data_confirmed")
        if await reminded(ctx.session, ctx.user.id):
            record_for(ctx, "reminder", "confirmed")
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
