"""The Navigator registration walkthrough: one step per message, driven by buttons.

Progress lives in `ctx.data["reg"]` ({"step": n, "done": bool, "seen": the furthest
step reached}), so a parent who
leaves at step 4 is offered step 4 when they come back (here and after /start).
The steps wait for button presses only; the conversation step stays empty so a
question typed mid-walkthrough reaches the free-text handlers (the FAQ). Only the
optional СНИЛС check and the municipality search wait for typed input.
"""

from __future__ import annotations

from handlers.buttons import Grammar, Number, OneOf
from handlers.core import Button, Context, Incoming, Router
from handlers.hotline import offer_person
from handlers.menu import menu_button
from handlers.municipality import find_municipality
from handlers.validators import format_snils, snils_digits, snils_ok
from storage.events import record_for

router = Router("registration")
router.menu_item(10, "registration.menu_item", "reg")

TOTAL = 8
# The usual problems of each step, in the order they are offered.
PROBLEMS: dict[int, tuple[str, ...]] = {
    1: ("municipality", "teen"),
    2: ("registered", "teen"),
    3: ("municipality", "registered", "teen"),
    4: ("no_email",),
    5: ("password", "no_email"),
    6: ("password",),
    7: ("other_parent", "teen"),
    8: ("other_parent",),
}
ALL_PROBLEMS = ("no_email", "password", "registered", "other_parent", "municipality", "teen")
# Steps with a helper that waits for typed input.
SNILS_STEP = 7
_STEP = {"step": Number(1, TOTAL)}
BUTTONS = Grammar(
    "reg",
    {
        "": {},
        **{action: _STEP for action in ("go", "next", "back", "help", "person", "snils", "muni")},
        "p": {"problem": OneOf(*ALL_PROBLEMS), **_STEP},
    },
)


def progress(ctx: Context) -> dict:
    return ctx.data.setdefault("reg", {"step": 1, "done": False})


def _step_button(ctx: Context, n: int) -> Button:
    return ctx.button("registration.to_step", f"reg:go:{n}", n=n)


def count_progress(ctx: Context, n: int) -> None:
    """Statistics: "start" when a walkthrough begins (the first time, or from step 1
    again after it was finished), then each step the first time this walkthrough
    reaches it."""
    state = progress(ctx)
    if "seen" not in state or (state.get("done") and n == 1):
        state["seen"] = 0
        record_for(ctx, "reg_step", "start")
    for step in range(int(state["seen"]) + 1, n + 1):
        record_for(ctx, "reg_step", f"s{step}")
    state["seen"] = max(int(state["seen"]), n)


def show_step(ctx: Context, n: int) -> None:
    ctx.finish()
    count_progress(ctx, n)
    state = progress(ctx)
    state["step"], state["done"] = n, False
    text = ctx.texts("registration.header", n=n, total=TOTAL, title=title(ctx, n))
    text += "\n\n" + ctx.texts(f"registration.steps.s{n}")
    if n == 1 and ctx.region.navigator_url_alt:
        text += "\n\n" + ctx.texts("registration.steps.s1_alt")
    municipality = ctx.region.municipality(ctx.user.municipality_id)
    if n == 3 and municipality is not None:
        text += "\n\n" + ctx.texts("registration.your_municipality", name=municipality.name)
    rows = [
        [
            ctx.button("registration.next", f"reg:next:{n}", role="yes"),
            ctx.button("registration.trouble", f"reg:help:{n}"),
        ]
    ]
    if n == SNILS_STEP:
        rows.append([ctx.button("registration.check_snils", f"reg:snils:{n}")])
    rows.append([ctx.button("common.back", f"reg:back:{n}", role="back"), menu_button(ctx)])
    ctx.reply(text, rows)


def title(ctx: Context, n: int) -> str:
    return ctx.texts(f"registration.titles.s{n}")


def resume_offer(ctx: Context) -> bool:
    """Offer to continue an unfinished walkthrough; True when offered."""
    state = ctx.data.get("reg")
    if not state or state.get("done") or int(state.get("step", 1)) <= 1:
        return False
    n = min(int(state["step"]), TOTAL)
    ctx.say(
        "registration.resume",
        [
            [ctx.button("registration.continue", f"reg:go:{n}", role="yes", n=n)],
            [ctx.button("registration.restart", "reg:go:1", role="restart")],
        ],
        n=n,
        total=TOTAL,
        title=title(ctx, n),
    )
    return True


async def finish_walkthrough(ctx: Context) -> None:
    from handlers.reminders import offer_rows

    ctx.finish()
    if not progress(ctx).get("done"):
        record_for(ctx, "reg_step", "finished")
    progress(ctx).update(step=TOTAL, done=True)
    ctx.say(
        "registration.finished",
        [
            [ctx.button("registration.to_confirmation", "confirm")],
            *await offer_rows(ctx),
            [ctx.button("registration.to_certificate", "cert")],
            [menu_button(ctx)],
        ],
    )


def show_problems(ctx: Context, n: int) -> None:
    ctx.finish()
    rows = [[ctx.button(f"registration.problems.{p}", f"reg:p:{p}:{n}")] for p in PROBLEMS[n]]
    rows.append([ctx.button("registration.other_problem", f"reg:person:{n}")])
    rows.append([_step_button(ctx, n), menu_button(ctx)])
    ctx.say("registration.problems_intro", rows, n=n)


def show_answer(ctx: Context, problem: str, n: int) -> None:
    ctx.finish()
    rows = []
    if problem == "municipality":
        rows.append([ctx.button("registration.find_municipality", f"reg:muni:{n}")])
    rows.append([ctx.button("registration.person", f"reg:person:{n}")])
    rows.append([_step_button(ctx, n), menu_button(ctx)])
    ctx.say(f"registration.answers.{problem}", rows)


@router.button(BUTTONS)
async def registration_buttons(incoming: Incoming, ctx: Context) -> None:
    action, n = ctx.pressed.action, ctx.pressed.get("step", 1)
    if action == "":
        if not resume_offer(ctx):
            show_step(ctx, 1)
    elif action == "go":
        show_step(ctx, n)
    elif action == "next":
        if n >= TOTAL:
            await finish_walkthrough(ctx)
        else:
            show_step(ctx, n + 1)
    elif action == "back":
        show_step(ctx, max(n - 1, 1))
    elif action == "help":
        show_problems(ctx, n)
    elif action == "p":
        show_answer(ctx, ctx.pressed["problem"], n)
    elif action == "person":
        ctx.finish()
        offer_person(ctx, extra_rows=[[_step_button(ctx, n)]])
    elif action == "snils":
        ctx.go("reg:snils")
        ctx.say("registration.snils.ask", [[_step_button(ctx, SNILS_STEP)]])
    else:  # "muni"
        ctx.go(f"reg:muni:{n}")
        ctx.say("registration.municipality_search.ask", [[_step_button(ctx, n)]])


@router.step("reg:snils")
async def snils_typed(incoming: Incoming, ctx: Context) -> None:
    digits = snils_digits(incoming.text)
    back = [[_step_button(ctx, SNILS_STEP), menu_button(ctx)]]
    if not digits:
        ctx.finish()
        ctx.say("registration.snils.not_number", n=SNILS_STEP)
        show_step(ctx, SNILS_STEP)
    elif len(digits) != 11:
        ctx.say("registration.snils.length", back, count=len(digits))
    elif snils_ok(digits):
        ctx.finish()
        ctx.say("registration.snils.ok", back, snils=format_snils(digits))
    else:
        ctx.say("registration.snils.wrong", back, snils=format_snils(digits))


@router.step("reg:muni")
async def municipality_typed(incoming: Incoming, ctx: Context) -> None:
    tail = (ctx.state.step or "").rsplit(":", 1)[-1]
    n = min(max(int(tail), 1), TOTAL) if tail.isdigit() else 1
    ctx.finish()
    query = incoming.text.strip()[:100]
    found = find_municipality(ctx.region, query)
    if found is None:
        ctx.say("registration.municipality_search.not_found", query=query)
        offer_person(ctx, extra_rows=[[_step_button(ctx, n)]])
        return
    text = ctx.texts("registration.municipality_search.found", query=query, name=found.name)
    if ctx.user.municipality_id is None:
        ctx.user.municipality_id = found.id
        text += " " + ctx.texts("registration.municipality_search.remembered")
    ctx.reply(text, [[_step_button(ctx, n), menu_button(ctx)]])
