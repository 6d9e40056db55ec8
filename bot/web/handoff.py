"""The handoff queue in the staff console: every operator sees the same queue (it lives
in storage/handoffs.py), takes a conversation, answers the parent in their messenger
through the outbox, and closes it.

- GET  /queue                          the queue: waiting (newest waiting first), taken
- GET  /queue.json                     a short fingerprint of the queue, for live refresh
- POST /handoffs/{id}/take             two operators at once: one takes it, the other is told
- POST /handoffs/{id}/reply            text (or a canned reply), a link, the menu's buttons
- POST /handoffs/{id}/release          back to the queue
- POST /handoffs/{id}/close            the conversation returns to the bot; the parent is told
- GET  /conversations/{user_id}/live.json?after=<id>   new messages, masked, for the page

The conversation page (bot/web/console.py) shows the handoff panel and the reply box from
`handoff_context`; bot/web/static/handoff.js polls live.json and queue.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.scheduler import wake_delivery
from bot.web.console import Masker, MenuItem, Views, _app, _int, _t, child_values, page
from bot.web.masking import found_values
from bot.web.security import MENU_KEY, access, staff_of
from handlers.core import Button, Reply
from handlers.handoff import closed_reply, taken_reply
from handlers.menu import menu_rows
from storage import handoffs
from storage.models import Child, EnrollmentRequest, Handoff, TranscriptEntry, User, utcnow
from storage.outbox import queue_replies
from storage.staff import staff_audit

QUEUE_ITEM = MenuItem("/queue", "queue", "operator")
MAX_REPLY = 4000
LIVE_LIMIT = 100


def ago(texts: Any, delta: timedelta) -> str:
    """A waiting time as an operator reads it at a glance: «3 мин», «1 ч 05 мин», «2 дн 3 ч»."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 1:
        return texts("staff.handoff.ago.now")
    if minutes < 60:
        return texts("staff.handoff.ago.minutes", m=minutes)
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return texts("staff.handoff.ago.hours", h=hours, m=f"{rest:02d}")
    return texts("staff.handoff.ago.days", d=hours // 24, h=hours % 24)


def canned_replies(texts: Any) -> list[tuple[str, str, str]]:
    """(key, title, text) of each canned reply in texts/ru/handoff.toml, in file order."""
    found = []
    for key in texts.keys():
        if key.startswith("handoff.canned.") and key.endswith(".title"):
            name = key.removeprefix("handoff.canned.").removesuffix(".title")
            found.append((name, texts(key), texts(f"handoff.canned.{name}.text")))
    return found


async def masker_for(session: Any, user_id: int, shown: bool, messages: list[Any]) -> Masker:
    """The conversation's known personal data, as the conversation page masks it."""
    children = list(await session.scalars(select(Child).where(Child.user_id == user_id)))
    values = [value for child in children for value in child_values(child)]
    values += [
        phone
        for phone in await session.scalars(
            select(EnrollmentRequest.phone).where(EnrollmentRequest.user_id == user_id)
        )
        if phone
    ]
    for entry in messages:
        if entry.direction == "in":
            values += found_values(entry.text)
    return Masker(shown, [child.full_name for child in children], values)


@dataclass
class Panel:
    """What the conversation page shows of the parent's open handoff."""

    handoff: Handoff
    mine: bool
    waited: str
    canned: list[tuple[str, str, str]]


async def handoff_context(request: web.Request, session: Any, user_id: int) -> dict[str, Any]:
    """The conversation page's handoff panel: the open handoff, if any, and whether this
    operator holds it."""
    found = await handoffs.open_handoff_of(session, user_id)
    if found is None:
        return {"panel": None, "problem": problem(request)}
    staff = staff_of(request)
    return {
        "problem": problem(request, found.taken_by or ""),
        "panel": Panel(
            found,
            found.state == "taken" and found.taken_by == staff.login,
            ago(_app(request).texts, utcnow() - (handoffs.aware(found.waiting_since) or utcnow())),
            canned_replies(_app(request).texts),
        ),
    }


# -- the queue -----------------------------------------------------------------------------


@access("operator")
async def queue_page(request: web.Request) -> web.StreamResponse:
    return await _queue(request)


async def _queue(request: web.Request, error: str = "", status: int = 200) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    async with app.db.session() as session:
        waiting, taken = await handoffs.queue(session)
    now = utcnow()
    rows = [*waiting, *taken]
    maskers = {row.user.id: Masker(row.user.id in staff.unmasked) for row in rows}
    return page(
        request,
        "queue.html",
        {
            "waiting": waiting,
            "taken": taken,
            "maskers": maskers,
            "now": now,
            "ago": lambda delta: ago(app.texts, delta),
            "aware": handoffs.aware,
            "error": error or problem(request),
            "notice": _notice(request),
            "fingerprint": _fingerprint(rows),
        },
        status=status,
    )


PROBLEMS = ("gone", "take_first", "other", "bad_link", "empty")


def problem(request: web.Request, taken_by: str = "") -> str:
    """The problem named by the page's ?problem= (after a refused action), in Russian."""
    key = request.query.get("problem", "")
    return _t(request, f"handoff.problem.{key}", login=taken_by) if key in PROBLEMS else ""


def _notice(request: web.Request) -> str:
    key = request.query.get("notice", "")
    return _t(request, f"handoff.notice.{key}") if key in ("closed", "released") else ""


def _fingerprint(rows: list[handoffs.QueueRow]) -> str:
    """Changes whenever the queue does (a new, taken, returned or closed conversation, a new
    message of a parent in it)."""
    return ";".join(
        f"{row.handoff.id}:{row.handoff.state}:{row.handoff.taken_by or ''}:"
        f"{row.last_in.id if row.last_in else 0}"
        for row in sorted(rows, key=lambda row: row.handoff.id)
    )


@access("operator")
async def queue_json(request: web.Request) -> web.StreamResponse:
    async with _app(request).db.session() as session:
        waiting, taken = await handoffs.queue(session)
    return web.json_response(
        {"fingerprint": _fingerprint([*waiting, *taken]), "waiting": len(waiting)}
    )


# -- actions -------------------------------------------------------------------------------


def _wake(request: web.Request, replies: list[Reply]) -> None:
    wake_delivery(_app(request), replies)


@access("operator")
async def take(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    handoff_id = _int(request.match_info["handoff_id"])
    replies: list[Reply] = []
    async with app.db.session() as session:
        taking = await handoffs.take(session, handoff_id, staff.login)
        if taking.outcome == handoffs.TAKEN:
            assert taking.user is not None and taking.handoff is not None
            replies = [taken_reply(app.texts)]
            await queue_replies(
                session, taking.user, replies, kind="operator", author=f"staff:{staff.login}"
            )
            staff_audit(
                session,
                "handoff_taken",
                staff.login,
                user_id=taking.user.id,
                channel=taking.user.channel,
            )
    _wake(request, replies)
    if taking.outcome in (handoffs.TAKEN, handoffs.ALREADY_YOURS):
        assert taking.handoff is not None
        raise web.HTTPSeeOther(f"/conversations/{taking.handoff.user_id}#reply")
    if taking.outcome == handoffs.TAKEN_BY_OTHER:
        assert taking.handoff is not None
        message = _t(request, "handoff.problem.other", login=taking.handoff.taken_by or "")
        return await _queue(request, message, status=409)
    return await _queue(request, _t(request, "handoff.problem.gone"), status=409)


async def _held(
    request: web.Request, session: Any, handoff_id: int, *, admin_may: bool = False
) -> tuple[Handoff | None, str]:
    """The open handoff this operator holds (an admin may close any), or the key of why
    not (texts: staff.handoff.problem.<key>)."""
    staff = staff_of(request)
    handoff = await session.get(Handoff, handoff_id) if handoff_id else None
    if handoff is None or handoff.state == "closed":
        return None, "gone"
    if handoff.state == "taken" and handoff.taken_by == staff.login:
        return handoff, ""
    if admin_may and staff.admin:
        return handoff, ""
    return None, "take_first" if handoff.state == "waiting" else "other"


def _problem(key: str, back: str = "/queue") -> web.HTTPException:
    """Back to the page the operator came from, which names the problem."""
    return web.HTTPSeeOther(f"{back}?problem={key}")


def _link(url: str, label: str) -> Button | None:
    url = url.strip()
    if not url:
        return None
    if not url.startswith("https://") or len(url) > 255 or any(c.isspace() for c in url):
        raise ValueError("link")
    return Button(label.strip()[:64] or url.removeprefix("https://")[:64], url)


@access("operator")
async def reply(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    handoff_id = _int(request.match_info["handoff_id"])
    form = await request.post()
    text = str(form.get("text", "")).strip()
    canned = str(form.get("canned", ""))
    if not text and canned and app.texts.has(f"handoff.canned.{canned}.text"):
        text = app.texts(f"handoff.canned.{canned}.text")
    replies: list[Reply] = []
    async with app.db.session() as session:
        handoff, why = await _held(request, session, handoff_id)
        if handoff is None:
            found = await session.get(Handoff, handoff_id) if handoff_id else None
            raise _problem(why, f"/conversations/{found.user_id}" if found else "/queue")
        back = f"/conversations/{handoff.user_id}"
        try:
            link = _link(str(form.get("link_url", "")), str(form.get("link_label", "")))
        except ValueError:
            raise _problem("bad_link", back) from None
        if not text:
            raise _problem("empty", back)
        rows: list[list[Button]] = [[link]] if link else []
        if form.get("menu") == "1":
            rows += menu_rows(app.texts, app.router)
        user = await session.get(User, handoff.user_id)
        assert user is not None
        replies = [Reply(text[:MAX_REPLY], rows)]
        await queue_replies(session, user, replies, kind="operator", author=f"staff:{staff.login}")
        await handoffs.operator_replied(session, handoff)
    _wake(request, replies)
    raise web.HTTPSeeOther(f"{back}#reply")


@access("operator")
async def release(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    handoff_id = _int(request.match_info["handoff_id"])
    async with app.db.session() as session:
        handoff, why = await _held(request, session, handoff_id)
        if handoff is None:
            raise _problem(why)
        await handoffs.release(session, handoff, staff.login)
        staff_audit(session, "handoff_released", staff.login, user_id=handoff.user_id)
    raise web.HTTPSeeOther("/queue?notice=released")


@access("operator")
async def close(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    staff = staff_of(request)
    handoff_id = _int(request.match_info["handoff_id"])
    replies: list[Reply] = []
    async with app.db.session() as session:
        handoff, why = await _held(request, session, handoff_id, admin_may=True)
        if handoff is None:
            raise _problem(why)
        closed = await handoffs.close(session, handoff.id, handoffs.BY_OPERATOR)
        if closed is not None:
            _, user = closed
            replies = [closed_reply(app.texts, handoffs.BY_OPERATOR)]
            await queue_replies(
                session, user, replies, kind="operator", author=f"staff:{staff.login}"
            )
            staff_audit(
                session, "handoff_closed", staff.login, user_id=user.id, channel=user.channel
            )
    _wake(request, replies)
    raise web.HTTPSeeOther("/queue?notice=closed")


# -- live messages -------------------------------------------------------------------------


@access("operator")
async def live(request: web.Request) -> web.StreamResponse:
    """Messages of the conversation after `after` (masked as on the page), and the state
    of its handoff, for the page to append without reloading."""
    app = _app(request)
    staff = staff_of(request)
    user_id = _int(request.match_info["user_id"])
    after = _int(request.query.get("after", ""))
    pending = [_int(part) for part in request.query.get("pending", "").split(",")[:50]]
    async with app.db.session() as session:
        user = await session.get(User, user_id) if user_id else None
        if user is None:
            return web.json_response({"error": "not_found"}, status=404)
        entries = list(
            await session.scalars(
                select(TranscriptEntry)
                .where(TranscriptEntry.user_id == user_id, TranscriptEntry.id > after)
                .order_by(TranscriptEntry.id)
                .limit(LIVE_LIMIT)
            )
        )
        masker = await masker_for(session, user_id, user_id in staff.unmasked, entries)
        found = await handoffs.open_handoff_of(session, user_id)
        # Messages on the page still waiting to be sent: how their delivery went.
        updated = list(
            await session.scalars(
                select(TranscriptEntry).where(
                    TranscriptEntry.user_id == user_id,
                    TranscriptEntry.id.in_([n for n in pending if n]),
                    TranscriptEntry.status != "pending",
                )
            )
        )
    views = Views(request)
    return web.json_response(
        {
            "messages": [_entry_json(views, masker, entry) for entry in entries],
            "delivered": {
                str(entry.id): {"status": entry.status, "label": _delivery(views, entry)}
                for entry in updated
            },
            "handoff": (
                f"{found.id}:{found.state}:{found.taken_by or ''}" if found is not None else ""
            ),
        }
    )


def _entry_json(views: Views, masker: Masker, entry: TranscriptEntry) -> dict[str, Any]:
    pressed = entry.direction == "in" and bool(entry.payload)
    return {
        "id": entry.id,
        "direction": entry.direction,
        "staff": bool(entry.author),
        "author": views.author(entry),
        "when": views.when(entry.created_at, seconds=True),
        "text": (
            views.t("handoff.pressed", label=masker.label(entry.text))
            if pressed and entry.text
            else masker.said(entry)
        ),
        "pressed": pressed,
        "status": _delivery(views, entry),
        "state": entry.status or "",
        "buttons": [[masker.label(label) for label in row] for row in views.buttons(entry)],
    }


def _delivery(views: Views, entry: TranscriptEntry) -> str:
    """The delivery state as the page shows it: «доставлено 02.12.2026 21:17:42»."""
    label = views.delivery(entry)
    if entry.status == "sent" and entry.sent_at:
        label += " " + views.when(entry.sent_at, seconds=True)
    return label


def add_handoff_routes(web_app: web.Application) -> None:
    menu = web_app[MENU_KEY]
    menu.insert(0, QUEUE_ITEM)
    router = web_app.router
    router.add_get("/queue", queue_page)
    router.add_get("/queue.json", queue_json)
    router.add_post("/handoffs/{handoff_id}/take", take)
    router.add_post("/handoffs/{handoff_id}/reply", reply)
    router.add_post("/handoffs/{handoff_id}/release", release)
    router.add_post("/handoffs/{handoff_id}/close", close)
    router.add_get("/conversations/{user_id}/live.json", live)
