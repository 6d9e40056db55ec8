"""«Задать вопрос» and the catch-all for free text: answer from the knowledge base,
suggest, hand the parent over to a person of the hotline (a question that must go to
one), or admit not knowing and offer one."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from handlers.buttons import Grammar, Slug
from handlers.core import Button, Context, Incoming, Router
from handlers.faq.grouping import terms_key
from handlers.faq.service import ANSWER, HANDOFF, SUGGEST, Faq, Verdict, load_faq, render
from handlers.handoff import QUESTION, hand_over, remember_question
from handlers.hotline import municipal_follow_up, person_rows
from handlers.menu import menu_button
from storage.events import record_for
from storage.models import FaqUnanswered, TranscriptEntry
from texts import Texts

log = logging.getLogger(__name__)

router = Router("faq")
router.menu_item(50, "faq.item", "faq")
# A question longer than this is cut before it is stored for staff.
MAX_STORED = 2000
# The conversation data key of the FAQ's memory: the topic of the parent's last question
# (its nouns the base knows), so that a follow-up ("а если ему 4?") is read with it.
MEMORY = "faq"
# An answer scoring under this is kept for the staff's upkeep page with the questions the
# bot did not answer: on tests/faq_dev.jsonl and faq_holdout.jsonl one in five of them
# answers with the wrong entry, against one in twenty above it.
LOW_CONFIDENCE = 0.4
# Entries whose answer goes on with what is known of this parent: the hotline question
# gets the parent's municipal line (or the stated fallback, or a request to name it).
PERSONAL_FOLLOW_UPS = {"hotline": municipal_follow_up, "hotline_centres": municipal_follow_up}


def faq_of(ctx: Context) -> Faq:
    return getattr(ctx.services, "faq", None) or load_faq()


def link_button(ctx: Context, payload: str | None) -> Button | None:
    """A button to the dialogue an entry links to, only if that dialogue exists."""
    if not payload:
        return None
    root = getattr(ctx.services, "router", None)
    prefix = payload.split(":", 1)[0]
    label_key = f"faq.link.{prefix}"
    if root is None or not root.handles(payload) or not ctx.texts.has(label_key):
        return None
    return Button(ctx.texts(label_key), payload)


def verdict_text(texts: Texts, verdict: Verdict) -> str:
    """What the parent reads for this verdict (suggestions come as buttons under it)."""
    if verdict.outcome == ANSWER and verdict.entry is not None:
        return render(verdict.entry, texts.region)
    if verdict.outcome == SUGGEST:
        return texts("faq.maybe")
    return texts("faq.handoff" if verdict.outcome == HANDOFF else "faq.unknown")


def offer_person(ctx: Context, verdict: Verdict) -> None:
    """The FAQ's honest "I don't know" (which names the hotline), with «Позвать
    специалиста»: accepting it puts the question in the operators' queue."""
    ctx.reply(verdict_text(ctx.texts, verdict), person_rows(ctx, person="person:faq"))


def answer(ctx: Context, verdict: Verdict) -> None:
    assert verdict.entry is not None
    rows: list[list[Button]] = []
    link = link_button(ctx, verdict.entry.link)
    if link is not None:
        rows.append([link])
    # A close second meaning of the question, one tap away.
    rows.extend([Button(entry.title, f"faq:show:{entry.id}")] for entry in verdict.also)
    rows.append([menu_button(ctx)])
    text = verdict_text(ctx.texts, verdict)
    if verdict.entry.id in PERSONAL_FOLLOW_UPS:
        text += "\n\n" + PERSONAL_FOLLOW_UPS[verdict.entry.id](ctx)
    ctx.reply(text, rows)


async def record_unanswered(ctx: Context, question: str, verdict: Verdict) -> None:
    """Keep a question the bot did not answer well for the staff's upkeep page: with the
    bot's verdict, its terms (to group it with questions like it) and the transcript row
    of the message (what the parent wrote next comes after it)."""
    message_id = await ctx.session.scalar(
        select(func.max(TranscriptEntry.id)).where(
            TranscriptEntry.user_id == ctx.user.id, TranscriptEntry.direction == "in"
        )
    )
    ctx.session.add(
        FaqUnanswered(
            user_id=ctx.user.id,
            question=question[:MAX_STORED],
            outcome=verdict.outcome,
            best_entry_id=verdict.entry.id if verdict.entry else None,
            score=verdict.score,
            terms=terms_key(faq_of(ctx).index.analyzer, question[:MAX_STORED]),
            message_id=message_id,
            created_at=ctx.incoming.time,
        )
    )


# The statistics event of each verdict (storage/events.py).
STAT_OUTCOME = {ANSWER: "answered", SUGGEST: "suggested", HANDOFF: "handoff"}

BUTTONS = Grammar("faq", {"": {}, "show": {"entry": Slug()}})


@router.button(BUTTONS)
async def ask(incoming: Incoming, ctx: Context) -> None:
    if ctx.pressed.action == "show":
        entry = faq_of(ctx).kb.get(ctx.pressed["entry"])
        if entry is None:
            ctx.say("faq.gone", [[menu_button(ctx)]])
        elif entry.handoff:
            # A question that must go to a person: straight to the operators' queue.
            await hand_over(ctx, "faq_person", ctx.data.get(QUESTION))
        else:
            answer(ctx, Verdict(ANSWER, entry, 1.0))
        return
    ctx.finish()
    ctx.say("faq.prompt", [[menu_button(ctx)]])


@router.text()
async def free_text(incoming: Incoming, ctx: Context) -> bool:
    question = incoming.text.strip()
    if not question:
        return False
    faq = faq_of(ctx)
    memory = ctx.data.setdefault(MEMORY, {})
    verdict = faq.decide(question, previous=memory.get("topic"))
    # The next message may lean on this one ("а если ему 4?"): keep what it was about.
    memory["topic"] = faq.topic(question[:MAX_STORED])
    log.info(
        "faq %s %s %.3f", verdict.outcome, verdict.entry.id if verdict.entry else "-", verdict.score
    )
    telemetry = getattr(ctx.services, "telemetry", None)
    if telemetry is not None:
        telemetry.faq(verdict.outcome)
    record_for(ctx, "faq", STAT_OUTCOME.get(verdict.outcome, "unknown"))
    if verdict.outcome == ANSWER:
        if verdict.score < LOW_CONFIDENCE:
            await record_unanswered(ctx, question, verdict)
        answer(ctx, verdict)
    elif verdict.outcome == SUGGEST:
        await record_unanswered(ctx, question, verdict)
        rows = [[Button(entry.title, f"faq:show:{entry.id}")] for entry in verdict.suggestions]
        ctx.reply(verdict_text(ctx.texts, verdict), [*rows, [menu_button(ctx)]])
    elif verdict.outcome == HANDOFF:
        # Complaints, demands to investigate, a child's data wrong in the registry: these
        # go to a person of the hotline at once.
        await record_unanswered(ctx, question, verdict)
        await hand_over(ctx, "faq_person", question)
    else:
        await record_unanswered(ctx, question, verdict)
        remember_question(ctx, question)
        offer_person(ctx, verdict)
    return True
