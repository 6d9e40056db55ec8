"""Personal data only in the messengers the operator allows, and one parent across
Telegram, VK and MAX.

A state-run centre may not take personal data through a foreign messenger (149-ФЗ
ст. 10 ч. 8): `[bot] personal_data_channels` (or the region profile's
`personal_data_channels`) names where the bot may ask for consent, a child's data, a
phone or a request. Elsewhere, at that point, the bot says why it cannot take them
here and gives link buttons into the allowed messengers carrying a one-time code; the
code opened there (`/start <code>`) links the two conversations and continues the step
with what the parent had chosen. The same links connect conversations from the menu.
"""

from __future__ import annotations

from typing import Any

from handlers.buttons import Grammar
from handlers.core import Button, Context, Incoming, Reply, Router
from storage.linking import issue_code, looks_like_code, redeem
from storage.outbox import PersonalDataGuard

router = Router("linking")
router.menu_item(95, "linking.menu_item", "link")
BUTTONS = Grammar("link", {"": {}})
CHANNELS = ("telegram", "vk", "max")


# -- where personal data may be taken -------------------------------------------------------
def pd_channels_for(settings: Any, region: Any) -> tuple[str, ...]:
    """The channels where personal data are collected, in a fixed order."""
    chosen = region.extra.get("personal_data_channels") if region is not None else None
    if chosen is None:
        chosen = settings.bot.personal_data_channels
    if chosen is None:
        return CHANNELS
    return tuple(channel for channel in CHANNELS if channel in chosen)


def pd_channels(ctx: Context) -> tuple[str, ...]:
    return pd_channels_for(ctx.services.settings, ctx.region)


def pd_allowed(ctx: Context) -> bool:
    """Whether personal data may be taken in this conversation's messenger (the local
    terminal channel is not a messenger: always)."""
    channel = ctx.incoming.channel
    return channel not in CHANNELS or channel in pd_channels(ctx)


def deep_link(settings: Any, channel: str, code: str) -> str | None:
    """The link that opens this bot in `channel` with `code`, or None if it has no name."""
    if channel == "max" and settings.max.bot_username:
        return f"https://max.ru/{settings.max.bot_username}?start={code}"
    if channel == "vk" and (settings.vk.group_screen_name or settings.vk.group_id):
        name = settings.vk.group_screen_name or f"club{settings.vk.group_id}"
        return f"https://vk.me/{name}?ref={code}"
    if channel == "telegram" and settings.telegram.bot_username:
        return f"https://t.me/{settings.telegram.bot_username}?start={code}"
    return None


def _reachable(settings: Any, channel: str) -> bool:
    return deep_link(settings, channel, "x") is not None


def pd_targets(settings: Any, region: Any, here: str) -> list[str]:
    """The other messengers where personal data are taken and a link can be made."""
    return [
        channel
        for channel in pd_channels_for(settings, region)
        if channel != here and _reachable(settings, channel)
    ]


def channel_names(texts: Any, channels: list[str]) -> str:
    names = [texts(f"linking.channel.{channel}") for channel in channels]
    if len(names) <= 1:
        return "".join(names)
    return texts("linking.or", first=", ".join(names[:-1]), last=names[-1])


async def link_buttons(
    session: Any, settings: Any, texts: Any, user: Any, channels: list[str], carry: dict, label: str
) -> list[list[Button]]:
    """One row per messenger, each a link carrying one shared one-time code."""
    if not channels:
        return []
    code = await issue_code(session, user, carry, settings.bot.link_code_minutes)
    rows = []
    for channel in channels:
        url = deep_link(settings, channel, code)
        assert url is not None
        rows.append([Button(texts(label, messenger=texts(f"linking.channel.{channel}")), url)])
    return rows


async def offer_elsewhere(ctx: Context, then: str | None) -> Reply:
    """Say why personal data cannot be taken here and offer to go on in an allowed
    messenger with what the parent had chosen; returns the reply (callers add rows)."""
    from handlers.menu import menu_button

    ctx.finish()
    here = ctx.incoming.channel
    targets = pd_targets(ctx.services.settings, ctx.region, here)
    program = None
    if then and then.startswith("req:new:"):
        program = then.rsplit(":", 1)[1]
    carry = {"municipality": ctx.user.municipality_id, "program": program, "then": then}
    rows = await link_buttons(
        ctx.session, ctx.services.settings, ctx.texts, ctx.user, targets, carry, "linking.btn_go"
    )
    allowed = [c for c in pd_channels(ctx) if c != here]
    key = "linking.not_here" if rows else "linking.not_here_no_link"
    rows.append([menu_button(ctx)])
    return ctx.say(
        key,
        rows,
        here=ctx.texts(f"linking.channel.{here}"),
        there=channel_names(ctx.texts, allowed or list(CHANNELS)),
    )


async def refuse_here(ctx: Context, then: str | None) -> bool:
    """True (and the offer said) when personal data may not be taken in this channel."""
    if pd_allowed(ctx):
        return False
    await offer_elsewhere(ctx, then)
    return True


# -- linking from the menu ------------------------------------------------------------------
@router.button(BUTTONS)
async def link_menu(incoming: Incoming, ctx: Context) -> None:
    from handlers.menu import menu_button

    settings = ctx.services.settings
    here = incoming.channel
    others = [c for c in CHANNELS if c != here and _reachable(settings, c)]
    carry = {"municipality": ctx.user.municipality_id, "program": None, "then": None}
    rows = await link_buttons(
        ctx.session, settings, ctx.texts, ctx.user, others, carry, "linking.btn_link"
    )
    rows.append([menu_button(ctx)])
    ctx.say(
        "linking.link_intro" if len(rows) > 1 else "linking.link_none",
        rows,
        minutes=settings.bot.link_code_minutes,
    )


# -- a code opened in the other messenger ---------------------------------------------------
def is_code(text: str) -> bool:
    return looks_like_code(text)


async def open_link(ctx: Context, code: str) -> None:
    """`/start <code>`: link this conversation with the code's and go on where the
    parent was; a code unknown, used, expired or opened in the same messenger links
    nothing and says so."""
    result = await redeem(ctx.session, code, ctx.user)
    if result.problem:
        ctx.say(f"linking.code_{result.problem}")
        ctx.show_menu()
        return
    carry = result.carry
    if carry.get("municipality") and not ctx.user.municipality_id:
        if ctx.region.municipality(carry["municipality"]) is not None:
            ctx.user.municipality_id = carry["municipality"]
    assert result.origin is not None
    ctx.say("linking.linked", there=ctx.texts(f"linking.channel.{result.origin.channel}"))
    await continue_step(ctx, carry.get("then"))


async def continue_step(ctx: Context, then: str | None) -> None:
    from handlers import children, requests

    if then and then.startswith("req:new:"):
        try:
            program = int(then.rsplit(":", 1)[1])
        except ValueError:
            program = 0
        await requests.start_request(ctx, program)
    elif then == "child:add":
        if await children.ensure_consent(ctx, "child:add"):
            children.start_child(ctx, after=None)
    elif then == "children":
        await children.show_children(ctx)
    elif then == "req":
        await requests.show_requests(ctx)
    else:
        ctx.show_menu()


# -- the outbox guard -----------------------------------------------------------------------
def outbox_guard(settings: Any, region: Any, texts: Any) -> PersonalDataGuard:
    """The guard storage.outbox applies to every message to a channel outside the list."""

    async def notice(session: Any, user: Any) -> tuple[str, list[list[Button]]]:
        targets = pd_targets(settings, region, user.channel)
        carry = {"municipality": user.municipality_id, "program": None, "then": "req"}
        rows = await link_buttons(
            session, settings, texts, user, targets, carry, "linking.btn_open"
        )
        there = channel_names(texts, targets or [c for c in pd_channels_for(settings, region)])
        return texts("linking.news", there=there), rows

    return PersonalDataGuard(
        frozenset(pd_channels_for(settings, region)), frozenset(CHANNELS), notice
    )
