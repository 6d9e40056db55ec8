"""Finding a program: filters chosen with buttons (municipality, direction, funding) or typed
(the child's age, a keyword), results shown as short cards, five per page.

Filters live in ctx.data["cat"]; the municipality defaults to the parent's own.
Steps "cat:age" and "cat:kw" wait for typed input; every other screen is buttons only.
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.buttons import Either, Grammar, Id, Maybe, MunicipalityId, Number, OneOf
from handlers.children import today
from handlers.core import Button, Context, Incoming, Router
from handlers.menu import menu_button
from handlers.municipality import find_municipality, municipality_buttons
from handlers.places import address_line
from handlers.validators import parse_age
from storage.catalogue import Filters, programs_by_id, search
from storage.models import DIRECTIONS, FUNDINGS, Program
from storage.requests import age_on, children_of

router = Router("catalogue")
router.menu_item(40, "catalogue.menu_item", "cat")

PAGE_SIZE = 5
MIN_AGE, MAX_AGE = 5, 17
KEYWORD_LIMIT = 100
_ANY = OneOf("any")
BUTTONS = Grammar(
    "cat",
    {
        "": {},
        "show": {"page": Number(0, 100_000)},
        "reset": {},
        "m": {"municipality": Maybe(Either(_ANY, MunicipalityId()))},
        "mp": {"page": Number(0, 1000)},
        "age": {"age": Maybe(Either(_ANY, Number(MIN_AGE, MAX_AGE)))},
        "kw": {"keyword": Maybe(OneOf("none"))},
        "dir": {"direction": Maybe(OneOf("any", *DIRECTIONS))},
        "pay": {"funding": Maybe(OneOf("any", *FUNDINGS))},
        "near": {"program": Id()},
    },
)
# How many programs of the same municipality are compared for the nearest.
NEAREST_CANDIDATES = 200


def filters_of(ctx: Context) -> dict[str, Any]:
    data = ctx.data.setdefault("cat", {})
    if "muni" not in data:
        data["muni"] = ctx.user.municipality_id
    return data


def current_filters(ctx: Context) -> Filters:
    data = filters_of(ctx)
    return Filters(
        municipality_id=data.get("muni"),
        age=data.get("age"),
        direction=data.get("dir"),
        funding=data.get("pay"),
        keyword=data.get("kw", ""),
    )


def funding_text(ctx: Context, program: Program) -> str:
    if program.funding == "pf" and program.price is not None:
        return ctx.texts("catalogue.funding_card.pf", price=f"{program.price:,}".replace(",", " "))
    return ctx.texts(f"catalogue.funding_card.{program.funding}")


def card(ctx: Context, number: int, program: Program) -> str:
    municipality = ctx.region.municipality(program.municipality_id)
    places = (
        ctx.texts("catalogue.card_places_unknown")
        if program.places_left is None
        else ctx.texts("catalogue.card_no_places")
        if program.places_left == 0
        else ctx.texts("catalogue.card_places", n=program.places_left)
    )
    text = ctx.texts(
        "catalogue.card",
        number=number,
        title=program.title,
        organisation=program.organisation,
        municipality=municipality.name if municipality else program.municipality_id,
        address=address_line(program.address, municipality) or program.municipality_id,
        direction=ctx.texts(f"catalogue.dir.{program.direction}"),
        age_from=program.age_from,
        age_to=program.age_to,
        funding=funding_text(ctx, program),
        schedule=program.schedule or "—",
        places=places,
        url=program.url,
    )
    if program.sample:
        text += "\n" + ctx.texts("catalogue.card_sample")
    return text


def enroll_button(ctx: Context, number: int, program: Program) -> Button:
    """«Записаться» for a program with places; for a full one, the way to a similar one."""
    if program.places_left == 0:
        return ctx.button("catalogue.btn_nearest", f"cat:near:{program.id}")
    return ctx.button("catalogue.btn_enroll", f"req:new:{program.id}", number=number)


async def nearest_with_places(
    session: AsyncSession, program: Program, age: int | None = None
) -> Program | None:
    """The program most like `program` that has places, in the same municipality, for
    `age` (or ages overlapping the program's): the same direction first, then the title
    most alike, then places known to be free."""
    query = select(Program).where(
        Program.id != program.id,
        Program.municipality_id == program.municipality_id,
        or_(Program.places_left.is_(None), Program.places_left > 0),
    )
    if age is not None:
        query = query.where(Program.age_from <= age, Program.age_to >= age)
    else:
        query = query.where(Program.age_from <= program.age_to, Program.age_to >= program.age_from)
    found = (await session.scalars(query.limit(NEAREST_CANDIDATES))).all()
    if not found:
        return None

    def likeness(other: Program) -> tuple[bool, float, bool]:
        return (
            other.direction == program.direction,
            fuzz.token_set_ratio(other.title.lower(), program.title.lower()),
            bool(other.places_left),
        )

    return max(found, key=likeness)


async def offer_nearest(
    ctx: Context, program: Program, age: int | None = None, intro: str = ""
) -> bool:
    """Show the nearest program with places as a card with «Записаться»; True if one exists."""
    other = await nearest_with_places(ctx.session, program, age)
    back = [ctx.button("catalogue.btn_change", "cat"), menu_button(ctx)]
    if other is None:
        ctx.say("requests.full_none", [back])
        return False
    ctx.reply(
        (intro or ctx.texts("requests.full_nearest")) + "\n\n" + card(ctx, 1, other),
        [[enroll_button(ctx, 1, other)], back],
    )
    return True


def label(ctx: Context, group: str, code: str | None) -> str:
    return ctx.texts(f"{group}.{code}") if code else ctx.texts("catalogue.any")


async def show_filters(ctx: Context) -> None:
    ctx.finish()
    data = filters_of(ctx)
    filters = current_filters(ctx)
    found = len(await search(ctx.session, filters))
    municipality = ctx.region.municipality(filters.municipality_id)
    text = ctx.texts(
        "catalogue.filters",
        municipality=municipality.name if municipality else ctx.texts("catalogue.any_muni"),
        age=ctx.texts("catalogue.age_value", n=filters.age)
        if filters.age
        else ctx.texts("catalogue.any_age"),
        direction=label(ctx, "catalogue.dir", filters.direction),
        funding=label(ctx, "catalogue.funding", filters.funding),
        keyword=data.get("kw") or "—",
    )
    rows = [
        [ctx.button("catalogue.btn_muni", "cat:m"), ctx.button("catalogue.btn_age", "cat:age")],
        [ctx.button("catalogue.btn_dir", "cat:dir"), ctx.button("catalogue.btn_pay", "cat:pay")],
        [ctx.button("catalogue.btn_keyword", "cat:kw")],
        [ctx.button("catalogue.btn_show", "cat:show:0", n=found)],
        [ctx.button("catalogue.btn_reset", "cat:reset"), menu_button(ctx)],
    ]
    ctx.reply(text, rows)


async def show_results(ctx: Context, page: int) -> None:
    ctx.finish()
    ids = await search(ctx.session, current_filters(ctx))
    back = [ctx.button("catalogue.btn_change", "cat"), menu_button(ctx)]
    if not ids:
        if not await search(ctx.session, Filters()):
            # No program of this region is in the catalogue at all: changing the
            # conditions cannot help, the Navigator itself can.
            ctx.say("catalogue.empty", [[menu_button(ctx)]])
            return
        ctx.say("catalogue.nothing", [back])
        return
    pages = (len(ids) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 0), pages - 1)
    first = page * PAGE_SIZE
    programs = await programs_by_id(ctx.session, ids[first : first + PAGE_SIZE])
    ctx.say("catalogue.found", n=len(ids), first=first + 1, last=first + len(programs))
    for number, program in enumerate(programs, start=first + 1):
        ctx.reply(card(ctx, number, program), [[enroll_button(ctx, number, program)]])
    nav: list[Button] = []
    if page < pages - 1:
        nav.append(ctx.button("common.more", f"cat:show:{page + 1}"))
    ctx.say("catalogue.page", [nav, back] if nav else [back], page=page + 1, pages=pages)


def municipality_page(ctx: Context, page: int) -> None:
    rows, page, pages = municipality_buttons(ctx, page, "cat:m", "cat:mp")
    rows.append([ctx.button("catalogue.any_muni", "cat:m:any")])
    ctx.go("cat:muni")
    ctx.data["cat_muni_page"] = page
    ctx.say("catalogue.ask_muni", rows, page=page + 1, pages=pages)


def choice_rows(ctx: Context, prefix: str, codes: tuple[str, ...], key: str) -> list[list[Button]]:
    rows = [[ctx.button(f"{key}.{code}", f"cat:{prefix}:{code}")] for code in codes]
    rows.append([ctx.button("catalogue.any", f"cat:{prefix}:any")])
    return rows


@router.button(BUTTONS)
async def catalogue_buttons(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    # The one value of the action, if the button carries one.
    value = next((v for v in ctx.pressed.values.values() if v is not None), None)
    data = filters_of(ctx)
    if action == "near":
        program = await ctx.session.get(Program, value)
        if program is None:
            await show_filters(ctx)
        else:
            ctx.finish()
            await offer_nearest(ctx, program, filters_of(ctx).get("age"))
    elif action == "show":
        await show_results(ctx, value)
    elif action == "reset":
        ctx.data["cat"] = {}
        await show_filters(ctx)
    elif action == "m" and value is None:
        municipality_page(ctx, 0)
    elif action == "mp":
        municipality_page(ctx, value)
    elif action == "m":
        data["muni"] = None if value == "any" else value.id
        await show_filters(ctx)
    elif action == "age" and value is None:
        await ask_age(ctx)
    elif action == "age":
        if value == "any":
            data.pop("age", None)
        else:
            data["age"] = value
        await show_filters(ctx)
    elif action == "kw" and value is None:
        ctx.go("cat:kw")
        ctx.say("catalogue.ask_keyword", [[ctx.button("catalogue.btn_no_keyword", "cat:kw:none")]])
    elif action == "kw":
        data.pop("kw", None)
        await show_filters(ctx)
    elif action == "dir" and value is None:
        ctx.say("catalogue.ask_dir", choice_rows(ctx, "dir", DIRECTIONS, "catalogue.dir"))
    elif action == "dir":
        data["dir"] = None if value == "any" else value
        await show_filters(ctx)
    elif action == "pay" and value is None:
        ctx.say("catalogue.ask_pay", choice_rows(ctx, "pay", FUNDINGS, "catalogue.funding"))
    elif action == "pay":
        data["pay"] = None if value == "any" else value
        await show_filters(ctx)
    else:
        await show_filters(ctx)


@router.step("cat:muni")
async def municipality_typed(incoming: Incoming, ctx: Context) -> None:
    chosen = find_municipality(ctx.region, incoming.text)
    if chosen is None:
        ctx.say("municipality.not_found", query=incoming.text.strip()[:100])
        municipality_page(ctx, int(ctx.data.get("cat_muni_page", 0)))
        return
    filters_of(ctx)["muni"] = chosen.id
    await show_filters(ctx)


async def ask_age(ctx: Context) -> None:
    """Ask for the age; the parent's children (if stored) are offered as buttons."""
    ctx.go("cat:age")
    rows = []
    for child in await children_of(ctx.session, ctx.user.id):
        age = age_on(child.birth_date, today(ctx))
        if MIN_AGE <= age <= MAX_AGE:
            rows.append(
                [
                    ctx.button(
                        "catalogue.btn_child_age",
                        f"cat:age:{age}",
                        name=child.full_name.split()[1],
                        age=ctx.texts("catalogue.age_value", n=age),
                    )
                ]
            )
    rows.append([ctx.button("catalogue.any_age_button", "cat:age:any")])
    ctx.say("catalogue.ask_age", rows)


@router.step("cat:age")
async def age_typed(incoming: Incoming, ctx: Context) -> None:
    age = parse_age(incoming.text)
    if age is not None and not MIN_AGE <= age <= MAX_AGE:
        ctx.say(
            "catalogue.age_out",
            [[ctx.button("catalogue.any_age_button", "cat:age:any")]],
            age=ctx.texts("catalogue.age_value", n=age),
            low=MIN_AGE,
            high=MAX_AGE,
        )
        return
    if age is None:
        ctx.say(
            "catalogue.bad_age",
            [[ctx.button("catalogue.any_age_button", "cat:age:any")]],
            low=MIN_AGE,
            high=MAX_AGE,
        )
        return
    filters_of(ctx)["age"] = age
    await show_filters(ctx)


@router.step("cat:kw")
async def keyword_typed(incoming: Incoming, ctx: Context) -> None:
    keyword = " ".join(incoming.text.split())
    if not keyword or len(keyword) > KEYWORD_LIMIT:
        ctx.say(
            "catalogue.bad_keyword",
            [[ctx.button("catalogue.btn_no_keyword", "cat:kw:none")]],
            limit=KEYWORD_LIMIT,
        )
        return
    filters_of(ctx)["kw"] = keyword
    await show_results(ctx, 0)
