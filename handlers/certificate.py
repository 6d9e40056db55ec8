"""The certificate explained: what it is, its two kinds, how to get and activate it,
what each status in the personal account means, and a three-question check of what
applies to this parent (municipality, the child's age, whether the data are confirmed).

Topics are buttons; only the check's municipality and age questions wait for typed
input (steps "cert:muni" and "cert:age").
"""

from __future__ import annotations

from handlers.buttons import Either, Grammar, Maybe, MunicipalityId, OneOf
from handlers.core import Button, Context, Incoming, Router
from handlers.hotline import offer_person
from handlers.menu import menu_button
from handlers.municipality import find_municipality
from handlers.places import candidates, region_note
from handlers.validators import parse_age
from storage.events import record_for
from storage.models import utcnow
from texts import Municipality

router = Router("certificate")
router.menu_item(20, "certificate.menu_item", "cert")

TOPICS = ("about", "kinds", "how", "statuses", "check")
STATUSES = ("none", "unconfirmed", "inactive", "uchet", "nominal", "spent")
# The age offered by each quick-answer button.
AGE_BUTTONS = (("age_under5", 4), ("age_5_13", 10), ("age_14_17", 15), ("age_18", 18))
MIN_AGE, TEEN_AGE, MAX_AGE = 5, 14, 18
MAX_TYPED_AGE = 25
AGE_LABELS = {str(age): key for key, age in AGE_BUTTONS}
BUTTONS = Grammar(
    "cert",
    {
        "": {},
        **{topic: {} for topic in TOPICS if topic != "kinds"},
        "kinds": {"more": Maybe(OneOf("more"))},
        "status": {"status": OneOf(*STATUSES)},
        "muni": {"choice": Either(OneOf("unknown", "other"), MunicipalityId())},
        "age": {"age": OneOf(*AGE_LABELS)},
        "confirmed": {"answer": OneOf("yes", "no", "unknown")},
    },
)


def _topic_rows(ctx: Context, *extra: list[Button]) -> list[list[Button]]:
    return [*extra, [ctx.button("certificate.to_topics", "cert")], [menu_button(ctx)]]


def show_topics(ctx: Context) -> None:
    ctx.finish()
    rows = [[ctx.button(f"certificate.{topic}_button", f"cert:{topic}")] for topic in TOPICS]
    rows.append([menu_button(ctx)])
    ctx.say("certificate.intro", rows)


def show_statuses(ctx: Context) -> None:
    rows = [
        [ctx.button(f"certificate.status_buttons.{status}", f"cert:status:{status}")]
        for status in STATUSES
    ]
    rows.append([menu_button(ctx)])
    ctx.say("certificate.statuses_intro", rows)


def show_status(ctx: Context, status: str) -> None:
    text = ctx.texts(f"certificate.statuses.{status}")
    municipality = ctx.region.municipality(ctx.user.municipality_id)
    if status == "uchet" and municipality is not None:
        kind = {True: "yes", False: "no", None: "unknown"}[municipality.nominal]
        text += "\n\n" + ctx.texts(
            f"certificate.statuses.uchet_municipality_{kind}", name=municipality.name
        )
    extra: list[list[Button]] = []
    if status in ("unconfirmed", "inactive"):
        extra.append([ctx.button("certificate.to_confirmation", "confirm")])
    if status == "none":
        extra.append([ctx.button("certificate.to_registration", "reg")])
    extra.append([ctx.button("certificate.to_statuses", "cert:statuses")])
    if status == "spent":
        ctx.reply(text)
        offer_person(ctx, "hotline.offer", extra)
        return
    ctx.reply(text, _topic_rows(ctx, *extra))


@router.button(BUTTONS)
async def certificate_buttons(incoming: Incoming, ctx: Context) -> None:
    ctx.finish()
    action = ctx.pressed.action
    if action == "about":
        ctx.say("certificate.about", _topic_rows(ctx))
    elif action == "kinds" and ctx.pressed["more"] == "more":
        ctx.say("certificate.kinds_more", _topic_rows(ctx))
    elif action == "kinds":
        # Short messages: the two kinds, the region's own note, and the rest on request.
        more = [ctx.button("certificate.kinds_more_button", "cert:kinds:more")]
        note = region_note(ctx.region, "certificate")
        ctx.say("certificate.kinds", None if note else _topic_rows(ctx, more))
        if note:
            ctx.reply(note, _topic_rows(ctx, more))
    elif action == "how":
        ctx.say(
            "certificate.how",
            _topic_rows(
                ctx,
                [ctx.button("certificate.to_registration", "reg")],
                [ctx.button("certificate.to_confirmation", "confirm")],
            ),
        )
    elif action == "statuses":
        show_statuses(ctx)
    elif action == "status":
        show_status(ctx, ctx.pressed["status"])
    elif action == "check":
        start_check(ctx)
    elif action == "muni":
        choice = ctx.pressed["choice"]
        check_municipality(ctx, choice if isinstance(choice, str) else choice.id)
    elif action == "age":
        age = ctx.pressed["age"]
        label = ctx.texts(f"certificate.check.{AGE_LABELS[age]}")
        check_age(ctx, int(age), label.lower())
    elif action == "confirmed":
        check_result(ctx, ctx.pressed["answer"])
    else:
        show_topics(ctx)


# -- the check -------------------------------------------------------------------------
def _check(ctx: Context) -> dict:
    return ctx.data.setdefault("cert_check", {})


def start_check(ctx: Context) -> None:
    ctx.data["cert_check"] = {}
    current = ctx.region.municipality(ctx.user.municipality_id)
    unknown = ctx.button("certificate.check.unknown", "cert:muni:unknown")
    if current is None:
        ctx.go("cert:muni")
        ctx.say("certificate.check.ask_municipality", [[unknown], [menu_button(ctx)]])
        return
    ctx.say(
        "certificate.check.known_municipality",
        [
            [
                ctx.button("certificate.check.yes", f"cert:muni:{current.id}", role="yes"),
                ctx.button("certificate.check.other", "cert:muni:other", role="no"),
            ],
            [menu_button(ctx)],
        ],
        name=current.name,
    )


def check_municipality(ctx: Context, choice: str) -> None:
    if choice == "other":
        ctx.go("cert:muni")
        ctx.say(
            "certificate.check.ask_municipality",
            [[ctx.button("certificate.check.unknown", "cert:muni:unknown")], [menu_button(ctx)]],
        )
        return
    chosen = ctx.region.municipality(choice)
    _check(ctx)["muni"] = chosen.id if chosen else None
    if chosen is not None and ctx.user.municipality_id is None:
        ctx.user.municipality_id = chosen.id
    ask_age(ctx)


@router.step("cert:muni")
async def municipality_typed(incoming: Incoming, ctx: Context) -> None:
    query = incoming.text.strip()[:100]
    chosen = find_municipality(ctx.region, query)
    if chosen is not None:
        ctx.finish()
        check_municipality(ctx, chosen.id)
        return
    unknown = [ctx.button("certificate.check.unknown", "cert:muni:unknown")]
    options = [[Button(m.name, f"cert:muni:{m.id}")] for m in candidates(ctx.region, query)]
    key = "certificate.check.not_found" if options else "certificate.check.not_found_none"
    ctx.say(key, [*options, unknown, [menu_button(ctx)]], query=query)


def _age_rows(ctx: Context) -> list[list[Button]]:
    buttons = [
        ctx.button(f"certificate.check.{key}", f"cert:age:{age}") for key, age in AGE_BUTTONS
    ]
    return [buttons[:2], buttons[2:], [menu_button(ctx)]]


def ask_age(ctx: Context) -> None:
    ctx.go("cert:age")
    ctx.say("certificate.check.ask_age", _age_rows(ctx))


@router.step("cert:age")
async def age_typed(incoming: Incoming, ctx: Context) -> None:
    age = parse_age(incoming.text)
    if age is None or age > MAX_TYPED_AGE:
        ctx.say("certificate.check.bad_age", _age_rows(ctx))
        return
    check_age(ctx, age, ctx.texts("certificate.check.years", n=age))


def check_age(ctx: Context, age: int, label: str) -> None:
    ctx.finish()
    _check(ctx).update(age=age, age_label=label)
    if ctx.user.data_confirmed_at is not None:
        check_result(ctx, "yes", already=True)
    elif MIN_AGE <= age < MAX_AGE:
        ctx.say(
            "certificate.check.ask_confirmed",
            [
                [
                    ctx.button("certificate.check.confirmed_yes", "cert:confirmed:yes", role="yes"),
                    ctx.button("certificate.check.confirmed_no", "cert:confirmed:no", role="no"),
                ],
                [ctx.button("certificate.check.unknown", "cert:confirmed:unknown")],
                [menu_button(ctx)],
            ],
        )
    else:
        check_result(ctx, "")


def check_result(ctx: Context, confirmed: str, *, already: bool = False) -> None:
    ctx.finish()
    answers = _check(ctx)
    lines = [ctx.texts("certificate.check.result_title")]
    lines.append(_municipality_line(ctx, ctx.region.municipality(answers.get("muni"))))
    age = answers.get("age")
    if isinstance(age, int):
        lines.append(_age_line(ctx, age, str(answers.get("age_label", age))))
    if confirmed == "yes":
        lines.append(ctx.texts("certificate.check.confirmed_done"))
        if not already and ctx.user.data_confirmed_at is None:
            ctx.user.data_confirmed_at = utcnow()
            record_for(ctx, "data_confirmed")
            lines.append("\n" + ctx.texts("certificate.check.confirmed_saved"))
    elif confirmed == "no":
        lines.append(ctx.texts("certificate.check.confirmed_todo"))
    elif confirmed == "unknown":
        lines.append(ctx.texts("certificate.check.confirmed_unknown"))
    rows = []
    if confirmed in ("no", "unknown"):
        rows.append([ctx.button("certificate.to_confirmation", "confirm")])
    rows.append([ctx.button("certificate.statuses_button", "cert:statuses")])
    ctx.reply("\n".join(lines), _topic_rows(ctx, *rows))


def _municipality_line(ctx: Context, municipality: Municipality | None) -> str:
    if municipality is None:
        return ctx.texts("certificate.check.muni_none")
    if municipality.nominal is True:
        if municipality.nominal_since:
            return ctx.texts(
                "certificate.check.muni_yes",
                name=municipality.name,
                since=municipality.nominal_since,
            )
        return ctx.texts("certificate.check.muni_yes_no_year", name=municipality.name)
    if municipality.nominal is False:
        return ctx.texts("certificate.check.muni_no", name=municipality.name)
    return ctx.texts("certificate.check.muni_unknown", name=municipality.name)


def _age_line(ctx: Context, age: int, shown: str) -> str:
    if age < MIN_AGE:
        return ctx.texts("certificate.check.age_under", age=shown)
    if age >= MAX_AGE:
        return ctx.texts("certificate.check.age_over", age=shown)
    if age >= TEEN_AGE:
        return ctx.texts("certificate.check.age_teen", age=shown)
    return ctx.texts("certificate.check.age_ok", age=shown)
