"""Offering a person when the bot cannot help: the one place to change when a handoff
to a live operator exists. Today it names the region's hotline, the technical support
line and the parent's municipal centre (when the profile has them)."""

from __future__ import annotations

from handlers.core import Button, Context, Reply
from handlers.menu import menu_button


def hotline_lines(ctx: Context) -> str:
    """Who to call, as lines of text: the region's hotline, then the ones the profile adds."""
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
    municipality = region.municipality(ctx.user.municipality_id)
    if municipality is not None and municipality.hotline_phone:
        lines.append(
            ctx.texts("hotline.municipal", name=municipality.name, phone=municipality.hotline_phone)
        )
    return "\n".join(lines)


def offer_person(
    ctx: Context, intro_key: str = "hotline.offer", extra_rows: list[list[Button]] | None = None
) -> Reply:
    """Tell the parent a person can help and how to reach one."""
    text = ctx.texts(intro_key) + "\n\n" + hotline_lines(ctx)
    return ctx.reply(text, person_rows(ctx, extra_rows))


def person_rows(ctx: Context, extra_rows: list[list[Button]] | None = None) -> list[list[Button]]:
    """The buttons under an offer of a person: `extra_rows`, the hotline's contacts, the menu."""
    return [
        *(extra_rows or []),
        [ctx.button("menu.item_contacts", "contacts")],
        [menu_button(ctx)],
    ]


def _capitalised(value: str) -> str:
    return value[:1].upper() + value[1:]
