"""Choosing the parent's municipality: it decides contacts, certificate kind and catalogue.

Step "municipality:choose": the parent pages through the list with buttons or types
the name (typos and short forms such as «Минводы» are understood).
"""

from __future__ import annotations

from rapidfuzz import fuzz, process

from handlers.buttons import Grammar, MunicipalityId, Number
from handlers.core import Button, Context, Incoming, Router
from handlers.menu import menu_button
from texts import Municipality, Region

router = Router("municipality")
router.menu_item(80, "municipality.menu_item", "muni")
BUTTONS = Grammar(
    "muni",
    {"": {}, "page": {"page": Number(0, 1000)}, "set": {"municipality": MunicipalityId()}},
)

PAGE_SIZE = 8
MIN_SCORE = 80


def normalise_name(value: str) -> str:
    """A municipality name as matched: lower case, ё as е, hyphens as spaces."""
    return " ".join(value.lower().replace("ё", "е").replace("-", " ").split())


def names_of(region: Region) -> dict[str, Municipality]:
    """Every name and short name of the region's municipalities, normalised, to its owner."""
    return {
        normalise_name(name): item
        for item in region.municipalities
        for name in (item.name, *item.aliases)
    }


def find_municipality(region: Region, query: str) -> Municipality | None:
    """The municipality a parent means by `query`, or None when unsure."""
    wanted = normalise_name(query)
    if not wanted:
        return None
    choices = names_of(region)
    if wanted in choices:
        return choices[wanted]
    best = process.extractOne(wanted, list(choices), scorer=fuzz.WRatio, score_cutoff=MIN_SCORE)
    if best is None:
        return None
    # WRatio favours partial matches; a short query must still be close to the whole alias.
    if len(wanted) < 5 and fuzz.ratio(wanted, best[0]) < MIN_SCORE:
        return None
    return choices[best[0]]


def municipality_buttons(
    ctx: Context, page: int, choose: str, turn: str
) -> tuple[list[list[Button]], int, int]:
    """One page of the region's municipalities as buttons `<choose>:<id>`, with «Назад» /
    «Ещё» buttons `<turn>:<page>`. Returns the rows, the page shown and the page count."""
    items = ctx.region.municipalities
    pages = max(1, (len(items) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    rows = [
        [Button(item.name, f"{choose}:{item.id}")]
        for item in items[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    ]
    nav = []
    if page > 0:
        nav.append(ctx.button("common.back", f"{turn}:{page - 1}", role="back"))
    if page < pages - 1:
        nav.append(ctx.button("common.more", f"{turn}:{page + 1}"))
    if nav:
        rows.append(nav)
    return rows, page, pages


def show_page(ctx: Context, page: int) -> None:
    rows, page, pages = municipality_buttons(ctx, page, "muni:set", "muni:page")
    rows.append([menu_button(ctx)])
    ctx.go("municipality:choose")
    ctx.data["municipality_page"] = page
    ctx.say("municipality.ask", rows, page=page + 1, pages=pages)


@router.button(BUTTONS)
async def on_municipality_button(incoming: Incoming, ctx: Context) -> None:
    action = ctx.pressed.action
    if action == "page":
        show_page(ctx, ctx.pressed["page"])
    elif action == "set":
        remember(ctx, ctx.pressed["municipality"])
    else:
        current = ctx.region.municipality(ctx.user.municipality_id)
        if current is not None:
            ctx.say("municipality.current", name=current.name)
        show_page(ctx, 0)


@router.step("municipality")
async def municipality_typed(incoming: Incoming, ctx: Context) -> None:
    chosen = find_municipality(ctx.region, incoming.text)
    if chosen is None:
        ctx.say("municipality.not_found", query=incoming.text.strip()[:100])
        show_page(ctx, int(ctx.data.get("municipality_page", 0)))
        return
    remember(ctx, chosen)


def remember(ctx: Context, chosen: Municipality) -> None:
    ctx.user.municipality_id = chosen.id
    ctx.finish()
    ctx.say("municipality.saved", name=chosen.name)
    ctx.show_menu()
