"""Campaigns: one announcement from staff to the parents chosen by filters.

A campaign's text is a TOML file like those in texts/ru/:

    id = "confirm-december"      # optional, default: the file name; names the campaign
    text = \"\"\"Уважаемые родители! ... {region.navigator_url}\"\"\"

    [buttons]                    # optional: label = what the button opens
    "Подтверждение данных ребёнка" = "confirm"

When staff confirm, the audience is fixed as one delivery row per parent (unique per
campaign). Sending moves planned rows to the outbox, each marked sent in the same
transaction, at most one second's worth of the platform's limit per channel at a time
and only in the region's daytime window. Running the same file again resumes where an
interrupted run stopped; nobody gets the message twice.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler import channel_rate, wake_delivery
from handlers.core import Button, Reply
from handlers.reminders import policy
from storage.models import Campaign, CampaignDelivery, EnrollmentRequest, User, utcnow
from storage.outbox import queue_replies

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CampaignError(Exception):
    """A campaign file or filter that cannot be used: one line for the staff member."""


@dataclass(frozen=True)
class CampaignText:
    key: str
    text: str
    buttons: list[list[Button]]

    def reply(self) -> Reply:
        return Reply(self.text, [list(row) for row in self.buttons])


def load_campaign_file(path: Path, region: Any, router: Any) -> CampaignText:
    """Read and check a campaign file; placeholders are the region's fields only."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CampaignError(f"{path}: cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise CampaignError(f"{path}: not UTF-8 text") from None
    unknown = sorted(set(raw) - {"id", "text", "buttons"})
    if unknown:
        raise CampaignError(
            f"{path}: unknown key(s) {', '.join(unknown)} (expected id, text, buttons)"
        )
    key = str(raw.get("id", path.stem))
    if not _KEY.match(key):
        raise CampaignError(f"{path}: id must be 1-64 letters, digits, '_' or '-', got {key!r}")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CampaignError(f'{path}: needs a non-empty text = "..."')
    try:
        rendered = text.strip().format(region=region)
    except (KeyError, AttributeError, IndexError, ValueError) as exc:
        raise CampaignError(
            f"{path}: text has a placeholder that is not a region field: {exc}"
        ) from None
    buttons = raw.get("buttons", {})
    if not isinstance(buttons, dict):
        raise CampaignError(f'{path}: [buttons] must be a table of label = "payload"')
    rows = []
    for label, payload in buttons.items():
        if not isinstance(payload, str) or not router.handles(payload):
            raise CampaignError(
                f"{path}: button {label!r} opens {payload!r}, which no dialogue handles "
                '(e.g. "menu", "confirm", "cert", "reg", "cat")'
            )
        rows.append([Button(label, payload)])
    return CampaignText(key, rendered, rows)


@dataclass
class Audience:
    """Who gets a campaign. Empty lists mean "any"."""

    municipalities: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    not_confirmed: bool = False
    has_request: bool = False

    def where(self) -> list[Any]:
        conditions: list[Any] = []
        if self.municipalities:
            conditions.append(User.municipality_id.in_(self.municipalities))
        if self.channels:
            conditions.append(User.channel.in_(self.channels))
        if self.sources:
            conditions.append(User.source.in_(self.sources))
        if self.not_confirmed:
            conditions.append(User.data_confirmed_at.is_(None))
        if self.has_request:
            conditions.append(exists().where(EnrollmentRequest.user_id == User.id))
        return conditions

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def audience_counts(session: AsyncSession, audience: Audience) -> dict[str, Counter[str]]:
    """Parents matching the filters, by channel: {"all": ..., "unreachable": ...}."""
    rows = await session.execute(
        select(User.channel, User.reachable, func.count())
        .where(*audience.where())
        .group_by(User.channel, User.reachable)
    )
    counts: dict[str, Counter[str]] = {"all": Counter(), "unreachable": Counter()}
    for channel, reachable, n in rows.all():
        counts["all"][channel] += n
        if not reachable:
            counts["unreachable"][channel] += n
    return counts


async def find(session: AsyncSession, key: str) -> Campaign | None:
    return await session.scalar(select(Campaign).where(Campaign.key == key))


async def create(
    session: AsyncSession, message: CampaignText, audience: Audience, now: datetime
) -> Campaign:
    """Store the campaign and fix its audience: one planned delivery per parent."""
    reply = message.reply()
    campaign = Campaign(
        key=message.key,
        text=reply.text,
        buttons=reply.buttons_json(),
        filters=audience.as_dict(),
        state="sending",
        audience=0,
        created_at=now,
    )
    session.add(campaign)
    await session.flush()
    result = await session.execute(
        insert(CampaignDelivery).from_select(
            ["campaign_id", "user_id", "state", "attempts"],
            select(
                literal(campaign.id, CampaignDelivery.campaign_id.type),
                User.id,
                literal("planned", CampaignDelivery.state.type),
                literal(0, CampaignDelivery.attempts.type),
            ).where(*audience.where()),
        )
    )
    campaign.audience = result.rowcount or 0
    return campaign


async def progress(session: AsyncSession, campaign_id: int) -> Counter[str]:
    rows = await session.execute(
        select(CampaignDelivery.state, func.count())
        .where(CampaignDelivery.campaign_id == campaign_id)
        .group_by(CampaignDelivery.state)
    )
    return Counter({state: n for state, n in rows.all()})


def campaign_reply(campaign: Campaign) -> Reply:
    rows = (campaign.buttons or {}).get("rows", [])
    return Reply(
        campaign.text, [[Button(label, payload) for label, payload in row] for row in rows]
    )


async def _planned_channels(session: AsyncSession, campaign_id: int) -> list[str]:
    rows = await session.scalars(
        select(User.channel)
        .join(CampaignDelivery, CampaignDelivery.user_id == User.id)
        .where(CampaignDelivery.campaign_id == campaign_id, CampaignDelivery.state == "planned")
        .distinct()
    )
    return sorted(rows)


async def _move(
    app: Any, campaign: Campaign, channel: str, limit: int, now: datetime
) -> Counter[str]:
    """Move up to `limit` planned deliveries of `channel` to the outbox, in one transaction."""
    moved: Counter[str] = Counter()
    queued: list[Reply] = []
    async with app.db.session() as session:
        claimed = (
            await session.execute(
                select(CampaignDelivery, User)
                .join(User, CampaignDelivery.user_id == User.id)
                .where(
                    CampaignDelivery.campaign_id == campaign.id,
                    CampaignDelivery.state == "planned",
                    User.channel == channel,
                )
                .order_by(CampaignDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=CampaignDelivery)
            )
        ).all()
        users = {user.id: user for _, user in claimed}
        for state, reachable in (("sent", True), ("unreachable", False)):
            ids = [d.id for d, user in claimed if bool(user.reachable) is reachable]
            if not ids:
                continue
            # Conditional on "planned": a row another sender has just taken is left alone.
            taken = await session.execute(
                update(CampaignDelivery)
                .execution_options(synchronize_session=False)
                .where(CampaignDelivery.id.in_(ids), CampaignDelivery.state == "planned")
                .values(
                    state=state,
                    attempts=CampaignDelivery.attempts + 1,
                    sent_at=now if reachable else None,
                    last_error=None if reachable else "parent unreachable",
                )
                .returning(CampaignDelivery.id, CampaignDelivery.user_id)
            )
            mine = taken.all()
            moved[state] += len(mine)
            if not reachable:
                continue
            links = []
            for delivery_id, user_id in mine:
                reply = campaign_reply(campaign)
                (entry,) = await queue_replies(session, users[user_id], [reply], kind="campaign")
                queued.append(reply)
                links.append({"id": delivery_id, "transcript_id": entry.id})
            if links:
                await session.execute(update(CampaignDelivery), links)
    wake_delivery(app, queued)
    return moved


Sleep = Callable[[float], Awaitable[None]]


async def send(
    app: Any,
    campaign_id: int,
    *,
    clock: Callable[[], datetime] | None = None,
    sleep: Sleep = asyncio.sleep,
    on_progress: Callable[[Counter[str]], None] | None = None,
    on_wait: Callable[[datetime], None] | None = None,
) -> Counter[str]:
    """Move the campaign's planned deliveries to the outbox until none is left: each step
    one second's worth of each channel's limit, only in the region's daytime window."""
    clock = clock or getattr(app.services, "clock", None) or utcnow
    rule = policy(app.region)
    total: Counter[str] = Counter()
    while True:
        async with app.db.session() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None:
                raise CampaignError(f"no campaign {campaign_id}")
            channels = await _planned_channels(session, campaign_id)
            if not channels:
                if campaign.state != "done":
                    campaign.state, campaign.finished_at = "done", clock()
                return total
        now = clock()
        if not rule.is_daytime(now):
            resume = rule.next_daytime(now)
            if on_wait:
                on_wait(resume)
            await sleep((resume - now).total_seconds())
            continue
        step: Counter[str] = Counter()
        for channel in channels:
            per_second = max(1, int(channel_rate(app, channel)))
            step += await _move(app, campaign, channel, per_second, now)
        total += step
        if on_progress:
            on_progress(step)
        await sleep(1.0)
