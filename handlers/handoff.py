"""«Позвать специалиста»: the parent's conversation goes to the hotline's queue in the
staff console (storage/handoffs.py), and an operator answers in the same chat.

The parent is told a person will answer and, outside the region's working hours (the
profile's [working_hours], texts/hours.py), when to expect it in the region's time
zone. From then on the bot does not answer their typed messages (handlers/hooks.py
`with_person`); the menu and the commands still work. The operator, or the silence
rule of the ticker, closes the conversation; the parent is told, and the bot answers
again.
"""

from __future__ import annotations

from datetime import datetime

from handlers.buttons import Grammar
from handlers.core import Button, Context, Incoming, Reply, Router
from handlers.menu import menu_button
from storage import handoffs
from storage.models import Handoff, utcnow
from texts import Texts
from texts.hours import DAYS, working_hours

router = Router("handoff")
router.menu_item(88, "handoff.item", "person")
# The parent's last question the FAQ could not answer, for the «Позвать специалиста»
# under that answer (conversation data: erased with the parent's other drafts).
QUESTION = "handoff_q"

BUTTONS = Grammar("person", {"": {}, "faq": {}})


def person_button(ctx: Context, payload: str = "person") -> Button:
    return ctx.button("handoff.item", payload)


def now_of(ctx: Context) -> datetime:
    clock = getattr(ctx.services, "clock", None)
    return clock() if clock is not None else utcnow()


def expected_answer(texts: Texts, moment: datetime) -> str:
    """What the parent reads about when the answer comes: soon in working hours, else
    the next opening in the region's own time and zone."""
    hours = working_hours(texts.region)
    opening = hours.next_opening(moment) if hours is not None else None
    if hours is None or opening is None:
        return texts("handoff.in_hours")
    local_now = moment.astimezone(hours.zone)
    days = (opening.date() - local_now.date()).days
    time = f"{opening.hour}:{opening.minute:02d}"
    date = f"{opening.day} {texts(f'handoff.month.m{opening.month}')}"
    if days == 0:
        when = texts("handoff.when_today", time=time)
    elif days == 1:
        when = texts("handoff.when_tomorrow", date=date, time=time)
    else:
        weekday = texts(f"handoff.weekday.{DAYS[opening.weekday()]}")
        when = texts("handoff.when_later", weekday=weekday, date=date, time=time)
    return texts("handoff.after_hours", when=when, zone=hours.zone_label).replace(" .", ".")


async def hand_over(ctx: Context, reason: str, question: str | None = None) -> Handoff:
    """Put the parent in the queue and tell them what happens next."""
    ctx.finish()
    ctx.data.pop(QUESTION, None)
    handoff, created = await handoffs.open_handoff(
        ctx.session, ctx.user, reason, question, now=now_of(ctx)
    )
    rows = [[ctx.button("menu.item_contacts", "contacts")], [menu_button(ctx)]]
    if not created:
        key = "handoff.already_taken" if handoff.state == "taken" else "handoff.already_waiting"
        ctx.say(key, rows)
        return handoff
    intro = {
        "faq_person": "handoff.opened_faq_person",
        "faq_unknown": "handoff.opened_question",
    }.get(reason, "handoff.opened")
    text = "\n\n".join(
        [ctx.texts(intro), expected_answer(ctx.texts, now_of(ctx)), ctx.texts("handoff.meanwhile")]
    )
    ctx.reply(text, rows)
    return handoff


def remember_question(ctx: Context, question: str) -> None:
    """The FAQ had no answer: keep the question for «Позвать специалиста» under it."""
    ctx.data[QUESTION] = question[:2000]


@router.command("operator", "specialist", description_key="handoff.cmd")
@router.button(BUTTONS)
async def call_person(incoming: Incoming, ctx: Context) -> None:
    question = ctx.data.get(QUESTION) if ctx.pressed.action == "faq" else None
    await hand_over(ctx, "faq_unknown" if question else "asked", question)


def closed_reply(texts: Texts, by: str) -> Reply:
    """What the parent reads when the person has finished."""
    key = "handoff.closed_silence" if by == handoffs.BY_SILENCE else "handoff.closed"
    return Reply(
        texts(key),
        [
            [Button(texts("handoff.item"), "person")],
            [Button(texts("common.to_menu"), "menu")],
        ],
    )


def taken_reply(texts: Texts) -> Reply:
    return Reply(texts("handoff.taken"))
