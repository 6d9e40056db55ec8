"""Consent (152-ФЗ), the parent's children, and deleting all personal data.

Nothing about a child is stored before the parent agrees to the region's consent
text; the consent is stored with the text's version and time. A child's profile
is asked field by field (steps "child:name", "child:birth", "child:cert"); the
draft lives in ctx.data["child_draft"], so a wrong answer loses nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from handlers.buttons import Grammar, Id, Maybe
from handlers.core import Context, Incoming, Router
from handlers.menu import menu_button
from handlers.validators import parse_date
from storage.models import Child, Consent, utcnow
from storage.personal_data import erase_person
from storage.requests import age_on, children_of, current_consent
from texts.consent import ConsentText

router = Router("children")
router.menu_item(70, "children.menu_item", "child")

MIN_AGE, MAX_AGE = 5, 17
NAME_LIMIT = 100
_NAME_PART = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")
_CERT = re.compile(r"^\d{6,20}$")
CONSENT_BUTTONS = Grammar("consent", {"yes": {}, "no": {}})
# "child:add:<program id>": add a child on the way to a request for that program.
CHILD_BUTTONS = Grammar(
    "child", {"": {}, "add": {"program": Maybe(Id())}, "nocert": {}, "stop": {}}
)
DELETE_BUTTONS = Grammar("gdpr", {"": {}, "yes": {}})


def today(ctx: Context) -> date:
    return datetime.now(ZoneInfo(ctx.region.timezone)).date()


def years(ctx: Context, n: int) -> str:
    return ctx.texts("children.years", n=n)


# -- consent -------------------------------------------------------------------------------
def consent_text(ctx: Context) -> ConsentText:
    """The region's consent text, read at start (bot/app.py)."""
    return ctx.services.consent


async def has_consent(ctx: Context) -> bool:
    version = consent_text(ctx).version
    return await current_consent(ctx.session, ctx.user.id, version) is not None


async def ensure_consent(ctx: Context, then: str) -> bool:
    """True when the parent has agreed to the current text; otherwise ask, and remember
    which button to press for them once they agree. In a messenger where personal data
    are not collected: the offer to go on in one where they are, and False."""
    from handlers.linking import refuse_here

    if await refuse_here(ctx, then):
        return False
    if await has_consent(ctx):
        return True
    ctx.data["consent_then"] = then
    ctx.reply(
        consent_text(ctx).text,
        [
            [ctx.button("children.consent_yes", "consent:yes", role="yes")],
            [ctx.button("children.consent_no", "consent:no", role="no")],
        ],
    )
    return False


@router.button(CONSENT_BUTTONS)
async def consent_buttons(incoming: Incoming, ctx: Context) -> None:
    then = ctx.data.pop("consent_then", None)
    if ctx.pressed.action != "yes":
        ctx.say("children.consent_declined", [[ctx.button("catalogue.menu_item", "cat")]])
        ctx.show_menu()
        return
    if not await has_consent(ctx):
        ctx.session.add(
            Consent(
                user_id=ctx.user.id,
                region=ctx.region.id,
                text_version=consent_text(ctx).version,
                given_at=utcnow(),
            )
        )
        await ctx.session.flush()
    ctx.say("children.consent_saved")
    await continue_with(ctx, then)


async def continue_with(ctx: Context, then: str | None) -> None:
    """Carry on with what the parent was doing when consent was asked."""
    from handlers import requests

    if then and then.startswith("req:new:"):
        await requests.start_request(ctx, requests.BUTTONS.parse(then, ctx)["program"])
    elif then == "child:add":
        start_child(ctx, after=None)
    else:
        await show_children(ctx)


# -- children ------------------------------------------------------------------------------
async def show_children(ctx: Context) -> None:
    from handlers.linking import offer_elsewhere, pd_allowed

    ctx.finish()
    if not pd_allowed(ctx):
        # The children's data are shown only where they may be collected; erasing works
        # everywhere.
        offer = await offer_elsewhere(ctx, "children")
        offer.buttons.insert(-1, [ctx.button("children.btn_delete_data", "gdpr")])
        return
    children = await children_of(ctx.session, ctx.user.id)
    lines = [ctx.texts("children.list_title", n=len(children))] if children else []
    for child in children:
        lines.append(
            ctx.texts(
                "children.list_item",
                name=child.full_name,
                birth=child.birth_date.strftime("%d.%m.%Y"),
                age=years(ctx, age_on(child.birth_date, today(ctx))),
                certificate=child.certificate_number or ctx.texts("children.no_certificate"),
            )
        )
    if not children:
        lines.append(ctx.texts("children.list_empty"))
    consent = await has_consent(ctx)
    lines.append(ctx.texts("children.consent_given" if consent else "children.consent_missing"))
    ctx.reply(
        "\n".join(lines),
        [
            [ctx.button("children.btn_add", "child:add")],
            [ctx.button("children.btn_delete_data", "gdpr")],
            [menu_button(ctx)],
        ],
    )


def start_child(ctx: Context, after: str | None) -> None:
    ctx.data["child_draft"] = {"after": after}
    ctx.go("child:name")
    ctx.say("children.ask_name", [[ctx.button("children.btn_stop", "child:stop", role="stop")]])


@router.button(CHILD_BUTTONS)
async def child_buttons(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    if action == "add":
        program = ctx.pressed["program"]
        after = None if program is None else str(program)
        if await ensure_consent(ctx, "child:add" if after is None else f"req:new:{after}"):
            start_child(ctx, after)
    elif action == "nocert":
        await save_child(ctx, None)
    elif action == "stop":
        ctx.data.pop("child_draft", None)
        await show_children(ctx)
    else:
        await show_children(ctx)


def clean_name(text: str) -> tuple[str | None, str]:
    """(the name, "") or (None, the text key of what is wrong)."""
    parts = text.split()
    if not parts:
        return None, "children.name_empty"
    if len(" ".join(parts)) > NAME_LIMIT:
        return None, "children.name_long"
    if not all(_NAME_PART.match(part) for part in parts):
        return None, "children.name_letters"
    if len(parts) < 2:
        return None, "children.name_short"
    capitalised = ["-".join(p[:1].upper() + p[1:].lower() for p in w.split("-")) for w in parts]
    return " ".join(capitalised), ""


@router.step("child:name")
async def name_typed(incoming: Incoming, ctx: Context) -> None:
    if await _refused(ctx):
        return
    name, problem = clean_name(incoming.text)
    if name is None:
        ctx.say(
            problem,
            [[ctx.button("children.btn_stop", "child:stop", role="stop")]],
            limit=NAME_LIMIT,
        )
        return
    ctx.data.setdefault("child_draft", {})["name"] = name
    ctx.go("child:birth")
    ctx.say(
        "children.ask_birth",
        [[ctx.button("children.btn_stop", "child:stop", role="stop")]],
        name=name,
    )


@router.step("child:birth")
async def birth_typed(incoming: Incoming, ctx: Context) -> None:
    if await _refused(ctx):
        return
    stop = [[ctx.button("children.btn_stop", "child:stop", role="stop")]]
    born = parse_date(incoming.text, today(ctx))
    draft = ctx.data.setdefault("child_draft", {})
    if born is None:
        ctx.say("children.birth_format", stop, name=draft.get("name", ""))
        return
    now = today(ctx)
    if born > now:
        ctx.say("children.birth_future", stop)
        return
    age = age_on(born, now)
    if age < MIN_AGE:
        ctx.say("children.too_young", stop, age=years(ctx, age), low=MIN_AGE, high=MAX_AGE)
        return
    if age > MAX_AGE:
        ctx.say("children.too_old", stop, age=years(ctx, age), low=MIN_AGE, high=MAX_AGE)
        return
    draft["birth"] = born.isoformat()
    ctx.go("child:cert")
    ctx.say(
        "children.ask_certificate",
        [[ctx.button("children.btn_no_certificate", "child:nocert", role="no")], stop[0]],
    )


@router.step("child:cert")
async def certificate_typed(incoming: Incoming, ctx: Context) -> None:
    if await _refused(ctx):
        return
    number = re.sub(r"[\s\-]", "", incoming.text)
    if not _CERT.match(number):
        ctx.say(
            "children.certificate_format",
            [
                [ctx.button("children.btn_no_certificate", "child:nocert", role="no")],
                [ctx.button("children.btn_stop", "child:stop", role="stop")],
            ],
        )
        return
    await save_child(ctx, number)


async def _refused(ctx: Context) -> bool:
    from handlers.linking import refuse_here

    if await refuse_here(ctx, "child:add"):
        ctx.data.pop("child_draft", None)
        return True
    return False


async def save_child(ctx: Context, certificate: str | None) -> None:
    if await _refused(ctx):
        return
    draft = ctx.data.get("child_draft") or {}
    if not draft.get("name") or not draft.get("birth"):
        await show_children(ctx)
        return
    if not await ensure_consent(ctx, "child:add"):
        return
    child = Child(
        user_id=ctx.user.id,
        full_name=draft["name"],
        birth_date=date.fromisoformat(draft["birth"]),
        certificate_number=certificate,
        created_at=utcnow(),
    )
    ctx.session.add(child)
    await ctx.session.flush()
    ctx.data.pop("child_draft", None)
    ctx.finish()
    from handlers.reminders import offer_rows

    ctx.say("children.saved", await offer_rows(ctx), name=child.full_name)
    if draft.get("after"):
        from handlers import requests

        await requests.child_chosen(ctx, child)
    else:
        await show_children(ctx)


# -- deleting personal data ----------------------------------------------------------------
@router.command("delete_my_data", description_key="children.cmd_delete")
@router.button(DELETE_BUTTONS)
async def delete_data(incoming: Incoming, ctx: Context) -> None:
    ctx.finish()
    # Only the confirmation button erases; a typed "/delete_my_data yes" asks first too.
    if incoming.payload and ctx.pressed.action == "yes":
        counts = await erase_person(ctx.session, ctx.user, ctx.state, incoming)
        ctx.say(
            "children.deleted",
            children=ctx.texts("children.count_children", n=counts["children"]),
            requests=ctx.texts("children.count_requests", n=counts["requests"]),
        )
        ctx.show_menu()
        return
    ctx.say(
        "children.delete_confirm",
        [
            [ctx.button("children.btn_delete_yes", "gdpr:yes", role="yes")],
            [ctx.button("children.btn_stop", "menu", role="no")],
        ],
    )
