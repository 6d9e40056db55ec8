"""Enrollment requests: choose a child, give a phone and a comment, confirm; «Мои заявки».

The confirmation screen carries a one-time token in its «Отправить» button: a second
tap (or a re-delivered update) finds the request already stored under that token.
Steps "req:phone" and "req:comment" wait for typed input.
"""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.buttons import Grammar, Hex, Id, StaleButton
from handlers.catalogue import offer_nearest
from handlers.children import MAX_AGE, MIN_AGE, ensure_consent, start_child, today, years
from handlers.core import Context, Incoming, Router
from handlers.menu import menu_button
from handlers.places import address_line
from handlers.validators import normalise_phone
from storage.linking import linked_ids
from storage.models import OPEN_STATUSES, Child, EnrollmentRequest, Program
from storage.requests import (
    age_on,
    as_utc,
    child_of,
    children_of,
    open_request,
    requests_of,
    set_status,
    submit,
)

router = Router("requests")
router.menu_item(60, "requests.menu_item", "req")

COMMENT_LIMIT = 500
TOKEN_LENGTH = 16  # hex digits of the «Отправить» button's one-time token
BUTTONS = Grammar(
    "req",
    {
        "": {},
        "new": {"program": Id()},
        "child": {"child": Id()},
        "phone": {},
        "nocomment": {},
        "send": {"token": Hex(TOKEN_LENGTH)},
        "cancel": {"request": Id()},
        "cancelok": {"request": Id()},
        "drop": {},
    },
)


def draft(ctx: Context) -> dict:
    return ctx.data.setdefault("req", {})


def stop_row(ctx: Context) -> list:
    return [ctx.button("requests.btn_stop", "req:drop", role="stop")]


async def start_request(ctx: Context, program_id: int) -> None:
    ctx.finish()
    program = await ctx.session.get(Program, program_id)
    if program is None:
        ctx.say("requests.no_program", [[ctx.button("catalogue.menu_item", "cat")]])
        return
    if program.places_left == 0:
        ctx.say("requests.full")
        await offer_nearest(ctx, program)
        return
    if not await ensure_consent(ctx, f"req:new:{program.id}"):
        return
    ctx.data["req"] = {"program": program.id}
    children = await children_of(ctx.session, ctx.user.id)
    if not children:
        ctx.say("requests.first_child", title=program.title)
        start_child(ctx, after=str(program.id))
        return
    rows = [
        [ctx.button("requests.btn_child", f"req:child:{c.id}", name=c.full_name)] for c in children
    ]
    rows.append([ctx.button("children.btn_add", f"child:add:{program.id}")])
    rows.append(stop_row(ctx))
    ctx.say(
        "requests.ask_child", rows, title=program.title, low=program.age_from, high=program.age_to
    )


async def _refused(ctx: Context) -> bool:
    """In a messenger where personal data are not collected: the offer to go on in one
    where they are, with the program chosen."""
    from handlers.linking import refuse_here

    program = ctx.data.get("req", {}).get("program")
    if await refuse_here(ctx, f"req:new:{program}" if program else "req"):
        ctx.data.pop("req", None)
        return True
    return False


async def child_chosen(ctx: Context, child: Child) -> None:
    if await _refused(ctx):
        return
    program_id = draft(ctx).get("program")
    program = await ctx.session.get(Program, program_id) if program_id else None
    if program is None:
        ctx.say("requests.no_program", [[ctx.button("catalogue.menu_item", "cat")]])
        return
    age = age_on(child.birth_date, today(ctx))
    back = [[ctx.button("catalogue.btn_change", "cat"), menu_button(ctx)]]
    if not MIN_AGE <= age <= MAX_AGE:
        ctx.say(
            "requests.child_age",
            back,
            name=child.full_name,
            age=years(ctx, age),
            low=MIN_AGE,
            high=MAX_AGE,
        )
        return
    if not program.age_from <= age <= program.age_to:
        ctx.say(
            "requests.program_age",
            name=child.full_name,
            age=years(ctx, age),
            low=program.age_from,
            high=program.age_to,
        )
        intro = ctx.texts("requests.program_age_nearest", age=years(ctx, age))
        await offer_nearest(ctx, program, age, intro)
        return
    existing = await open_request(ctx.session, child.id, program.id)
    if existing is not None:
        ctx.say(
            "requests.already_open",
            [[ctx.button("requests.menu_item", "req")]],
            number=existing.id,
            name=child.full_name,
        )
        return
    draft(ctx)["child"] = child.id
    ask_phone(ctx)


def ask_phone(ctx: Context) -> None:
    ctx.go("req:phone")
    rows = []
    if ctx.data.get("req_phone"):
        rows.append(
            [
                ctx.button(
                    "requests.btn_same_phone", "req:phone", role="yes", phone=ctx.data["req_phone"]
                )
            ]
        )
    rows.append(stop_row(ctx))
    ctx.say("requests.ask_phone", rows).asks_phone = True


def ask_comment(ctx: Context) -> None:
    ctx.go("req:comment")
    ctx.say(
        "requests.ask_comment",
        [[ctx.button("requests.btn_no_comment", "req:nocomment", role="no")], stop_row(ctx)],
    )


async def confirm(ctx: Context) -> None:
    ctx.finish()
    data = draft(ctx)
    program = await ctx.session.get(Program, data.get("program", 0))
    child = await child_of(ctx.session, ctx.user.id, data.get("child", 0))
    if program is None or child is None or not data.get("phone"):
        ctx.say("requests.stale", [[ctx.button("catalogue.menu_item", "cat")]])
        return
    data["token"] = secrets.token_hex(TOKEN_LENGTH // 2)
    ctx.say(
        "requests.confirm",
        [[ctx.button("requests.btn_send", f"req:send:{data['token']}", role="yes")], stop_row(ctx)],
        title=program.title,
        organisation=program.organisation,
        address=address_line(program.address, ctx.region.municipality(program.municipality_id))
        or program.municipality_id,
        schedule=program.schedule or "—",
        name=child.full_name,
        age=years(ctx, age_on(child.birth_date, today(ctx))),
        pays=certificate_pays(ctx, program),
        phone=data["phone"],
        comment=data.get("comment") or "—",
    )


def certificate_pays(ctx: Context, program: Program) -> str:
    """What the certificate pays for the program: nothing (free), учёт, or the price."""
    if program.funding == "pf":
        if program.price is None:
            return ctx.texts("requests.pays.pf_unknown")
        return ctx.texts("requests.pays.pf", price=f"{program.price:,}".replace(",", " "))
    return ctx.texts(f"requests.pays.{program.funding}")


async def send(ctx: Context, token: str) -> None:
    ctx.finish()
    if await _refused(ctx):
        return
    data = draft(ctx)
    mine = [[ctx.button("requests.menu_item", "req"), menu_button(ctx)]]
    stored = await ctx.session.scalar(
        select(EnrollmentRequest.id).where(EnrollmentRequest.submit_key == token)
    )
    if stored is not None:
        ctx.say("requests.already_sent", mine, number=stored)
        return
    if data.get("token") != token or not data.get("child") or not data.get("program"):
        ctx.say("requests.stale", [[ctx.button("catalogue.menu_item", "cat")]])
        return
    child = await child_of(ctx.session, ctx.user.id, data["child"])
    program = await ctx.session.get(Program, data["program"])
    if child is None or program is None:
        ctx.say("requests.stale", [[ctx.button("catalogue.menu_item", "cat")]])
        return
    if program.places_left == 0:  # the places went while the parent was filling it in
        ctx.data.pop("req", None)
        ctx.say("requests.full")
        await offer_nearest(ctx, program, age_on(child.birth_date, today(ctx)))
        return
    result = await submit(
        ctx.session,
        user_id=ctx.user.id,
        child_id=child.id,
        program_id=program.id,
        phone=data["phone"],
        comment=data.get("comment", ""),
        key=token,
    )
    ctx.data.pop("req", None)
    if not result.created:
        ctx.say("requests.already_open", mine, number=result.request.id, name=child.full_name)
        return
    ctx.say(
        "requests.sent",
        mine,
        number=result.request.id,
        title=program.title,
        organisation=program.organisation,
    )


async def show_requests(ctx: Context) -> None:
    ctx.finish()
    rows = await requests_of(ctx.session, ctx.user.id)
    if not rows:
        ctx.say("requests.none", [[ctx.button("catalogue.menu_item", "cat")], [menu_button(ctx)]])
        return
    from handlers.linking import channel_names, pd_allowed, pd_channels

    # Where personal data are not collected: no child's name, no staff's reason.
    full = pd_allowed(ctx)
    zone = ZoneInfo(ctx.region.timezone)
    lines = [ctx.texts("requests.list_title", n=len(rows))]
    buttons = []
    for request, program, child in rows:
        line = ctx.texts(
            "requests.list_item" if full else "requests.list_item_short",
            number=request.id,
            title=program.title,
            name=child.full_name if full else "",
            status=ctx.texts(f"requests.status.{shown_status(request)}"),
            date=as_utc(request.created_at).astimezone(zone).strftime("%d.%m.%Y"),
        )
        if request.reason and full:
            line += "\n" + ctx.texts("requests.list_reason", reason=request.reason)
        lines.append(line)
        if request.status in OPEN_STATUSES:
            buttons.append(
                [ctx.button("requests.btn_cancel", f"req:cancel:{request.id}", number=request.id)]
            )
    there = [c for c in pd_channels(ctx) if c != ctx.incoming.channel]
    if not full and there:
        lines.append(ctx.texts("linking.requests_elsewhere", there=channel_names(ctx.texts, there)))
    buttons.append([menu_button(ctx)])
    ctx.reply("\n\n".join(lines), buttons)


def shown_status(request: EnrollmentRequest) -> str:
    """The status as the parent reads it: a cancellation with a reason came from staff."""
    if request.status == "cancelled" and request.reason:
        return "cancelled_by_staff"
    return request.status


async def cancel(ctx: Context, request_id: int, confirmed: bool) -> None:
    request = await ctx.session.get(EnrollmentRequest, request_id)
    mine = await ctx.session.scalar(
        select(EnrollmentRequest.id).where(
            EnrollmentRequest.id == request_id,
            EnrollmentRequest.user_id.in_(linked_ids(ctx.user.id)),
        )
    )
    if request is None or mine is None:
        raise StaleButton  # gone with the parent's data, or never theirs
    if request.status not in OPEN_STATUSES:
        ctx.say(
            "requests.cannot_cancel",
            number=request.id,
            status=ctx.texts(f"requests.status.{shown_status(request)}"),
        )
        await show_requests(ctx)
        return
    if not confirmed:
        ctx.say(
            "requests.cancel_confirm",
            [
                [ctx.button("requests.btn_cancel_yes", f"req:cancelok:{request.id}", role="yes")],
                [ctx.button("common.no", "req", role="no")],
            ],
            number=request.id,
        )
        return
    await set_status(ctx.session, request, "cancelled", "", "parent")
    ctx.say("requests.cancelled", number=request.id)
    await show_requests(ctx)


@router.button(BUTTONS)
async def request_buttons(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    if action == "new":
        await start_request(ctx, ctx.pressed["program"])
    elif action == "child":
        child = await child_of(ctx.session, ctx.user.id, ctx.pressed["child"])
        if child is None:
            raise StaleButton
        await child_chosen(ctx, child)
    elif action == "phone" and ctx.data.get("req_phone") and draft(ctx).get("child"):
        draft(ctx)["phone"] = ctx.data["req_phone"]
        ask_comment(ctx)
    elif action == "nocomment" and draft(ctx).get("phone"):
        draft(ctx)["comment"] = ""
        await confirm(ctx)
    elif action == "send":
        await send(ctx, ctx.pressed["token"])
    elif action == "cancel":
        await cancel(ctx, ctx.pressed["request"], confirmed=False)
    elif action == "cancelok":
        await cancel(ctx, ctx.pressed["request"], confirmed=True)
    elif action == "drop":
        ctx.data.pop("req", None)
        ctx.say("requests.dropped")
        ctx.show_menu()
    else:
        await show_requests(ctx)


@router.step("req:phone")
async def phone_typed(incoming: Incoming, ctx: Context) -> None:
    if await _refused(ctx):
        return
    phone = normalise_phone(incoming.text)
    if phone is None:
        ctx.say("requests.bad_phone", [stop_row(ctx)])
        return
    draft(ctx)["phone"] = phone
    ctx.data["req_phone"] = phone
    ask_comment(ctx)


@router.step("req:comment", free_text=True)
async def comment_typed(incoming: Incoming, ctx: Context) -> None:
    if await _refused(ctx):
        return
    comment = incoming.text.strip()
    if len(comment) > COMMENT_LIMIT:
        ctx.say("requests.long_comment", [stop_row(ctx)], limit=COMMENT_LIMIT, n=len(comment))
        return
    draft(ctx)["comment"] = comment
    await confirm(ctx)
