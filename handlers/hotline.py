"""Offering a person when the bot cannot help (with «Позвать специалиста», handlers/
handoff.py, under every offer), and «Контакты горячей линии». It names the region's centre,
the technical support line and the parent's municipal centre (when the profile has one;
where it has none the profile says the regional centre stands in, and so does the bot)."""

from __future__ import annotations

from handlers.buttons import Grammar, MunicipalityId, Number
from handlers.core import Button, Context, Incoming, Reply, Router
from handlers.menu import menu_button
from handlers.municipality import municipality_buttons
from texts import Municipality

router = Router("hotline")
router.menu_item(90, "menu.item_contacts", "contacts")


def hotline_lines(ctx: Context, municipality: Municipality | None = None) -> str:
    """Who to call, as lines of text: the region's hotline, then the ones the profile adds,
    then the municipal line of `municipality` (by default the parent's own), if it has one."""
    region = ctx.region
    lines = [ctx.texts("hotline.regional")]
    if region.hotline_email:
        lines.append(ctx.texts("hotline.email"))
    extra = region.extra.get("hotline", {})
    if extra.get("tech_support_phone"):
        lines.append(
            ctx.texts(
                "hotline.tech_support",
                name=_capitalised(
                    extra.get("tech_support_name") or ctx.texts("hotline.tech_support_default")
                ),
                phone=extra["tech_support_phone"],
            )
        )
    municipality = municipality or region.municipality(ctx.user.municipality_id)
    if municipality is not None and municipality.hotline is not None:
        lines.append(
            ctx.texts("hotline.municipal", name=municipality.name, phone=municipality.hotline.phone)
        )
    return "\n".join(lines)


def municipal_lines(ctx: Context, municipality: Municipality) -> str:
    """The municipality's own line, or the profile's fallback to the regional centre."""
    line = municipality.hotline
    if line is None:
        return ctx.texts("hotline.municipal_none", name=municipality.name)
    lines = [
        ctx.texts("hotline.municipal_title", name=municipality.name),
        ctx.texts("hotline.municipal_line", name=line.name, phone=line.phone),
    ]
    if line.email:
        lines.append(ctx.texts("hotline.municipal_email", email=line.email))
    if line.hours:
        lines.append(ctx.texts("hotline.municipal_hours", hours=line.hours))
    return "\n".join(lines)


def municipal_follow_up(ctx: Context) -> str:
    """What follows the regional hotline in an answer: the parent's municipal line, the
    stated fallback, or, when the municipality is not known, how to name it."""
    municipality = ctx.region.municipality(ctx.user.municipality_id)
    if municipality is None:
        return ctx.texts("hotline.ask_municipality_faq")
    return municipal_lines(ctx, municipality)


def show_contacts(ctx: Context, municipality: Municipality | None = None) -> None:
    """The regional centre, then the municipal centre of `municipality` (by default the
    parent's own), or a way to name the municipality when it is not known."""
    ctx.finish()
    regional = [ctx.texts("hotline.contacts")]
    if ctx.region.hotline_email:
        regional.append(ctx.texts("hotline.email"))
    regional.append(ctx.texts("hotline.contacts_site"))
    parts = ["\n".join(regional)]
    rows: list[list[Button]] = []
    municipality = municipality or ctx.region.municipality(ctx.user.municipality_id)
    if municipality is None:
        parts.append(ctx.texts("hotline.ask_municipality"))
        rows.append([ctx.button("hotline.pick_button", "contacts:pick:0")])
    else:
        parts.append(municipal_lines(ctx, municipality))
    rows.append([menu_button(ctx)])
    ctx.reply("\n\n".join(parts), rows)


BUTTONS = Grammar(
    "contacts",
    {"": {}, "pick": {"page": Number(0, 1000)}, "at": {"municipality": MunicipalityId()}},
)


@router.button(BUTTONS)
async def contacts(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    if action == "pick":
        rows, page, pages = municipality_buttons(
            ctx, ctx.pressed["page"], "contacts:at", "contacts:pick"
        )
        ctx.say("hotline.pick", [*rows, [menu_button(ctx)]], page=page + 1, pages=pages)
    elif action == "at":
        chosen = ctx.pressed["municipality"]
        if ctx.user.municipality_id is None:
            ctx.user.municipality_id = chosen.id
        show_contacts(ctx, chosen)
    else:
        show_contacts(ctx)


def offer_person(
    ctx: Context, intro_key: str = "hotline.offer", extra_rows: list[list[Button]] | None = None
) -> Reply:
    """Tell the parent a person can help and how to reach one."""
    text = ctx.texts(intro_key) + "\n\n" + hotline_lines(ctx)
    return ctx.reply(text, person_rows(ctx, extra_rows))


def person_rows(
    ctx: Context, extra_rows: list[list[Button]] | None = None, person: str = "person"
) -> list[list[Button]]:
    """The buttons under an offer of a person: `extra_rows`, «Позвать специалиста» (a
    person of the hotline answers in this chat; `person` is its payload), the hotline's
    contacts, the menu."""
    from handlers.handoff import person_button

    return [
        *(extra_rows or []),
        [person_button(ctx, person)],
        [ctx.button("menu.item_contacts", "contacts")],
        [menu_button(ctx)],
    ]


def _capitalised(value: str) -> str:
    return value[:1].upper() + value[1:]
