"""The knowledge-base upkeep page: the questions the bot did not answer, or answered with
low confidence, grouped by what they ask (handlers/faq/grouping.py), with how many were
asked, an example (personal data masked), the answer the bot gave and what the parents
did next. Staff mark a group "added to the knowledge base" or "not for the bot"; it
leaves the list of new ones, and a question like it asked later is new again.

- GET  /upkeep          ?period=7|30|90|365|all &view=new|added|not_for_bot
                        &outcome=<the bot's> &next=<the parent's> &page=N
- POST /upkeep/mark     row (a question of the group), upto (the newest question the page
                        showed), the page's filters, and mark=added|not_for_bot|new
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from bot.web.console import MenuItem, _app, _int, _t, page
from bot.web.masking import mask_text
from bot.web.security import MENU_KEY, access, render_error, staff_of
from handlers.faq.grouping import Group, group, terms_key
from handlers.faq.service import Faq, load_faq
from storage import upkeep
from storage.models import RESOLUTIONS, FaqUnanswered, utcnow
from storage.staff import staff_audit

UPKEEP_ITEM = MenuItem("/upkeep", "upkeep", "operator")
PERIODS = ("7", "30", "90", "365", "all")
DEFAULT_PERIOD = "30"
VIEWS = ("new", *RESOLUTIONS)
NEXT = (upkeep.PERSON, upkeep.LEFT, upkeep.WENT_ON)
PAGE = 30
EXAMPLES = 3


@dataclass(frozen=True)
class Params:
    period: str = DEFAULT_PERIOD
    view: str = "new"
    outcome: str = ""
    next_step: str = ""
    page: int = 1

    @classmethod
    def read(cls, values: Any) -> Params:
        def pick(name: str, allowed: tuple[str, ...], default: str) -> str:
            value = str(values.get(name, "") or "")
            return value if value in allowed else default

        number = _int(str(values.get("page", "") or ""))
        return cls(
            period=pick("period", PERIODS, DEFAULT_PERIOD),
            view=pick("view", VIEWS, "new"),
            outcome=pick("outcome", upkeep.OUTCOMES, ""),
            next_step=pick("next", NEXT, ""),
            page=max(number, 1),
        )

    def filters(self, now: datetime) -> upkeep.Filters:
        since = None if self.period == "all" else now - timedelta(days=int(self.period))
        return upkeep.Filters(
            since=since,
            outcome=self.outcome,
            next_step=self.next_step,
            resolution=None if self.view == "new" else self.view,
        )

    def query(self, **changes: Any) -> str:
        values = {
            "period": self.period,
            "view": self.view,
            "outcome": self.outcome,
            "next": self.next_step,
            "page": self.page,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


@dataclass
class GroupRow:
    """One group of questions as the page shows it."""

    group: Group
    count: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    next_steps: Counter[str] = field(default_factory=Counter)
    entries: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    last_at: datetime | None = None
    last_id: int = 0
    example_ids: list[int] = field(default_factory=list)
    example: str = ""
    example_user: int | None = None
    more_examples: list[str] = field(default_factory=list)
    earlier: tuple[str, datetime, str | None] | None = None

    @property
    def answer(self) -> tuple[str, str | None]:
        """The bot's most frequent (outcome, entry id) for the group, an entry it gave
        before "nothing found"."""
        given = [(pair, n) for pair, n in self.entries.most_common() if pair[1]]
        return (given or self.entries.most_common())[0][0]


# The last clusterings, by the term sets and counts they were made of: a view that
# finds the same questions (a reload, the page after marking) does not cluster again.
_GROUPS: dict[tuple[int, frozenset[tuple[str, int]]], list[Group]] = {}
CACHED = 8


def grouped(counts: Counter[str], faq: Faq) -> list[Group]:
    key = (id(faq.index), frozenset(counts.items()))
    found = _GROUPS.get(key)
    if found is None:
        found = group(counts, faq.index)
        if len(_GROUPS) >= CACHED:
            _GROUPS.pop(next(iter(_GROUPS)))
        _GROUPS[key] = found
    return found


def faq_of(request: web.Request) -> Faq:
    return getattr(_app(request).services, "faq", None) or load_faq()


async def build(
    session: Any, faq: Faq, params: Params, now: datetime, upto: int | None = None
) -> tuple[list[GroupRow], int]:
    """The page's groups, biggest first, and the newest question they count."""
    analyzer = faq.index.analyzer
    await upkeep.fill_terms(session, lambda text: terms_key(analyzer, text))
    await upkeep.settle(session, now)
    if upto is None:
        upto = await upkeep.newest_id(session)
    filters = params.filters(now)
    # Groups are made of every question of the period, so that they stay the same
    # whatever the outcome filters; the filters then choose the questions counted.
    found = await upkeep.buckets(session, replace(filters, outcome="", next_step=""), now, upto)
    counts: Counter[str] = Counter()
    for bucket in found:
        counts[bucket.terms] += bucket.count
    # Questions marked before join the clustering last, so they never lead a group: a
    # new question like them is shown with how they were marked.
    earlier: dict[str, tuple[str, datetime, str | None]] = {}
    if params.view == "new":
        marked = await upkeep.marked_keys(session, filters.since, upto)
        earlier = await upkeep.marked_before(session, marked | set(counts))
        for key in marked:
            counts[key] += 0
    else:
        earlier = await upkeep.marked_before(session, set(counts))
    groups = grouped(counts, faq)
    rows: dict[str, GroupRow] = {}
    every: list[GroupRow] = []
    for each in groups:
        row = GroupRow(each)
        every.append(row)
        for key in each.keys:
            rows[key] = row
            if key in earlier and (row.earlier is None or earlier[key][1] > row.earlier[1]):
                row.earlier = earlier[key]
    by_recency = sorted(found, key=lambda b: b.last_id, reverse=True)
    for bucket in by_recency:
        if filters.outcome and bucket.outcome != filters.outcome:
            continue
        if filters.next_step and bucket.next_step != filters.next_step:
            continue
        row = rows[bucket.terms]
        row.count += bucket.count
        row.outcomes[bucket.outcome] += bucket.count
        row.next_steps[bucket.next_step or "pending"] += bucket.count
        row.entries[(bucket.outcome, bucket.entry_id)] += bucket.count
        if row.last_at is None or bucket.last_at > row.last_at:
            row.last_at = bucket.last_at
        row.last_id = max(row.last_id, bucket.last_id)
        if len(row.example_ids) < EXAMPLES + 1:
            row.example_ids.append(bucket.last_id)
    shown = [row for row in every if row.count]
    shown.sort(key=lambda row: (-row.count, -row.last_id))
    return shown, upto


async def fill_examples(session: Any, rows: list[GroupRow]) -> None:
    """The newest question of each group, and a few more, masked."""
    ids = [id_ for row in rows for id_ in row.example_ids]
    if not ids:
        return
    found = {
        id_: (text, user_id)
        for id_, text, user_id in await session.execute(
            select(FaqUnanswered.id, FaqUnanswered.question, FaqUnanswered.user_id).where(
                FaqUnanswered.id.in_(ids)
            )
        )
    }
    for row in rows:
        texts = [found[id_] for id_ in row.example_ids if id_ in found]
        if not texts:
            continue
        row.example, row.example_user = mask_text(texts[0][0]), texts[0][1]
        seen = {row.example}
        for text, _ in texts[1:]:
            masked = mask_text(text)
            if masked not in seen:
                seen.add(masked)
                row.more_examples.append(masked)


def entry_label(request: web.Request, faq: Faq, outcome: str, entry_id: str | None) -> str:
    """What the bot gave: «ответил статьёй «…»», «первым предложил «…»», or nothing."""
    if not entry_id:
        return _t(request, "upkeep.no_entry")
    entry = faq.kb.get(entry_id)
    title = entry.title if entry else _t(request, "upkeep.gone_entry", id=entry_id)
    return _t(request, f"upkeep.gave.{outcome}", title=title)


@access("operator")
async def upkeep_page(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    params = Params.read(request.query)
    faq = faq_of(request)
    now = utcnow()
    async with app.db.session() as session:
        rows, upto = await build(session, faq, params, now)
        total = len(rows)
        start = (params.page - 1) * PAGE
        visible = rows[start : start + PAGE]
        await fill_examples(session, visible)
    notice = ""
    done = request.query.get("done", "")
    if done in RESOLUTIONS:
        notice = _t(
            request,
            "upkeep.done",
            resolution=_t(request, f"upkeep.resolution.{done}"),
            n=_int(request.query.get("n", "")),
        )
    elif done == "new":
        notice = _t(request, "upkeep.done_new", n=_int(request.query.get("n", "")))
    elif done == "nothing":
        notice = _t(request, "upkeep.nothing")
    return page(
        request,
        "upkeep.html",
        {
            "rows": visible,
            "total_groups": total,
            "total_questions": sum(row.count for row in rows),
            "start": start,
            "more": start + PAGE < total,
            "p": params,
            "upto": upto,
            "periods": PERIODS,
            "views": VIEWS,
            "outcomes": upkeep.OUTCOMES,
            "next_steps": NEXT,
            "resolutions": RESOLUTIONS,
            "notice": notice,
            "entry": lambda outcome, entry_id: entry_label(request, faq, outcome, entry_id),
        },
    )


@access("operator")
async def mark(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    form = await request.post()
    params = Params.read(form)
    action = str(form.get("mark", ""))
    row_id, upto = _int(str(form.get("row", ""))), _int(str(form.get("upto", "")))
    if action not in (*RESOLUTIONS, "new") or not row_id or not upto:
        return render_error(request, 400, "bad_request")
    if (action == "new") == (params.view == "new"):
        return render_error(request, 400, "bad_request")
    faq = faq_of(request)
    now = utcnow()
    async with app.db.session() as session:
        key = await session.scalar(select(FaqUnanswered.terms).where(FaqUnanswered.id == row_id))
        rows, _ = await build(session, faq, params, now, upto)
        found = next((row for row in rows if key is not None and key in row.group.keys), None)
        changed = 0
        if found is not None:
            changed = await upkeep.mark(
                session,
                found.group.keys,
                params.filters(now),
                upto,
                None if action == "new" else action,
                staff.login,
                now,
            )
        if changed:
            staff_audit(
                session,
                "upkeep_marked",
                staff.login,
                resolution=action,
                questions=changed,
                entry=found.answer[1] or "—",
            )
    back = params.query(done=action if changed else "nothing", n=changed)
    raise web.HTTPSeeOther(f"/upkeep?{back}")


def add_upkeep_routes(web_app: web.Application) -> None:
    menu = web_app[MENU_KEY]
    # After «Заявки», before the administrators' pages.
    after = next((i + 1 for i, item in enumerate(menu) if item.path == "/requests"), len(menu))
    menu.insert(after, UPKEEP_ITEM)
    web_app.router.add_get("/upkeep", upkeep_page)
    web_app.router.add_post("/upkeep/mark", mark)
