"""Greeting, main menu, help, and what to say to anything else (the hotline's contacts are
in handlers/hotline.py)."""

from __future__ import annotations

import re

from handlers.buttons import Grammar
from handlers.core import Button, Context, Incoming, Reply, Router
from storage.events import record_for
from texts import Texts

router = Router("menu")
_DEEP_LINK = re.compile(r"[^A-Za-z0-9_-]")


def menu_rows(texts: Texts, menu_router: Router) -> list[list[Button]]:
    """The buttons of «Главное меню», one a row: what the bot shows and what an operator
    can send from the console."""
    return [[Button(texts(item.label_key), item.payload)] for item in menu_router.menu_items]


def main_menu(ctx: Context, menu_router: Router) -> Reply:
    return Reply(ctx.texts("menu.choose"), menu_rows(ctx.texts, menu_router))


def menu_button(ctx: Context) -> Button:
    return ctx.button("common.to_menu", "menu")


def remember_source(ctx: Context) -> None:
    """Record the deep-link parameter of `/start <param>` (which poster or school brought
    the parent): the first one as the user's source, the latest as start_param."""
    param = _DEEP_LINK.sub("", ctx.args[0])[:64] if ctx.args else ""
    if param:
        ctx.user.start_param = param
        if not ctx.user.source:
            ctx.user.source = param
            record_for(ctx, "source", param)


@router.command("start", description_key="menu.cmd_start")
async def start(incoming: Incoming, ctx: Context) -> None:
    from handlers import linking

    if ctx.args and linking.is_code(ctx.args[0]):
        # A one-time link from another messenger: not a source, and never stored as one.
        await linking.open_link(ctx, ctx.args[0])
        return
    remember_source(ctx)
    ctx.say("menu.greeting")
    from handlers.registration import resume_offer

    resume_offer(ctx)
    ctx.show_menu()


@router.command("menu", description_key="menu.cmd_menu")
@router.button(Grammar("menu"))
async def menu(incoming: Incoming, ctx: Context) -> None:
    if ctx.user.with_person_since is not None:
        # The menu works, but the conversation stays with the person until they finish.
        ctx.say("handoff.menu_note")
    ctx.show_menu()


@router.command("help", description_key="menu.cmd_help")
@router.button(Grammar("help"))
async def help_(incoming: Incoming, ctx: Context) -> None:
    ctx.say("menu.help", [[menu_button(ctx)]])


@router.on_attachment
async def attachment(incoming: Incoming, ctx: Context) -> None:
    ctx.say("menu.not_text", [[menu_button(ctx)]])
