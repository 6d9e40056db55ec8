"""`navbot reminders` (what is due and planned, counts by state) and `navbot campaign`
(an announcement to an audience chosen by filters, confirmed before it is sent)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from tqdm import tqdm

from bot import campaigns
from bot.campaigns import Audience, CampaignError
from bot.errors import CliError
from handlers.municipality import find_municipality
from handlers.reminders import policy
from storage.models import Campaign, Reminder, TranscriptEntry, User, utcnow

# The order and the words of `navbot reminders`.
SHOWN_STATES = (
    ("planned", "planned"),
    ("due", "  of them due now"),
    ("sent", "sent"),
    ("confirmed", "confirmed"),
    ("opted_out", "opted out"),
    ("unreachable", "unreachable"),
    ("superseded", "superseded"),
    ("failed", "failed"),
)


def reminders_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, default=20, help="planned reminders to list (default 20; 0: none)"
    )


async def reminder_counts(app: Any, now) -> Counter[str]:  # type: ignore[no-untyped-def]
    """Reminders by the state staff care about: a planned one for a parent who blocked the
    bot counts as unreachable, a sent one whose message failed counts as failed."""
    shown = case(
        (
            (Reminder.state == "planned") & User.reachable.is_(False),
            "unreachable",
        ),
        ((Reminder.state == "sent") & (TranscriptEntry.status == "failed"), "failed"),
        else_=Reminder.state,
    )
    async with app.db.session() as session:
        rows = await session.execute(
            select(shown, func.count())
            .select_from(Reminder)
            .join(User, Reminder.user_id == User.id)
            .outerjoin(TranscriptEntry, TranscriptEntry.id == Reminder.transcript_id)
            .group_by(shown)
        )
        counts = Counter({state: n for state, n in rows.all()})
        counts["due"] = (
            await session.scalar(
                select(func.count())
                .select_from(Reminder)
                .join(User, Reminder.user_id == User.id)
                .where(
                    Reminder.state == "planned",
                    Reminder.due_at <= now,
                    User.reachable.is_(True),
                )
            )
            or 0
        )
    return counts


async def cmd_reminders(app: Any, args: argparse.Namespace) -> int:
    await app.start()
    rule = policy(app.region)
    now = utcnow()
    counts = await reminder_counts(app, now)
    cadence = ", ".join(f"{d:g}" for d in rule.cadence_days)
    print(
        f"reminders ({app.region.timezone}, daytime {rule.window()}, "
        f"cadence {cadence} days; now {rule.local(now):%d.%m.%Y %H:%M})"
    )
    for state, label in SHOWN_STATES:
        print(f"{label:<20}{counts.get(state, 0):>8}")
    if args.limit > 0:
        async with app.db.session() as session:
            upcoming = (
                await session.execute(
                    select(Reminder, User.channel, User.reachable)
                    .join(User, Reminder.user_id == User.id)
                    .where(Reminder.state == "planned")
                    .order_by(Reminder.due_at, Reminder.id)
                    .limit(args.limit)
                )
            ).all()
        if upcoming:
            print("\nnext planned (local time):")
            print(f"{'reminder':>9} {'user':>8}  {'channel':<10} {'due':<17} #")
            for reminder, channel, reachable in upcoming:
                due = rule.local(reminder.due_at)
                note = "" if reachable else "  (unreachable)"
                print(
                    f"{reminder.id:>9} {reminder.user_id:>8}  {channel:<10} "
                    f"{due:%d.%m.%Y %H:%M} {reminder.seq}{note}"
                )
    async with app.db.session() as session:
        stored = list(await session.scalars(select(Campaign).order_by(Campaign.id)))
        if stored:
            print("\ncampaigns:")
            for campaign in stored:
                done = await campaigns.progress(session, campaign.id)
                print(
                    f"  {campaign.key}: {campaign.state}, audience {campaign.audience}, "
                    f"sent {done['sent']}, unreachable {done['unreachable']}, "
                    f"left {done['planned']}"
                )
    return 0


# -- navbot campaign ----------------------------------------------------------------------
def campaign_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the campaign's text: a TOML file (id, text)")
    parser.add_argument(
        "--municipality",
        action="append",
        default=[],
        metavar="ID|NAME",
        help="only parents of this municipality (repeat for several)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME",
        help="only parents in this messenger: telegram, vk, max ... (repeat for several)",
    )
    parser.add_argument(
        "--not-confirmed",
        action="store_true",
        help="only parents who have not confirmed the child's data",
    )
    parser.add_argument(
        "--has-request", action="store_true", help="only parents who left a request"
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PARAM",
        help="only parents who came through this deep link (users.source; repeat)",
    )
    parser.add_argument("--yes", action="store_true", help="send without asking (for scripts)")


def _audience(app: Any, args: argparse.Namespace) -> Audience:
    municipalities = []
    for given in args.municipality:
        found = app.region.municipality(given) or find_municipality(app.region, given)
        if found is None:
            raise CliError(
                f"unknown municipality {given!r} in region {app.region.id} "
                "(give an id or a name from the region profile)"
            )
        municipalities.append(found.id)
    return Audience(
        municipalities=municipalities,
        channels=[c.strip().lower() for c in args.channel],
        sources=list(args.source),
        not_confirmed=args.not_confirmed,
        has_request=args.has_request,
    )


def preview(reply: Any) -> str:
    """The message as the parent sees it, buttons written under it."""
    lines = [reply.text]
    for row in reply.buttons:
        lines.append("  ".join(f"[ {button.label} ]" for button in row))
    return "\n".join(lines)


def _confirmed(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    print(question + " [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _by_channel(counts: Counter[str]) -> str:
    return ", ".join(f"{channel} {n}" for channel, n in sorted(counts.items())) or "none"


async def cmd_campaign(app: Any, args: argparse.Namespace) -> int:
    await app.start()
    try:
        message = campaigns.load_campaign_file(args.file, app.region, app.router)
    except CampaignError as exc:
        raise CliError(str(exc)) from exc
    audience = _audience(app, args)
    async with app.db.session() as session:
        campaign = await campaigns.find(session, message.key)
        done = await campaigns.progress(session, campaign.id) if campaign else Counter()
    if campaign is not None:
        if campaign.text != message.text:
            print(
                f"note: campaign '{message.key}' was started with another text; "
                "the stored text is kept, so everyone gets the same message",
                file=sys.stderr,
            )
        left = done["planned"]
        print(
            f"campaign '{campaign.key}': audience {campaign.audience}, sent {done['sent']}, "
            f"unreachable {done['unreachable']}, left {left}"
        )
        if not left:
            print("nothing left to send")
            return 0
        if not _confirmed(f"Resume sending to the remaining {left} parents?", args.yes):
            print("nothing sent")
            return 1
    else:
        async with app.db.session() as session:
            counts = await campaigns.audience_counts(session, audience)
        total, unreachable = sum(counts["all"].values()), sum(counts["unreachable"].values())
        print(f"campaign '{message.key}'")
        print(f"audience: {total} parents ({_by_channel(counts['all'])})")
        if unreachable:
            print(f"  of them {unreachable} blocked the bot and will be skipped")
        print("\n--- preview, as the parent sees it ---")
        print(preview(message.reply()))
        print("--- end of preview ---\n")
        if total == 0:
            print("nobody matches these filters; nothing sent")
            return 1
        if not _confirmed(f"Send it to {total - unreachable} parents?", args.yes):
            print("nothing sent")
            return 1
        async with app.db.session() as session:
            campaign = await campaigns.create(session, message, audience, utcnow())
        done = Counter()
    return await _send(app, campaign, done)


async def _send(app: Any, campaign: Campaign, done: Counter[str]) -> int:
    rule = policy(app.region)
    bar = tqdm(
        total=campaign.audience,
        initial=done["sent"] + done["unreachable"],
        unit="msg",
        desc=campaign.key,
        file=sys.stderr,
        mininterval=1.0,
    )

    def waiting(until) -> None:  # type: ignore[no-untyped-def]
        bar.write(
            f"outside the daytime window: waiting until {rule.local(until):%d.%m.%Y %H:%M} "
            f"({app.region.timezone})"
        )

    try:
        sent = await campaigns.send(
            app,
            campaign.id,
            on_progress=lambda step: bar.update(sum(step.values())),
            on_wait=waiting,
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        bar.close()
        print("\ninterrupted: run the same command again to send to those left", file=sys.stderr)
        raise
    bar.close()
    async with app.db.session() as session:
        final = await campaigns.progress(session, campaign.id)
    print(
        f"done: {final['sent']} queued for delivery, {final['unreachable']} unreachable "
        f"skipped (this run: {sent['sent']} queued)"
    )
    return 0
